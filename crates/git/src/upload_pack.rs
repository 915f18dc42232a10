//! Serving smart HTTP: `git upload-pack --stateless-rpc`, protocol v0 and v2, with filters and
//! wants of any reachable object allowed (what Claude Code's pinned-sha and partial clones need).

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
use tokio::io::AsyncWriteExt;
use tokio::process::{ChildStdout, Command};
use tokio::sync::{mpsc, oneshot};
use tokio_util::io::ReaderStream;

use crate::GitError;
use crate::answers::PackCache;
use crate::command::{git, run};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    V0,
    V2,
}

pub fn content_type_advertisement() -> &'static str {
    "application/x-git-upload-pack-advertisement"
}

pub fn content_type_result() -> &'static str {
    "application/x-git-upload-pack-result"
}

/// The configuration `upload-pack` serves with (before the subcommand): filters, and wants of
/// any object (what Claude Code's pinned-sha and partial clones need).
pub const SERVE_CONFIG: [&str; 8] = [
    "-c",
    "uploadpack.allowFilter=true",
    "-c",
    "uploadpack.allowAnySHA1InWant=true",
    "-c",
    "uploadpack.allowTipSHA1InWant=true",
    "-c",
    "uploadpack.allowReachableSHA1InWant=true",
];

fn upload_pack_command(repo: &Path, protocol: Protocol, advertise: bool) -> Command {
    let repo = repo.to_string_lossy();
    let mut args = SERVE_CONFIG.to_vec();
    args.extend(["upload-pack", "--strict", "--stateless-rpc"]);
    if advertise {
        args.push("--advertise-refs");
    }
    args.push(&repo);
    let mut cmd = git(None, &args);
    if protocol == Protocol::V2 {
        cmd.env("GIT_PROTOCOL", "version=2");
    }
    cmd
}

fn pkt_line(text: &str) -> Vec<u8> {
    let mut out = format!("{:04x}", text.len() + 4).into_bytes();
    out.extend_from_slice(text.as_bytes());
    out
}

/// A request built from pkt-line texts (`"0000"` and `"0001"` stand for flush and delimiter), for tests.
#[cfg(test)]
pub(crate) fn pkt(lines: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        match *l {
            "0000" | "0001" => out.extend_from_slice(l.as_bytes()),
            text => out.extend_from_slice(&pkt_line(text)),
        }
    }
    out
}

/// The `info/refs?service=git-upload-pack` answer. Protocol v0 starts with the service line
/// and a flush; v2 answers with its capability advertisement alone (as `git http-backend`).
pub async fn advertise_refs(repo: &Path, protocol: Protocol) -> Result<Bytes, GitError> {
    let out = run(
        upload_pack_command(repo, protocol, true),
        "upload-pack --advertise-refs".into(),
        None,
    )
    .await?;
    let mut body = Vec::with_capacity(out.len() + 40);
    if protocol == Protocol::V0 {
        body.extend_from_slice(&pkt_line("# service=git-upload-pack\n"));
        body.extend_from_slice(b"0000");
    }
    body.extend_from_slice(&out);
    Ok(Bytes::from(body))
}

/// Answers a small request (`ls-refs`) whole, for the answer cache. An error (git refused the
/// request) is an `Err`: the caller runs the streamed path, which gives the client git's own answer.
pub async fn answer_small(repo: &Path, protocol: Protocol, request: Bytes) -> Result<Bytes, GitError> {
    let out = run(
        upload_pack_command(repo, protocol, false),
        "upload-pack --stateless-rpc".into(),
        Some(request.to_vec()),
    )
    .await?;
    Ok(Bytes::from(out))
}

/// Checks that `body` is a well-formed sequence of pkt-lines (what every git client sends to
/// `git-upload-pack`), so that garbage gets a `400` instead of an empty answer from git.
pub fn check_request(body: &[u8]) -> Result<(), String> {
    if body.is_empty() {
        return Err("the request body is empty".into());
    }
    let mut at = 0usize;
    let mut lines = 0usize;
    while at < body.len() {
        let head = body
            .get(at..at + 4)
            .ok_or_else(|| format!("truncated pkt-line length at byte {at}"))?;
        // Four hex digits exactly (`from_str_radix` alone would also take a sign: `+004`).
        if !head.iter().all(u8::is_ascii_hexdigit) {
            return Err(format!("bad pkt-line length `{}` at byte {at}", head.escape_ascii()));
        }
        let text = std::str::from_utf8(head).map_err(|_| format!("bad pkt-line length at byte {at}"))?;
        let len = usize::from_str_radix(text, 16).map_err(|_| format!("bad pkt-line length `{}` at byte {at}", text.escape_default()))?;
        match len {
            // flush, delimiter, response-end
            0..=2 => at += 4,
            3 => return Err(format!("invalid pkt-line length 3 at byte {at}")),
            n => {
                if at + n > body.len() {
                    return Err(format!("pkt-line at byte {at} runs past the end of the request"));
                }
                at += n;
            }
        }
        lines += 1;
    }
    if lines == 0 {
        return Err("the request holds no pkt-line".into());
    }
    Ok(())
}

/// The pkt-lines of a checked request, as text (flush, delimiter and response-end are `None`).
fn pkt_lines(body: &[u8]) -> impl Iterator<Item = Option<&[u8]>> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let len = usize::from_str_radix(std::str::from_utf8(body.get(at..at + 4)?).ok()?, 16).ok()?;
        if len < 4 {
            at += 4;
            return Some(None);
        }
        let line = body.get(at + 4..at + len)?;
        at += len;
        Some(Some(line))
    })
}

/// The object ids a request wants when it is a fetch that asks for a pack (`done` sent:
/// upload-pack answers with a packfile); `None` for `ls-refs`, a negotiation round or anything
/// else. Protocol v0 and v2.
pub fn pack_request_wants(body: &[u8]) -> Option<Vec<String>> {
    let mut wants = Vec::new();
    let mut other_command = false;
    let mut done = false;
    for line in pkt_lines(body).flatten() {
        let Ok(text) = std::str::from_utf8(line) else { continue };
        let text = text.trim_end_matches('\n');
        if let Some(command) = text.strip_prefix("command=") {
            other_command = command != "fetch";
        } else if let Some(rest) = text.strip_prefix("want ") {
            let id = rest.split(' ').next().unwrap_or_default();
            if id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                wants.push(id.to_ascii_lowercase());
            }
        } else if text == "done" {
            done = true;
        }
    }
    (!other_command && done && !wants.is_empty()).then_some(wants)
}

/// Watches the start of an upload-pack answer for the pack: v2's `packfile` section, v0's
/// `PACK` signature. Only the first bytes are looked at.
#[derive(Debug, Default)]
pub struct PackWatch {
    seen: Vec<u8>,
    found: bool,
}

impl PackWatch {
    const LOOK: usize = 64 * 1024;

    /// Feeds the next chunk; true once (the first time a pack starts).
    pub fn feed(&mut self, protocol: Protocol, chunk: &[u8]) -> bool {
        if self.found || self.seen.len() >= Self::LOOK {
            return false;
        }
        let take = chunk.len().min(Self::LOOK - self.seen.len());
        self.seen.extend_from_slice(&chunk[..take]);
        let needle: &[u8] = match protocol {
            Protocol::V2 => b"000dpackfile\n",
            Protocol::V0 => b"PACK",
        };
        self.found = self.seen.windows(needle.len()).any(|w| w == needle);
        self.found
    }
}

/// Bounds on one streamed `upload-pack` answer.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    /// git is stopped when the client has taken no output for this long (a stalled reader).
    pub idle: Duration,
    /// git is stopped after this long in any case.
    pub total: Duration,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            idle: Duration::from_secs(60),
            total: Duration::from_secs(600),
        }
    }
}

/// Milliseconds since `epoch`, for the progress stamp the watchdog reads.
fn millis_since(epoch: Instant) -> u64 {
    epoch.elapsed().as_millis() as u64
}

/// Answers one `git-upload-pack` POST (`request` already gunzipped). The output is streamed.
/// git runs in its own process group, and the whole group (upload-pack and the pack-objects it
/// starts) is killed when the stream is dropped before its end (the client went away), when
/// the client takes no output for `limits.idle` (it stalled), or after `limits.total`.
/// With `record`, the answer is also written to the pack cache as it streams, and kept there
/// when git succeeded and the client took all of it.
pub async fn upload_pack(
    repo: &Path,
    protocol: Protocol,
    request: Bytes,
    limits: StreamLimits,
    record: Option<Record>,
) -> Result<impl Stream<Item = std::io::Result<Bytes>> + Send + 'static, GitError> {
    let mut cmd = upload_pack_command(repo, protocol, false);
    cmd.stdin(Stdio::piped());
    cmd.process_group(0);
    let mut child = cmd.spawn().map_err(|source| GitError::Spawn {
        command: "upload-pack".into(),
        source,
    })?;
    let group = child.id();
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take();
    tokio::spawn(async move {
        // git may stop reading early (e.g. a bad request); its answer tells the client why.
        let _ = stdin.write_all(&request).await;
        let _ = stdin.shutdown().await;
    });
    let (cancel, mut cancelled) = oneshot::channel::<()>();
    let epoch = Instant::now();
    let progress = Arc::new(AtomicU64::new(0));
    // True while the client waits for git (git is slow, not the client).
    let waiting = Arc::new(AtomicBool::new(false));
    let stopped = Arc::new(AtomicBool::new(false));
    let repo_name = repo.display().to_string();
    let (status_tx, status_rx) = oneshot::channel::<bool>();
    let complete = Arc::new(AtomicBool::new(false));
    let recorder = record.map(|record| record.start(status_rx, complete.clone()));
    {
        let progress = progress.clone();
        let waiting = waiting.clone();
        let stopped = stopped.clone();
        tokio::spawn(async move {
            let stderr_text = async {
                let mut text = Vec::new();
                if let Some(mut e) = stderr {
                    let _ = tokio::io::AsyncReadExt::read_to_end(&mut e, &mut text).await;
                }
                text
            };
            let done = async { (child.wait().await, stderr_text.await) };
            tokio::pin!(done);
            // Tells the pack cache's writer whether git succeeded (dropped unsent: it did not).
            let mut status_tx = Some(status_tx);
            let mut report = |status: &std::io::Result<std::process::ExitStatus>| {
                if let (Some(tx), Ok(s)) = (status_tx.take(), status)
                    && s.success()
                {
                    let _ = tx.send(true);
                }
            };
            let mut tick = tokio::time::interval(limits.idle.min(Duration::from_secs(1)).max(Duration::from_millis(50)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let reason = loop {
                tokio::select! {
                    (status, text) = &mut done => {
                        report(&status);
                        match status {
                            Ok(s) if s.success() => {}
                            Ok(s) => tracing::warn!(repo = %repo_name, status = %s, stderr = %String::from_utf8_lossy(&text).trim(), "upload-pack failed"),
                            Err(e) => tracing::warn!(repo = %repo_name, error = %e, "waiting for upload-pack"),
                        }
                        return;
                    }
                    r = &mut cancelled => {
                        if r.is_ok() {
                            break "the client went away";
                        }
                        // The stream ended normally: git exits by itself.
                        let (status, _) = (&mut done).await;
                        report(&status);
                        return;
                    }
                    _ = tick.tick() => {
                        let now = millis_since(epoch);
                        if !waiting.load(Ordering::Relaxed)
                            && now.saturating_sub(progress.load(Ordering::Relaxed)) > limits.idle.as_millis() as u64
                        {
                            break "the client took no data (stalled reader)";
                        }
                        if now > limits.total.as_millis() as u64 {
                            break "the answer took longer than allowed";
                        }
                    }
                }
            };
            stopped.store(true, Ordering::Relaxed);
            kill_group(group);
            let _ = (&mut done).await;
            tracing::info!(repo = %repo_name, reason, "upload-pack stopped");
        });
    }
    Ok(PackStream {
        inner: ReaderStream::with_capacity(stdout, 64 * 1024),
        cancel: Some(cancel),
        epoch,
        progress,
        waiting,
        stopped,
        recorder,
        complete,
    })
}

/// Where an answer is recorded for the pack cache.
pub struct Record {
    pub cache: Arc<PackCache>,
    pub path: PathBuf,
}

impl Record {
    /// Starts the writer: chunks go through the returned sender; the file is kept when the
    /// stream was complete (`complete`) and git succeeded (`status`), else removed.
    fn start(self, status: oneshot::Receiver<bool>, complete: Arc<AtomicBool>) -> mpsc::UnboundedSender<Bytes> {
        let tmp = PackCache::temp_name(&self.path);
        let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
        tokio::spawn(async move {
            let max = self.cache.max_entry();
            let mut size = 0u64;
            let mut whole = true;
            // The folder is made here, off the request's path (a first fetch of a head).
            if let Some(dir) = self.path.parent()
                && let Err(e) = tokio::fs::create_dir_all(dir).await
            {
                tracing::warn!(path = %dir.display(), error = %e, "the pack cache's folder cannot be made");
                return;
            }
            match tokio::fs::File::create(&tmp).await {
                Ok(mut file) => {
                    while let Some(chunk) = rx.recv().await {
                        size += chunk.len() as u64;
                        if size > max || file.write_all(&chunk).await.is_err() {
                            whole = false;
                            break;
                        }
                    }
                    drop(rx);
                    whole = whole && file.flush().await.is_ok();
                }
                Err(e) => {
                    tracing::warn!(path = %tmp.display(), error = %e, "the pack cache cannot be written");
                    return;
                }
            }
            let kept = whole && complete.load(Ordering::Acquire) && status.await.unwrap_or(false);
            let cache = self.cache.clone();
            let _ = tokio::task::spawn_blocking(move || {
                if kept {
                    cache.admit(&tmp, &self.path, size);
                } else {
                    let _ = std::fs::remove_file(&tmp);
                }
            })
            .await;
        });
        tx
    }
}

/// Kills the process group `pgid` (git and every helper it started).
fn kill_group(pgid: Option<u32>) {
    if let Some(pid) = pgid.and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// upload-pack's stdout; tells the reaper task to kill git if dropped before the end, and
/// stamps each chunk the client takes so a stalled reader is noticed.
struct PackStream {
    inner: ReaderStream<ChildStdout>,
    cancel: Option<oneshot::Sender<()>>,
    epoch: Instant,
    progress: Arc<AtomicU64>,
    waiting: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
    /// The pack cache's writer, while the answer is recorded.
    recorder: Option<mpsc::UnboundedSender<Bytes>>,
    /// Set when the whole answer went through (what the writer needs to keep it).
    complete: Arc<AtomicBool>,
}

impl Stream for PackStream {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Being asked for more is progress: the client took what came before.
        self.progress.store(millis_since(self.epoch), Ordering::Relaxed);
        let poll = Pin::new(&mut self.inner).poll_next(cx);
        self.waiting.store(poll.is_pending(), Ordering::Relaxed);
        match &poll {
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some(tx) = &self.recorder
                    && tx.send(chunk.clone()).is_err()
                {
                    self.recorder = None;
                }
            }
            Poll::Ready(Some(Err(_))) => self.recorder = None,
            _ => {}
        }
        if let Poll::Ready(None) = poll {
            if self.stopped.load(Ordering::Relaxed) {
                self.recorder = None;
                // git was stopped: end with an error so the connection is closed, not a
                // response that looks complete.
                return Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "upload-pack was stopped",
                ))));
            }
            // Finished: drop the sender without sending, so git is left to exit by itself.
            self.cancel = None;
            self.complete.store(true, Ordering::Release);
            self.recorder = None;
        }
        poll
    }
}

impl Drop for PackStream {
    fn drop(&mut self) {
        if let Some(cancel) = self.cancel.take() {
            let _ = cancel.send(());
        }
    }
}

#[cfg(test)]
mod request_tests {
    use super::check_request;

    #[test]
    fn pkt_lines() {
        assert!(check_request(b"0011command=fetch0001000dthin-pack0000").is_ok());
        assert!(check_request(b"0032want 0123456789012345678901234567890123456789\n00000009done\n").is_ok());
        for bad in [&b""[..], b"hello", b"0003", b"00ffshort", b"zzzz0000", b"000"] {
            assert!(check_request(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    use super::pkt;

    #[test]
    fn which_requests_ask_for_a_pack() {
        let id = "0123456789abcdef0123456789abcdef01234567";
        let want = format!("want {id}\n");
        let v2_clone = pkt(&[
            "command=fetch\n",
            "agent=git/2\n",
            "0001",
            "thin-pack\n",
            &want,
            "deepen 1\n",
            "done\n",
            "0000",
        ]);
        assert_eq!(super::pack_request_wants(&v2_clone), Some(vec![id.to_string()]));
        let v2_negotiation = pkt(&[
            "command=fetch\n",
            "0001",
            &want,
            "have 1111111111111111111111111111111111111111\n",
            "0000",
        ]);
        assert_eq!(super::pack_request_wants(&v2_negotiation), None);
        let ls_refs = pkt(&["command=ls-refs\n", "0001", "peel\n", "symrefs\n", "ref-prefix HEAD\n", "0000"]);
        assert_eq!(super::pack_request_wants(&ls_refs), None);
        let v0 = pkt(&[&format!("want {id} multi_ack side-band-64k\n"), "0000", "done\n"]);
        assert_eq!(super::pack_request_wants(&v0), Some(vec![id.to_string()]));
    }

    #[test]
    fn the_pack_is_seen_across_chunks() {
        let mut w = super::PackWatch::default();
        assert!(!w.feed(super::Protocol::V2, b"000dshallow-info\n0000000dpack"));
        assert!(w.feed(super::Protocol::V2, b"file\n0005\x01PACK"));
        assert!(!w.feed(super::Protocol::V2, b"more"), "only once");
        let mut w = super::PackWatch::default();
        assert!(!w.feed(super::Protocol::V2, b"0008NAK\n0000"));
    }
}
