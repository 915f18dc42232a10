//! Upload names that are unsafe on macOS or Windows, or that git refuses: each refused through
//! the upload unpacker, with the error naming the path; and tricky names that stay allowed.
//! (`crates/server/tests/names_fsck.rs` publishes the allowed ones and runs `git fsck --strict`.)

use skill_pool_core::archive::{ArchiveError, FileMode, UploadFile, UploadLimits, pack_tar_gz, unpack_tar_gz};

fn file(path: &str, data: &str) -> UploadFile {
    UploadFile {
        path: path.into(),
        mode: FileMode::Regular,
        data: data.as_bytes().to_vec(),
    }
}

fn link(path: &str, target: &str) -> UploadFile {
    UploadFile {
        path: path.into(),
        mode: FileMode::Symlink,
        data: target.as_bytes().to_vec(),
    }
}

fn unpack(files: &[UploadFile]) -> Result<Vec<UploadFile>, ArchiveError> {
    unpack_tar_gz(&pack_tar_gz(files).unwrap(), &UploadLimits::from_upload_limit(1 << 20))
}

const GITMODULES_URL: &str = "[submodule \"lib\"]\n\tpath = lib\n\turl = -oProxyCommand=touch${IFS}/tmp/pwned\n";
const GITMODULES_NAME: &str = "[submodule \"../../hooks\"]\n\tpath = lib\n\turl = https://example.com/lib.git\n";

/// `(files, the path the error must name)`.
fn refused() -> Vec<(Vec<UploadFile>, &'static str)> {
    vec![
        // Case and Unicode-normalisation collisions.
        (vec![file("SKILL.md", "a"), file("skill.md", "b")], "skill.md"),
        (vec![file("hooks/hooks.json", "{}"), file("HOOKS/run.sh", "")], "hooks/hooks.json"),
        (vec![file("caf\u{e9}.md", ""), file("cafe\u{301}.md", "")], "caf\u{e9}.md"),
        (vec![file("ab", ""), file("a\u{200c}b", "")], "a\u{200c}b"),
        // Windows device names, in any case, with any extension.
        (vec![file("CON", "")], "CON"),
        (vec![file("docs/aux.txt", "")], "docs/aux.txt"),
        (vec![file("com1", "")], "com1"),
        (vec![file("LpT9.tar.gz", "")], "LpT9.tar.gz"),
        (vec![file("nul/x.md", "")], "nul/x.md"),
        // Trailing dots and spaces, and `:` streams.
        (vec![file("notes.", "")], "notes."),
        (vec![file("dir /x", "")], "dir /x"),
        (vec![file("a:b", "")], "a:b"),
        (vec![file("notes.md:secret", "")], "notes.md:secret"),
        // `.git` as NTFS and HFS+ read it.
        (vec![file(".git./config", "")], ".git./config"),
        (vec![file(".git /config", "")], ".git /config"),
        (vec![file("git~1/config", "")], "git~1/config"),
        (vec![file("GIT~1", "")], "GIT~1"),
        (vec![file(".git::$INDEX_ALLOCATION/config", "")], ".git::$INDEX_ALLOCATION/config"),
        (vec![file(".g\u{200c}it/config", "")], ".g\u{200c}it/config"),
        (
            vec![file("sub/.GIT\u{feff}/hooks/post-checkout", "")],
            "sub/.GIT\u{feff}/hooks/post-checkout",
        ),
        // `.gitmodules` and `.gitattributes` that fsck refuses.
        (vec![link(".gitmodules", "x"), file("x", "")], ".gitmodules"),
        (vec![link("gitmod~1", "x"), file("x", "")], "gitmod~1"),
        (vec![file(".gitmodules", GITMODULES_URL)], ".gitmodules"),
        (vec![file("skills/x/.gitmodules", GITMODULES_NAME)], "skills/x/.gitmodules"),
        (vec![file(".gitmodules", "[submodule \"a\"]\n\tupdate = !sh evil\n")], ".gitmodules"),
        (vec![file(".gitmodules", "[submodule \"a\"]\n\tpath = -x\n")], ".gitmodules"),
        (
            vec![file(".gitmodules", "[submodule \"a\"]\n\turl = https://h/%0a\n")],
            ".gitmodules",
        ),
        (vec![file(".gitmodules/x", "")], ".gitmodules/x"),
        (vec![file(".gitattributes/x", "")], ".gitattributes/x"),
        (
            vec![file(".gitattributes", &format!("{} text\n", "a".repeat(2100)))],
            ".gitattributes",
        ),
        // Symbolic links that leave the plugin on a folding filesystem.
        (
            vec![
                link("a/b/c/d/L", "../../../.."),
                link("home", "a/b/c/d/l/../../../../.."),
                file("a/b/c/d/f", ""),
            ],
            "home",
        ),
        (vec![link("d/caf\u{e9}", ".."), link("x/home", "../d/cafe\u{301}/..")], "x/home"),
        (vec![link("up", ".. /x")], "up"),
        (vec![link("up", "PROGRA~1/x")], "up"),
        (vec![link("cfg", ".git/config")], "cfg"),
        (vec![link("cfg", ".GIT./hooks")], "cfg"),
    ]
}

#[test]
fn refused_names_are_named() {
    for (i, (files, path)) in refused().into_iter().enumerate() {
        let err = unpack(&files).expect_err(&format!("case {i}: {path:?} was accepted"));
        assert_eq!(err.path(), Some(path), "case {i}: {err}");
        assert!(
            err.to_string().contains(&format!("`{path}`")),
            "case {i}: the message names the path: {err}"
        );
        assert!(!err.is_limit());
    }
}

/// Names that look odd but are the same file everywhere: accepted (the fsck test serves them).
fn allowed() -> Vec<UploadFile> {
    vec![
        file(".github/workflows/ci.yml", "on: push\n"),
        file(".gitignore", "target\n"),
        file(".gitattributes", "*.sh text eol=lf\n"),
        file(
            ".gitmodules",
            "[submodule \"lib\"]\n\tpath = lib\n\turl = https://example.com/lib.git\n[submodule \"rel\"]\n\tpath = rel\n\turl = ../rel.git\n",
        ),
        file("console.md", ""),
        file("com10.txt", ""),
        file("auxiliary/x.md", ""),
        file("git~2", ""),
        file(".gitx", ""),
        file("backup~1.md", ""),
        file("caf\u{e9}/menu.md", ""),
        file("\u{65e5}\u{672c}\u{8a9e}.md", ""),
        file("a b/c d.md", ""),
        file("...hidden", ""),
        link("docs/link", "../console.md"),
        link("a/b/L", "../.."),
        link("home", "a/b/l/auxiliary"),
    ]
}

#[test]
fn allowed_names_pass() {
    let back = unpack(&allowed()).unwrap();
    assert_eq!(back.len(), allowed().len());
}
