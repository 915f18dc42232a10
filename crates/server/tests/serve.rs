//! The served version (issue 13, point 5): by default the newest; an admin pins an older one (a
//! rollback) or holds a new one back, and follows the newest again. The catalogue, the API and
//! real git follow the pin, and the real Claude Code client rolls back with `plugin update`.

#![allow(clippy::disallowed_methods)] // drives real programs (git, the binaries, Claude Code) as a user would

mod common;

use std::process::Command;

use common::claude::Claude;
use common::server::{TestServer, TestTenant, tar_gz};
use serde_json::{Value, json};
use skill_pool_store::both_backends;
use skill_pool_store::testing::TestDb;

async fn publish(s: &TestServer, t: &TestTenant, version: &str) {
    let manifest = json!({"name": "tool", "version": version, "description": "a tool"}).to_string();
    let readme = format!("tool {version}\n");
    let body = tar_gz(&[
        (".claude-plugin/plugin.json", 0o644, manifest.as_bytes()),
        (
            "commands/hello.md",
            0o644,
            format!("---\ndescription: hello\n---\nSay hello ({version}).\n").as_bytes(),
        ),
        ("README.md", 0o644, readme.as_bytes()),
    ]);
    let (status, v) = s
        .post_bytes(&format!("{}/v1/plugins/publish", t.root), &t.admin, "application/gzip", body)
        .await;
    assert!(status.is_success(), "{status} {v}");
}

async fn entry(s: &TestServer, t: &TestTenant) -> Value {
    let (_, cat) = s.get_json(&format!("{}/.claude-plugin/marketplace.json", t.root), &t.member).await;
    cat["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "tool")
        .cloned()
        .unwrap()
}

async fn serve(s: &TestServer, t: &TestTenant, body: Value) -> (u16, Value) {
    let (status, v) = s.post_json(&format!("{}/v1/plugins/tool/serve", t.root), &t.admin, &body).await;
    (status.as_u16(), v)
}

/// The README of the commit `sha` of `url`, fetched by id with real git (as Claude Code does).
fn readme_at(url: &str, sha: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir.path())
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    git(&["init", "-q"]);
    git(&["-c", "protocol.version=2", "fetch", "-q", "--depth", "1", url, sha]);
    git(&["checkout", "-q", "FETCH_HEAD"]);
    std::fs::read_to_string(dir.path().join("README.md")).unwrap()
}

both_backends!(
    an_admin_pins_the_served_version_and_follows_the_newest_again,
    |db: TestDb| async move {
        let s = TestServer::start(db).await;
        let t = s.tenant("acme").await;
        publish(&s, &t, "1.0.0").await;
        publish(&s, &t, "1.1.0").await;
        assert_eq!(entry(&s, &t).await["version"], "1.1.0");

        // Roll back to 1.0.0: the catalogue pins its commit, the API says so, git serves it.
        let (status, plugin) = serve(&s, &t, json!({"version": "1.0.0"})).await;
        assert_eq!(status, 200, "{plugin}");
        assert_eq!(plugin["pinned"], true);
        assert_eq!(plugin["current"]["effective_version"], "1.0.0");
        let e = entry(&s, &t).await;
        assert_eq!(e["version"], "1.0.0", "{e}");
        let sha = e["source"]["sha"].as_str().unwrap().to_string();
        assert_eq!(sha, plugin["current"]["commit"].as_str().unwrap());
        let url = e["source"]["url"].as_str().unwrap().to_string();
        let (u, s2) = (url.clone(), sha.clone());
        assert_eq!(
            tokio::task::spawn_blocking(move || readme_at(&u, &s2)).await.unwrap(),
            "tool 1.0.0\n"
        );

        // A new version is held back while pinned.
        publish(&s, &t, "1.2.0").await;
        assert_eq!(entry(&s, &t).await["version"], "1.0.0");
        // Follow the newest again.
        let (status, plugin) = serve(&s, &t, json!({"latest": true})).await;
        assert_eq!(status, 200, "{plugin}");
        assert_eq!(plugin["pinned"], false);
        assert_eq!(entry(&s, &t).await["version"], "1.2.0");

        // Refusals: an unknown version (the known ones listed), both or neither, a member.
        let (status, v) = serve(&s, &t, json!({"version": "9.9.9"})).await;
        assert_eq!(status, 404, "{v}");
        assert!(v["message"].as_str().unwrap().contains("1.2.0, 1.1.0, 1.0.0"), "{v}");
        assert_eq!(serve(&s, &t, json!({"version": "1.0.0", "latest": true})).await.0, 400);
        assert_eq!(serve(&s, &t, json!({})).await.0, 400);
        let (status, _) = s
            .post_json(&format!("{}/v1/plugins/tool/serve", t.root), &t.member, &json!({"latest": true}))
            .await;
        assert_eq!(status.as_u16(), 403);
        // Audited.
        let (_, audit) = s.get_json(&format!("{}/v1/audit?action=plugin.serve", t.root), &t.admin).await;
        assert_eq!(audit["items"].as_array().unwrap().len(), 2, "{audit}");
        s.stop().await;
    }
);

/// The real client: a rollback changes the version string it sees, so `plugin update` installs
/// the older version; following the newest again brings the newest back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_rolls_back_when_an_older_version_is_served() {
    let Some(claude) = Claude::new() else { return };
    let s = TestServer::start(TestDb::sqlite()).await;
    let t = s.tenant("acme").await;
    publish(&s, &t, "1.0.0").await;
    publish(&s, &t, "1.1.0").await;
    let root = t.root.clone();
    let claude = tokio::task::spawn_blocking(move || {
        claude.marketplace_add(&root);
        claude.install("tool@acme");
        assert_eq!(claude.installed("tool@acme").1, "1.1.0");
        claude
    })
    .await
    .unwrap();
    let (status, v) = serve(&s, &t, json!({"version": "1.0.0"})).await;
    assert_eq!(status, 200, "{v}");
    let claude = tokio::task::spawn_blocking(move || {
        claude.marketplace_update("acme");
        claude.update("tool@acme");
        let (path, version) = claude.installed("tool@acme");
        assert_eq!(version, "1.0.0");
        assert_eq!(std::fs::read_to_string(path.join("README.md")).unwrap(), "tool 1.0.0\n");
        claude
    })
    .await
    .unwrap();
    let (status, v) = serve(&s, &t, json!({"latest": true})).await;
    assert_eq!(status, 200, "{v}");
    tokio::task::spawn_blocking(move || {
        claude.marketplace_update("acme");
        claude.update("tool@acme");
        assert_eq!(claude.installed("tool@acme").1, "1.1.0");
    })
    .await
    .unwrap();
    s.stop().await;
}

both_backends!(
    install_policies_are_kept_and_hidden_plugins_are_not_listed,
    |db: TestDb| async move {
        let s = TestServer::start(db).await;
        let t = s.tenant("acme").await;
        publish(&s, &t, "1.0.0").await;
        let (_, p) = s.get_json(&format!("{}/v1/plugins/tool", t.root), &t.member).await;
        assert_eq!(p["install_policy"], "available");
        let set = |policy: &'static str| {
            let (s, t) = (&s, &t);
            async move {
                let (status, v) = s
                    .post_json(
                        &format!("{}/v1/plugins/tool/policy", t.root),
                        &t.admin,
                        &json!({ "install_policy": policy }),
                    )
                    .await;
                (status.as_u16(), v)
            }
        };
        let (status, v) = set("required").await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["install_policy"], "required");
        assert_eq!(entry(&s, &t).await["name"], "tool", "a required plugin is listed");
        // Hidden: gone from the catalogue and the public pages, kept in the API.
        let (status, _) = set("hidden").await;
        assert_eq!(status, 200);
        let (_, cat) = s.get_json(&format!("{}/.claude-plugin/marketplace.json", t.root), &t.member).await;
        assert!(cat["plugins"].as_array().unwrap().is_empty(), "{cat}");
        let page = s
            .http
            .get(format!("{}/marketplace", t.root))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!page.contains("/plugin install tool@acme"), "the public page lists a hidden plugin");
        let detail = s.http.get(format!("{}/marketplace/tool", t.root)).send().await.unwrap();
        assert_eq!(detail.status().as_u16(), 404);
        let (_, p) = s.get_json(&format!("{}/v1/plugins/tool", t.root), &t.member).await;
        assert_eq!(p["install_policy"], "hidden");
        // Bad values and members are refused.
        assert_eq!(set("mandatory").await.0, 400);
        let (status, _) = s
            .post_json(
                &format!("{}/v1/plugins/tool/policy", t.root),
                &t.member,
                &json!({"install_policy": "available"}),
            )
            .await;
        assert_eq!(status.as_u16(), 403);
        let (_, audit) = s.get_json(&format!("{}/v1/audit?action=plugin.policy", t.root), &t.admin).await;
        assert_eq!(audit["items"].as_array().unwrap().len(), 2, "{audit}");
        s.stop().await;
    }
);
