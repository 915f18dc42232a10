//! Serving smart HTTP: `git upload-pack --stateless-rpc`, protocol v0 and v2, with filters and
//! wants of any reachable object allowed (what Claude Code's pinned-sha and partial clones need).

use std::path::Path;
use std::pin::Pin;
use std::process::Stdio;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use tokio::io::AsyncWriteExt;
use tokio::process::{ChildStdout, Command};
use tokio::sync::oneshot;
use tokio_util::io::ReaderStream;

use crate::GitError;
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

fn upload_pack_command(repo: &Path, protocol: Protocol, advertise: bool) -> Command {
    let repo = repo.to_string_lossy();
    let mut args = vec![
        "-c",
        "uploadpack.allowFilter=true",
        "-c",
        "uploadpack.allowAnySHA1InWant=true",
        "-c",
        "uploadpack.allowTipSHA1InWant=true",
        "-c",
        "uploadpack.allowReachableSHA1InWant=true",
        "upload-pack",
        "--strict",
        "--stateless-rpc",
    ];
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

/// Answers one `git-upload-pack` POST (`request` already gunzipped). The output is streamed;
/// dropping the stream before its end (the client went away) kills git.
pub async fn upload_pack(
    repo: &Path,
    protocol: Protocol,
    request: Bytes,
) -> Result<impl Stream<Item = std::io::Result<Bytes>> + Send + 'static, GitError> {
    let mut cmd = upload_pack_command(repo, protocol, false);
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| GitError::Spawn {
        command: "upload-pack".into(),
        source,
    })?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take();
    tokio::spawn(async move {
        // git may stop reading early (e.g. a bad request); its answer tells the client why.
        let _ = stdin.write_all(&request).await;
        let _ = stdin.shutdown().await;
    });
    let (cancel, cancelled) = oneshot::channel::<()>();
    let repo_name = repo.display().to_string();
    tokio::spawn(async move {
        let stderr_text = async {
            let mut text = Vec::new();
            if let Some(mut e) = stderr {
                let _ = tokio::io::AsyncReadExt::read_to_end(&mut e, &mut text).await;
            }
            text
        };
        tokio::select! {
            (status, text) = async { let text = stderr_text.await; (child.wait().await, text) } => {
                match status {
                    Ok(s) if s.success() => {}
                    Ok(s) => tracing::warn!(repo = %repo_name, status = %s, stderr = %String::from_utf8_lossy(&text).trim(), "upload-pack failed"),
                    Err(e) => tracing::warn!(repo = %repo_name, error = %e, "waiting for upload-pack"),
                }
            }
            Ok(()) = cancelled => {
                let _ = child.kill().await;
                tracing::debug!(repo = %repo_name, "client went away: upload-pack stopped");
            }
        }
    });
    Ok(PackStream {
        inner: ReaderStream::with_capacity(stdout, 64 * 1024),
        cancel: Some(cancel),
    })
}

/// upload-pack's stdout; tells the reaper task to kill git if dropped before the end.
struct PackStream {
    inner: ReaderStream<ChildStdout>,
    cancel: Option<oneshot::Sender<()>>,
}

impl Stream for PackStream {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let poll = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(None) = poll {
            // Finished: drop the sender without sending, so git is left to exit by itself.
            self.cancel = None;
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
