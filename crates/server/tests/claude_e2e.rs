//! End to end with the real Claude Code client: a plugin folder published with the real
//! `skill-pool` CLI, and a plugin composed through the API, added as a marketplace, installed,
//! compared file by file with what was published, then updated to a new version. On SQLite and
//! on PostgreSQL.

mod common;

use std::path::Path;

use common::claude::{Claude, assert_same_tree};
use common::server::{TestServer, TestTenant, cli, skill_md, tar_gz};
use reqwest::StatusCode;
use serde_json::{Value, json};
use skill_pool_store::both_backends;
use skill_pool_store::testing::TestDb;

fn write(root: &Path, path: &str, data: &[u8], executable: bool) {
    use std::os::unix::fs::PermissionsExt;
    let p = root.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, data).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(if executable { 0o755 } else { 0o644 })).unwrap();
}

/// A plugin with every kind of content Claude Code loads, plus the awkward files.
fn toolbox(root: &Path, version: &str) {
    write(
        root,
        ".claude-plugin/plugin.json",
        format!(
            "{{\n  \"name\": \"toolbox\",\n  \"version\": \"{version}\",\n  \"description\": \"Tools for the team\",\n  \"author\": {{\"name\": \"Platform team\"}}\n}}\n"
        )
        .as_bytes(),
        false,
    );
    write(
        root,
        "skills/greet/SKILL.md",
        skill_md("greet", "Greets the user", "Say hello.").as_bytes(),
        false,
    );
    write(root, "skills/greet/scripts/greet.sh", b"#!/bin/sh\necho hello\n", true);
    write(root, "skills/greet/reference/phrases.txt", b"hello\nhi\n", false);
    write(
        root,
        "agents/reviewer.md",
        b"---\nname: reviewer\ndescription: Reviews a change\n---\nReview the change carefully.\n",
        false,
    );
    // Frontmatter Claude Code installs although it is not strict YAML (`: ` inside a plain
    // scalar, literal `\n`, a leading backquote, Windows line endings, a BOM, no block at all).
    write(
        root,
        "agents/triage.md",
        b"---\nname: triage\ndescription: Use this agent when the user reports a bug: it triages.\\n\\nExamples:\\n<example>user: it crashes</example>\nmodel: sonnet\n---\nTriage the bug.\n",
        false,
    );
    write(
        root,
        "skills/windows/SKILL.md",
        "\u{feff}---\r\nname: windows\r\ndescription: `dir` lists files: on Windows\r\n---\r\nUse dir.\r\n".as_bytes(),
        false,
    );
    write(root, "commands/bare.md", b"Run the thing without any frontmatter.\n", false);
    write(
        root,
        "commands/hello.md",
        b"---\ndescription: Say hello\n---\nSay hello to $ARGUMENTS.\n",
        false,
    );
    write(
        root,
        "hooks/hooks.json",
        br#"{"hooks": {"PostToolUse": [{"matcher": "Write", "hooks": [{"type": "command", "command": "${CLAUDE_PLUGIN_ROOT}/hooks/check.sh"}]}]}}
"#,
        false,
    );
    write(root, "hooks/check.sh", b"#!/bin/sh\nexit 0\n", true);
    write(
        root,
        ".mcp.json",
        br#"{"mcpServers": {"echo": {"command": "${CLAUDE_PLUGIN_ROOT}/bin/tool", "args": ["serve"]}}}
"#,
        false,
    );
    write(root, "bin/tool", b"#!/bin/sh\necho tool\n", true);
    write(root, ".hidden-config", b"secret=false\n", false);
    write(root, "assets/empty.txt", b"", false);
    write(
        root,
        "assets/logo.bin",
        &[0x89, b'P', b'N', b'G', 0, 0, 0xff, 0xfe, 13, 10, 26, 10],
        false,
    );
    write(root, "README.md", b"# toolbox\n", false);
    // A symbolic link inside the tree stays a link.
    let link = root.join("bin/tool-link");
    if std::fs::symlink_metadata(&link).is_err() {
        std::os::unix::fs::symlink("tool", &link).unwrap();
    }
}

/// A tar.gz of a folder as the CLI uploads it: relative paths, modes, symbolic links as links.
fn pack(dir: &Path) -> Vec<u8> {
    use std::os::unix::fs::PermissionsExt;
    fn walk(root: &Path, dir: &Path, b: &mut tar::Builder<flate2::write::GzEncoder<Vec<u8>>>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.path());
        for e in entries {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let mut h = tar::Header::new_gnu();
            if meta.file_type().is_symlink() {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                h.set_mode(0o777);
                b.append_link(&mut h, &rel, std::fs::read_link(&p).unwrap()).unwrap();
            } else if meta.is_dir() {
                walk(root, &p, b);
            } else {
                let data = std::fs::read(&p).unwrap();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(data.len() as u64);
                h.set_mode(meta.permissions().mode() & 0o777);
                b.append_data(&mut h, &rel, data.as_slice()).unwrap();
            }
        }
    }
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    walk(dir, dir, &mut b);
    b.into_inner().unwrap().finish().unwrap()
}

fn cli_ok(t: &TestTenant, args: &[&str]) -> String {
    let out = cli(t, &t.admin, args);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "skill-pool {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Claude runs block; keep the server's runtime threads free meanwhile.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

both_backends!(claude_installs_and_updates_a_published_folder, |db: TestDb| async move {
    let Some(claude) = Claude::new() else { return };
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("toolbox");
    toolbox(&src, "1.0.0");

    let out = blocking(|| cli_ok(&t, &["plugin", "publish", src.to_str().unwrap()]));
    assert!(out.contains("published plugin toolbox 1.0.0"), "{out}");

    // The served catalogue passes the client's own validator.
    let catalogue = s
        .http
        .get(format!("{}/.claude-plugin/marketplace.json", t.root))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let file = work.path().join("marketplace.json");
    std::fs::write(&file, &catalogue).unwrap();
    let validation = blocking(|| claude.validate(&file));
    assert!(
        validation.ok,
        "claude plugin validate refused the catalogue:\n{}\n{}",
        validation.stdout, validation.stderr
    );

    blocking(|| {
        claude.marketplace_add(&t.root);
        claude.install("toolbox@acme");
    });
    let (installed, version) = claude.installed("toolbox@acme");
    assert_eq!(version, "1.0.0");
    assert_eq!(installed, claude.installed_path("acme", "toolbox"));
    assert!(installed.ends_with("acme/toolbox/1.0.0"), "{}", installed.display());
    assert_same_tree(&src, &installed);
    // What the client installed is a plugin its own validator accepts, but for the one file
    // whose frontmatter is deliberately not YAML it can parse (it still installs and loads).
    let errors = blocking(|| claude.validation_errors(&installed));
    assert!(
        errors
            .iter()
            .all(|(file, message)| file == "skills/windows/SKILL.md" && message.contains("frontmatter failed to parse")),
        "{errors:?}"
    );
    let first = installed;

    // A new version with changed and added files reaches the client through `plugin update`.
    toolbox(&src, "1.1.0");
    write(
        &src,
        "commands/hello.md",
        b"---\ndescription: Say hello\n---\nSay hello warmly to $ARGUMENTS.\n",
        false,
    );
    write(&src, "skills/greet/reference/more.txt", b"good morning\n", false);
    let out = blocking(|| cli_ok(&t, &["plugin", "publish", src.to_str().unwrap()]));
    assert!(out.contains("published plugin toolbox 1.1.0"), "{out}");
    assert!(out.contains("command hello 1.0.1 (new version)"), "{out}");
    blocking(|| {
        claude.marketplace_update("acme");
        claude.update("toolbox@acme");
    });
    let (installed, version) = claude.installed("toolbox@acme");
    assert_eq!(version, "1.1.0");
    assert!(installed.ends_with("acme/toolbox/1.1.0"), "{}", installed.display());
    assert_ne!(installed, first, "a new version gets a new directory");
    assert!(installed.join("skills/greet/reference/more.txt").is_file());
    assert_same_tree(&src, &installed);
    s.stop().await;
});

both_backends!(claude_installs_a_plugin_composed_from_registered_pieces, |db: TestDb| async move {
    let Some(claude) = Claude::new() else { return };
    let s = TestServer::start(db).await;
    let t = s.tenant("team-a").await;
    let post = |path: &str, ct: &str, body: Vec<u8>| {
        s.http
            .post(format!("{}{path}", t.root))
            .bearer_auth(&t.admin)
            .header("content-type", ct.to_string())
            .body(body)
            .send()
    };
    let skill = skill_md("summarise", "Summarises a file", "Summarise it.");
    let res = post(
        "/v1/skills?slug=summarise",
        "application/gzip",
        tar_gz(&[
            ("SKILL.md", 0o644, skill.as_bytes()),
            ("scripts/count.sh", 0o755, b"#!/bin/sh\nwc -l \"$1\"\n"),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let command = b"---\ndescription: Ship it\n---\nShip the change.\n";
    let res = post("/v1/commands?slug=ship", "text/markdown", command.to_vec()).await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let create = json!({
        "slug": "composed", "version": "1.0.0", "description": "Composed from the registry", "author": {"name": "Team A"},
        "contents": [{"kind": "skill", "slug": "summarise"}, {"kind": "command", "slug": "ship"}],
        "blobs": {"mcp_servers": {"mcpServers": {"echo": {"command": "echo", "args": ["hi"]}}},
                  "hooks": {"hooks": {"SessionStart": [{"hooks": [{"type": "command", "command": "echo started"}]}]}}}
    });
    let res = post("/v1/plugins", "application/json", serde_json::to_vec(&create).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");

    blocking(|| {
        claude.marketplace_add(&t.root);
        claude.install("composed@team-a");
    });
    let (installed, version) = claude.installed("composed@team-a");
    assert_eq!(version, "1.0.0");
    let validation = blocking(|| claude.validate(&installed));
    assert!(validation.ok, "{}\n{}", validation.stdout, validation.stderr);
    assert_eq!(std::fs::read_to_string(installed.join("skills/summarise/SKILL.md")).unwrap(), skill);
    assert_eq!(std::fs::read(installed.join("commands/ship.md")).unwrap(), command);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(installed.join("skills/summarise/scripts/count.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_ne!(mode & 0o111, 0, "the executable bit survives");
    let manifest: Value = serde_json::from_slice(&std::fs::read(installed.join(".claude-plugin/plugin.json")).unwrap()).unwrap();
    assert_eq!(
        (manifest["name"].as_str(), manifest["version"].as_str()),
        (Some("composed"), Some("1.0.0"))
    );
    let mcp: Value = serde_json::from_slice(&std::fs::read(installed.join(".mcp.json")).unwrap()).unwrap();
    assert_eq!(mcp["mcpServers"]["echo"]["command"], "echo");
    assert!(installed.join("hooks/hooks.json").is_file());

    // A change of contents through PATCH, with a bumped version, is an update for the client.
    let skill2 = skill_md("summarise", "Summarises a file", "Summarise it in three lines.");
    let res = post(
        "/v1/skills?slug=summarise",
        "application/gzip",
        tar_gz(&[("SKILL.md", 0o644, skill2.as_bytes())]),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = s
        .http
        .patch(format!("{}/v1/plugins/composed", t.root))
        .bearer_auth(&t.admin)
        .json(&json!({"version": "1.1.0", "contents": [{"kind": "skill", "slug": "summarise"}, {"kind": "command", "slug": "ship"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap_or_default());
    blocking(|| {
        claude.marketplace_update("team-a");
        claude.update("composed@team-a");
    });
    let (installed, version) = claude.installed("composed@team-a");
    assert_eq!(version, "1.1.0");
    assert_eq!(
        std::fs::read_to_string(installed.join("skills/summarise/SKILL.md")).unwrap(),
        skill2
    );
    assert!(
        !installed.join("skills/summarise/scripts/count.sh").exists(),
        "the new skill version has no script"
    );
    s.stop().await;
});

both_backends!(claude_installs_a_folder_published_through_the_api, |db: TestDb| async move {
    let Some(claude) = Claude::new() else { return };
    let s = TestServer::start(db).await;
    let t = s.tenant("tools").await;
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("toolbox");
    let publish = |dir: &Path| {
        s.http
            .post(format!("{}/v1/plugins/publish?slug=toolbox", t.root))
            .bearer_auth(&t.admin)
            .header("content-type", "application/gzip")
            .body(pack(dir))
            .send()
    };

    toolbox(&src, "1.0.0");
    let res = publish(&src).await.unwrap();
    let status = res.status();
    let body = res.text().await.unwrap_or_default();
    assert!(status.is_success(), "{status}: {body}");
    blocking(|| {
        claude.marketplace_add(&t.root);
        claude.install("toolbox@tools");
    });
    let installed = claude.installed_path("tools", "toolbox");
    assert_same_tree(&src, &installed);

    // 1.1.0: a file changed, one added, one removed.
    toolbox(&src, "1.1.0");
    write(&src, "bin/tool", b"#!/bin/sh\necho tool v2\n", true);
    write(
        &src,
        "agents/tester.md",
        b"---\nname: tester\ndescription: Writes tests\n---\nWrite the tests.\n",
        false,
    );
    std::fs::remove_file(src.join("README.md")).unwrap();
    let res = publish(&src).await.unwrap();
    let status = res.status();
    let body = res.text().await.unwrap_or_default();
    assert!(status.is_success(), "{status}: {body}");
    blocking(|| {
        claude.marketplace_update("tools");
        claude.update("toolbox@tools");
    });
    let (installed, version) = claude.installed("toolbox@tools");
    assert_eq!(version, "1.1.0");
    assert!(installed.join("agents/tester.md").is_file());
    assert!(!installed.join("README.md").exists());
    assert_same_tree(&src, &installed);
    s.stop().await;
});

/// A small plugin folder whose plugin.json declares `dependencies`.
fn plugin_with_deps(root: &Path, name: &str, version: &str, dependencies: Value) {
    let manifest = json!({"name": name, "version": version, "description": format!("{name} for the team"), "dependencies": dependencies});
    let mut text = serde_json::to_string_pretty(&manifest).unwrap();
    text.push('\n');
    write(root, ".claude-plugin/plugin.json", text.as_bytes(), false);
    write(
        root,
        &format!("commands/{name}.md"),
        format!("---\ndescription: {name}\n---\nRun {name}.\n").as_bytes(),
        false,
    );
    write(root, "bin/run.sh", b"#!/bin/sh\necho run\n", true);
}

both_backends!(claude_installs_a_plugin_with_its_dependencies, |db: TestDb| async move {
    let Some(claude) = Claude::new() else { return };
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    let work = tempfile::tempdir().unwrap();
    let hello = work.path().join("hello");
    let needs = work.path().join("needs");
    let ranged = work.path().join("needs-range");
    plugin_with_deps(&hello, "hello", "1.0.0", json!([]));
    plugin_with_deps(&needs, "needs", "1.0.0", json!(["hello"]));
    plugin_with_deps(&ranged, "needs-range", "1.0.0", json!(["hello@^1.0.0"]));
    for dir in [&hello, &needs, &ranged] {
        blocking(|| cli_ok(&t, &["plugin", "publish", dir.to_str().unwrap()]));
    }

    // Installing `needs` installs `hello` with it, marked as pulled in by a dependency.
    blocking(|| {
        claude.marketplace_add(&t.root);
        claude.install("needs@acme");
    });
    let records = claude.installed_plugins();
    assert_eq!(records["plugins"]["hello@acme"][0]["auto"], true, "{records}");
    assert_ne!(records["plugins"]["needs@acme"][0]["auto"], true, "{records}");
    let (hello_dir, hello_version) = claude.installed("hello@acme");
    assert_eq!(hello_version, "1.0.0");
    assert_same_tree(&hello, &hello_dir);
    assert_same_tree(&needs, &claude.installed("needs@acme").0);

    // A dependency with a range: installed, `hello` stays the one dependency install.
    blocking(|| claude.install("needs-range@acme"));
    let records = claude.installed_plugins();
    assert_eq!(records["plugins"]["hello@acme"][0]["auto"], true, "{records}");
    assert_same_tree(&ranged, &claude.installed("needs-range@acme").0);
    assert_same_tree(&hello, &claude.installed("hello@acme").0);

    // The client's clones are counted as installs of the versions it fetched.
    for slug in ["hello", "needs", "needs-range"] {
        let (_, shown) = s.get_json(&format!("{}/v1/plugins/{slug}", t.root), &t.member).await;
        let total = shown["installs"]["total"].as_u64().unwrap_or(0);
        assert!(total >= 1, "{slug}: {}", shown["installs"]);
        assert_eq!(
            shown["installs"]["versions"][0]["version"], "1.0.0",
            "{slug}: {}",
            shown["installs"]
        );
    }
    s.stop().await;
});

/// The comparison the tests above rely on notices a changed byte, a lost executable bit, a
/// link turned into a file, and a missing file; it ignores the client's own markers.
#[test]
fn tree_comparison_sees_bytes_modes_and_links() {
    let a = tempfile::tempdir().unwrap();
    toolbox(a.path(), "1.0.0");
    let copy = || {
        let b = tempfile::tempdir().unwrap();
        toolbox(b.path(), "1.0.0");
        std::fs::create_dir_all(b.path().join(".in_use")).unwrap();
        std::fs::write(b.path().join(".orphaned_at"), b"1700000000000").unwrap();
        b
    };
    assert_same_tree(a.path(), copy().path());
    let differs = |change: &dyn Fn(&Path)| {
        let b = copy();
        change(b.path());
        let (a, b) = (a.path().to_path_buf(), b.path().to_path_buf());
        std::panic::catch_unwind(move || assert_same_tree(&a, &b)).is_err()
    };
    assert!(differs(&|b| write(b, "assets/logo.bin", b"\x89PNG", false)));
    assert!(differs(&|b| write(b, "bin/tool", b"#!/bin/sh\necho tool\n", false)));
    assert!(differs(&|b| {
        std::fs::remove_file(b.join("bin/tool-link")).unwrap();
        write(b, "bin/tool-link", b"#!/bin/sh\necho tool\n", true);
    }));
    assert!(differs(&|b| std::fs::remove_file(b.join("assets/empty.txt")).unwrap()));
    assert!(differs(&|b| write(b, "extra.txt", b"", false)));
}

both_backends!(
    claude_resolves_a_dependency_range_through_the_version_tags,
    |db: TestDb| async move {
        let Some(claude) = Claude::new() else { return };
        let s = TestServer::start(db).await;
        let t = s.tenant("acme").await;
        let work = tempfile::tempdir().unwrap();
        let (hello1, hello2) = (work.path().join("hello-1"), work.path().join("hello-2"));
        let ranged = work.path().join("needs-range");
        plugin_with_deps(&hello1, "hello", "1.0.0", json!([]));
        plugin_with_deps(&hello2, "hello", "2.0.0", json!([]));
        // The object form: 2.1.328 keeps its `version` as a constraint (a string's `@^range` is
        // dropped by its schema, so the catalogue's head would be installed).
        plugin_with_deps(&ranged, "needs-range", "1.0.0", json!([{"name": "hello", "version": "^1.0.0"}]));
        let mut commits = Vec::new();
        for dir in [&hello1, &hello2, &ranged] {
            blocking(|| cli_ok(&t, &["plugin", "publish", dir.to_str().unwrap()]));
            let (_, shown) = s.get_json(&format!("{}/v1/plugins/hello", t.root), &t.member).await;
            commits.push(shown["current"]["commit"].as_str().unwrap().to_string());
        }
        // The catalogue serves hello 2.0.0; the range resolves, through `hello--v1.0.0`, to 1.0.0.
        blocking(|| {
            claude.marketplace_add(&t.root);
            claude.install("needs-range@acme");
        });
        let records = claude.installed_plugins();
        let hello = &records["plugins"]["hello@acme"][0];
        assert_eq!(hello["auto"], true, "{records}");
        assert_eq!(hello["resolvedVersion"], "1.0.0", "{records}");
        assert_eq!(hello["gitCommitSha"], commits[0].as_str(), "{records}");
        assert_same_tree(&hello1, &claude.installed("hello@acme").0);
        assert_same_tree(&ranged, &claude.installed("needs-range@acme").0);
        s.stop().await;
    }
);
