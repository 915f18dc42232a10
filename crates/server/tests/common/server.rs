//! A real skill-pool server on 127.0.0.1:<ephemeral port> for one test, on its own database.

#![allow(clippy::disallowed_methods)] // drives real programs (git, the binaries, Claude Code) as a user would
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use skill_pool_core::Role;
use skill_pool_registry::{Actor, Principal, Registry};
use skill_pool_server::{ServerConfig, open_store, registry_for};
use skill_pool_store::testing::TestDb;

pub struct TestServer {
    pub url: String,
    pub db: TestDb,
    pub registry: Registry,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub http: reqwest::Client,
}

/// A tenant created for a test, with an admin and a member token.
#[derive(Debug, Clone)]
pub struct TestTenant {
    pub slug: String,
    /// `<url>/t/<slug>`
    pub root: String,
    pub admin: String,
    pub member: String,
}

/// The test CA and server certificate of `scripts/test-ca.sh` (trusted by the machine under
/// `.ci/run`). `None` with the reason printed when unset; under `CI=true` unset fails the test.
pub fn tls_dir() -> Option<PathBuf> {
    match std::env::var_os("SKILL_POOL_TEST_TLS_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            assert!(
                dir.join("server.crt").exists(),
                "SKILL_POOL_TEST_TLS_DIR={} has no server.crt: run scripts/test-ca.sh --install",
                dir.display()
            );
            Some(dir)
        }
        None if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
            panic!("SKILL_POOL_TEST_TLS_DIR is not set under CI=true: .ci/run makes it with scripts/test-ca.sh --install")
        }
        None => {
            eprintln!("skipping: SKILL_POOL_TEST_TLS_DIR not set (scripts/test-ca.sh --install makes the test CA)");
            None
        }
    }
}

impl TestServer {
    pub async fn start(db: TestDb) -> TestServer {
        Self::start_with(db, |_| {}).await
    }

    /// A server speaking https on `https://skill-pool.test:<port>` with the test CA's
    /// certificate; `None` (skipped) without the test CA.
    pub async fn start_tls(db: TestDb, tweak: impl FnOnce(&mut ServerConfig)) -> Option<TestServer> {
        let dir = tls_dir()?;
        Some(
            Self::start_with(db, move |c| {
                c.tls = Some(skill_pool_server::config::TlsFiles {
                    cert: dir.join("server.crt"),
                    key: dir.join("server.key"),
                });
                c.public_url = c.public_url.replace("http://127.0.0.1", "https://skill-pool.test");
                tweak(c);
            })
            .await,
        )
    }

    pub async fn start_with(db: TestDb, tweak: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut config = ServerConfig::for_data_dir(db.data_path().to_path_buf(), addr);
        config.database_url = db.url.clone();
        tweak(&mut config);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(skill_pool_server::serve(config.clone(), listener, async move {
            let _ = rx.await;
        }));
        let mut http = reqwest::Client::builder().no_proxy();
        let url = if config.tls.is_some() {
            // Over TLS the server is reached by the public URL's host name (the test CA's).
            let dir = tls_dir().expect("a TLS test server needs SKILL_POOL_TEST_TLS_DIR");
            let ca = std::fs::read(dir.join("ca.crt")).expect("ca.crt");
            http = http.add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA certificate"));
            let u = url::Url::parse(&config.public_url).expect("public URL");
            format!("https://{}:{}", u.host_str().expect("host"), addr.port())
        } else {
            format!("http://{addr}")
        };
        let http = http.build().expect("http client");
        // The listener is bound already, so a request queues until the server accepts it; if
        // the server task ends instead (bad configuration), say so rather than time out later.
        let mut up = false;
        for _ in 0..400 {
            if task.is_finished() {
                let outcome = task.await;
                panic!("the test server stopped while starting: {outcome:?}");
            }
            if let Ok(r) = http.get(format!("{url}/healthz")).send().await
                && r.status().is_success()
            {
                up = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        assert!(up, "the test server did not answer /healthz within 10 s");
        // The same registry the admin subcommands use, on the same database.
        let store = open_store(db.data_path(), &db.url).await.expect("store");
        let registry = registry_for(store, &config);
        TestServer {
            url,
            db,
            registry,
            shutdown: Some(tx),
            task: Some(task),
            http,
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.db.data_path()
    }

    /// The admin token written by the first-start bootstrap.
    pub fn bootstrap_token(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("admin-token"))
            .expect("admin-token file")
            .trim()
            .to_string()
    }

    pub async fn tenant(&self, slug: &str) -> TestTenant {
        let tenant = self
            .registry
            .create_tenant(&Principal::Operator, slug, Some(&format!("{slug} display")))
            .await
            .expect("create tenant");
        let op = Actor::operator(tenant.id);
        let admin = self
            .registry
            .create_token(&op, "test-admin", Role::Admin)
            .await
            .expect("admin token")
            .secret;
        let member = self
            .registry
            .create_token(&op, "test-member", Role::Member)
            .await
            .expect("member token")
            .secret;
        TestTenant {
            slug: slug.to_string(),
            root: format!("{}/t/{slug}", self.url),
            admin,
            member,
        }
    }

    /// GET with a token, the body parsed as JSON (`Null` when it is not JSON).
    pub async fn get_json(&self, url: &str, token: &str) -> (reqwest::StatusCode, serde_json::Value) {
        let res = self.http.get(url).bearer_auth(token).send().await.expect("request");
        let status = res.status();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// A second server on the same database and data folder (another process, or this one
    /// restarted: nothing cached); answers its URL, a stop signal and its task.
    pub async fn second_server(
        &self,
    ) -> (
        String,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    ) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = ServerConfig::for_data_dir(self.data_dir().to_path_buf(), addr);
        config.database_url = self.db.url.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(skill_pool_server::serve(config, listener, async move {
            let _ = rx.await;
        }));
        let url = format!("http://{addr}");
        for _ in 0..400 {
            if self
                .http
                .get(format!("{url}/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        (url, tx, task)
    }

    /// A counter without labels from `/metrics` (`None` when absent).
    pub async fn counter(&self, name: &str) -> Option<u64> {
        let text = self
            .http
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// PATCH a JSON value with a token; answers the status and JSON body.
    pub async fn patch_json(&self, url: &str, token: &str, body: &serde_json::Value) -> (reqwest::StatusCode, serde_json::Value) {
        let res = self.http.patch(url).bearer_auth(token).json(body).send().await.expect("request");
        let status = res.status();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// POST a JSON value with a token; answers the status and JSON body.
    pub async fn post_json(&self, url: &str, token: &str, body: &serde_json::Value) -> (reqwest::StatusCode, serde_json::Value) {
        self.post_bytes(url, token, "application/json", body.to_string().into_bytes()).await
    }

    /// POST a body of the given content type with a token; answers the status and JSON body.
    pub async fn post_bytes(&self, url: &str, token: &str, content_type: &str, body: Vec<u8>) -> (reqwest::StatusCode, serde_json::Value) {
        let res = self
            .http
            .post(url)
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        let status = res.status();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn stop(mut self) {
        self.shut_down().await;
    }

    /// Stops the server and waits for it to end, keeping the database (and `registry`) for
    /// reads of what the server wrote as it stopped.
    pub async fn shut_down(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server ran cleanly");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A binary of this workspace (built by `cargo test --workspace` / nextest before tests run).
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not built: run the tests with `cargo test --workspace` (or scripts/test.sh)",
        path.display()
    );
    path
}

/// Runs the `skill-pool` CLI against a tenant, with its config in a temporary folder.
pub fn cli(tenant: &TestTenant, token: &str, args: &[&str]) -> std::process::Output {
    let config_home = tempfile::tempdir().expect("config dir");
    std::process::Command::new(workspace_bin("skill-pool"))
        .args(args)
        .env("SKILL_POOL_URL", &tenant.root)
        .env("SKILL_POOL_TOKEN", token)
        .env("XDG_CONFIG_HOME", config_home.path())
        .env("HOME", config_home.path())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run skill-pool")
}

/// A tar.gz of `(path, mode, bytes)` entries, as the CLI would upload.
pub fn tar_gz(entries: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (path, mode, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(*mode);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_path(path).expect("path");
        header.set_cksum();
        builder.append(&header, *data).expect("append");
    }
    builder.into_inner().expect("tar").finish().expect("gzip")
}

pub fn skill_md(name: &str, description: &str, body: &str) -> String {
    format!("---\nname: {name}\ndescription: {description}\n---\n{body}\n")
}

/// Counts the files under a directory (the blob store), to check that refused input wrote nothing.
pub fn count_files(dir: &Path) -> usize {
    fn walk(dir: &Path, n: &mut usize) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() { walk(&p, n) } else { *n += 1 }
            }
        }
    }
    let mut n = 0;
    walk(dir, &mut n);
    n
}

/// Every file below `dir` but `.git` and Claude Code's own markers: path → (executable, bytes).
pub fn tree(dir: &Path) -> std::collections::BTreeMap<String, (bool, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, (bool, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.file_name().is_some_and(|n| n == ".git" || n == ".in_use" || n == ".orphaned_at") {
                continue;
            }
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                use std::os::unix::fs::PermissionsExt;
                let exec = std::fs::metadata(&p).unwrap().permissions().mode() & 0o111 != 0;
                out.insert(
                    p.strip_prefix(root).unwrap().display().to_string(),
                    (exec, std::fs::read(&p).unwrap()),
                );
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Incompressible bytes (xorshift), so that a body costs its size on disk, in packs and on the wire.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Writes `data` to `root/path` (folders made), executable or not: a plugin folder to publish.
pub fn write_file(root: &Path, path: &str, data: &[u8], executable: bool) {
    use std::os::unix::fs::PermissionsExt;
    let p = root.join(path);
    std::fs::create_dir_all(p.parent().expect("a parent folder")).expect("create folders");
    std::fs::write(&p, data).expect("write file");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(if executable { 0o755 } else { 0o644 })).expect("chmod");
}
