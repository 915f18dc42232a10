//! docs/private-marketplaces.md, followed step by step (issue 13, "Done when"): an admin makes
//! the tenant private, makes a reader token, marks a plugin required, renders the managed
//! settings, and "deploys" them with the machine-wide login and git's system credential helper;
//! then a developer's Claude Code, never given a token, starts once and has the tenant's
//! marketplace and the required plugin — over https, with no token in any URL or in any file of
//! the developer's. On SQLite and PostgreSQL.

#![allow(clippy::disallowed_methods)] // drives real programs (git, the binaries, Claude Code) as a user would

mod common;

use std::path::Path;
use std::process::Command;

use common::claude::{Claude, ManagedFile, assert_same_tree};
use common::server::{TestServer, TestTenant, cli, tls_dir, workspace_bin, write_file};
use serde_json::{Value, json};
use skill_pool_store::both_backends;
use skill_pool_store::testing::TestDb;

fn ok(out: std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn publish(t: &TestTenant, dir: &Path, name: &str) {
    write_file(
        dir,
        ".claude-plugin/plugin.json",
        json!({"name": name, "version": "1.0.0", "description": format!("{name} for everyone")})
            .to_string()
            .as_bytes(),
        false,
    );
    write_file(
        dir,
        "commands/status.md",
        format!("---\ndescription: Status\n---\n{name} status.\n").as_bytes(),
        false,
    );
    write_file(dir, "scripts/check.sh", b"#!/bin/sh\necho ok\n", true);
    ok(cli(t, &t.admin, &["plugin", "publish", dir.to_str().unwrap()]), "publish");
}

both_backends!(the_private_marketplace_guide_works_word_for_word, |db: TestDb| async move {
    let Some(_tls) = tls_dir() else { return };
    let Some(mut claude) = Claude::new() else { return };
    let Some(s) = TestServer::start_tls(db, |_| {}).await else { return };
    let t = s.tenant("acme").await;
    let src = tempfile::tempdir().unwrap();
    publish(&t, &src.path().join("platform-tools"), "platform-tools");
    publish(&t, &src.path().join("extras"), "extras");

    // 1. Make the tenant private.
    ok(cli(&t, &t.admin, &["tenant", "set", "--visibility", "private"]), "tenant set");
    // 2. A reader token for the laptops (the secret is the last line).
    let out = ok(
        cli(
            &t,
            &t.admin,
            &[
                "token",
                "create",
                "--name",
                "laptops",
                "--role",
                "reader",
                "--expires-in-days",
                "365",
            ],
        ),
        "token create",
    );
    let reader = out.lines().last().unwrap().trim().to_string();
    assert!(reader.starts_with("sp_"), "{out}");
    // 3. The plugins everyone gets.
    ok(
        cli(&t, &t.admin, &["plugin", "policy", "platform-tools", "required"]),
        "plugin policy",
    );
    // 4. The managed settings.
    let settings: Value = serde_json::from_str(&ok(cli(&t, &t.admin, &["managed-settings"]), "managed-settings")).unwrap();
    assert_eq!(
        settings["extraKnownMarketplaces"]["acme"]["source"]["headersHelper"], "skill-pool auth header",
        "{settings}"
    );
    assert!(!settings.to_string().contains(&reader), "no token in the managed settings");

    // 5. Deploy: the binary on PATH, the managed settings, the machine-wide login, git's
    //    system credential helper (files the MDM writes; here in a temporary "system").
    let system = tempfile::tempdir().unwrap();
    let bin = workspace_bin("skill-pool");
    claude.prepend_path(bin.parent().unwrap());
    let Some(managed) = ManagedFile::install(&settings) else { return };
    let login = system.path().join("skill-pool/config.toml");
    std::fs::create_dir_all(login.parent().unwrap()).unwrap();
    std::fs::write(&login, format!("url = \"{}\"\ntoken = \"{reader}\"\n", t.root)).unwrap();
    claude.set_env("SKILL_POOL_SYSTEM_CONFIG", login.display().to_string());
    let gitconfig = system.path().join("gitconfig");
    let origin = url::Url::parse(&t.root).unwrap();
    let key = format!(
        "credential.https://{}:{}.helper",
        origin.host_str().unwrap(),
        origin.port().unwrap()
    );
    let out = Command::new("git")
        .args([
            "config",
            "--file",
            gitconfig.to_str().unwrap(),
            &key,
            &format!("{} auth git-credential", bin.display()),
        ])
        .output()
        .unwrap();
    ok(out, "git config --system");
    claude.set_env("GIT_CONFIG_SYSTEM", gitconfig.display().to_string());
    claude.set_env("NODE_EXTRA_CA_CERTS", tls_dir().unwrap().join("ca.crt").display().to_string());

    // 6. The developer starts Claude Code (twice: the first session fetches the managed
    //    plugins, the next records them). No token typed, none saved by the developer.
    claude.for_headless_sessions();
    let home = claude.home().to_path_buf();
    let published = src.path().join("platform-tools");
    tokio::task::spawn_blocking(move || {
        claude.run(&["-p", "hello"]);
        claude.run(&["-p", "hello"]);
        let markets: Value = serde_json::from_str(&claude.ok(&["plugin", "marketplace", "list", "--json"])).unwrap();
        assert!(
            markets.as_array().unwrap().iter().any(|m| m["name"] == "acme"),
            "the tenant's marketplace is known: {markets}"
        );
        let (installed, version) = claude.installed("platform-tools@acme");
        assert_eq!(version, "1.0.0");
        assert_same_tree(&published, &installed);
        let list: Value = serde_json::from_str(&claude.ok(&["plugin", "list", "--json"])).unwrap();
        let ids: Vec<&str> = list.as_array().unwrap().iter().filter_map(|p| p["id"].as_str()).collect();
        assert!(!ids.contains(&"extras@acme"), "only the required plugin: {list}");
        // Any other plugin of the catalogue installs on request, through the same helpers.
        claude.install("extras@acme");
        // The developer's files hold no token, and no URL carries one.
        assert!(!home.join(".config/skill-pool").exists(), "the developer never logged in");
        let mut stack = vec![home.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                let meta = std::fs::symlink_metadata(&p).unwrap();
                if meta.is_dir() {
                    stack.push(p);
                } else if meta.is_file() {
                    let bytes = std::fs::read(&p).unwrap();
                    assert!(
                        !bytes.windows(reader.len()).any(|w| w == reader.as_bytes()),
                        "the token is stored in {}",
                        p.display()
                    );
                }
            }
        }
    })
    .await
    .unwrap();
    drop(managed);
    s.stop().await;
});
