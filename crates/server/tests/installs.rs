//! Install counts over real HTTP and real `git`, on SQLite and on PostgreSQL: N shallow clones
//! are N installs of the served version, a request that gets no pack counts nothing, catalogue
//! fetches count distinct clients per day, and no address is stored anywhere.

#![allow(clippy::disallowed_methods)] // drives real programs (git) as a user would

mod common;

use std::process::Command;

use common::server::{TestServer, TestTenant, cli, tar_gz};
use reqwest::StatusCode;
use serde_json::{Value, json};
use skill_pool_store::both_backends;
use skill_pool_store::testing::TestDb;

async fn publish(s: &TestServer, t: &TestTenant, name: &str, version: &str) -> Value {
    let manifest = json!({"name": name, "version": version}).to_string();
    let body = tar_gz(&[
        (".claude-plugin/plugin.json", 0o644, manifest.as_bytes()),
        ("README.md", 0o644, format!("# {name} {version}\n").as_bytes()),
    ]);
    let (st, body) = s
        .post_bytes(&format!("{}/v1/plugins/publish", t.root), &t.admin, "application/gzip", body)
        .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    body
}

fn git(args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn shallow_clone(url: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("c");
    git(&[
        "-c",
        "protocol.version=2",
        "clone",
        "-q",
        "--depth",
        "1",
        url,
        dest.to_str().unwrap(),
    ]);
    assert!(dest.join("README.md").is_file());
}

async fn installs(s: &TestServer, t: &TestTenant, slug: &str) -> Value {
    let (st, body) = s.get_json(&format!("{}/v1/plugins/{slug}", t.root), &t.member).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    body["installs"].clone()
}

both_backends!(shallow_clones_are_counted_per_version, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    publish(&s, &t, "hello", "1.0.0").await;
    let url = format!("{}/git/plugins/hello.git", t.root);
    let none = installs(&s, &t, "hello").await;
    assert_eq!(none["total"], 0, "{none}");

    for _ in 0..3 {
        tokio::task::block_in_place(|| shallow_clone(&url));
    }
    // `ls-remote` (info/refs and ls-refs only) downloads no pack: not an install.
    tokio::task::block_in_place(|| git(&["-c", "protocol.version=2", "ls-remote", &url]));
    tokio::task::block_in_place(|| git(&["-c", "protocol.version=0", "ls-remote", &url]));
    let got = installs(&s, &t, "hello").await;
    assert_eq!(got["total"], 3, "{got}");
    assert_eq!(got["last_30_days"], 3, "{got}");
    assert_eq!(got["versions"], json!([{"version": "1.0.0", "seq": 1, "total": 3}]), "{got}");
    let today = got["days"][0]["day"].as_str().unwrap().to_string();
    assert_eq!(got["days"], json!([{"day": today, "count": 3}]), "{got}");

    // A new version: clones of it count for it; a fetch of the old pinned commit for the old one.
    let old_commit = s.get_json(&format!("{}/v1/plugins/hello", t.root), &t.member).await.1["current"]["commit"]
        .as_str()
        .unwrap()
        .to_string();
    publish(&s, &t, "hello", "1.1.0").await;
    tokio::task::block_in_place(|| {
        shallow_clone(&url);
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("pinned");
        git(&["init", "-q", repo.to_str().unwrap()]);
        let dir = repo.to_str().unwrap();
        git(&[
            "-C",
            dir,
            "-c",
            "protocol.version=2",
            "fetch",
            "-q",
            "--depth",
            "1",
            &url,
            &old_commit,
        ]);
    });
    let got = installs(&s, &t, "hello").await;
    assert_eq!(got["total"], 5, "{got}");
    assert_eq!(
        got["versions"],
        json!([{"version": "1.1.0", "seq": 2, "total": 1}, {"version": "1.0.0", "seq": 1, "total": 4}]),
        "{got}"
    );

    // The tenant summary, for members, with a window.
    publish(&s, &t, "other", "0.1.0").await;
    let (st, summary) = s.get_json(&format!("{}/v1/installs?days=7", t.root), &t.member).await;
    assert_eq!(st, StatusCode::OK, "{summary}");
    assert_eq!(summary["days"], 7);
    assert_eq!(summary["plugins"], json!([{"slug": "hello", "total": 5, "recent": 5}]), "{summary}");
    let (st, _) = s.get_json(&format!("{}/v1/installs", t.root), "sp_wrong").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // The CLI: `installs` (JSON and text) and `plugin show`.
    let (json_out, text_out, show_out) = tokio::task::block_in_place(|| {
        let run = |args: &[&str]| {
            let out = cli(&t, &t.member, args);
            assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).to_string()
        };
        (
            run(&["installs", "--days", "7", "--json"]),
            run(&["installs"]),
            run(&["plugin", "show", "hello"]),
        )
    });
    let parsed: Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(parsed["plugins"], summary["plugins"], "{json_out}");
    assert!(text_out.contains("hello") && text_out.contains("30 days"), "{text_out}");
    assert!(show_out.contains("installs  5 in all, 5 in the last 30 days"), "{show_out}");
    let out = tokio::task::block_in_place(|| cli(&t, &t.member, &["installs", "--days", "0"]));
    assert_eq!(out.status.code(), Some(2), "a bad window is a usage error");

    // Prometheus: counters without tenant, plugin or version labels.
    let metrics = s.http.get(format!("{}/metrics", s.url)).send().await.unwrap().text().await.unwrap();
    let packs: Vec<&str> = metrics.lines().filter(|l| l.starts_with("skill_pool_git_packs_fetched")).collect();
    assert_eq!(packs, ["skill_pool_git_packs_fetched_total 5"], "{metrics}");
    assert!(metrics.contains("skill_pool_catalogue_fetches_total"), "{metrics}");
    s.stop().await;
});

both_backends!(counts_still_buffered_are_written_at_shutdown, |db: TestDb| async move {
    let mut s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    publish(&s, &t, "hello", "1.0.0").await;
    let url = format!("{}/git/plugins/hello.git", t.root);
    tokio::task::block_in_place(|| shallow_clone(&url));
    let res = s
        .http
        .get(format!("{}/.claude-plugin/marketplace.json", t.root))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // Nothing read the counts through the server: they are in its buffer until it stops.
    s.shut_down().await;
    let tenant = s.registry.tenant_by_slug("acme").await.unwrap().unwrap();
    let summary = s
        .registry
        .install_summary(&skill_pool_registry::Actor::operator(tenant.id), 30)
        .await
        .unwrap();
    assert_eq!(summary.plugins.len(), 1, "{summary:?}");
    assert_eq!(summary.plugins[0].total, 1, "{summary:?}");
    assert_eq!(summary.catalogue_clients.len(), 1, "{summary:?}");
    assert_eq!(summary.catalogue_clients[0].count, 1, "{summary:?}");
});

both_backends!(catalogue_clients_are_distinct_per_day_and_never_stored, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    let other = s.tenant("other").await;
    publish(&s, &t, "hello", "1.0.0").await;
    let fetch = |ua: &'static str, root: String| {
        let http = s.http.clone();
        async move {
            let res = http
                .get(format!("{root}/.claude-plugin/marketplace.json"))
                .header("user-agent", ua)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
        }
    };
    // Two clients (by user agent) on 127.0.0.1, the first one twice, and through the tenant root too.
    fetch("claude-code/2.1.328 (laptop-a)", t.root.clone()).await;
    fetch("claude-code/2.1.328 (laptop-a)", t.root.clone()).await;
    fetch("claude-code/2.1.328 (laptop-b)", t.root.clone()).await;
    let res = s
        .http
        .get(format!("{}/", t.root))
        .header("user-agent", "claude-code/2.1.328 (laptop-b)")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // A third client bound to another loopback address, with the same user agent as the first.
    let bound = reqwest::Client::builder()
        .no_proxy()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let res = bound
        .get(format!("{}/.claude-plugin/marketplace.json", t.root))
        .header("user-agent", "claude-code/2.1.328 (laptop-a)")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // Another tenant's client is that tenant's.
    fetch("claude-code/2.1.328 (laptop-a)", other.root.clone()).await;

    let (st, summary) = s.get_json(&format!("{}/v1/installs", t.root), &t.member).await;
    assert_eq!(st, StatusCode::OK, "{summary}");
    let days = summary["catalogue_clients"].as_array().unwrap();
    assert_eq!(days.len(), 1, "{summary}");
    assert_eq!(days[0]["count"], 3, "{summary}");
    let (_, theirs) = s.get_json(&format!("{}/v1/installs", other.root), &other.member).await;
    assert_eq!(theirs["catalogue_clients"][0]["count"], 1, "{theirs}");

    // The same clients again: nothing new.
    fetch("claude-code/2.1.328 (laptop-b)", t.root.clone()).await;
    let (_, summary) = s.get_json(&format!("{}/v1/installs", t.root), &t.member).await;
    assert_eq!(summary["catalogue_clients"][0]["count"], 3, "{summary}");

    // No address (nor user agent) in any row of any table.
    let dump = s.db.dump_all_rows().await;
    for needle in ["127.0.0.1", "127.0.0.2", "laptop-a", "laptop-b"] {
        assert!(!dump.contains(needle), "`{needle}` is stored: {dump}");
    }
    assert!(dump.contains("catalogue_clients"), "the dump covers the counting tables");
    s.stop().await;
});
