//! Purging a plugin version (a leaked secret) and the garbage collection of file bodies, over
//! real HTTP, real `git` and the real CLI (and the real Claude Code client when installed), on
//! SQLite and on PostgreSQL.

#![allow(clippy::disallowed_methods)] // drives real programs (git, the binaries, Claude Code) as a user would

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::server::{TestServer, TestTenant, cli, skill_md, tar_gz};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use skill_pool_store::both_backends;
use skill_pool_store::testing::TestDb;

const SECRET: &str = "AWS_SECRET_ACCESS_KEY=leaked-wJalrXUtnFEMI-K7MDENG\n";
const SHARED: &str = "a licence text every version and another plugin ship\n";

/// A plugin folder as a tar.gz: plugin.json, a skill, a README per version, a file shared by
/// every version, and `extra` files.
fn plugin_tar(name: &str, version: &str, readme: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let manifest = format!("{{\"name\": \"{name}\", \"version\": \"{version}\", \"description\": \"Tools\"}}\n");
    let skill = skill_md("greet", "Greets the user", "Say hello.");
    let mut entries: Vec<(&str, u32, &[u8])> = vec![
        (".claude-plugin/plugin.json", 0o644, manifest.as_bytes()),
        ("skills/greet/SKILL.md", 0o644, skill.as_bytes()),
        ("README.md", 0o644, readme.as_bytes()),
        ("LICENSE", 0o644, SHARED.as_bytes()),
    ];
    for (p, body) in extra {
        entries.push((p, 0o644, body.as_bytes()));
    }
    tar_gz(&entries)
}

async fn publish(s: &TestServer, t: &TestTenant, body: Vec<u8>) -> Value {
    let (st, v) = s
        .post_bytes(&format!("{}/v1/plugins/publish", t.root), &t.admin, "application/gzip", body)
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v
}

async fn purge(s: &TestServer, t: &TestTenant, token: &str, slug: &str, version: &str) -> (StatusCode, Value) {
    let res = s
        .http
        .post(format!("{}/v1/plugins/{slug}/versions/{version}/purge", t.root))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let st = res.status();
    (st, res.json().await.unwrap_or(Value::Null))
}

fn blob_path(data: &Path, body: &str) -> PathBuf {
    let a = hex::encode(Sha256::digest(body.as_bytes()));
    data.join("blobs").join(&a[..2]).join(&a[2..])
}

fn git(args: &[&str], cwd: Option<&Path>) -> std::process::Output {
    let mut cmd = Command::new("git");
    cmd.args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null");
    if let Some(c) = cwd {
        cmd.current_dir(c);
    }
    cmd.output().expect("git")
}

fn git_ok(args: &[&str], cwd: Option<&Path>) -> String {
    let out = git(args, cwd);
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The one bare repo under `<data>/repos` whose `main` is at `head`.
fn served_repo(data: &Path, head: &str) -> PathBuf {
    let mut found = Vec::new();
    for tenant in std::fs::read_dir(data.join("repos")).unwrap().flatten() {
        for repo in std::fs::read_dir(tenant.path()).unwrap().flatten() {
            let p = repo.path();
            if p.extension().is_some_and(|e| e == "git")
                && git(&["--git-dir", p.to_str().unwrap(), "rev-parse", "refs/heads/main"], None)
                    .stdout
                    .starts_with(head.as_bytes())
            {
                found.push(p);
            }
        }
    }
    assert_eq!(found.len(), 1, "one repo at {head}: {found:?}");
    found.pop().unwrap()
}

async fn catalogue_sha(s: &TestServer, t: &TestTenant, slug: &str) -> String {
    let cat: Value = s
        .http
        .get(format!("{}/.claude-plugin/marketplace.json", t.root))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entry = cat["plugins"].as_array().unwrap().iter().find(|p| p["name"] == slug).unwrap();
    entry["source"]["sha"].as_str().unwrap().to_string()
}

/// Clones the plugin over `protocol` and checks that no purged commit can be fetched by id.
fn assert_clone_serves(url: &str, protocol: &str, head: &str, gone: &[&str]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("clone");
    git_ok(&["-c", protocol, "clone", "-q", url, dest.to_str().unwrap()], None);
    assert_eq!(git_ok(&["rev-parse", "HEAD"], Some(&dest)), head);
    assert!(!dest.join("secret.env").exists());
    let all = git_ok(&["log", "--all", "--format=%H"], Some(&dest));
    for commit in gone {
        assert!(!all.contains(commit), "{commit} still in the history:\n{all}");
        let fetch = git(&["-c", protocol, "fetch", "-q", "origin", commit], Some(&dest));
        assert!(!fetch.status.success(), "git fetch origin {commit} ({protocol}) succeeded");
        assert!(git(&["cat-file", "-e", commit], Some(&dest)).status.code() != Some(0));
    }
    tmp
}

both_backends!(
    a_purged_version_is_gone_from_every_ref_and_the_blob_store,
    |db: TestDb| async move {
        let s = TestServer::start(db).await;
        let t = s.tenant("acme").await;
        let data = s.data_dir().to_path_buf();
        let v1 = publish(&s, &t, plugin_tar("tools", "1.0.0", "v1\n", &[])).await;
        let v2 = publish(&s, &t, plugin_tar("tools", "1.1.0", "v2\n", &[("secret.env", SECRET)])).await;
        let v3 = publish(&s, &t, plugin_tar("tools", "1.2.0", "v3\n", &[])).await;
        let c1 = v1["plugin"]["current"]["commit"].as_str().unwrap().to_string();
        let c2 = v2["plugin"]["current"]["commit"].as_str().unwrap().to_string();
        let c3 = v3["plugin"]["current"]["commit"].as_str().unwrap().to_string();
        // Another plugin shares the LICENSE body.
        publish(&s, &t, plugin_tar("other", "1.0.0", "other\n", &[])).await;
        // A body written moments ago for a publish still in flight: no row references it yet.
        let in_flight = "a body of a publish that has not committed yet\n";
        let in_flight_path = blob_path(&data, in_flight);
        std::fs::create_dir_all(in_flight_path.parent().unwrap()).unwrap();
        std::fs::write(&in_flight_path, in_flight).unwrap();
        assert!(blob_path(&data, SECRET).is_file());
        let repo = served_repo(&data, &c3);
        git_ok(&["--git-dir", repo.to_str().unwrap(), "cat-file", "-e", &c2], None);
        let git_url = format!("{}/git/plugins/tools.git", t.root);
        // A clone taken before the purge (a developer's copy: it keeps what it fetched).
        let before = tempfile::tempdir().unwrap();
        git_ok(&["clone", "-q", &git_url, before.path().join("c").to_str().unwrap()], None);

        // Who may purge, and what.
        let (st, body) = purge(&s, &t, &t.member, "tools", "1.1.0").await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
        let (st, body) = purge(&s, &t, &t.admin, "tools", "9.9.9").await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{body}");
        let (st, body) = purge(&s, &t, &t.admin, "nope", "1.0.0").await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{body}");
        let other = s.tenant("globex").await;
        let (st, _) = purge(&s, &other, &t.admin, "tools", "1.1.0").await;
        assert_eq!(st, StatusCode::NOT_FOUND, "another tenant's token");
        assert_eq!(catalogue_sha(&s, &t, "tools").await, c3, "refusals changed nothing");

        // The CLI asks for confirmation.
        let out = tokio::task::block_in_place(|| cli(&t, &t.admin, &["plugin", "purge", "tools", "1.1.0"]));
        assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
        let out = tokio::task::block_in_place(|| cli(&t, &t.admin, &["plugin", "purge", "tools", "1.1.0", "--yes", "--json"]));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(r["purged"]["commit"], c2.as_str());
        assert_eq!(r["purged"]["version"], "1.1.0");
        let rewritten = r["rewritten"].as_array().unwrap();
        assert_eq!(rewritten.len(), 1, "{r}");
        assert_eq!(rewritten[0]["old_commit"], c3.as_str());
        let c3b = rewritten[0]["new_commit"].as_str().unwrap().to_string();
        assert_ne!(c3b, c3);
        assert_eq!(r["plugin"]["current"]["commit"], c3b.as_str());
        assert_eq!(r["plugin"]["current"]["version"], "1.2.0");
        let versions: Vec<&str> = r["plugin"]["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_str().unwrap())
            .collect();
        assert_eq!(versions.len(), 2, "{versions:?}");
        assert!(!versions.contains(&"1.1.0"), "{versions:?}");
        // The secret's body (and README v2, plugin.json 1.1.0) went; shared bodies and the in-flight one stayed.
        assert_eq!(r["blobs_deleted"], 3, "{r}");
        assert!(!blob_path(&data, SECRET).exists());
        assert!(!blob_path(&data, "v2\n").exists());
        for kept in ["v1\n", "v3\n", SHARED] {
            assert!(blob_path(&data, kept).is_file(), "{kept:?} was deleted");
        }
        assert!(in_flight_path.is_file());

        // The catalogue pins the new head; the served repo holds neither old commit nor the v1.1.0 tag.
        assert_eq!(catalogue_sha(&s, &t, "tools").await, c3b);
        let repo = served_repo(&data, &c3b);
        let gd = repo.to_str().unwrap();
        for gone in [&c2, &c3] {
            assert!(
                !git(&["--git-dir", gd, "cat-file", "-e", gone], None).status.success(),
                "{gone} still in the repo"
            );
        }
        let refs = git_ok(&["--git-dir", gd, "for-each-ref", "--format=%(refname) %(objectname)"], None);
        assert!(!refs.contains("v1.1.0") && !refs.contains(&c2) && !refs.contains(&c3), "{refs}");
        assert!(refs.contains("refs/tags/v1.0.0") && refs.contains("refs/tags/v1.2.0"), "{refs}");
        assert_eq!(git_ok(&["--git-dir", gd, "rev-list", "--count", "main"], None), "2");
        git_ok(&["--git-dir", gd, "fsck", "--strict", "--no-dangling"], None);
        // Served over v2 and v0: the new history, and neither old commit by id.
        for protocol in ["protocol.version=2", "protocol.version=0"] {
            assert_clone_serves(&git_url, protocol, &c3b, &[&c2, &c3]);
        }
        // A clone taken before keeps what it fetched (rotate the secret!); a fetch moves it to the new history.
        let old = before.path().join("c");
        git_ok(&["fetch", "-q", "origin"], Some(&old));
        assert_eq!(git_ok(&["rev-parse", "origin/main"], Some(&old)), c3b);

        // The audit log names the purge (and never the secret).
        let (st, audit) = s.get_json(&format!("{}/v1/audit?action=plugin.purge", t.root), &t.admin).await;
        assert_eq!(st, StatusCode::OK);
        let items = audit["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{audit}");
        assert_eq!(items[0]["target"], "plugin:tools");
        assert_eq!(items[0]["detail"]["commit"], c2.as_str());
        assert!(!audit.to_string().contains("leaked"));

        // The first version, by commit id: the one left is rewritten again (it has no parent now).
        let (st, r) = purge(&s, &t, &t.admin, "tools", &c1[..12]).await;
        assert_eq!(st, StatusCode::OK, "{r}");
        let c3c = r["plugin"]["current"]["commit"].as_str().unwrap().to_string();
        assert_ne!(c3c, c3b);
        assert!(!blob_path(&data, "v1\n").exists());
        assert!(blob_path(&data, SHARED).is_file());
        assert_clone_serves(&git_url, "protocol.version=2", &c3c, &[&c1, &c2, &c3, &c3b]);
        // The only version left: refused, with the way out.
        let (st, body) = purge(&s, &t, &t.admin, "tools", "1.2.0").await;
        assert_eq!(st, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["error"], "conflict");
        assert!(
            body["message"].as_str().unwrap().contains("skill-pool plugin delete tools"),
            "{body}"
        );

        // Deleting the plugin deletes the bodies only it referenced; the shared one and the
        // registered piece's file stay.
        let res = s
            .http
            .delete(format!("{}/v1/plugins/tools", t.root))
            .bearer_auth(&t.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert!(!blob_path(&data, "v3\n").exists());
        assert!(blob_path(&data, SHARED).is_file(), "still shipped by `other`");
        assert!(
            blob_path(&data, &skill_md("greet", "Greets the user", "Say hello.")).is_file(),
            "the piece stays registered"
        );
        assert!(in_flight_path.is_file());
        let res = s
            .http
            .delete(format!("{}/v1/plugins/other", t.root))
            .bearer_auth(&t.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert!(!blob_path(&data, SHARED).exists(), "nothing references it any more");
        assert!(!blob_path(&data, "other\n").exists());
        s.stop().await;
    }
);

both_backends!(a_collection_waits_for_a_publish_in_flight, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    let data = s.data_dir().to_path_buf();
    publish(&s, &t, plugin_tar("tools", "1.0.0", "v1\n", &[])).await;
    publish(&s, &t, plugin_tar("tools", "1.1.0", "v2\n", &[("secret.env", SECRET)])).await;

    // A publish in flight (another server process, say) holds the blob store's writer lock
    // between writing its bodies and committing its rows.
    let lock = std::fs::OpenOptions::new().write(true).open(data.join("blobs/.gc.lock")).unwrap();
    lock.lock_shared().unwrap();
    let purging = {
        let (http, url, token) = (
            s.http.clone(),
            format!("{}/v1/plugins/tools/versions/1.1.0/purge", t.root),
            t.admin.clone(),
        );
        tokio::spawn(async move { http.post(url).bearer_auth(token).send().await.unwrap() })
    };
    // The purge's transaction commits (its audit row is there)…
    loop {
        let (_, audit) = s.get_json(&format!("{}/v1/audit?action=plugin.purge", t.root), &t.admin).await;
        if !audit["items"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // …but its collection does not delete anything while the publish is in flight.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(blob_path(&data, SECRET).is_file(), "deleted while a publish held the writer lock");
    assert!(!purging.is_finished());
    // Meanwhile that publish commits rows referencing the body (another plugin ships it).
    publish(&s, &t, plugin_tar("keeper", "1.0.0", "keeper\n", &[("secret.env", SECRET)])).await;
    drop(lock);
    let res = purging.await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let r: Value = res.json().await.unwrap();
    assert_eq!(r["blobs_deleted"], 2, "README v2 and plugin.json 1.1.0 only: {r}");
    assert!(blob_path(&data, SECRET).is_file(), "`keeper` references it");
    assert!(!blob_path(&data, "v2\n").exists());

    // A body a collection deleted is written again by the next publish that needs it.
    let res = s
        .http
        .delete(format!("{}/v1/plugins/keeper", t.root))
        .bearer_auth(&t.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(!blob_path(&data, SECRET).exists());
    let again = publish(&s, &t, plugin_tar("keeper", "1.0.1", "keeper\n", &[("secret.env", SECRET)])).await;
    assert!(blob_path(&data, SECRET).is_file());
    let head = again["plugin"]["current"]["commit"].as_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("c");
    git_ok(
        &["clone", "-q", &format!("{}/git/plugins/keeper.git", t.root), dest.to_str().unwrap()],
        None,
    );
    assert_eq!(git_ok(&["rev-parse", "HEAD"], Some(&dest)), head);
    assert_eq!(std::fs::read_to_string(dest.join("secret.env")).unwrap(), SECRET);
    s.stop().await;
});

both_backends!(
    a_purge_killed_before_its_rebuild_is_finished_by_the_next_server,
    |db: TestDb| async move {
        let s = TestServer::start(db).await;
        let t = s.tenant("acme").await;
        let data = s.data_dir().to_path_buf();
        publish(&s, &t, plugin_tar("tools", "1.0.0", "v1\n", &[])).await;
        let v2 = publish(&s, &t, plugin_tar("tools", "1.1.0", "v2\n", &[("secret.env", SECRET)])).await;
        let v3 = publish(&s, &t, plugin_tar("tools", "1.2.0", "v3\n", &[])).await;
        let c2 = v2["plugin"]["current"]["commit"].as_str().unwrap().to_string();
        let c3 = v3["plugin"]["current"]["commit"].as_str().unwrap().to_string();
        let repo = served_repo(&data, &c3);
        let backup = tempfile::tempdir().unwrap();
        let saved = backup.path().join("repo.git");
        assert!(Command::new("cp").arg("-a").arg(&repo).arg(&saved).status().unwrap().success());

        let (st, r) = purge(&s, &t, &t.admin, "tools", "1.1.0").await;
        assert_eq!(st, StatusCode::OK, "{r}");
        let c3b = r["plugin"]["current"]["commit"].as_str().unwrap().to_string();
        // The repo as a purge killed between its commit and its rebuild left it: the old history,
        // purged commit included, with `main` at a commit the database no longer knows.
        std::fs::remove_dir_all(&repo).unwrap();
        assert!(Command::new("cp").arg("-a").arg(&saved).arg(&repo).status().unwrap().success());
        git_ok(&["--git-dir", repo.to_str().unwrap(), "cat-file", "-e", &c2], None);

        // …and a rebuild killed between its two renames left the old repo aside (and a half-written one).
        let aside = repo.with_extension("old");
        assert!(Command::new("cp").arg("-a").arg(&saved).arg(&aside).status().unwrap().success());
        std::fs::create_dir_all(repo.with_extension("rebuild").join("objects")).unwrap();

        let (url, stop, task) = s.second_server().await;
        let git_url = format!("{url}/t/acme/git/plugins/tools.git");
        let _clone = tokio::task::block_in_place(|| assert_clone_serves(&git_url, "protocol.version=2", &c3b, &[&c2, &c3]));
        let gd = repo.to_str().unwrap();
        assert_eq!(git_ok(&["--git-dir", gd, "rev-parse", "refs/heads/main"], None), c3b);
        for gone in [&c2, &c3] {
            assert!(
                !git(&["--git-dir", gd, "cat-file", "-e", gone], None).status.success(),
                "{gone} still in the repo"
            );
        }
        assert!(!aside.exists(), "the old repo, purged objects in it, stayed on disk");
        assert!(!repo.with_extension("rebuild").exists());
        let _ = stop.send(());
        task.await.unwrap().unwrap();
        s.stop().await;
    }
);

both_backends!(
    claude_installs_the_remaining_latest_version_after_a_purge,
    |db: TestDb| async move {
        let Some(claude) = common::claude::Claude::new() else { return };
        let s = TestServer::start(db).await;
        let t = s.tenant("acme").await;
        publish(&s, &t, plugin_tar("tools", "1.0.0", "v1\n", &[])).await;
        tokio::task::block_in_place(|| {
            claude.marketplace_add(&t.root);
            claude.install("tools@acme");
        });
        assert_eq!(claude.installed("tools@acme").1, "1.0.0");
        publish(&s, &t, plugin_tar("tools", "1.1.0", "v2\n", &[("secret.env", SECRET)])).await;
        publish(&s, &t, plugin_tar("tools", "1.2.0", "v3\n", &[])).await;
        let (st, r) = purge(&s, &t, &t.admin, "tools", "1.1.0").await;
        assert_eq!(st, StatusCode::OK, "{r}");

        // An installed client updates to the rewritten 1.2.0; a new one installs it.
        tokio::task::block_in_place(|| {
            claude.marketplace_update("acme");
            claude.update("tools@acme");
        });
        let (installed, version) = claude.installed("tools@acme");
        assert_eq!(version, "1.2.0");
        assert_eq!(std::fs::read_to_string(installed.join("README.md")).unwrap(), "v3\n");
        assert!(!installed.join("secret.env").exists());
        let fresh = common::claude::Claude::new().unwrap();
        tokio::task::block_in_place(|| {
            fresh.marketplace_add(&t.root);
            fresh.install("tools@acme");
        });
        let (installed, version) = fresh.installed("tools@acme");
        assert_eq!(version, "1.2.0");
        assert_eq!(std::fs::read_to_string(installed.join("LICENSE")).unwrap(), SHARED);
        assert!(!installed.join("secret.env").exists());
        s.stop().await;
    }
);

both_backends!(the_operators_sweep_deletes_every_unreferenced_body, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    let data = s.data_dir().to_path_buf();
    publish(&s, &t, plugin_tar("tools", "1.0.0", "v1\n", &[])).await;
    // What a refused or killed publish leaves: a body no row references, and a temporary file
    // of a write killed before its rename.
    let orphan = "a body of a publish that was killed before its commit\n";
    let orphan_path = blob_path(&data, orphan);
    std::fs::create_dir_all(orphan_path.parent().unwrap()).unwrap();
    std::fs::write(&orphan_path, orphan).unwrap();
    let leftover = blob_path(&data, SHARED).parent().unwrap().join(".tmpKilled");
    std::fs::write(&leftover, "half a body").unwrap();

    let sweep = |data: PathBuf, url: String| {
        let out = Command::new(common::server::workspace_bin("skill-pool-server"))
            .arg("gc")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap())
            .env("SKILL_POOL_DATA_DIR", &data)
            .env("SKILL_POOL_DATABASE_URL", &url)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let out = tokio::task::block_in_place(|| sweep(data.clone(), s.db.url.clone()));
    assert!(out.contains("1 unreferenced deleted, 1 leftover temporary files deleted"), "{out}");
    assert!(!orphan_path.exists());
    assert!(!leftover.exists());
    for kept in ["v1\n", SHARED] {
        assert!(blob_path(&data, kept).is_file(), "{kept:?} was deleted");
    }
    // The plugin is still served, from the bodies it references.
    std::fs::remove_dir_all(data.join("repos")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("c");
    let url = format!("{}/git/plugins/tools.git", t.root);
    // (the running server verified the repo already; a fresh one rebuilds it from the bodies)
    let (second, stop, task) = s.second_server().await;
    let url = url.replacen(&s.url, &second, 1);
    tokio::task::block_in_place(|| git_ok(&["clone", "-q", &url, dest.to_str().unwrap()], None));
    assert_eq!(std::fs::read_to_string(dest.join("LICENSE")).unwrap(), SHARED);
    let out = tokio::task::block_in_place(|| sweep(data.clone(), s.db.url.clone()));
    assert!(out.contains("0 unreferenced deleted, 0 leftover"), "{out}");
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    s.stop().await;
});

both_backends!(
    purges_and_publishes_of_one_plugin_at_once_keep_a_servable_history,
    |db: TestDb| async move {
        let s = TestServer::start(db).await;
        let t = s.tenant("acme").await;
        publish(&s, &t, plugin_tar("tools", "1.0.0", "v1\n", &[])).await;
        let git_url = format!("{}/git/plugins/tools.git", t.root);
        for i in 1..=6 {
            let leaked = format!("{SECRET}{i}\n");
            publish(
                &s,
                &t,
                plugin_tar("tools", &format!("1.{i}.0"), "leaky\n", &[("secret.env", &leaked)]),
            )
            .await;
            // The fix and the purge of the leak race: whichever commits first, the other builds on it.
            let (fix_version, fixed, leak_version) = (format!("1.{i}.1"), format!("fixed {i}\n"), format!("1.{i}.0"));
            let fix = publish(&s, &t, plugin_tar("tools", &fix_version, &fixed, &[]));
            let purged = purge(&s, &t, &t.admin, "tools", &leak_version);
            let (_, (st, r)) = tokio::join!(fix, purged);
            assert_eq!(st, StatusCode::OK, "{r}");
            let (st, plugin) = s.get_json(&format!("{}/v1/plugins/tools", t.root), &t.admin).await;
            assert_eq!(st, StatusCode::OK);
            let head = plugin["current"]["commit"].as_str().unwrap().to_string();
            assert_eq!(plugin["current"]["version"], format!("1.{i}.1"));
            assert_eq!(catalogue_sha(&s, &t, "tools").await, head);
            let tmp = tokio::task::block_in_place(|| assert_clone_serves(&git_url, "protocol.version=2", &head, &[]));
            let dest = tmp.path().join("clone");
            assert_eq!(git_ok(&["rev-list", "--count", "HEAD"], Some(&dest)), format!("{}", i + 1));
            assert_eq!(std::fs::read_to_string(dest.join("README.md")).unwrap(), format!("fixed {i}\n"));
        }
        s.stop().await;
    }
);

both_backends!(
    a_purged_mirror_version_is_not_pulled_again_until_accepted,
    |db: TestDb| async move {
        use common::upstream::Upstream;
        let up = Upstream::start().await;
        let work = up.create("tool");
        let write = |rel: &str, body: &str| {
            let p = work.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        };
        let manifest = |v: &str| format!("{{\"name\": \"tool\", \"version\": \"{v}\", \"description\": \"Mirrored\"}}\n");
        write(".claude-plugin/plugin.json", &manifest("1.0.0"));
        write("README.md", "v1\n");
        up.commit_and_push(&work, "1.0.0", false);
        let s = TestServer::start_with(db, |c| {
            c.mirror.allowed_hosts = vec!["127.0.0.1".into()];
            c.mirror.tick = std::time::Duration::from_secs(1);
            c.mirror.timeout = std::time::Duration::from_secs(10);
        })
        .await;
        let t = s.tenant("acme").await;
        let data = s.data_dir().to_path_buf();
        let wait_version = |want: &'static str| {
            let (s, t) = (&s, &t);
            async move {
                for _ in 0..240 {
                    let (_, p) = s.get_json(&format!("{}/v1/plugins/tool", t.root), &t.admin).await;
                    if p["current"]["version"] == want {
                        return p;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                }
                panic!("the mirror did not serve {want} within 60 s");
            }
        };
        let (st, r) = s
            .post_json(
                &format!("{}/v1/plugins/import", t.root),
                &t.admin,
                &serde_json::json!({"url": up.url("tool"), "refresh_interval": "2s"}),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{r}");
        wait_version("1.0.0").await;
        write(".claude-plugin/plugin.json", &manifest("1.1.0"));
        write("secret.env", SECRET);
        up.commit_and_push(&work, "1.1.0 with a leak", false);
        wait_version("1.1.0").await;
        let cache = data.join("mirrors");
        assert!(std::fs::read_dir(&cache).unwrap().next().is_some());

        let (st, r) = purge(&s, &t, &t.admin, "tool", "1.1.0").await;
        assert_eq!(st, StatusCode::OK, "{r}");
        assert_eq!(r["plugin"]["current"]["version"], "1.0.0");
        assert!(r["plugin"]["mirror"]["held"].as_str().unwrap().contains("purged"), "{r}");
        assert!(!blob_path(&data, SECRET).exists());
        // Held: no pull brings the leak back (a refresh is refused; the worker skips it).
        let (st, body) = s
            .post_json(&format!("{}/v1/plugins/tool/refresh", t.root), &t.admin, &serde_json::json!({}))
            .await;
        assert_eq!(st, StatusCode::CONFLICT, "{body}");
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        let (_, p) = s.get_json(&format!("{}/v1/plugins/tool", t.root), &t.admin).await;
        assert_eq!(p["current"]["version"], "1.0.0", "{p}");
        assert!(!blob_path(&data, SECRET).exists());

        // The upstream is fixed; the admin accepts it and the mirror follows again.
        std::fs::remove_file(work.join("secret.env")).unwrap();
        write(".claude-plugin/plugin.json", &manifest("1.2.0"));
        up.commit_and_push(&work, "1.2.0 without the leak", false);
        let (st, body) = s
            .post_json(&format!("{}/v1/plugins/tool/accept", t.root), &t.admin, &serde_json::json!({}))
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{body}");
        let p = wait_version("1.2.0").await;
        assert!(p["mirror"]["held"].is_null(), "{p}");
        let head = p["current"]["commit"].as_str().unwrap().to_string();
        let url = p["git_url"].as_str().unwrap().to_string();
        tokio::task::block_in_place(|| assert_clone_serves(&url, "protocol.version=2", &head, &[]));
        s.stop().await;
    }
);

both_backends!(a_pinned_version_survives_a_purge_with_its_new_commit, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    publish(&s, &t, plugin_tar("tools", "1.0.0", "v1\n", &[])).await;
    publish(&s, &t, plugin_tar("tools", "1.1.0", "v2\n", &[("secret.env", SECRET)])).await;
    publish(&s, &t, plugin_tar("tools", "1.2.0", "v3\n", &[])).await;
    publish(&s, &t, plugin_tar("tools", "1.3.0", "v4\n", &[])).await;
    // 1.2.0 is pinned (1.3.0 held back); purging 1.1.0 rewrites it and the catalogue follows.
    let (st, p) = s
        .post_json(
            &format!("{}/v1/plugins/tools/serve", t.root),
            &t.admin,
            &serde_json::json!({"version": "1.2.0"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    let (st, r) = purge(&s, &t, &t.admin, "tools", "1.1.0").await;
    assert_eq!(st, StatusCode::OK, "{r}");
    let new_120 = r["rewritten"].as_array().unwrap().iter().find(|v| v["version"] == "1.2.0").unwrap()["new_commit"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(r["plugin"]["pinned"], true, "{r}");
    assert_eq!(r["plugin"]["current"]["commit"], new_120.as_str());
    assert_eq!(catalogue_sha(&s, &t, "tools").await, new_120);
    let git_url = format!("{}/git/plugins/tools.git", t.root);
    let tmp = tokio::task::block_in_place(|| {
        assert_clone_serves(
            &git_url,
            "protocol.version=2",
            r["rewritten"][1]["new_commit"].as_str().unwrap(),
            &[],
        )
    });
    let dest = tmp.path().join("clone");
    git_ok(&["cat-file", "-e", &new_120], Some(&dest));
    // Purging the pinned version: the newest is served again.
    let (st, r) = purge(&s, &t, &t.admin, "tools", "1.2.0").await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["plugin"]["pinned"], false, "{r}");
    assert_eq!(r["plugin"]["current"]["version"], "1.3.0");
    assert_eq!(
        catalogue_sha(&s, &t, "tools").await,
        r["plugin"]["current"]["commit"].as_str().unwrap()
    );
    s.stop().await;
});
