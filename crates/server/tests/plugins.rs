//! Internal plugins over real HTTP and real `git`: publish a folder, compose from pieces,
//! the catalogue (ETag/304, gzip, negotiation), and smart HTTP (v0, v2, shallow, pinned sha,
//! filters, gzip bodies), on SQLite and on PostgreSQL.

#![allow(clippy::disallowed_methods)] // drives real programs (git, the binaries, Claude Code) as a user would

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::server::{TestServer, TestTenant, skill_md, tar_gz, tree};
use reqwest::StatusCode;
use serde_json::{Value, json};
use skill_pool_store::both_backends;
use skill_pool_store::testing::TestDb;

/// A plugin folder with every kind of content the issue names.
fn sample_plugin(dir: &Path, name: &str, version: &str) {
    let w = |p: &str, data: &[u8]| {
        let path = dir.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    };
    w(
        ".claude-plugin/plugin.json",
        format!("{{\n  \"name\": \"{name}\",\n  \"version\": \"{version}\",\n  \"description\": \"A sample plugin\"\n}}\n").as_bytes(),
    );
    w(
        "skills/greet/SKILL.md",
        skill_md("greet", "Greets the user", "Say hello.").as_bytes(),
    );
    w("skills/greet/scripts/hello.sh", b"#!/bin/sh\necho hello\n");
    w(
        "agents/reviewer.md",
        b"---\nname: reviewer\ndescription: Reviews code\n---\nReview carefully.\n",
    );
    w("commands/hi.md", b"---\ndescription: Say hi\n---\nSay hi.\n");
    w(
        "hooks/hooks.json",
        br#"{"hooks":{"PreToolUse":[{"matcher":"Bash","hooks":[{"type":"command","command":"${CLAUDE_PLUGIN_ROOT}/bin/check.sh"}]}]}}"#,
    );
    w("bin/check.sh", b"#!/bin/sh\nexit 0\n");
    w(
        ".mcp.json",
        br#"{"mcpServers":{"echo":{"command":"${CLAUDE_PLUGIN_ROOT}/bin/check.sh"}}}"#,
    );
    w(".hidden", b"hidden file\n");
    w("empty.txt", b"");
    w("assets/blob.bin", &(0u8..=255).collect::<Vec<u8>>());
    use std::os::unix::fs::PermissionsExt;
    for exe in ["skills/greet/scripts/hello.sh", "bin/check.sh"] {
        std::fs::set_permissions(dir.join(exe), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// A tar.gz of a folder as the CLI uploads it (paths relative, modes kept).
fn pack(dir: &Path) -> Vec<u8> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, u32, Vec<u8>)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.path());
        for e in entries {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
                out.push((
                    p.strip_prefix(root).unwrap().display().to_string(),
                    mode,
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files);
    let refs: Vec<(&str, u32, &[u8])> = files.iter().map(|(p, m, d)| (p.as_str(), *m, d.as_slice())).collect();
    tar_gz(&refs)
}

async fn publish(s: &TestServer, t: &TestTenant, dir: &Path, query: &str) -> (StatusCode, Value) {
    let res = s
        .http
        .post(format!("{}/v1/plugins/publish?{query}", t.root))
        .bearer_auth(&t.admin)
        .header("content-type", "application/gzip")
        .body(pack(dir))
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

fn git(args: &[&str], cwd: Option<&Path>) -> String {
    let mut cmd = Command::new("git");
    cmd.args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null");
    if let Some(c) = cwd {
        cmd.current_dir(c);
    }
    let out = cmd.output().expect("git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn clone(url: &str, extra: &[&str], protocol: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("clone");
    let mut args = vec!["-c", protocol, "clone", "-q"];
    args.extend_from_slice(extra);
    args.push(url);
    args.push(dest.to_str().unwrap());
    git(&args, None);
    (tmp, dest)
}

both_backends!(published_folder_is_served_byte_for_byte, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    let src = tempfile::tempdir().unwrap();
    sample_plugin(src.path(), "sample", "1.0.0");
    let (st, body) = publish(&s, &t, src.path(), "slug=sample").await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let commit1 = body["plugin"]["current"]["commit"].as_str().unwrap().to_string();
    let kinds: Vec<(String, String)> = body["pieces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["kind"].as_str().unwrap().into(), p["slug"].as_str().unwrap().into()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("skill".into(), "greet".into()),
            ("agent".into(), "reviewer".into()),
            ("command".into(), "hi".into())
        ]
    );
    // The pieces are registered in the tenant's registry.
    let (_, skill) = (
        0,
        s.http
            .get(format!("{}/v1/skills/greet", t.root))
            .bearer_auth(&t.member)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap(),
    );
    assert_eq!(skill["latest"]["version"], "1.0.0", "{skill}");

    // Republishing identical content is a no-op; other content under 1.0.0 is refused.
    let (st, body) = publish(&s, &t, src.path(), "slug=sample").await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["created"], false);
    std::fs::write(
        src.path().join("commands/hi.md"),
        b"---\ndescription: Say hi\n---\nSay hi loudly.\n",
    )
    .unwrap();
    let (st, body) = publish(&s, &t, src.path(), "slug=sample").await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "version_conflict");
    assert!(body["message"].as_str().unwrap().contains("1.0.1"), "{body}");

    // Catalogue: url source with the absolute git URL, sha pinned to the served commit.
    let cat: Value = s
        .http
        .get(format!("{}/.claude-plugin/marketplace.json", t.root))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cat["name"], "acme");
    assert_eq!(cat["owner"]["name"], "acme display");
    let entry = &cat["plugins"][0];
    assert_eq!(entry["name"], "sample");
    assert_eq!(entry["version"], "1.0.0");
    assert_eq!(entry["source"]["source"], "url");
    let git_url = entry["source"]["url"].as_str().unwrap().to_string();
    assert_eq!(git_url, format!("{}/git/plugins/sample.git", t.root));
    assert_eq!(entry["source"]["sha"], commit1.as_str());

    // Clone over protocol v2 and v0, depth 1: exactly the published folder.
    let original = tree(src.path());
    std::fs::write(src.path().join("commands/hi.md"), b"---\ndescription: Say hi\n---\nSay hi.\n").unwrap();
    let original_v1 = tree(src.path());
    assert_ne!(original, original_v1);
    for protocol in ["protocol.version=2", "protocol.version=0"] {
        let (_tmp, dest) = clone(&git_url, &["--depth", "1"], protocol);
        assert_eq!(tree(&dest), original_v1, "{protocol}");
        assert_eq!(git(&["rev-parse", "HEAD"], Some(&dest)), commit1);
        assert_eq!(git(&["rev-parse", "--abbrev-ref", "HEAD"], Some(&dest)), "main");
        assert_eq!(
            git(&["tag", "--list"], Some(&dest)),
            "sample--v1.0.0\nv1.0.0",
            "the served version's tags follow the commit"
        );
    }

    // Version 1.1.0 with changed content: a new commit on top, tagged.
    std::fs::write(
        src.path().join("commands/hi.md"),
        b"---\ndescription: Say hi\n---\nSay hi loudly.\n",
    )
    .unwrap();
    std::fs::write(
        src.path().join(".claude-plugin/plugin.json"),
        b"{\n  \"name\": \"sample\",\n  \"version\": \"1.1.0\"\n}\n",
    )
    .unwrap();
    let (st, body) = publish(&s, &t, src.path(), "slug=sample").await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let commit2 = body["plugin"]["current"]["commit"].as_str().unwrap().to_string();
    let hi = body["pieces"].as_array().unwrap().iter().find(|p| p["slug"] == "hi").unwrap();
    assert_eq!(hi["version"], "1.0.1");
    assert_eq!(hi["created"], true);

    // Full clone: history kept, tags per version.
    let (_tmp, full) = clone(&git_url, &[], "protocol.version=2");
    assert_eq!(git(&["rev-list", "--count", "HEAD"], Some(&full)), "2");
    assert_eq!(
        git(&["tag", "--list"], Some(&full)),
        "sample--v1.0.0\nsample--v1.1.0\nv1.0.0\nv1.1.0"
    );
    assert_eq!(tree(&full), tree(src.path()));

    // Fetch a pinned non-tip commit into a shallow clone (what Claude Code does for `sha`).
    let (_tmp, shallow) = clone(&git_url, &["--depth", "1", "--no-checkout"], "protocol.version=2");
    git(
        &["-c", "protocol.version=2", "fetch", "-q", "--depth", "1", "origin", &commit1],
        Some(&shallow),
    );
    git(&["checkout", "-q", &commit1], Some(&shallow));
    assert_eq!(tree(&shallow), original_v1);

    // Partial clones.
    for filter in ["--filter=blob:none", "--filter=tree:0"] {
        let (_tmp, partial) = clone(&git_url, &["--depth", "1", filter], "protocol.version=2");
        assert_eq!(tree(&partial), tree(src.path()), "{filter}");
        assert_eq!(git(&["rev-parse", "HEAD"], Some(&partial)), commit2);
    }

    // A gzip-encoded upload-pack request (what git sends for large negotiations).
    let ls_refs = b"0014command=ls-refs\n00010009peel\n000csymrefs\n0000";
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, ls_refs).unwrap();
    let res = s
        .http
        .post(format!("{git_url}/git-upload-pack"))
        .header("content-type", "application/x-git-upload-pack-request")
        .header("content-encoding", "gzip")
        .header("git-protocol", "version=2")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/x-git-upload-pack-result");
    let text = String::from_utf8_lossy(&res.bytes().await.unwrap()).to_string();
    assert!(text.contains(&format!("{commit2} HEAD symref-target:refs/heads/main")), "{text}");

    // Push is refused; dumb HTTP is refused; unknown plugin 404.
    let res = s
        .http
        .get(format!("{git_url}/info/refs?service=git-receive-pack"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = s.http.get(format!("{git_url}/info/refs")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = s
        .http
        .get(format!("{}/git/plugins/nope.git/info/refs?service=git-upload-pack", t.root))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // The repo on disk is a cache: remove it and it is rebuilt to the same commits.
    std::fs::remove_dir_all(s.data_dir().join("repos")).unwrap();
    let (_tmp, rebuilt) = clone_after_restart(&s, &git_url).await;
    assert_eq!(git(&["rev-parse", "HEAD"], Some(&rebuilt)), commit2);
    s.stop().await;
});

/// The running server caches which repos it verified; a fresh server on the same data sees the
/// removed repo and rebuilds it.
async fn clone_after_restart(s: &TestServer, git_url: &str) -> (tempfile::TempDir, PathBuf) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = skill_pool_server::ServerConfig::for_data_dir(s.data_dir().to_path_buf(), addr);
    config.database_url = s.db.url.clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(skill_pool_server::serve(config, listener, async move {
        let _ = rx.await;
    }));
    for _ in 0..200 {
        if s.http.get(format!("http://{addr}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let url = git_url.replacen(&s.url, &format!("http://{addr}"), 1);
    let out = tokio::task::spawn_blocking(move || clone(&url, &["--depth", "1"], "protocol.version=2"))
        .await
        .unwrap();
    let _ = tx.send(());
    task.await.unwrap().unwrap();
    out
}

both_backends!(composed_plugin_from_registered_pieces, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    let post = |path: &str, ct: &str, body: Vec<u8>| {
        s.http
            .post(format!("{}{path}", t.root))
            .bearer_auth(&t.admin)
            .header("content-type", ct.to_string())
            .body(body)
            .send()
    };
    let res = post(
        "/v1/skills?slug=greet",
        "application/gzip",
        tar_gz(&[("SKILL.md", 0o644, skill_md("greet", "Greets", "hi").as_bytes())]),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = post(
        "/v1/agents?slug=reviewer",
        "text/markdown",
        b"---\nname: reviewer\ndescription: Reviews\n---\nReview.\n".to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let create = json!({
        "slug": "toolkit", "version": "0.1.0", "description": "Composed", "category": "productivity",
        "contents": [{"kind": "skill", "slug": "greet"}, {"kind": "agent", "slug": "reviewer"}],
        "blobs": {"hooks": {"hooks": {"SessionStart": [{"hooks": [{"type": "command", "command": "echo hi"}]}]}},
                  "mcp_servers": {"echo": {"command": "echo"}}}
    });
    let res = post("/v1/plugins", "application/json", serde_json::to_vec(&create).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let files: Vec<&str> = body["plugin"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        [
            ".claude-plugin/plugin.json",
            ".mcp.json",
            "agents/reviewer.md",
            "hooks/hooks.json",
            "skills/greet/SKILL.md"
        ]
    );
    let git_url = body["plugin"]["git_url"].as_str().unwrap().to_string();
    let (_tmp, dest) = clone(&git_url, &["--depth", "1"], "protocol.version=2");
    let manifest: Value = serde_json::from_slice(&std::fs::read(dest.join(".claude-plugin/plugin.json")).unwrap()).unwrap();
    assert_eq!(manifest["name"], "toolkit");
    assert_eq!(manifest["version"], "0.1.0");
    assert_eq!(
        std::fs::read_to_string(dest.join("skills/greet/SKILL.md")).unwrap(),
        skill_md("greet", "Greets", "hi")
    );

    // Archiving the pinned skill version does not take it out of the plugin.
    let res = post("/v1/skills/greet/versions/1.0.0/archive", "application/json", Vec::new())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (_, shown) = s.get_json(&format!("{}/v1/plugins/toolkit", t.root), &t.member).await;
    let greet = shown["contents"].as_array().unwrap().iter().find(|c| c["slug"] == "greet").unwrap();
    assert_eq!(greet["archived"], true);
    assert_eq!(greet["version"], "1.0.0");
    // …and a repo rebuilt from the database after that still carries it.
    std::fs::remove_dir_all(s.data_dir().join("repos")).unwrap();
    let (_tmp, rebuilt) = clone_after_restart(&s, &git_url).await;
    assert_eq!(
        std::fs::read_to_string(rebuilt.join("skills/greet/SKILL.md")).unwrap(),
        skill_md("greet", "Greets", "hi")
    );

    // Bad compositions: unknown piece, missing version, bad blobs — each 422, nothing written.
    for (what, body) in [
        (
            "unknown skill",
            json!({"slug": "bad", "contents": [{"kind": "skill", "slug": "nope"}]}),
        ),
        (
            "unknown version",
            json!({"slug": "bad", "contents": [{"kind": "skill", "slug": "greet", "version": "9.9.9"}]}),
        ),
        (
            "bad hooks",
            json!({"slug": "bad", "blobs": {"hooks": {"hooks": {"NoSuchEvent": []}}}}),
        ),
        ("bad mcp", json!({"slug": "bad", "blobs": {"mcp_servers": {"x": {"args": 3}}}})),
    ] {
        let res = post("/v1/plugins", "application/json", serde_json::to_vec(&body).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let b: Value = res.json().await.unwrap();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {b}");
    }
    let res = s
        .http
        .get(format!("{}/v1/plugins/bad", t.root))
        .bearer_auth(&t.member)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // A skill of another tenant is not visible to this one.
    let other = s.tenant("globex").await;
    let res = s
        .http
        .post(format!("{}/v1/plugins", other.root))
        .bearer_auth(&other.admin)
        .json(&json!({"slug": "steal", "contents": [{"kind": "skill", "slug": "greet"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // PATCH: new contents under the same explicit version is refused; with a bump it publishes.
    let res = s
        .http
        .patch(format!("{}/v1/plugins/toolkit", t.root))
        .bearer_auth(&t.admin)
        .json(&json!({"contents": [{"kind": "skill", "slug": "greet", "version": "1.0.0"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let res = s
        .http
        .patch(format!("{}/v1/plugins/toolkit", t.root))
        .bearer_auth(&t.admin)
        .json(&json!({"version": "0.2.0", "contents": [{"kind": "skill", "slug": "greet", "version": "1.0.0"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // External listing and delete.
    let res = s
        .http
        .post(format!("{}/v1/plugins", t.root))
        .bearer_auth(&t.admin)
        .json(&json!({"slug": "upstream", "mode": "external", "source": {"source": "github", "repo": "acme/tools"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let cat: Value = s
        .http
        .get(format!("{}/.claude-plugin/marketplace.json", t.root))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = cat["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["toolkit", "upstream"]);
    assert_eq!(cat["plugins"][1]["source"], json!({"source": "github", "repo": "acme/tools"}));
    assert_eq!(cat["plugins"][0]["category"], "productivity");
    let res = s
        .http
        .delete(format!("{}/v1/plugins/toolkit", t.root))
        .bearer_auth(&t.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = s
        .http
        .get(format!("{git_url}/info/refs?service=git-upload-pack"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    s.stop().await;
});

#[tokio::test]
async fn catalogue_negotiation_etag_gzip_and_empty_tenant() {
    let s = TestServer::start(TestDb::sqlite()).await;
    let t = s.tenant("acme").await;
    // Empty tenant: 200 with no plugins.
    let res = s
        .http
        .get(format!("{}/.claude-plugin/marketplace.json", t.root))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/json");
    let etag = res.headers()["etag"].to_str().unwrap().to_string();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["plugins"], json!([]));
    assert_eq!(body["name"], "acme");
    // 304 on If-None-Match.
    let res = s
        .http
        .get(format!("{}/.claude-plugin/marketplace.json", t.root))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    // Claude Code's request at the tenant root gets the JSON, gzip-encoded when asked.
    let raw = reqwest::Client::builder().no_proxy().no_gzip().build().unwrap();
    let res = raw
        .get(&t.root)
        .header("accept", "application/json, text/plain, */*")
        .header("accept-encoding", "gzip, compress, deflate, br")
        .header("user-agent", "Claude-Code-Plugin-Manager")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-encoding"], "gzip");
    let bytes = res.bytes().await.unwrap();
    let mut json = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut json).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&json).unwrap()["name"], "acme");
    // A browser gets the HTML page.
    let res = s
        .http
        .get(format!("{}/", t.root))
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(res.text().await.unwrap().contains(&format!("/plugin marketplace add {}", t.root)));
    // Unknown tenant: 404 JSON.
    let res = s
        .http
        .get(format!("{}/t/nobody/.claude-plugin/marketplace.json", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
    assert!(body["message"].as_str().unwrap().contains("nobody"), "{body}");
    s.stop().await;
}

#[tokio::test]
async fn public_surface_is_rate_limited() {
    let s = TestServer::start_with(TestDb::sqlite(), |c| c.rate_limit_per_min = 8).await;
    let t = s.tenant("acme").await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let res = s
            .http
            .get(format!("{}/.claude-plugin/marketplace.json", t.root))
            .send()
            .await
            .unwrap();
        statuses.push((res.status(), res.headers().get("retry-after").cloned()));
    }
    assert_eq!(statuses[0].0, StatusCode::OK);
    let limited = statuses
        .iter()
        .find(|(st, _)| *st == StatusCode::TOO_MANY_REQUESTS)
        .expect("a 429 after the burst");
    assert!(limited.1.is_some(), "429 carries Retry-After");
    // The catalogue is answered at the edge (before the routers): its refusals still carry the
    // request id and the error shape, and it is counted in the metrics like any route.
    let res = s
        .http
        .get(format!("{}/.claude-plugin/marketplace.json", t.root))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
    assert_eq!(body["request_id"], id.as_str());
    let metrics = s.http.get(format!("{}/metrics", s.url)).send().await.unwrap().text().await.unwrap();
    let counted = |status: &str| {
        metrics
            .lines()
            .find(|l| {
                l.starts_with("skill_pool_http_requests_total{")
                    && l.contains("route=\"/.claude-plugin/marketplace.json\"")
                    && l.contains(&format!("status=\"{status}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .map(|n| n.parse::<u64>().unwrap())
            .unwrap_or(0)
    };
    assert!(counted("200") >= 1, "{metrics}");
    assert!(counted("429") >= 2, "{metrics}");
    s.stop().await;
}

/// A tar.gz with one hostile entry after a valid plugin.json, written with raw headers.
fn hostile_tar(path: &str, kind: tar::EntryType, body: &[u8], link: Option<&str>) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    let manifest = br#"{"name": "evil"}"#;
    let mut h = tar::Header::new_gnu();
    h.set_path(".claude-plugin/plugin.json").unwrap();
    h.set_size(manifest.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    builder.append(&h, &manifest[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
    h.set_entry_type(kind);
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    if let Some(l) = link {
        h.set_link_name(l).unwrap();
    }
    h.set_cksum();
    builder.append(&h, body).unwrap();
    builder.into_inner().unwrap().finish().unwrap()
}

both_backends!(bad_plugin_folders_are_refused_and_change_nothing, |db: TestDb| async move {
    let s = TestServer::start_with(db, |c| c.max_upload_bytes = 256 << 10).await;
    let t = s.tenant("acme").await;
    let src = tempfile::tempdir().unwrap();
    sample_plugin(src.path(), "sample", "1.0.0");
    let (st, body) = publish(&s, &t, src.path(), "").await;
    assert_eq!(st, StatusCode::CREATED, "{body}");

    let blobs = s.data_dir().join("blobs");
    let files_before = common::server::count_files(&blobs);
    let repos_before = common::server::count_files(&s.data_dir().join("repos"));
    let catalogue = || async {
        s.http
            .get(format!("{}/.claude-plugin/marketplace.json", t.root))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
    };
    let catalogue_before = catalogue().await;
    let audit = || async {
        s.get_json(&format!("{}/v1/audit?limit=500", t.root), &t.admin).await.1["items"]
            .as_array()
            .unwrap()
            .len()
    };
    let audit_before = audit().await;

    let plugin_json = |json: &str| {
        tar_gz(&[
            (".claude-plugin/plugin.json", 0o644, json.as_bytes()),
            ("README.md", 0o644, b"new file"),
        ])
    };
    let many: Vec<(String, Vec<u8>)> = (0..20_001).map(|i| (format!("f/{i}"), Vec::new())).collect();
    let many_refs: Vec<(&str, u32, &[u8])> = many.iter().map(|(p, d)| (p.as_str(), 0o644, d.as_slice())).collect();
    // Incompressible bytes (xorshift), so the compressed upload itself is over the limit.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: Vec<u8> = (0..300 << 10)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let cases: Vec<(&str, &str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "traversal",
            "",
            hostile_tar("../evil", tar::EntryType::Regular, b"x", None),
            StatusCode::BAD_REQUEST,
            "invalid_archive",
        ),
        (
            "absolute path",
            "",
            hostile_tar("/tmp/evil", tar::EntryType::Regular, b"x", None),
            StatusCode::BAD_REQUEST,
            "invalid_archive",
        ),
        (
            "symlink out of the tree",
            "",
            hostile_tar("skills/x", tar::EntryType::Symlink, b"", Some("../../../etc")),
            StatusCode::BAD_REQUEST,
            "invalid_archive",
        ),
        (
            "device file",
            "",
            hostile_tar("dev/null", tar::EntryType::Block, b"", None),
            StatusCode::BAD_REQUEST,
            "invalid_archive",
        ),
        (
            "hard link",
            "",
            hostile_tar("hard", tar::EntryType::Link, b"", Some(".claude-plugin/plugin.json")),
            StatusCode::BAD_REQUEST,
            "invalid_archive",
        ),
        (
            "too many files",
            "slug=many",
            tar_gz(&many_refs),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "over the byte limit",
            "slug=big",
            tar_gz(&[("big.bin", 0o644, &noise)]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "decompression bomb",
            "slug=bomb",
            tar_gz(&[("zeros", 0o644, &vec![0u8; 8 << 20])]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "plugin.json not JSON",
            "",
            plugin_json("{ nope"),
            StatusCode::BAD_REQUEST,
            "invalid_manifest",
        ),
        (
            "plugin.json wrong type",
            "",
            plugin_json(r#"{"name": "sample", "version": 2}"#),
            StatusCode::BAD_REQUEST,
            "invalid_manifest",
        ),
        (
            "author as a string",
            "",
            plugin_json(r#"{"name": "sample", "author": "me"}"#),
            StatusCode::BAD_REQUEST,
            "invalid_manifest",
        ),
        (
            "name differs from the slug",
            "slug=other",
            plugin_json(r#"{"name": "sample", "version": "2.0.0"}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_plugin",
        ),
        (
            "a SKILL.md that is not UTF-8",
            "",
            tar_gz(&[
                (".claude-plugin/plugin.json", 0o644, br#"{"name": "sample", "version": "2.0.0"}"#),
                ("skills/x/SKILL.md", 0o644, b"---\nname: x\ndescription: \xff\xfe\n---\n"),
            ]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_plugin",
        ),
        (
            "no name at all",
            "",
            tar_gz(&[("README.md", 0o644, b"x")]),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "lower version than served",
            "",
            plugin_json(r#"{"name": "sample", "version": "0.9.0"}"#),
            StatusCode::CONFLICT,
            "version_conflict",
        ),
    ];
    for (what, query, body, status, code) in cases {
        let (st, b) = s
            .post_bytes(
                &format!("{}/v1/plugins/publish?{query}", t.root),
                &t.admin,
                "application/gzip",
                body,
            )
            .await;
        assert_eq!((st, b["error"].as_str().unwrap_or("")), (status, code), "{what}: {b}");
    }
    // Nothing was stored, served or logged.
    assert_eq!(common::server::count_files(&blobs), files_before);
    assert_eq!(common::server::count_files(&s.data_dir().join("repos")), repos_before);
    assert_eq!(catalogue().await, catalogue_before);
    assert_eq!(audit().await, audit_before);
    for slug in ["evil", "many", "big", "bomb", "other"] {
        let (st, _) = s.get_json(&format!("{}/v1/plugins/{slug}", t.root), &t.member).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{slug}");
    }
    let (_, shown) = s.get_json(&format!("{}/v1/plugins/sample", t.root), &t.member).await;
    assert_eq!(shown["versions"].as_array().unwrap().len(), 1);
    s.stop().await;
});

/// Shapes of frontmatter seen in published plugins that strict YAML refuses. Claude Code
/// installs such a plugin, so it publishes: with warnings naming each file, the lenient
/// reading of `name` and `description` in the registry, the warnings in the audit row, and
/// the files served byte for byte.
pub const LENIENT_AGENT: &[u8] = b"---\nname: triage\ndescription: Use this agent when the user reports a bug: it triages.\\n\\nExamples:\\n<example>user: it crashes</example>\nmodel: sonnet\ncolor: red\n---\nTriage the bug.\n";

both_backends!(lenient_frontmatter_publishes_with_warnings, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    let src = tempfile::tempdir().unwrap();
    sample_plugin(src.path(), "lenient", "1.0.0");
    let w = |p: &str, data: &[u8]| {
        let path = src.path().join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    };
    w("agents/triage.md", LENIENT_AGENT);
    w(
        "skills/windows/SKILL.md",
        "\u{feff}---\r\nname: windows\r\ndescription: `dir` lists files: on Windows\r\n---\r\nUse dir.\r\n".as_bytes(),
    );
    w(
        "skills/folded/SKILL.md",
        b"---\nname: folded\ndescription: >\n  Folded over\n  two lines\nx-unknown: 1\n---\nBody\n",
    );
    w("commands/bare.md", b"Run the thing without any frontmatter.\n");
    w(
        "commands/at.md",
        b"---\ndescription: @mentions # not a comment here\n\targument-hint: tabbed\n---\nGo.\n",
    );

    let (st, body) = publish(&s, &t, src.path(), "").await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let warnings: Vec<&str> = body["warnings"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    for file in ["agents/triage.md", "skills/windows/SKILL.md", "commands/bare.md", "commands/at.md"] {
        assert!(warnings.iter().any(|w| w.starts_with(&format!("{file}: "))), "{file}: {warnings:?}");
    }
    assert!(!warnings.iter().any(|w| w.starts_with("skills/folded/")), "{warnings:?}");
    let registered: Vec<(String, String)> = body["pieces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["kind"].as_str().unwrap().to_string(), p["slug"].as_str().unwrap().to_string()))
        .collect();
    for (kind, slug) in [
        ("agent", "triage"),
        ("skill", "windows"),
        ("skill", "folded"),
        ("command", "bare"),
        ("command", "at"),
    ] {
        assert!(registered.contains(&(kind.into(), slug.into())), "{kind} {slug}: {registered:?}");
    }

    // The lenient reading reached the registry.
    let (_, agent) = s.get_json(&format!("{}/v1/agents/triage", t.root), &t.member).await;
    assert_eq!(
        agent["latest"]["description"],
        r"Use this agent when the user reports a bug: it triages.\n\nExamples:\n<example>user: it crashes</example>"
    );
    assert_eq!(agent["latest"]["metadata"]["model"], "sonnet");
    let (_, skill) = s.get_json(&format!("{}/v1/skills/windows", t.root), &t.member).await;
    assert_eq!(skill["latest"]["description"], "`dir` lists files: on Windows");
    let (_, skill) = s.get_json(&format!("{}/v1/skills/folded", t.root), &t.member).await;
    assert_eq!(skill["latest"]["description"], "Folded over two lines");

    // The warnings are in the audit row of the publish.
    let (_, audit) = s.get_json(&format!("{}/v1/audit?limit=100", t.root), &t.admin).await;
    let row = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "plugin.publish")
        .expect("a plugin.publish row");
    let logged = row["detail"]["warnings"].as_array().unwrap();
    assert!(
        logged.iter().any(|w| w.as_str().unwrap().starts_with("agents/triage.md: ")),
        "{row}"
    );

    // Served byte for byte.
    let git_url = body["plugin"]["git_url"].as_str().unwrap();
    let (_tmp, dest) = clone(git_url, &["--depth", "1"], "protocol.version=2");
    assert_eq!(tree(&dest), tree(src.path()));

    // A single skill with no frontmatter block at all is still refused (the registry lists a
    // skill by its description); one whose frontmatter is only lenient YAML publishes with a warning.
    let (st, b) = s
        .post_bytes(
            &format!("{}/v1/skills?slug=plain", t.root),
            &t.admin,
            "application/gzip",
            tar_gz(&[("SKILL.md", 0o644, b"Just instructions.\n")]),
        )
        .await;
    assert_eq!(
        (st, b["error"].as_str().unwrap()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_piece"),
        "{b}"
    );
    let (st, b) = s
        .post_bytes(
            &format!("{}/v1/skills?slug=colon", t.root),
            &t.admin,
            "application/gzip",
            tar_gz(&[("SKILL.md", 0o644, b"---\nname: colon\ndescription: Use when: asked\n---\nBody\n")]),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    assert_eq!(b["version"]["description"], "Use when: asked");
    assert!(b["warnings"][0].as_str().unwrap().contains("not strict YAML"), "{b}");
    s.stop().await;
});
