//! Upload names against real `git fsck --strict`: tricky names that are allowed publish, and the
//! served repository passes fsck (cloned with `fetch.fsckObjects` too); every name of a list that
//! fsck refuses in a one-entry tree is refused at publish as well, with the path named.

#![allow(clippy::disallowed_methods)] // drives real git as a user would

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::claude::{Claude, assert_same_tree};
use common::server::TestServer;
use common::upstream::Upstream;
use reqwest::StatusCode;
use serde_json::Value;
use skill_pool_core::archive::{FileMode, UploadFile, UploadLimits, pack_tar_gz, unpack_tar_gz};
use skill_pool_store::testing::TestDb;

fn git(args: &[&str], cwd: &Path, stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new("git");
    cmd.args(args)
        .current_dir(cwd)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("git");
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.unwrap_or_default()).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn ok(out: Output, what: &str) -> String {
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

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

/// Odd names that are one file on every filesystem, and git files git accepts.
fn tricky_but_allowed() -> Vec<UploadFile> {
    vec![
        file(".claude-plugin/plugin.json", r#"{"name": "tricky", "version": "1.0.0"}"#),
        file(".github/workflows/ci.yml", "on: push\n"),
        file(".gitignore", "target\n"),
        file(".gitattributes", "*.sh text eol=lf\n"),
        file(
            ".gitmodules",
            "[submodule \"lib\"]\n\tpath = lib\n\turl = https://example.com/lib.git\n[submodule \"rel\"]\n\tpath = rel\n\turl = ../rel.git\n\tupdate = rebase\n",
        ),
        file("skills/x/.gitmodules", "# only a comment\n"),
        file("console.md", "c"),
        file("com10.txt", ""),
        file("auxiliary/x.md", ""),
        file("git~2", ""),
        file(".gitx", ""),
        file(".git-blame-ignore-revs", ""),
        file("backup~1.md", ""),
        file("caf\u{e9}/menu.md", ""),
        file("\u{65e5}\u{672c}\u{8a9e}.md", ""),
        file("a b/c d.md", ""),
        file("...hidden", ""),
        link("docs/link", "../console.md"),
        link("a/b/L", "../.."),
        link("home", "a/b/l/console.md"),
        link(".gitattributes-link", ".gitattributes"),
    ]
}

/// One candidate name: a one-entry tree holding it (a file with `body`, a link, or a folder).
enum Entry {
    File(&'static str, &'static str),
    Link(&'static str, &'static str),
    Folder(&'static str),
}

fn candidates() -> Vec<Entry> {
    use Entry::*;
    vec![
        File(".git.", ""),
        File(".git ", ""),
        File(".GIT", ""),
        File("git~1", ""),
        File("GIT~1 .", ""),
        File(".git::$INDEX_ALLOCATION", ""),
        File(".g\u{200c}it", ""),
        File(".gi\u{feff}t", ""),
        Folder(".Git"),
        Link(".gitmodules", "x"),
        Link(".GITMODULES", "x"),
        Link("gitmod~1", "x"),
        Link("gi7eba~1", "x"),
        Link(".git\u{200c}modules", "x"),
        Folder(".gitmodules"),
        Folder(".gitattributes"),
        File(".gitmodules", "[submodule \"a\"]\n\tpath = a\n\turl = -oProxyCommand=x\n"),
        File(".gitmodules", "[submodule \"../a\"]\n\tpath = a\n"),
        File(".gitmodules", "[submodule \"a\"]\n\tpath = -a\n"),
        File(".gitmodules", "[submodule \"a\"]\n\tupdate = !rm\n"),
        File(".gitmodules", "[submodule \"a\"]\n\turl = ../../:x\n"),
        File(".gitmodules", "[submodule \"a\"]\n\turl = https://x/%0a\n"),
        File(".gitmodules", "[submodule \"a\"]\n\turl = https://x/ok.git\n"),
        File(".gitmodules", "[submodule \"a\"]\n\turl = https://h/a/../../x\n"),
        File(".gitmodules", "[submodule \"a\"]\n\turl = https://h/a/../x\n"),
        File(".gitmodules", "[submodule \"a\"]\n\turl = https://[::1]/x\n"),
        File(".gitmodules", "[submodule \"a\"]\n\turl = https://h/x?y#z\n"),
        File(".gitmodules", "[submodule \"a\"]\n\turl = http::https://h/x\n"),
        File(".gitmodules", "[submodule \"a\"]\n\turl = https://h_/x\n"),
        File(".gitmodules", "[submodule \"a\"]\n\turl = https://h/x%\n"),
        File(".gitmodules", "[submodule \"a\"]\n\turl = ftp://h/x\n"),
        File(".gitmodules", "[submodule \"a\"]\n\turl = https://u:p@h/x\n"),
        File(".gitmodules", "[submodule \"a\"]\n\turl = https://h:0/x\n"),
        File(".gitmodules", "[submodule \"a\"]\n\turl = https://h./x\n"),
        File(".gitmodules", "[submodule \"a\"]\n\turl = https:/h/x\n"),
        File(".gitmodules", "[submodule \"a\"]\n\turl = https:h/x\n"),
        File(".gitmodules", "[submodule \"a\"]\n\turl = https://%68/x\n"),
        File(".gitmodules", "[submodule \"a\"]\n\turl = ssh://h/x\n"),
        File(".gitmodules", "[submodule \"a\"]\n\turl = h:x\n"),
        File(".gitmodules", "[submodule \"a\"]\n\turl = ./x/../../../y\n"),
        File(".gitmodules", "[submodule \"a\"]\n\turl = ../../x\n"),
        File(".gitmodules", "[submodule \"a\"]\n\turl = .././../x\n"),
        File(".gitmodules", "[submodule \"a\"]\n\turl = git://h/%0a\n"),
        File(".gitmodules", "[submodule \"a\"]\n\turl = https://h/x%0d\n"),
        File(".gitmodules", "[submodule \"a\"]\n\turl = https://xn--/x\n"),
        File(".gitmodules", "[submodule \"a\"]\n\turl = https://h/\u{fc}\n"),
        File(".gitmodules", "[submodule \"a\"]\n\turl = https://\u{fc}/x\n"),
        File(".gitmodules", "[submodule \"a\"]\n\turl = https://h/%2e%2e/x\n"),
        File(".gitmodules", "[submodule \"a\"\n"),
        File("gitmod~1", "[submodule \"a\"]\n\turl = -x\n"),
        File(
            ".gitattributes",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ),
        Link(".gitattributes", "x"),
        Link(".gitignore", "x"),
        File("aux.txt", ""),
        File("x.", ""),
        File(".github", ""),
    ]
}

/// `git fsck --strict` on a commit whose tree holds only `entry`: true when fsck accepts it.
fn fsck_accepts(entry: &Entry) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(git(&["init", "-q", "--bare", "."], d, None), "init");
    let blob = |data: &[u8]| ok(git(&["hash-object", "-w", "--stdin"], d, Some(data)), "hash-object");
    let line = match entry {
        Entry::File(name, body) => {
            // A long .gitattributes line, made here so the table stays readable.
            let body = if name == &".gitattributes" {
                body.repeat(10)
            } else {
                body.to_string()
            };
            format!("100644 blob {}\t{name}\n", blob(body.as_bytes()))
        }
        Entry::Link(name, target) => format!("120000 blob {}\t{name}\n", blob(target.as_bytes())),
        Entry::Folder(name) => {
            let inner = ok(
                git(&["mktree"], d, Some(format!("100644 blob {}\tf\n", blob(b"x")).as_bytes())),
                "mktree",
            );
            format!("040000 tree {inner}\t{name}\n")
        }
    };
    let tree = ok(git(&["mktree"], d, Some(line.as_bytes())), "mktree");
    let commit = ok(git(&["commit-tree", &tree, "-m", "c"], d, None), "commit-tree");
    ok(git(&["update-ref", "refs/heads/main", &commit], d, None), "update-ref");
    git(&["fsck", "--strict", "--no-dangling"], d, None).status.success()
}

fn as_upload(entry: &Entry) -> (Vec<UploadFile>, &'static str) {
    match entry {
        Entry::File(name, body) => {
            let body = if name == &".gitattributes" {
                body.repeat(10)
            } else {
                body.to_string()
            };
            (vec![file(name, &body)], name)
        }
        Entry::Link(name, target) => (vec![link(name, target), file(target, "")], name),
        Entry::Folder(name) => (vec![file(&format!("{name}/f"), "x")], name),
    }
}

/// Whatever `git fsck --strict` refuses, the upload refuses too (naming the path).
#[test]
fn publish_refuses_what_fsck_refuses() {
    let limits = UploadLimits::from_upload_limit(1 << 20);
    let mut fsck_refused = 0;
    for entry in candidates() {
        let (files, name) = as_upload(&entry);
        let ours = unpack_tar_gz(&pack_tar_gz(&files).unwrap(), &limits);
        if !fsck_accepts(&entry) {
            fsck_refused += 1;
            let err = ours.expect_err(&format!("git fsck refuses `{}` but the upload accepts it", name.escape_debug()));
            assert!(
                err.path().is_some_and(|p| p.starts_with(name)),
                "`{}`: the error names the path: {err}",
                name.escape_debug()
            );
        }
    }
    assert!(fsck_refused >= 25, "the candidates exercise fsck ({fsck_refused} refused)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tricky_names_publish_and_the_served_repo_passes_fsck() {
    let s = TestServer::start(TestDb::sqlite()).await;
    let t = s.tenant("acme").await;
    let publish = |files: Vec<UploadFile>| {
        let body = pack_tar_gz(&files).unwrap();
        let req = s
            .http
            .post(format!("{}/v1/plugins/publish", t.root))
            .bearer_auth(&t.admin)
            .header("content-type", "application/gzip")
            .body(body);
        async move {
            let res = req.send().await.unwrap();
            let status = res.status();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    let (st, body) = publish(tricky_but_allowed()).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");

    let git_url = format!("{}/git/plugins/tricky.git", t.root);
    let tmp = tempfile::tempdir().unwrap();
    let bare = tmp.path().join("served.git");
    ok(
        git(
            &[
                "-c",
                "fetch.fsckObjects=true",
                "clone",
                "-q",
                "--bare",
                &git_url,
                bare.to_str().unwrap(),
            ],
            tmp.path(),
            None,
        ),
        "clone with fsckObjects",
    );
    ok(
        git(&["fsck", "--strict", "--no-dangling"], &bare, None),
        "git fsck --strict on the clone",
    );
    // And the repository on the server's disk itself.
    let mut repos = Vec::new();
    for tenant in std::fs::read_dir(s.data_dir().join("repos")).unwrap().flatten() {
        repos.extend(
            std::fs::read_dir(tenant.path())
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "git")),
        );
    }
    assert_eq!(repos.len(), 1, "{repos:?}");
    ok(
        git(&["fsck", "--strict", "--no-dangling"], &repos[0], None),
        "git fsck --strict on the served repo",
    );
    let work = tmp.path().join("work");
    ok(
        git(&["clone", "-q", &git_url, work.to_str().unwrap()], tmp.path(), None),
        "checkout",
    );
    assert_eq!(std::fs::read_link(work.join("home")).unwrap().to_str(), Some("a/b/l/console.md"));

    // Refused names answer 400 with the path in `field`.
    for (files, path) in [
        (vec![file("SKILL.md", "a"), file("skill.md", "b")], "skill.md"),
        (vec![file("docs/aux.txt", "")], "docs/aux.txt"),
        (vec![file(".git./config", "")], ".git./config"),
        (
            vec![
                link("a/b/c/d/L", "../../../.."),
                link("home", "a/b/c/d/l/../../../../.."),
                file("a/b/c/d/f", ""),
            ],
            "home",
        ),
        (
            vec![file(".gitmodules", "[submodule \"x\"]\n\turl = -oProxyCommand=evil\n")],
            ".gitmodules",
        ),
    ] {
        let mut files = files;
        files.push(file(".claude-plugin/plugin.json", r#"{"name": "evil"}"#));
        let (st, body) = publish(files).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["error"], "invalid_archive", "{body}");
        assert_eq!(body["field"], path, "{body}");
    }
}

/// A mirrored upstream tree goes through the same checks: a name that is unsafe on Windows or
/// macOS keeps the plugin from being served, and the pull's error names the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrored_trees_get_the_same_checks() {
    let up = Upstream::start().await;
    let work = up.create("tool");
    let write = |rel: &str, data: &str| {
        let p = work.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    };
    write(".claude-plugin/plugin.json", r#"{"name": "tool", "version": "1.0.0"}"#);
    write("skills/hello/SKILL.md", "---\nname: hello\ndescription: d\n---\n");
    write("skills/hello/skill.md", "a twin on macOS and Windows");
    up.commit_and_push(&work, "twins", false);

    let s = TestServer::start_with(TestDb::sqlite(), |c| {
        c.mirror.allowed_hosts = vec!["127.0.0.1".into()];
        c.mirror.timeout = std::time::Duration::from_secs(10);
    })
    .await;
    let t = s.tenant("acme").await;
    let (st, accepted) = s
        .post_json(
            &format!("{}/v1/plugins/import", t.root),
            &t.admin,
            &serde_json::json!({"url": up.url("tool")}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{accepted}");
    let id = accepted["job"]["id"].as_i64().unwrap();
    let mut job = Value::Null;
    for _ in 0..240 {
        job = s.get_json(&format!("{}/v1/jobs/{id}", t.root), &t.member).await.1;
        if job["state"] == "done" || job["state"] == "failed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(job["state"], "failed", "{job}");
    let (_, p) = s.get_json(&format!("{}/v1/plugins/tool", t.root), &t.member).await;
    assert_eq!(p["mirror"]["last_error"]["class"], "invalid_plugin", "{p}");
    let message = p["mirror"]["last_error"]["message"].as_str().unwrap();
    assert!(
        message.contains("`skills/hello/skill.md`") && message.contains("`skills/hello/SKILL.md`"),
        "{message}"
    );
    assert!(p["current"].is_null(), "nothing is served: {p}");
    s.stop().await;
}

/// Claude Code installs a plugin full of names that look odd but are one file everywhere, byte
/// for byte: what the checks let through is what the client takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_installs_a_plugin_with_tricky_names() {
    let Some(claude) = Claude::new() else { return };
    let s = TestServer::start(TestDb::sqlite()).await;
    let t = s.tenant("tools").await;
    // Links that point at folders (`a/b/L -> ../..`) stay out: a copy that follows them loops.
    let files: Vec<UploadFile> = tricky_but_allowed()
        .into_iter()
        .filter(|f| !(f.mode == FileMode::Symlink && (f.path == "a/b/L" || f.path == "home")))
        .collect();
    let src = tempfile::tempdir().unwrap();
    for f in &files {
        let p = src.path().join(&f.path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        if f.mode == FileMode::Symlink {
            std::os::unix::fs::symlink(std::str::from_utf8(&f.data).unwrap(), &p).unwrap();
        } else {
            std::fs::write(&p, &f.data).unwrap();
        }
    }
    let res = s
        .http
        .post(format!("{}/v1/plugins/publish", t.root))
        .bearer_auth(&t.admin)
        .header("content-type", "application/gzip")
        .body(pack_tar_gz(&files).unwrap())
        .send()
        .await
        .unwrap();
    let status = res.status();
    assert_eq!(status, StatusCode::CREATED, "{}", res.text().await.unwrap_or_default());
    tokio::task::block_in_place(|| {
        claude.marketplace_add(&t.root);
        claude.install("tricky@tools");
    });
    assert_same_tree(src.path(), &claude.installed_path("tools", "tricky"));
    s.stop().await;
}

/// xorshift64: a fixed sequence, so a failure reproduces (`SKILL_POOL_FSCK_SEED` picks another).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// A differential test against real `git fsck --strict`: random names built from the pieces git's
/// rules are made of, and random `.gitmodules` built from the values they look at. Every one that
/// fsck refuses, the upload refuses too. All trees go into one repository and one fsck run; each
/// candidate's blob carries its number, so an error maps back to exactly one candidate.
#[test]
fn random_names_and_gitmodules_against_fsck() {
    let seed = std::env::var("SKILL_POOL_FSCK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_abcd_ef01u64);
    let mut rng = Rng(seed);
    const FRAGMENTS: &[&str] = &[
        ".git",
        ".GIT",
        "git",
        "Git",
        "~1",
        "~2",
        "~5",
        ".",
        " ",
        "\u{200c}",
        "\u{feff}",
        "\u{200e}",
        "modules",
        "MODULES",
        "attributes",
        "ignore",
        ":",
        "$INDEX_ALLOCATION",
        "gi7eba",
        "gi7d29",
        "gitmod",
        "gitatt",
        "x",
        "con",
        ".txt",
        "L",
        "\u{e9}",
        "e\u{301}",
    ];
    const NAMES: &[&str] = &[
        "a", "../a", "a/../b", "..", "a\\..\\b", "x/..", "-a", "a/..", "..\\a", "b.c", "\u{e9}",
    ];
    const URLS: &[&str] = &[
        "https://h/r.git",
        "-x",
        "--upload-pack=x",
        "./x",
        "../x",
        "../../:x",
        "../../x",
        ".././../x",
        "https://h/%0a",
        "git://h/%0A",
        "https://h/a/../../x",
        "https://h:0/x",
        "https://%68/x",
        "https://h/x%",
        "ftp://h/x",
        "http::https://h/x",
        "ssh://h/x",
        "h:x",
        "\"-quoted\"",
        "https://h/x%0d",
        "https://[::1]/x",
        "https://u@h/x",
        "./a/../../../:b",
        "git://h/x",
        "https://h/%2e%2e/x",
    ];
    const PATHS: &[&str] = &["a", "-a", "../a", "\"-q\"", "a b"];
    const UPDATES: &[&str] = &["!x", "rebase", "none", "!", "merge"];

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(git(&["init", "-q", "--bare", "."], d, None), "init");
    let limits = UploadLimits::from_upload_limit(1 << 20);
    // (name, files of the upload, the tree's and blob's ids)
    let mut cases: Vec<(String, Vec<UploadFile>, String, String)> = Vec::new();
    for i in 0..400 {
        let gitmodules = i % 2 == 1;
        let mut name = String::new();
        if gitmodules {
            name.push_str(rng.pick(&[
                ".gitmodules",
                ".GITMODULES",
                "gitmod~1",
                "gi7eba~1",
                ".gitmodules.",
                ".git\u{200c}modules",
            ]));
        } else {
            for _ in 0..1 + rng.next() % 4 {
                name.push_str(rng.pick(FRAGMENTS));
            }
        }
        let body = if gitmodules {
            let mut text = String::new();
            for _ in 0..1 + rng.next() % 3 {
                let sub = rng.pick(NAMES);
                if rng.next().is_multiple_of(4) {
                    text.push_str(&format!("[submodule.{sub}]\n"));
                } else {
                    text.push_str(&format!("[submodule \"{}\"]\n", sub.replace('\\', "\\\\")));
                }
                for _ in 0..1 + rng.next() % 3 {
                    let line = match rng.next() % 3 {
                        0 => format!("\turl = {}", rng.pick(URLS)),
                        1 => format!("\tpath = {}", rng.pick(PATHS)),
                        _ => format!("\tupdate = {}", rng.pick(UPDATES)),
                    };
                    text.push_str(&line);
                    text.push('\n');
                }
            }
            format!("{text}# case {i}\n")
        } else {
            format!("case {i}\n")
        };
        let kind = rng.next() % 8;
        let (mode, upload) = match kind {
            0 | 1 => ("120000", vec![link(&name, "target"), file("target", "")]),
            2 => ("040000", vec![file(&format!("{name}/f"), &body)]),
            _ => ("100644", vec![file(&name, &body)]),
        };
        let blob = ok(
            git(
                &["hash-object", "-w", "--stdin"],
                d,
                Some(if mode == "120000" { b"target" } else { body.as_bytes() }),
            ),
            "hash-object",
        );
        let entry = if mode == "040000" {
            let inner = ok(git(&["mktree"], d, Some(format!("100644 blob {blob}\tf\n").as_bytes())), "mktree");
            format!("040000 tree {inner}\t{name}\n")
        } else {
            format!("{mode} blob {blob}\t{name}\n")
        };
        let out = git(&["mktree"], d, Some(entry.as_bytes()));
        if !out.status.success() {
            continue; // a name mktree itself will not write
        }
        let tree = String::from_utf8_lossy(&out.stdout).trim().to_string();
        cases.push((name, upload, tree, blob));
    }
    // Each tree under its own commit, so fsck walks and checks all of them.
    for (i, (_, _, tree, _)) in cases.iter().enumerate() {
        let commit = ok(git(&["commit-tree", tree, "-m", "c"], d, None), "commit-tree");
        ok(git(&["update-ref", &format!("refs/heads/c{i}"), &commit], d, None), "update-ref");
    }
    let report = git(&["fsck", "--strict", "--no-dangling"], d, None);
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&report.stdout),
        String::from_utf8_lossy(&report.stderr)
    );
    let (mut refused_by_fsck, mut refused_by_us) = (0, 0);
    for (name, upload, tree, blob) in &cases {
        let fsck_refuses = report
            .lines()
            .any(|l| l.starts_with("error") && (l.contains(tree.as_str()) || l.contains(blob.as_str())));
        let ours = unpack_tar_gz(&pack_tar_gz(upload).unwrap(), &limits);
        refused_by_us += ours.is_err() as usize;
        if fsck_refuses {
            refused_by_fsck += 1;
            let body = upload
                .iter()
                .map(|f| String::from_utf8_lossy(&f.data).into_owned())
                .collect::<Vec<_>>()
                .join(" | ");
            assert!(
                ours.is_err(),
                "git fsck refuses `{}` ({body:?}) but the upload accepts it",
                name.escape_debug()
            );
        }
    }
    assert!(
        cases.len() > 300 && refused_by_fsck > 50,
        "{} cases, {refused_by_fsck} refused by fsck, {refused_by_us} by us",
        cases.len()
    );
    eprintln!(
        "{} cases: {refused_by_fsck} refused by git fsck, {refused_by_us} by the upload",
        cases.len()
    );
}
