//! The one way skill-pool runs git: explicit program, cleared environment, no user or system
//! configuration, no hooks, killed when dropped, bounded in time, errors with stderr.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::GitError;

/// Non-streaming git commands are stopped after this long.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(120);

/// A git command with skill-pool's hardening applied.
pub(crate) fn git(git_dir: Option<&Path>, args: &[&str]) -> Command {
    #[allow(clippy::disallowed_methods)] // the one place: see clippy.toml
    let mut cmd = Command::new("git");
    cmd.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd.env("HOME", "/nonexistent")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_NO_REPLACE_OBJECTS", "1")
        .env("LC_ALL", "C");
    cmd.args([
        "-c",
        "core.hooksPath=/dev/null",
        "-c",
        "core.fsyncMethod=fsync",
        "-c",
        "safe.directory=*",
    ]);
    if let Some(dir) = git_dir {
        cmd.arg("--git-dir").arg(dir);
    }
    cmd.args(args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

pub(crate) fn describe(args: &[&str]) -> String {
    args.iter().take(3).copied().collect::<Vec<_>>().join(" ")
}

fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    let start = text.len().saturating_sub(2000);
    let start = (start..text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
    text[start..].to_string()
}

/// Runs a command to completion (optionally feeding `input`) and returns its stdout.
pub(crate) async fn run(mut cmd: Command, what: String, input: Option<Vec<u8>>) -> Result<Vec<u8>, GitError> {
    if input.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().map_err(|source| GitError::Spawn {
        command: what.clone(),
        source,
    })?;
    let writer = match (input, child.stdin.take()) {
        (Some(data), Some(mut stdin)) => Some(tokio::spawn(async move {
            let r = stdin.write_all(&data).await;
            drop(stdin);
            r
        })),
        _ => None,
    };
    let output = match tokio::time::timeout(TIMEOUT, child.wait_with_output()).await {
        Ok(out) => out.map_err(|source| GitError::Io {
            command: what.clone(),
            source,
        })?,
        Err(_) => {
            return Err(GitError::Timeout {
                command: what,
                secs: TIMEOUT.as_secs(),
            });
        }
    };
    if !output.status.success() {
        return Err(GitError::Failed {
            command: what,
            status: output.status.to_string(),
            stderr: tail(&output.stderr),
        });
    }
    if let Some(w) = writer {
        match w.await {
            Ok(Ok(())) => {}
            Ok(Err(source)) => return Err(GitError::Io { command: what, source }),
            Err(e) => {
                return Err(GitError::Io {
                    command: what,
                    source: std::io::Error::other(e),
                });
            }
        }
    }
    Ok(output.stdout)
}
