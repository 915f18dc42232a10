//! Managed settings (issue 13, point 4): `GET /v1/managed-settings` and `skill-pool
//! managed-settings` render the tenant's marketplace, the allow-list and the required plugins;
//! the real Claude Code client reads them from its managed-settings file.

#![allow(clippy::disallowed_methods)] // drives real programs (the binaries, Claude Code) as a user would

mod common;

use common::claude::{Claude, ManagedFile};
use common::server::{TestServer, TestTenant, cli, tar_gz};
use serde_json::{Value, json};
use skill_pool_store::both_backends;
use skill_pool_store::testing::TestDb;

async fn publish(s: &TestServer, t: &TestTenant, name: &str, policy: &str) {
    let manifest = json!({"name": name, "version": "1.0.0", "description": format!("{name} plugin")}).to_string();
    let body = tar_gz(&[
        (".claude-plugin/plugin.json", 0o644, manifest.as_bytes()),
        (
            "commands/hello.md",
            0o644,
            format!("---\ndescription: hello\n---\nSay hello from {name}.\n").as_bytes(),
        ),
    ]);
    let (status, v) = s
        .post_bytes(&format!("{}/v1/plugins/publish", t.root), &t.admin, "application/gzip", body)
        .await;
    assert!(status.is_success(), "{status} {v}");
    let (status, v) = s
        .post_json(
            &format!("{}/v1/plugins/{name}/policy", t.root),
            &t.admin,
            &json!({ "install_policy": policy }),
        )
        .await;
    assert!(status.is_success(), "{status} {v}");
}

both_backends!(
    managed_settings_declare_the_marketplace_allow_it_and_enable_the_required_plugins,
    |db: TestDb| async move {
        let s = TestServer::start(db).await;
        let t = s.tenant("acme").await;
        publish(&s, &t, "base", "required").await;
        publish(&s, &t, "lint", "auto_install").await;
        publish(&s, &t, "extra", "available").await;
        publish(&s, &t, "draft", "hidden").await;
        let url = format!(
            "{}/v1/managed-settings?allow=anthropics/claude-plugins-official&allow=https://git.example.com/tools.git",
            t.root
        );
        let (status, v) = s.get_json(&url, &t.admin).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(
            v,
            json!({
                "extraKnownMarketplaces": {"acme": {"source": {"source": "url", "url": t.root}, "autoUpdate": true}},
                "strictKnownMarketplaces": [
                    {"source": "url", "url": t.root},
                    {"source": "github", "repo": "anthropics/claude-plugins-official"},
                    {"source": "git", "url": "https://git.example.com/tools.git"}
                ],
                "enabledPlugins": {"base@acme": true, "lint@acme": true}
            })
        );

        // A private tenant's marketplace carries the headers helper; the allow-list entry does not.
        let (status, _) = s
            .patch_json(&format!("{}/v1/tenant", t.root), &t.admin, &json!({"visibility": "private"}))
            .await;
        assert_eq!(status, 200);
        let (_, v) = s.get_json(&format!("{}/v1/managed-settings", t.root), &t.admin).await;
        assert_eq!(
            v["extraKnownMarketplaces"]["acme"]["source"],
            json!({"source": "url", "url": t.root, "headersHelper": "skill-pool auth header"})
        );
        assert_eq!(v["strictKnownMarketplaces"], json!([{"source": "url", "url": t.root}]));

        // Refusals: a member, a value that names no marketplace (nothing is rendered).
        let (status, _) = s.get_json(&format!("{}/v1/managed-settings", t.root), &t.member).await;
        assert_eq!(status, 403);
        let (status, v) = s
            .get_json(&format!("{}/v1/managed-settings?allow=not%20a%20marketplace", t.root), &t.admin)
            .await;
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["field"], "allow", "{v}");
        s.stop().await;
    }
);

both_backends!(
    the_cli_prints_the_fragment_and_merges_it_into_an_existing_file,
    |db: TestDb| async move {
        let s = TestServer::start(db).await;
        let t = s.tenant("acme").await;
        publish(&s, &t, "base", "required").await;
        let (t2, admin) = (t.clone(), t.admin.clone());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("managed-settings.json");
        std::fs::write(
            &file,
            "{\n  // set by IT\n  \"permissions\": {\"deny\": [\"Read(./.env)\"]},\n  \"strictKnownMarketplaces\": [{\"source\": \"github\", \"repo\": \"acme/it\"}],\n  \"enabledPlugins\": {\"gone@acme\": true, \"tool@it\": true}\n}\n",
        )
        .unwrap();
        let f = file.clone();
        let (printed, merged, again) = tokio::task::spawn_blocking(move || {
            let out = cli(&t2, &admin, &["managed-settings", "--allow", "o/r"]);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
            let f_arg = f.to_str().unwrap();
            let out = cli(&t2, &admin, &["managed-settings", "--merge-into", f_arg]);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let merged = std::fs::read_to_string(&f).unwrap();
            let out = cli(&t2, &admin, &["managed-settings", "--merge-into", f_arg]);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            (printed, merged, String::from_utf8_lossy(&out.stdout).into_owned())
        })
        .await
        .unwrap();
        assert_eq!(printed["strictKnownMarketplaces"][1], json!({"source": "github", "repo": "o/r"}));
        assert_eq!(printed["enabledPlugins"], json!({"base@acme": true}));
        assert!(merged.contains("// set by IT"), "comments kept: {merged}");
        let v: Value = jsonc(&merged);
        assert_eq!(v["permissions"], json!({"deny": ["Read(./.env)"]}), "{merged}");
        assert_eq!(
            v["strictKnownMarketplaces"],
            json!([{"source": "github", "repo": "acme/it"}, {"source": "url", "url": t.root}]),
            "{merged}"
        );
        // The tenant's stale plugin is dropped, another marketplace's kept.
        assert_eq!(v["enabledPlugins"], json!({"tool@it": true, "base@acme": true}), "{merged}");
        assert_eq!(v["extraKnownMarketplaces"]["acme"]["source"]["url"], t.root.as_str());
        assert!(again.contains("already up to date"), "{again}");
        s.stop().await;
    }
);

/// The settings file without its comments, as a value.
fn jsonc(text: &str) -> Value {
    let clean: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    serde_json::from_str(&clean).unwrap_or_else(|e| panic!("{e}: {text}"))
}

both_backends!(claude_code_reads_the_managed_settings, |db: TestDb| async move {
    let Some(mut claude) = Claude::new() else { return };
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    let other = s.tenant("beta").await;
    publish(&s, &t, "base", "required").await;
    publish(&s, &t, "lint", "auto_install").await;
    publish(&s, &t, "extra", "available").await;
    let (_, settings) = s.get_json(&format!("{}/v1/managed-settings", t.root), &t.admin).await;
    let Some(managed) = ManagedFile::install(&settings) else { return };
    // A headless session start against a dead model endpoint: what adds a marketplace
    // declared in settings. The client fetches managed plugins in the background, cut short
    // when `-p` exits; CLAUDE_CODE_SYNC_PLUGIN_INSTALL makes the session wait for them.
    claude.for_headless_sessions();
    let other_root = other.root.clone();
    let root = t.root.clone();
    tokio::task::spawn_blocking(move || {
        let first = claude.run(&["-p", "hi"]);
        assert!(!first.ok, "the model endpoint is dead, the session cannot succeed: {first:?}");
        let markets: Value = serde_json::from_str(&claude.ok(&["plugin", "marketplace", "list", "--json"])).unwrap();
        let acme = markets
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "acme")
            .unwrap_or_else(|| panic!("the tenant's marketplace is not known: {markets}"));
        assert_eq!(acme["url"], root.as_str());
        // Measured on 2.1.328: the first session fetches the plugins into the cache, the
        // next records them as installed (scope `managed`).
        claude.run(&["-p", "hi"]);
        let list: Value = serde_json::from_str(&claude.ok(&["plugin", "list", "--json"])).unwrap();
        let ids: Vec<&str> = list.as_array().unwrap().iter().filter_map(|p| p["id"].as_str()).collect();
        assert!(ids.contains(&"base@acme") && ids.contains(&"lint@acme"), "{list}");
        assert!(!ids.contains(&"extra@acme"), "an available plugin is not installed: {list}");
        for p in list.as_array().unwrap() {
            assert_eq!(p["scope"], "managed", "{p}");
            assert_eq!(p["enabled"], true, "{p}");
        }
        let (path, version) = claude.installed("base@acme");
        assert_eq!(version, "1.0.0");
        assert!(
            std::fs::read_to_string(path.join("commands/hello.md"))
                .unwrap()
                .contains("from base"),
            "the published command is installed"
        );
        // The user cannot turn a managed plugin off, nor add another marketplace.
        let off = claude.run(&["plugin", "disable", "base@acme"]);
        assert!(!off.ok && off.stderr.contains("managed by your organization"), "{off:?}");
        let add = claude.run(&["plugin", "marketplace", "add", &other_root]);
        assert!(!add.ok, "{add:?}");
        assert!(add.stderr.contains("blocked by enterprise policy"), "{add:?}");
        let markets = claude.ok(&["plugin", "marketplace", "list", "--json"]);
        assert!(!markets.contains("beta"), "{markets}");
    })
    .await
    .unwrap();
    drop(managed);
    s.stop().await;
});
