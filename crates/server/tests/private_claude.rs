//! The real Claude Code client and a private tenant over https (issue 13, point 1): without the
//! helpers it gets the `401`s and installs nothing; after `skill-pool login` with a reader token
//! and `skill-pool setup claude`, a session start adds the marketplace through `headersHelper`
//! and `claude plugin install` clones through git's credential helper — with no token in any
//! URL or any file the client keeps. The server speaks TLS itself, with the test CA of
//! `scripts/test-ca.sh` (trusted by the machine: git reads only the OS store), on
//! `https://skill-pool.test:<port>`. A private tenant serving archives needs no git helper at all:
//! the client sends the catalogue's header to same-origin archive downloads. On SQLite and
//! PostgreSQL.

#![allow(clippy::disallowed_methods)] // drives real programs (git, the binaries, Claude Code) as a user would

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::claude::{Claude, assert_same_tree};
use common::server::{TestServer, tls_dir, workspace_bin, write_file};
use serde_json::{Value, json};
use skill_pool_store::both_backends;
use skill_pool_store::testing::TestDb;

/// `skill-pool <args>` as the developer: their HOME, the machine's trust store.
fn sp(home: &Path, args: &[&str]) -> std::process::Output {
    Command::new(workspace_bin("skill-pool"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("NO_PROXY", "*")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&p) else { continue };
            if meta.is_dir() {
                stack.push(p);
            } else if meta.is_file()
                && let Ok(bytes) = std::fs::read(&p)
                && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
            {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

both_backends!(
    claude_code_installs_from_a_private_tenant_over_https_through_the_helpers,
    |db: TestDb| async move {
        let Some(tls) = tls_dir() else { return };
        let Some(mut claude) = Claude::new() else { return };
        let Some(s) = TestServer::start_tls(db, |_| {}).await else { return };
        let t = s.tenant("acme").await;
        assert!(t.root.starts_with("https://skill-pool.test:"), "{}", t.root);

        // A plugin, published by an admin with the CLI (over https, trusting the machine's store).
        let src = tempfile::tempdir().unwrap();
        let dir = src.path().join("secret-tool");
        write_file(
            &dir,
            ".claude-plugin/plugin.json",
            json!({"name": "secret-tool", "version": "1.0.0", "description": "internal only"})
                .to_string()
                .as_bytes(),
            false,
        );
        write_file(
            &dir,
            "commands/deploy.md",
            b"---\ndescription: Deploy\n---\nDeploy the service.\n",
            false,
        );
        write_file(
            &dir,
            "skills/runbook/SKILL.md",
            b"---\nname: runbook\ndescription: The runbook\n---\nFollow it.\n",
            false,
        );
        write_file(&dir, "skills/runbook/scripts/check.sh", b"#!/bin/sh\necho ok\n", true);
        let out = common::server::cli(&t, &t.admin, &["plugin", "publish", dir.to_str().unwrap()]);
        assert!(out.status.success(), "publish over https: {}", text(&out));

        let out = common::server::cli(&t, &t.admin, &["tenant", "set", "--visibility", "private"]);
        assert!(out.status.success(), "tenant set: {}", text(&out));
        let (status, created) = s
            .post_json(
                &format!("{}/v1/tokens", t.root),
                &t.admin,
                &json!({"name": "laptop", "role": "reader"}),
            )
            .await;
        assert_eq!(status.as_u16(), 201, "{created}");
        let reader = created["secret"].as_str().unwrap().to_string();

        claude.set_env("NODE_EXTRA_CA_CERTS", tls.join("ca.crt").display().to_string());
        claude.prepend_path(workspace_bin("skill-pool").parent().unwrap());
        let home = claude.home().to_path_buf();

        // Without the helpers: the marketplace cannot be added, nothing is installed.
        let r = claude.run(&["plugin", "marketplace", "add", &t.root]);
        assert!(
            !r.ok,
            "a private marketplace was added without a credential: {}{}",
            r.stdout, r.stderr
        );
        assert!(
            format!("{}{}", r.stdout, r.stderr).contains("401"),
            "the client reports the 401: {}{}",
            r.stdout,
            r.stderr
        );

        // The developer's two commands.
        let out = sp(&home, &["login", "--url", &t.root, "--token", &reader]);
        assert!(out.status.success(), "login: {}", text(&out));
        let out = sp(&home, &["setup", "claude"]);
        assert!(out.status.success(), "setup claude: {}", text(&out));
        let settings: Value = serde_json::from_str(&std::fs::read_to_string(home.join(".claude/settings.json")).unwrap()).unwrap();
        let source = &settings["extraKnownMarketplaces"]["acme"]["source"];
        assert_eq!(source["url"], t.root.as_str(), "{settings}");
        assert!(
            source["headersHelper"].as_str().unwrap().ends_with("skill-pool auth header"),
            "{settings}"
        );
        assert!(source.get("headers").is_none(), "no static token over https: {settings}");

        // A session start adds the declared marketplace, with the header from the helper (the
        // model endpoint is dead: only the start-up work matters).
        claude.for_headless_sessions();
        let start = claude.run(&["-p", "hello"]);
        let known = std::fs::read_to_string(claude.plugins_dir().join("known_marketplaces.json")).unwrap_or_default();
        assert!(
            known.contains("\"acme\""),
            "the session start did not add the marketplace: {known}\n{}{}",
            start.stdout,
            start.stderr
        );

        // Install: git clones over https, answered by the credential helper.
        claude.install("secret-tool@acme");
        let (installed, version) = claude.installed("secret-tool@acme");
        assert_eq!(version, "1.0.0");
        assert_same_tree(&dir, &installed);

        // No token in any URL or any file of Claude Code or git.
        for place in [home.join(".claude"), home.join(".gitconfig")] {
            let hits = if place.is_dir() {
                files_containing(&place, &reader)
            } else {
                std::fs::read_to_string(&place)
                    .map(|t| {
                        if t.contains(&reader) {
                            vec![place.display().to_string()]
                        } else {
                            vec![]
                        }
                    })
                    .unwrap_or_default()
            };
            assert!(hits.is_empty(), "the token is stored in {hits:?}");
        }
        let catalogue = std::fs::read_to_string(claude.plugins_dir().join("marketplaces/acme")).unwrap_or_default();
        assert!(!catalogue.contains('@') || !catalogue.contains("sp_"), "{catalogue}");
        s.stop().await;
    }
);

both_backends!(
    claude_code_downloads_a_private_tenants_archives_with_the_catalogue_header_alone,
    |db: TestDb| async move {
        let Some(tls) = tls_dir() else { return };
        let Some(mut claude) = Claude::new() else { return };
        let Some(s) = TestServer::start_tls(db, |_| {}).await else { return };
        let t = s.tenant("acme").await;
        let src = tempfile::tempdir().unwrap();
        let dir = src.path().join("zipped");
        write_file(
            &dir,
            ".claude-plugin/plugin.json",
            json!({"name": "zipped", "version": "2.0.0", "description": "served as a zip"})
                .to_string()
                .as_bytes(),
            false,
        );
        write_file(&dir, "commands/ship.md", b"---\ndescription: Ship\n---\nShip it.\n", false);
        write_file(&dir, "scripts/ship.sh", b"#!/bin/sh\necho shipped\n", true);
        let out = common::server::cli(&t, &t.admin, &["plugin", "publish", dir.to_str().unwrap()]);
        assert!(out.status.success(), "publish: {}", text(&out));
        let out = common::server::cli(&t, &t.admin, &["tenant", "set", "--visibility", "private", "--serve-as", "archive"]);
        assert!(out.status.success(), "tenant set: {}", text(&out));
        let (_, created) = s
            .post_json(
                &format!("{}/v1/tokens", t.root),
                &t.admin,
                &json!({"name": "laptop", "role": "reader"}),
            )
            .await;
        let reader = created["secret"].as_str().unwrap().to_string();
        // The archive itself needs the credential too.
        let (_, cat) = s.get_json(&t.root, &reader).await;
        let archive = cat["plugins"][0]["source"]["url"].as_str().unwrap().to_string();
        assert!(archive.starts_with(&format!("{}/archives/", t.root)), "{cat}");
        assert_eq!(s.http.get(&archive).send().await.unwrap().status(), 401);

        claude.set_env("NODE_EXTRA_CA_CERTS", tls.join("ca.crt").display().to_string());
        claude.prepend_path(workspace_bin("skill-pool").parent().unwrap());
        let home = claude.home().to_path_buf();
        let out = sp(&home, &["login", "--url", &t.root, "--token", &reader]);
        assert!(out.status.success(), "login: {}", text(&out));
        // No git credential helper at all: the archive download carries the catalogue's header.
        let out = sp(&home, &["setup", "claude", "--no-git"]);
        assert!(out.status.success(), "setup claude: {}", text(&out));
        assert!(!home.join(".gitconfig").exists());
        claude.for_headless_sessions();
        let start = claude.run(&["-p", "hello"]);
        let known = std::fs::read_to_string(claude.plugins_dir().join("known_marketplaces.json")).unwrap_or_default();
        assert!(known.contains("\"acme\""), "{known}\n{}{}", start.stdout, start.stderr);
        claude.install("zipped@acme");
        let (installed, version) = claude.installed("zipped@acme");
        assert_eq!(version, "2.0.0");
        assert_same_tree(&dir, &installed);
        assert!(
            files_containing(&home.join(".claude"), &reader).is_empty(),
            "no token in Claude Code's files"
        );
        s.stop().await;
    }
);
