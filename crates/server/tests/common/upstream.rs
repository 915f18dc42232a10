//! A git upstream for mirror tests: bare repositories served over loopback by the real
//! `git http-backend` (as CGI behind a small HTTP server), with faults that can be switched on
//! — an HTTP status, or a hang — and a count of the requests that reached it.

#![allow(dead_code)]
#![allow(clippy::disallowed_methods)] // runs the real git, as an upstream host would

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Answer every request with this status.
    Status(u16),
    /// Accept the request and never answer.
    Hang,
}

#[derive(Clone)]
struct Shared {
    root: PathBuf,
    fault: Arc<Mutex<Fault>>,
    requests: Arc<AtomicUsize>,
    /// `GET …/info/refs`: one per fetch.
    fetches: Arc<AtomicUsize>,
}

pub struct Upstream {
    pub addr: SocketAddr,
    pub root: tempfile::TempDir,
    fault: Arc<Mutex<Fault>>,
    requests: Arc<AtomicUsize>,
    fetches: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        let root = tempfile::tempdir().unwrap();
        let shared = Shared {
            root: root.path().to_path_buf(),
            fault: Arc::new(Mutex::new(Fault::None)),
            requests: Arc::new(AtomicUsize::new(0)),
            fetches: Arc::new(AtomicUsize::new(0)),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(cgi).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Upstream {
            addr,
            root,
            fault: shared.fault,
            requests: shared.requests,
            fetches: shared.fetches,
            task,
        }
    }

    /// `http://127.0.0.1:<port>/<name>.git`
    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}.git", self.addr)
    }

    pub fn set_fault(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Fetches that reached the upstream (their first request, `info/refs`).
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// A new bare repository `<name>.git` and a work tree to commit into.
    pub fn create(&self, name: &str) -> PathBuf {
        let bare = self.root.path().join(format!("{name}.git"));
        git(&["init", "--bare", "-q", "-b", "main", bare.to_str().unwrap()], None);
        let work = self.root.path().join(format!("{name}-work"));
        git(&["init", "-q", "-b", "main", work.to_str().unwrap()], None);
        git(&["remote", "add", "origin", bare.to_str().unwrap()], Some(&work));
        work
    }

    /// Commits everything in `work` and pushes it (`force` rewrites the upstream history).
    pub fn commit_and_push(&self, work: &Path, message: &str, force: bool) {
        git(&["add", "-A"], Some(work));
        git(&["commit", "-q", "--allow-empty", "-m", message], Some(work));
        let mut args = vec!["push", "-q", "origin", "main"];
        if force {
            args.push("--force");
        }
        git(&args, Some(work));
    }

    /// Deletes the repository (an upstream that disappeared).
    pub fn delete(&self, name: &str) {
        std::fs::remove_dir_all(self.root.path().join(format!("{name}.git"))).unwrap();
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn git(args: &[&str], cwd: Option<&Path>) -> String {
    let mut cmd = Command::new("git");
    cmd.args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Up Stream")
        .env("GIT_AUTHOR_EMAIL", "up@example.com")
        .env("GIT_COMMITTER_NAME", "Up Stream")
        .env("GIT_COMMITTER_EMAIL", "up@example.com");
    if let Some(c) = cwd {
        cmd.current_dir(c);
    }
    let out = cmd.output().expect("git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `git http-backend` as CGI for one request.
async fn cgi(State(s): State<Shared>, req: Request) -> Response {
    s.requests.fetch_add(1, Ordering::SeqCst);
    if req.uri().path().ends_with("/info/refs") {
        s.fetches.fetch_add(1, Ordering::SeqCst);
    }
    let fault = *s.fault.lock().unwrap();
    match fault {
        Fault::Status(code) => return StatusCode::from_u16(code).unwrap().into_response(),
        Fault::Hang => {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            return StatusCode::GATEWAY_TIMEOUT.into_response();
        }
        Fault::None => {}
    }
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 64 << 20).await.unwrap_or_default();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", &s.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("PATH_INFO", parts.uri.path())
        .env("QUERY_STRING", parts.uri.query().unwrap_or(""))
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("git http-backend");
    let mut stdin = child.stdin.take().unwrap();
    let writer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let _ = stdin.write_all(&body).await;
    });
    let out = child.wait_with_output().await.expect("git http-backend output");
    let _ = writer.await;
    let raw = out.stdout;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let Some((end, sep)) = split else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    let mut res = Response::new(Body::from(raw[end + sep..].to_vec()));
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            if let Some(code) = value.split_whitespace().next().and_then(|c| c.parse::<u16>().ok()) {
                *res.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
            }
        } else if let (Ok(n), Ok(v)) = (
            axum::http::HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value),
        ) {
            res.headers_mut().insert(n, v);
        }
    }
    res
}
