//! Plugin dependencies over real HTTP, on SQLite and on PostgreSQL: checked at publish against
//! the tenant's plugins (folder, composed, `PATCH`, the portal's composer), warnings for other
//! marketplaces and optional dependencies, and the `<plugin>--v<semver>` tags every version
//! gets (listed by `git ls-remote --tags`, kept through a purge).

#![allow(clippy::disallowed_methods)] // drives real programs (git) as a user would

mod common;

use std::process::Command;

use common::portal::{Browser, PASSWORD, add_user};
use common::server::{TestServer, TestTenant, tar_gz};
use reqwest::StatusCode;
use serde_json::{Value, json};
use skill_pool_core::Role;
use skill_pool_store::both_backends;
use skill_pool_store::testing::TestDb;

/// Publishes a folder holding only `.claude-plugin/plugin.json` with these fields.
async fn publish(s: &TestServer, t: &TestTenant, manifest: Value) -> (StatusCode, Value) {
    let body = tar_gz(&[(".claude-plugin/plugin.json", 0o644, manifest.to_string().as_bytes())]);
    s.post_bytes(&format!("{}/v1/plugins/publish", t.root), &t.admin, "application/gzip", body)
        .await
}

fn warnings(body: &Value) -> Vec<String> {
    body["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w.as_str().map(str::to_string))
        .collect()
}

fn ls_remote_tags(url: &str) -> Vec<String> {
    let out = Command::new("git")
        .args(["ls-remote", "--tags", url])
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

both_backends!(dependencies_are_checked_at_publish, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    for v in ["1.0.0", "1.2.0"] {
        let (st, body) = publish(&s, &t, json!({"name": "hello", "version": v})).await;
        assert_eq!(st, StatusCode::CREATED, "{body}");
    }

    // Every form the client reads, resolvable here: published, no warning about them.
    let (st, body) = publish(
        &s,
        &t,
        json!({"name": "needs", "version": "1.0.0",
               "dependencies": ["hello", "hello@acme", "hello@^1.0.0", {"name": "hello", "version": ">=1.1.0 <2"}]}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    // Only the string range is remarked on: the client drops it (an object's `version` it keeps).
    let w: Vec<String> = warnings(&body).into_iter().filter(|w| w.contains("dependency")).collect();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("\"hello@^1.0.0\"") && w[0].contains("\"version\": \"^1.0.0\""),
        "{w:?}"
    );

    // An unknown plugin: refused, naming it; nothing was written.
    let (st, body) = publish(&s, &t, json!({"name": "broken", "version": "1.0.0", "dependencies": ["nope"]})).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "invalid_plugin", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("\"nope\"") && message.contains("no plugin `nope`"), "{message}");
    let (st, _) = s.get_json(&format!("{}/v1/plugins/broken", t.root), &t.member).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // A range no version satisfies: refused, listing the versions there are.
    let (st, body) = publish(
        &s,
        &t,
        json!({"name": "broken", "version": "1.0.0", "dependencies": ["hello@^2.0.0"]}),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "invalid_plugin");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("^2.0.0") && message.contains("1.0.0, 1.2.0"), "{message}");

    // A form Claude Code refuses to read (`~` ranges only exist in objects).
    let (st, body) = publish(
        &s,
        &t,
        json!({"name": "broken", "version": "1.0.0", "dependencies": ["hello@~1.0"]}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_manifest", "{body}");
    assert!(body["message"].as_str().unwrap().contains("dependencies[0]"), "{body}");

    // Another marketplace: a warning naming `allowCrossMarketplaceDependenciesOn`.
    let (st, body) = publish(&s, &t, json!({"name": "cross", "version": "1.0.0", "dependencies": ["lint@other"]})).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let w = warnings(&body);
    assert!(
        w.iter()
            .any(|w| w.contains("lint@other") && w.contains("allowCrossMarketplaceDependenciesOn")),
        "{w:?}"
    );

    // Optional dependencies get the same checks, as warnings only.
    let (st, body) = publish(
        &s,
        &t,
        json!({"name": "opt", "version": "1.0.0", "optionalDependencies": ["nope", "hello@^3"]}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let w = warnings(&body);
    assert!(
        w.iter()
            .any(|w| w.contains("optional dependency") && w.contains("no plugin `nope`")),
        "{w:?}"
    );
    assert!(w.iter().any(|w| w.contains("^3") && w.contains("1.0.0, 1.2.0")), "{w:?}");

    // The audit row keeps the warnings of the publish.
    let (_, audit) = s.get_json(&format!("{}/v1/audit?action=plugin.publish", t.root), &t.admin).await;
    assert!(audit.to_string().contains("allowCrossMarketplaceDependenciesOn"), "{audit}");
    s.stop().await;
});

both_backends!(composed_plugins_and_role_bundles_carry_dependencies, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    let (st, body) = publish(&s, &t, json!({"name": "hello", "version": "1.0.0"})).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let (st, body) = publish(&s, &t, json!({"name": "lint", "version": "2.0.0"})).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");

    // A role bundle: no contents, only dependencies, in one request.
    let (st, body) = s
        .post_json(
            &format!("{}/v1/plugins", t.root),
            &t.admin,
            &json!({"slug": "backend-role", "version": "1.0.0", "description": "What a backend developer needs",
                    "dependencies": ["hello", "lint@^2.0.0"]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let files: Vec<&str> = body["plugin"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(files, [".claude-plugin/plugin.json"], "{body}");
    let manifest = plugin_json(&s, &t, "backend-role").await;
    assert_eq!(manifest["dependencies"], json!(["hello", "lint@^2.0.0"]), "{manifest}");

    // A PATCH that does not name dependencies keeps them; one that does replaces them.
    let (st, body) = patch(&s, &t, "backend-role", json!({"version": "1.1.0"})).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(
        plugin_json(&s, &t, "backend-role").await["dependencies"],
        json!(["hello", "lint@^2.0.0"])
    );
    let (st, body) = patch(&s, &t, "backend-role", json!({"version": "1.2.0", "dependencies": ["lint@^1"]})).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["message"].as_str().unwrap().contains("its versions are 2.0.0"), "{body}");
    let (st, body) = patch(&s, &t, "backend-role", json!({"version": "1.2.0", "dependencies": ["hello"]})).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(plugin_json(&s, &t, "backend-role").await["dependencies"], json!(["hello"]));

    // An unknown dependency is refused for a composition too.
    let (st, body) = s
        .post_json(
            &format!("{}/v1/plugins", t.root),
            &t.admin,
            &json!({"slug": "bad-role", "dependencies": ["ghost"]}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "invalid_plugin");

    // The portal's composer: a bundle of dependencies only, published in one go.
    add_user(&s.registry, "acme", "ana", Role::Admin).await;
    let mut b = Browser::new();
    b.sign_in(&t.root, "ana", PASSWORD).await;
    let url = format!("{}/portal/plugins/new", t.root);
    let new = b.get(&url).await;
    assert!(new.body.contains("name=\"dependencies\""), "{}", new.body);
    let csrf = new.csrf();
    let page = b
        .post(
            &url,
            &[
                ("csrf", &csrf),
                ("slug", "frontend-role"),
                ("version", "1.0.0"),
                ("dependencies", "hello\nlint@^2.0.0\n"),
                ("action", "publish"),
            ],
        )
        .await;
    assert!(page.status.is_redirection(), "{}: {}", page.status, page.body);
    assert_eq!(
        plugin_json(&s, &t, "frontend-role").await["dependencies"],
        json!(["hello", "lint@^2.0.0"])
    );
    // Editing it shows them, one a line.
    let edit = b.get(&format!("{}/portal/plugins/frontend-role/edit", t.root)).await;
    assert!(edit.body.contains("hello\nlint@^2.0.0"), "{}", edit.body);
    // A refusal is shown beside the field, and nothing is published.
    let page = b
        .post(
            &url,
            &[
                ("csrf", &csrf),
                ("slug", "ghost-role"),
                ("dependencies", "ghost"),
                ("action", "publish"),
            ],
        )
        .await;
    assert!(page.body.contains("no plugin `ghost`"), "{}", page.body);
    let (st, _) = s.get_json(&format!("{}/v1/plugins/ghost-role", t.root), &t.member).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    s.stop().await;
});

both_backends!(every_version_is_tagged_for_dependency_ranges, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    let mut commits = Vec::new();
    for v in ["1.0.0", "1.1.0", "2.0.0"] {
        let (st, body) = publish(&s, &t, json!({"name": "hello", "version": v})).await;
        assert_eq!(st, StatusCode::CREATED, "{body}");
        commits.push(body["plugin"]["current"]["commit"].as_str().unwrap().to_string());
    }
    let url = format!("{}/git/plugins/hello.git", t.root);
    let tags = tokio::task::block_in_place(|| ls_remote_tags(&url));
    for (v, commit) in ["1.0.0", "1.1.0", "2.0.0"].iter().zip(&commits) {
        assert!(tags.contains(&format!("{commit}\trefs/tags/hello--v{v}")), "{v}: {tags:?}");
        assert!(tags.contains(&format!("{commit}\trefs/tags/v{v}")), "{v}: {tags:?}");
    }

    // A purge rebuilds the repo from nothing: the remaining versions keep their tags (on their
    // recomputed commits), the purged one loses its own.
    let (st, body) = s
        .post_json(&format!("{}/v1/plugins/hello/versions/1.1.0/purge", t.root), &t.admin, &json!({}))
        .await;
    assert!(st.is_success(), "{st}: {body}");
    let (_, shown) = s.get_json(&format!("{}/v1/plugins/hello", t.root), &t.member).await;
    let by_version: std::collections::HashMap<String, String> = shown["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_str().unwrap().to_string(),
                v["commit"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let tags = tokio::task::block_in_place(|| ls_remote_tags(&url));
    assert_eq!(tags.iter().filter(|l| l.contains("refs/tags/hello--v")).count(), 2, "{tags:?}");
    for v in ["1.0.0", "2.0.0"] {
        assert!(tags.contains(&format!("{}\trefs/tags/hello--v{v}", by_version[v])), "{v}: {tags:?}");
    }
    assert!(!tags.iter().any(|l| l.contains("1.1.0")), "{tags:?}");

    // A repo at the right head that lacks a tag (written by an older skill-pool) gets it back
    // the next time it is checked, without a new commit.
    let tenant = s.registry.tenant_by_slug("acme").await.unwrap().unwrap();
    let path = s.registry.git_repo_for(tenant.id, "hello").await.unwrap();
    let on_disk = |args: &[&str]| {
        let out = Command::new("git").arg("-C").arg(&path).args(args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let head = on_disk(&["rev-parse", "main"]);
    on_disk(&["tag", "-d", "hello--v2.0.0"]);
    let fresh = skill_pool_server::registry_for(
        skill_pool_server::open_store(s.data_dir(), &s.db.url).await.unwrap(),
        &skill_pool_server::ServerConfig::for_data_dir(s.data_dir().to_path_buf(), "127.0.0.1:0".parse().unwrap()),
    );
    fresh.git_repo_for(tenant.id, "hello").await.unwrap();
    assert_eq!(on_disk(&["rev-parse", "hello--v2.0.0"]), by_version["2.0.0"]);
    assert_eq!(on_disk(&["rev-parse", "main"]), head);

    s.stop().await;
});

/// The `plugin.json` a clone of the plugin's repo holds.
async fn plugin_json(s: &TestServer, t: &TestTenant, slug: &str) -> Value {
    let _ = s;
    let url = format!("{}/git/plugins/{slug}.git", t.root);
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("c");
    tokio::task::block_in_place(|| {
        let out = Command::new("git")
            .args(["clone", "-q", "--depth", "1", &url, dest.to_str().unwrap()])
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    });
    serde_json::from_slice(&std::fs::read(dest.join(".claude-plugin/plugin.json")).unwrap()).unwrap()
}

async fn patch(s: &TestServer, t: &TestTenant, slug: &str, body: Value) -> (StatusCode, Value) {
    s.patch_json(&format!("{}/v1/plugins/{slug}", t.root), &t.admin, &body).await
}
