//! The public surface against hostile clients (issue 12's denial-of-service points and some
//! defence in depth): stalled git readers, slow and idle connections, oversized JSON, made-up
//! methods in metrics, guessed tokens, two Host headers, garbage git requests, file modes.
//! Each test fails on a server without the bound it checks.

#![allow(clippy::disallowed_methods)] // drives real programs (git, the binaries) as a user would

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::server::{TestServer, TestTenant, noise, tar_gz};
use skill_pool_store::both_backends;
use skill_pool_store::testing::TestDb;

/// Publishes a plugin with `size` bytes of incompressible data; answers its commit.
async fn publish_big(s: &TestServer, t: &TestTenant, name: &str, size: usize) -> String {
    let manifest = serde_json::json!({"name": name, "version": "1.0.0", "description": "big"}).to_string();
    let data = noise(size, 7);
    let body = tar_gz(&[
        (".claude-plugin/plugin.json", 0o644, manifest.as_bytes()),
        ("assets/blob.bin", 0o644, &data),
    ]);
    let (status, v) = s
        .post_bytes(&format!("{}/v1/plugins/publish", t.root), &t.admin, "application/gzip", body)
        .await;
    assert!(status.is_success(), "{status} {v}");
    let (_, p) = s.get_json(&format!("{}/v1/plugins/{name}", t.root), &t.admin).await;
    p["current"]["commit"].as_str().expect("commit").to_string()
}

fn pkt(line: &str) -> String {
    format!("{:04x}{line}", line.len() + 4)
}

/// A protocol v2 depth-1 fetch of `commit`, as a raw HTTP/1.1 request.
fn fetch_request(t: &TestTenant, host: &str, name: &str, commit: &str) -> Vec<u8> {
    let body = format!(
        "{}0001{}{}{}{}{}0000",
        pkt("command=fetch\n"),
        pkt("thin-pack\n"),
        pkt("ofs-delta\n"),
        pkt(&format!("want {commit}\n")),
        pkt("deepen 1\n"),
        pkt("done\n")
    );
    let path = format!("/t/{}/git/plugins/{name}.git/git-upload-pack", t.slug);
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nGit-Protocol: version=2\r\nContent-Type: application/x-git-upload-pack-request\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn host_of(url: &str) -> String {
    url.trim_start_matches("http://").split('/').next().unwrap().to_string()
}

/// Processes whose command line mentions `needle`.
fn processes_with(needle: &str) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0 };
    dir.filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|c| String::from_utf8_lossy(c).contains(needle))
        .count()
}

/// Polls `check` every 100 ms for at most `limit`.
fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    check()
}

/// The status code of a raw HTTP answer read from `stream` (None if closed without one).
fn read_status(stream: &mut TcpStream) -> Option<u16> {
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 512];
    let n = stream.read(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf[..n]);
    text.split_whitespace().nth(1)?.parse().ok()
}

both_backends!(stalled_git_readers_are_cut_off_and_capped, |db: TestDb| async move {
    let s = TestServer::start_with(db, |c| {
        c.git.max_per_address = 2;
        c.git.max_concurrent = 8;
        c.git.stream.idle = Duration::from_secs(2);
        c.limits.write_timeout = Duration::from_secs(3);
    })
    .await;
    let t = s.tenant("acme").await;
    let commit = publish_big(&s, &t, "big", 24 << 20).await;
    let host = host_of(&s.url);
    let data_dir = s.data_dir().display().to_string();
    let t2 = t.clone();
    tokio::task::spawn_blocking(move || {
        // Two clients ask for the pack and never read it.
        let mut stalled = Vec::new();
        for _ in 0..2 {
            let mut c = TcpStream::connect(&host).unwrap();
            c.write_all(&fetch_request(&t2, &host, "big", &commit)).unwrap();
            stalled.push(c);
        }
        assert!(
            eventually(Duration::from_secs(10), || processes_with(&data_dir) >= 2),
            "git runs for the stalled clients"
        );
        // A third from the same address is refused while they hold their slots.
        let mut third = TcpStream::connect(&host).unwrap();
        third.write_all(&fetch_request(&t2, &host, "big", &commit)).unwrap();
        assert_eq!(read_status(&mut third), Some(429));
        // The stalled ones are stopped: git (upload-pack and pack-objects) is gone.
        assert!(
            eventually(Duration::from_secs(20), || processes_with(&data_dir) == 0),
            "git still runs for clients that stopped reading: {} processes",
            processes_with(&data_dir)
        );
        drop(stalled);
        // And a normal clone works again.
        let mut ok = TcpStream::connect(&host).unwrap();
        ok.write_all(&fetch_request(&t2, &host, "big", &commit)).unwrap();
        assert_eq!(read_status(&mut ok), Some(200));
    })
    .await
    .unwrap();
    s.stop().await;
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_closed_and_capped() {
    let s = TestServer::start_with(TestDb::sqlite(), |c| {
        c.limits.header_timeout = Duration::from_secs(1);
        c.limits.max_connections = 20;
    })
    .await;
    let host = host_of(&s.url);
    tokio::task::spawn_blocking(move || {
        // More slowloris connections than the cap: each sends half a request and stalls.
        let mut slow: Vec<TcpStream> = (0..40).filter_map(|_| TcpStream::connect(&host).ok()).collect();
        for c in &mut slow {
            let _ = c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n");
        }
        // /healthz still answers: the held connections are closed after the header timeout,
        // and the ones past the cap wait in the listen queue instead of taking descriptors.
        let started = Instant::now();
        let mut answered = false;
        while started.elapsed() < Duration::from_secs(20) && !answered {
            if let Ok(mut c) = TcpStream::connect(&host) {
                c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let _ = c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                let mut out = String::new();
                let _ = c.read_to_string(&mut out);
                answered = out.starts_with("HTTP/1.1 200");
            }
        }
        assert!(answered, "/healthz did not answer while slow connections were held");
        // Every slow connection has been closed by the server.
        for c in &mut slow {
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut sink = Vec::new();
            match c.read_to_end(&mut sink) {
                Ok(_) => {} // closed by the server (after a 408, or without an answer)
                Err(e) => assert!(
                    e.kind() != std::io::ErrorKind::WouldBlock && e.kind() != std::io::ErrorKind::TimedOut,
                    "a slow connection was left open: {e}"
                ),
            }
        }
        // An idle kept-alive connection is closed too.
        let mut idle = TcpStream::connect(&host).unwrap();
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        idle.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut first = [0u8; 512];
        assert!(idle.read(&mut first).unwrap() > 0);
        let mut rest = [0u8; 512];
        assert_eq!(idle.read(&mut rest).unwrap_or(0), 0, "an idle kept-alive connection is closed");
    })
    .await
    .unwrap();
    s.stop().await;
}

both_backends!(json_bodies_are_bounded_and_roles_come_first, |db: TestDb| async move {
    let s = TestServer::start_with(db, |c| c.max_json_bytes = 4096).await;
    let t = s.tenant("acme").await;
    // Past the limit: 413, whoever sends it.
    let big = serde_json::json!({"name": "x", "description": "d".repeat(10_000)});
    let (status, v) = s.post_json(&format!("{}/v1/plugins", t.root), &t.admin, &big).await;
    assert_eq!(status.as_u16(), 413, "{v}");
    assert!(v["message"].as_str().unwrap().contains("SKILL_POOL_MAX_JSON_BYTES"), "{v}");
    // A member announcing a 100 MiB body is refused before a byte of it is read.
    let host = host_of(&s.url);
    let member = t.member.clone();
    let slug = t.slug.clone();
    tokio::task::spawn_blocking(move || {
        let mut c = TcpStream::connect(&host).unwrap();
        let head = format!(
            "POST /t/{slug}/v1/plugins HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {member}\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\n\r\n{{"
        );
        c.write_all(head.as_bytes()).unwrap();
        assert_eq!(read_status(&mut c), Some(403));
    })
    .await
    .unwrap();
    // The refusal is in the audit log.
    let (_, audit) = s.get_json(&format!("{}/v1/audit", t.root), &t.admin).await;
    let denied = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "access.denied")
        .unwrap_or_else(|| panic!("no access.denied row: {audit}"));
    assert_eq!(denied["target"], "POST /v1/plugins");
    assert!(denied["actor"].as_str().unwrap().starts_with("token:test-member"), "{denied}");
    s.stop().await;
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessed_tokens_are_limited_logged_and_counted() {
    let s = TestServer::start_with(TestDb::sqlite(), |c| c.auth_failures_per_min = 5).await;
    let t = s.tenant("acme").await;
    for i in 0..5 {
        let (status, _) = s.get_json(&format!("{}/v1/whoami", t.root), &format!("sp_wrong{i}")).await;
        assert_eq!(status.as_u16(), 401);
    }
    // Past the limit the address is refused, even with a good token, until the window ends.
    let res = s
        .http
        .get(format!("{}/v1/whoami", t.root))
        .bearer_auth(&t.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 429);
    assert!(res.headers().get("retry-after").is_some());
    let metrics = s.http.get(format!("{}/metrics", s.url)).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("skill_pool_auth_failures_total{reason=\"wrong_token\"} 5"),
        "{metrics}"
    );
    assert!(
        metrics.contains("skill_pool_auth_failures_total{reason=\"limited\"} 1"),
        "{metrics}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_labels_are_bounded_and_metrics_can_be_closed() {
    let s = TestServer::start(TestDb::sqlite()).await;
    let t = s.tenant("acme").await;
    for i in 0..50 {
        let method = reqwest::Method::from_bytes(format!("BREW{i}").as_bytes()).unwrap();
        let _ = s
            .http
            .request(method, format!("{}/.claude-plugin/marketplace.json", t.root))
            .send()
            .await
            .unwrap();
    }
    let metrics = s.http.get(format!("{}/metrics", s.url)).send().await.unwrap().text().await.unwrap();
    assert!(!metrics.contains("BREW"), "made-up methods became labels");
    assert!(metrics.contains("method=\"other\""), "{metrics}");
    s.stop().await;

    // Closed to every address; open with the token.
    let s = TestServer::start_with(TestDb::sqlite(), |c| {
        c.metrics_allow = Vec::new();
        c.metrics_token = Some("metrics-secret".into());
    })
    .await;
    let url = format!("{}/metrics", s.url);
    assert_eq!(s.http.get(&url).send().await.unwrap().status().as_u16(), 403);
    let res = s.http.get(&url).bearer_auth("metrics-secret").send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(s.http.get(&url).bearer_auth("guess").send().await.unwrap().status().as_u16(), 403);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_host_headers_and_garbage_git_requests_are_refused() {
    let s = TestServer::start(TestDb::sqlite()).await;
    let t = s.tenant("acme").await;
    let commit = publish_big(&s, &t, "small", 1024).await;
    assert_eq!(commit.len(), 40);
    let host = host_of(&s.url);
    let slug = t.slug.clone();
    tokio::task::spawn_blocking(move || {
        let mut c = TcpStream::connect(&host).unwrap();
        let req = format!(
            "GET /t/{slug}/.claude-plugin/marketplace.json HTTP/1.1\r\nHost: {host}\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
        );
        c.write_all(req.as_bytes()).unwrap();
        assert_eq!(read_status(&mut c), Some(400));
    })
    .await
    .unwrap();
    let res = s
        .http
        .post(format!("{}/git/plugins/small.git/git-upload-pack", t.root))
        .header("content-type", "application/x-git-upload-pack-request")
        .header("git-protocol", "version=2")
        .body("this is not a pkt-line stream")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert!(res.text().await.unwrap().contains("not a git upload-pack request"));
    s.stop().await;
}

/// The real binary creates its data dir, database and token file for its owner only.
#[test]
fn the_data_dir_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut cmd = std::process::Command::new(common::server::workspace_bin("skill-pool-server"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("SKILL_POOL_DATA_DIR", &data);
    let server = common::process::ServerProcess::start(cmd);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    for entry in std::fs::read_dir(&data).unwrap() {
        let p = entry.unwrap().path();
        let m = mode(&p);
        assert_eq!(m & 0o077, 0, "{} is open to others ({m:o})", p.display());
    }
    drop(server);
}

/// A plugin folder with `plugin.json` carrying `description`, plus one file of `size` bytes.
fn plugin_tar(name: &str, description: &str, size: usize, seed: u64) -> Vec<u8> {
    let manifest = serde_json::json!({"name": name, "version": "1.0.0", "description": description}).to_string();
    let data = noise(size, seed);
    tar_gz(&[
        (".claude-plugin/plugin.json", 0o644, manifest.as_bytes()),
        ("assets/data.bin", 0o644, &data),
    ])
}

async fn publish_tar(s: &TestServer, t: &TestTenant, body: Vec<u8>) -> (u16, serde_json::Value) {
    let (status, v) = s
        .post_bytes(&format!("{}/v1/plugins/publish", t.root), &t.admin, "application/gzip", body)
        .await;
    (status.as_u16(), v)
}

both_backends!(uploads_and_metadata_cannot_amplify, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    // A small archive that unpacks to 100 MiB of zeros (under the 256 MiB unpacked limit, but
    // a thousand times its size): refused.
    let zeros = vec![0u8; 100 << 20];
    let manifest = serde_json::json!({"name": "bomb", "version": "1.0.0"}).to_string();
    let bomb = tar_gz(&[
        (".claude-plugin/plugin.json", 0o644, manifest.as_bytes()),
        ("zeros.bin", 0o644, &zeros),
    ]);
    drop(zeros);
    assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
    let (status, v) = publish_tar(&s, &t, bomb).await;
    assert_eq!(status, 413, "{v}");
    assert_eq!(v["error"], "payload_too_large");
    // A description past its limit: refused, naming the field; nothing reaches the catalogue.
    let (status, v) = publish_tar(&s, &t, plugin_tar("wordy", &"x".repeat(50_000), 10, 1)).await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["field"], "description", "{v}");
    let catalogue = s
        .http
        .get(format!("{}/.claude-plugin/marketplace.json", t.root))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!catalogue.contains("wordy"));
    s.stop().await;
});

both_backends!(the_catalogue_and_quotas_are_bounded, |db: TestDb| async move {
    let s = TestServer::start_with(db, |c| {
        c.tenant_limits.max_catalogue_bytes = 12 << 10;
        c.tenant_limits.max_plugins = Some(3);
        c.tenant_limits.max_versions = Some(4);
        c.tenant_limits.max_bytes = Some(300 << 10);
    })
    .await;
    let t = s.tenant("acme").await;
    // Plugins with 4 KB descriptions fill a 12 KiB catalogue: the one past it is refused.
    let mut refused = None;
    for i in 0..3 {
        let (status, v) = publish_tar(&s, &t, plugin_tar(&format!("p{i}"), &"d".repeat(4000), 1000, i)).await;
        if status != 200 && status != 201 {
            refused = Some((status, v));
            break;
        }
    }
    let (status, v) = refused.expect("the catalogue limit was never reached");
    assert_eq!(status, 413, "{v}");
    assert_eq!(v["error"], "catalogue_too_large", "{v}");
    let catalogue = s
        .http
        .get(format!("{}/.claude-plugin/marketplace.json", t.root))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(catalogue.len() <= 12 << 10, "{}", catalogue.len());
    let (_, usage) = s.get_json(&format!("{}/v1/usage", t.root), &t.member).await;
    assert_eq!(usage["limits"]["max_plugins"], 3, "{usage}");
    let plugins_before = usage["plugins"].as_u64().unwrap();
    assert!(plugins_before >= 1);

    // Bytes: a plugin whose data would pass 300 KiB is refused with quota_exceeded.
    let (status, v) = publish_tar(&s, &t, plugin_tar("heavy", "h", 400 << 10, 99)).await;
    assert_eq!(status, 403, "{v}");
    assert_eq!(v["error"], "quota_exceeded", "{v}");
    assert!(v["message"].as_str().unwrap().contains("bytes stored"), "{v}");
    // Plugins: up to 3.
    let mut last = (0, serde_json::Value::Null);
    for i in 0..4 {
        last = publish_tar(&s, &t, plugin_tar(&format!("q{i}"), "q", 100, 200 + i)).await;
        if last.0 == 403 {
            break;
        }
    }
    assert_eq!(last.0, 403, "{}", last.1);
    assert!(last.1["message"].as_str().unwrap().contains("plugins"), "{}", last.1);
    // Versions: 4 in all (p0, p1, q0 so far).
    let bump = |v: &str| {
        let manifest = serde_json::json!({"name": "p0", "version": v, "description": "d"}).to_string();
        tar_gz(&[(".claude-plugin/plugin.json", 0o644, manifest.as_bytes())])
    };
    assert_eq!(publish_tar(&s, &t, bump("1.0.1")).await.0, 201);
    let (status, v) = publish_tar(&s, &t, bump("1.0.2")).await;
    assert_eq!(status, 403, "{v}");
    assert!(v["message"].as_str().unwrap().contains("plugin versions"), "{v}");
    let (_, usage) = s.get_json(&format!("{}/v1/usage", t.root), &t.member).await;
    assert_eq!(usage["plugins"], 3, "{usage}");
    assert_eq!(usage["plugin_versions"], 4, "{usage}");
    assert!(usage["bytes_stored"].as_u64().unwrap() <= 300 << 10, "{usage}");
    s.stop().await;
});
