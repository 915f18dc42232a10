//! Mirrored plugins against a real upstream (bare repositories behind `git http-backend` on
//! loopback, with faults switched on and off), on SQLite and on PostgreSQL: the import job, the
//! tree served byte for byte, the worker pulling new versions by itself, every failure keeping
//! the last good copy served with its class in the status, the back-off, and the SSRF guard.

#![allow(clippy::disallowed_methods)] // drives real programs (git, Claude Code) as a user would

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::claude::Claude;
use common::server::{TestServer, TestTenant, tree};
use common::upstream::{Fault, Upstream, git};
use reqwest::StatusCode;
use serde_json::{Value, json};
use skill_pool_store::both_backends;
use skill_pool_store::testing::TestDb;

fn write(root: &Path, rel: &str, data: &[u8], exec: bool) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, data).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(if exec { 0o755 } else { 0o644 })).unwrap();
}

/// An upstream plugin at `version`.
fn plugin(work: &Path, version: &str) {
    write(
        work,
        ".claude-plugin/plugin.json",
        format!("{{\"name\": \"upstream-tool\", \"version\": \"{version}\", \"description\": \"Mirrored\"}}\n").as_bytes(),
        false,
    );
    write(
        work,
        "skills/hello/SKILL.md",
        b"---\nname: hello\ndescription: Says hello\n---\nSay hello.\n",
        false,
    );
    // Lenient frontmatter, as published agents have it.
    write(
        work,
        "agents/triage.md",
        b"---\nname: triage\ndescription: Use when: a bug comes in\n---\nTriage.\n",
        false,
    );
    write(work, "bin/run.sh", format!("#!/bin/sh\necho {version}\n").as_bytes(), true);
}

async fn post(s: &TestServer, t: &TestTenant, path: &str, body: &Value) -> (StatusCode, Value) {
    s.post_json(&format!("{}{path}", t.root), &t.admin, body).await
}

/// Polls `GET /v1/jobs/{id}` until the job ends (at most 60 s).
async fn wait_job(s: &TestServer, t: &TestTenant, id: i64) -> Value {
    for _ in 0..240 {
        let (_, job) = s.get_json(&format!("{}/v1/jobs/{id}", t.root), &t.member).await;
        if job["state"] == "done" || job["state"] == "failed" {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("job {id} did not end within 60 s");
}

/// Polls the plugin until `check` holds (at most 60 s); answers the plugin.
async fn wait_plugin(s: &TestServer, t: &TestTenant, slug: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..240 {
        let (_, p) = s.get_json(&format!("{}/v1/plugins/{slug}", t.root), &t.member).await;
        if check(&p) {
            return p;
        }
        last = p;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{what}: not within 60 s; last: {last}");
}

fn clone_served(url: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("clone");
    git(
        &[
            "-c",
            "protocol.version=2",
            "clone",
            "-q",
            "--depth",
            "1",
            url,
            dest.to_str().unwrap(),
        ],
        None,
    );
    (tmp, dest)
}

fn version_of(p: &Value) -> String {
    p["current"]["effective_version"].as_str().unwrap_or("").to_string()
}

both_backends!(a_mirror_follows_its_upstream_and_survives_its_failures, |db: TestDb| async move {
    let up = Upstream::start().await;
    let work = up.create("tool");
    plugin(&work, "1.0.0");
    up.commit_and_push(&work, "1.0.0", false);

    let s = TestServer::start_with(db, |c| {
        c.mirror.allowed_hosts = vec!["127.0.0.1".into()];
        c.mirror.tick = Duration::from_secs(1);
        c.mirror.timeout = Duration::from_secs(5);
    })
    .await;
    let t = s.tenant("acme").await;
    let (st, accepted) = post(
        &s,
        &t,
        "/v1/plugins/import",
        &json!({"url": up.url("tool"), "refresh_interval": "2s"}),
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{accepted}");
    assert_eq!(accepted["plugin"], "tool");
    let job = wait_job(&s, &t, accepted["job"]["id"].as_i64().unwrap()).await;
    assert_eq!(job["state"], "done", "{job}");

    // Served from skill-pool, pinned, byte for byte.
    let (_, p) = s.get_json(&format!("{}/v1/plugins/tool", t.root), &t.member).await;
    assert_eq!(p["mode"], "mirror");
    assert_eq!(version_of(&p), "1.0.0");
    assert!(p["mirror"]["last_success_at"].is_string(), "{p}");
    assert!(p["mirror"]["last_error"].is_null(), "{p}");
    let git_url = p["git_url"].as_str().unwrap().to_string();
    let (_, cat) = s.get_json(&format!("{}/.claude-plugin/marketplace.json", t.root), &t.member).await;
    let entry = cat["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "tool")
        .unwrap()
        .clone();
    assert_eq!(entry["source"]["url"], git_url.as_str());
    assert_eq!(entry["source"]["sha"], p["current"]["commit"]);
    let (_tmp, clone) = clone_served(&git_url);
    assert_eq!(tree(&clone), tree(&work));

    // The worker pulls a new upstream version by itself.
    plugin(&work, "1.1.0");
    up.commit_and_push(&work, "1.1.0", false);
    let p = wait_plugin(&s, &t, "tool", "the worker pulls 1.1.0", |p| version_of(p) == "1.1.0").await;
    let served_commit = p["current"]["commit"].clone();

    // Each failure: the class in the status, the last good copy still served.
    for (fault, class) in [
        (Fault::Status(500), "network"),
        (Fault::Status(401), "auth"),
        (Fault::Status(404), "not_found"),
        (Fault::Hang, "timeout"),
    ] {
        up.set_fault(fault);
        let p = wait_plugin(&s, &t, "tool", &format!("{fault:?} is recorded"), |p| {
            p["mirror"]["last_error"]["class"] == class
        })
        .await;
        assert_eq!(p["current"]["commit"], served_commit, "{fault:?}: the last good copy keeps serving");
        up.set_fault(Fault::None);
        // A good pull clears the error (a manual refresh makes it now).
        let (st, r) = post(&s, &t, "/v1/plugins/tool/refresh", &json!({})).await;
        assert_eq!(st, StatusCode::ACCEPTED, "{r}");
        wait_plugin(&s, &t, "tool", "the error clears", |p| p["mirror"]["last_error"].is_null()).await;
    }
    let (_tmp, clone) = clone_served(&git_url);
    assert_eq!(tree(&clone), tree(&work), "still the upstream's 1.1.0");

    // A commit with a broken plugin.json is not served.
    write(&work, ".claude-plugin/plugin.json", b"{ not json", false);
    up.commit_and_push(&work, "broken", false);
    let p = wait_plugin(&s, &t, "tool", "a broken plugin.json is refused", |p| {
        p["mirror"]["last_error"]["class"] == "invalid_plugin"
    })
    .await;
    assert_eq!(p["current"]["commit"], served_commit);

    // Back-off: with the upstream answering 500 and a 1-second tick, a handful of attempts in
    // ten seconds, not one per tick.
    up.set_fault(Fault::Status(500));
    wait_plugin(&s, &t, "tool", "500 recorded", |p| p["mirror"]["last_error"]["class"] == "network").await;
    let before = up.requests();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let attempts = up.requests() - before;
    assert!(attempts <= 5, "{attempts} requests reached the failing upstream in 10 s");

    // The audit log has the failures.
    let (_, audit) = s.get_json(&format!("{}/v1/audit?limit=200", t.root), &t.admin).await;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["action"] == "mirror.pull_failed"),
        "{audit}"
    );

    // The real client installs the mirror.
    up.set_fault(Fault::None);
    if let Some(claude) = Claude::new() {
        tokio::task::block_in_place(|| {
            claude.marketplace_add(&t.root);
            claude.install("tool@acme");
        });
        let (installed, version) = claude.installed("tool@acme");
        assert_eq!(version, "1.1.0");
        let mut expected = tree(&work);
        // The installed copy is the served 1.1.0, not the broken commit.
        expected.insert(
            ".claude-plugin/plugin.json".into(),
            (
                false,
                b"{\"name\": \"upstream-tool\", \"version\": \"1.1.0\", \"description\": \"Mirrored\"}\n".to_vec(),
            ),
        );
        assert_eq!(tree(&installed), expected);
        // The upstream publishes 1.2.0; the worker pulls it by itself; `plugin update` gets it.
        plugin(&work, "1.2.0");
        up.commit_and_push(&work, "1.2.0", false);
        wait_plugin(&s, &t, "tool", "the worker pulls 1.2.0", |p| version_of(p) == "1.2.0").await;
        tokio::task::block_in_place(|| {
            claude.marketplace_update("acme");
            claude.update("tool@acme");
        });
        let (installed, version) = claude.installed("tool@acme");
        assert_eq!(version, "1.2.0");
        assert_eq!(tree(&installed), tree(&work));
    }
    s.stop().await;
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ssrf_guard_refuses_internal_addresses() {
    let s = TestServer::start(TestDb::sqlite()).await;
    let t = s.tenant("acme").await;
    for url in [
        "http://127.0.0.1:9/x.git",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost/x.git",
        "http://10.0.0.1/x.git",
        "file:///etc/passwd",
        "git://example.com/x.git",
        "https://example.com/x.git --upload-pack=touch",
        "https://user:secret@example.com/x.git",
        "http://a.example\\@127.0.0.1/x.git",
        "http://[::ffff:127.0.0.1]/x.git",
        "http://[64:ff9b::a9fe:a9fe]/x.git",
    ] {
        let (st, b) = post(&s, &t, "/v1/plugins/import", &json!({"url": url})).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{url}: {b}");
        assert_eq!(b["field"], "url", "{url}: {b}");
    }
    let (st, b) = post(
        &s,
        &t,
        "/v1/plugins/import",
        &json!({"url": "https://example.com/x.git", "refresh_interval": "1s"}),
    )
    .await;
    assert_eq!(
        (st, b["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("refresh_interval")),
        "{b}"
    );
    let (st, b) = post(
        &s,
        &t,
        "/v1/plugins/import",
        &json!({"url": "https://example.com/x.git", "path": "../x"}),
    )
    .await;
    assert_eq!((st, b["field"].as_str()), (StatusCode::BAD_REQUEST, Some("path")), "{b}");
    let (_, list) = s.get_json(&format!("{}/v1/plugins", t.root), &t.member).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "nothing was created: {list}");
    // A job of another tenant is not found.
    let other = s.tenant("globex").await;
    let (st, _) = s.get_json(&format!("{}/v1/jobs/1", other.root), &other.member).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    s.stop().await;
}

/// The CLI imports a mirror, waits for its pull, and shows when it last pulled and why it
/// last failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_imports_a_mirror_and_shows_its_status() {
    let up = Upstream::start().await;
    let work = up.create("tool");
    plugin(&work, "1.0.0");
    up.commit_and_push(&work, "1.0.0", false);
    let s = TestServer::start_with(TestDb::sqlite(), |c| {
        c.mirror.allowed_hosts = vec!["127.0.0.1".into()];
        c.mirror.timeout = Duration::from_secs(5);
        c.mirror.max_bytes = 64 << 10;
    })
    .await;
    let t = s.tenant("acme").await;
    let run = |args: &[&str]| {
        let out = tokio::task::block_in_place(|| common::server::cli(&t, &t.admin, args));
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let url = up.url("tool");
    let (code, out, err) = run(&["plugin", "import", &url, "--refresh-interval", "1h", "--wait"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("mirrored plugin tool 1.0.0"), "{out}");
    let (_, out, _) = run(&["plugin", "show", "tool"]);
    assert!(out.contains(&format!("upstream  {url}")), "{out}");
    assert!(out.contains("the last pull succeeded"), "{out}");

    up.set_fault(Fault::Status(500));
    let (code, _, err) = run(&["plugin", "refresh", "tool", "--wait"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("the pull failed: network") && err.contains("the last good copy keeps serving"),
        "{err}"
    );
    let (_, out, _) = run(&["plugin", "show", "tool"]);
    assert!(out.contains("warning   the last pull failed (network)"), "{out}");
    assert!(out.contains("version   1.0.0"), "{out}");

    // A force-push is not followed: the mirror is held until an admin accepts it.
    up.set_fault(Fault::None);
    write(&work, "README.md", b"rewritten history\n", false);
    git(&["add", "-A"], Some(&work));
    git(&["commit", "-q", "--amend", "-m", "rewritten 1.0.0"], Some(&work));
    git(&["push", "-q", "--force", "origin", "main"], Some(&work));
    let (code, _, err) = run(&["plugin", "refresh", "tool", "--wait"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("force_push"), "{err}");
    let (_, out, _) = run(&["plugin", "show", "tool"]);
    assert!(out.contains("held      the upstream history was rewritten"), "{out}");
    let (code, _, err) = run(&["plugin", "refresh", "tool"]);
    assert_eq!(code, Some(1), "a held mirror is not refreshed: {err}");
    assert!(err.contains("accept"), "{err}");
    let (code, out, err) = run(&["plugin", "accept", "tool", "--wait"]);
    // The rewritten commit keeps version 1.0.0 with other content: Claude Code would never
    // update to it, so it is refused as a version conflict, and 1.0.0 keeps serving.
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(err.contains("invalid_plugin") && err.contains("bump"), "{err}");
    plugin(&work, "1.0.1");
    up.commit_and_push(&work, "1.0.1", false);
    let (code, out, err) = run(&["plugin", "refresh", "tool", "--wait"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("mirrored plugin tool 1.0.1"), "{out}");

    // A git killed by a signal mid-fetch (as by the kernel's out-of-memory killer): it prints
    // nothing, and the mirror says so instead of showing an empty error.
    up.set_fault(Fault::Hang);
    let fetches = up.fetches();
    let (st, accepted) = post(&s, &t, "/v1/plugins/tool/refresh", &json!({})).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{accepted}");
    for _ in 0..80 {
        if up.fetches() > fetches {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed = Command::new("pkill")
        .args(["-KILL", "-f", &format!("fetch .*{url}")])
        .status()
        .unwrap();
    assert!(killed.success(), "no git fetch of {url} was running");
    let job = wait_job(&s, &t, accepted["job"]["id"].as_i64().unwrap()).await;
    assert_eq!(job["state"], "failed", "{job}");
    let (_, p) = s.get_json(&format!("{}/v1/plugins/tool", t.root), &t.member).await;
    assert_eq!(p["mirror"]["last_error"]["class"], "signal", "{p}");
    assert!(p["mirror"]["last_error"]["message"].as_str().unwrap().contains("signal"), "{p}");
    up.set_fault(Fault::None);

    // A tree over the size cap, then an upstream that disappeared: classified, 1.0.1 still served.
    write(&work, "assets/big.bin", &vec![7u8; 100 << 10], false);
    up.commit_and_push(&work, "big", false);
    let (code, _, err) = run(&["plugin", "refresh", "tool", "--wait"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("too_large"), "{err}");
    up.delete("tool");
    let (code, _, err) = run(&["plugin", "refresh", "tool", "--wait"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("not_found"), "{err}");
    let (_, p) = s.get_json(&format!("{}/v1/plugins/tool", t.root), &t.member).await;
    assert_eq!(version_of(&p), "1.0.1");
    assert_eq!(p["mirror"]["last_error"]["class"], "not_found", "{p}");
    let (_tmp, clone) = clone_served(p["git_url"].as_str().unwrap());
    assert!(clone.join("bin/run.sh").is_file(), "the last good copy is still served");
    s.stop().await;
}

/// A mirrored plugin whose dependencies this tenant cannot resolve still mirrors (Claude Code
/// installs it from upstream), with warnings in the pull's audit row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_with_unresolvable_dependencies_mirrors_with_warnings() {
    let up = Upstream::start().await;
    let work = up.create("tool");
    plugin(&work, "1.0.0");
    write(
        &work,
        ".claude-plugin/plugin.json",
        br#"{"name": "upstream-tool", "version": "1.0.0", "dependencies": ["ghost", "lint@elsewhere"]}"#,
        false,
    );
    up.commit_and_push(&work, "1.0.0", false);
    let s = TestServer::start_with(TestDb::sqlite(), |c| {
        c.mirror.allowed_hosts = vec!["127.0.0.1".into()];
        c.mirror.timeout = Duration::from_secs(5);
    })
    .await;
    let t = s.tenant("acme").await;
    let (st, accepted) = post(&s, &t, "/v1/plugins/import", &json!({"url": up.url("tool")})).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{accepted}");
    let job = wait_job(&s, &t, accepted["job"]["id"].as_i64().unwrap()).await;
    assert_eq!(job["state"], "done", "{job}");
    let (_, p) = s.get_json(&format!("{}/v1/plugins/tool", t.root), &t.member).await;
    assert_eq!(version_of(&p), "1.0.0", "{p}");
    let (_, audit) = s.get_json(&format!("{}/v1/audit?action=mirror.pull", t.root), &t.admin).await;
    let text = audit.to_string();
    assert!(text.contains("no plugin `ghost`"), "{text}");
    assert!(text.contains("allowCrossMarketplaceDependenciesOn"), "{text}");
    s.stop().await;
}
