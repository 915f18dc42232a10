//! Fetching an upstream plugin for a mirror, hardened: `https`/`http` only, no redirects, no
//! hooks, no credential prompts, no submodules, one commit deep, bounded in time and in bytes.
//! The result is the tree at one commit (optionally a folder of it), read into memory, and the
//! class of failure when it did not work — so a mirror can say *why* its last pull failed.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::object::ObjectId;

/// How a fetch may behave.
#[derive(Debug, Clone)]
pub struct FetchLimits {
    /// The whole fetch (connect, negotiate, download) must end within this.
    pub timeout: Duration,
    /// The files of the fetched tree may add up to at most this many bytes.
    pub max_bytes: u64,
}

/// A file of the fetched tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedFile {
    /// Relative to the fetched folder, `/`-separated.
    pub path: String,
    pub executable: bool,
    pub symlink: bool,
    pub data: Vec<u8>,
}

/// The tree of one upstream commit.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The upstream commit the tree is from.
    pub commit: ObjectId,
    pub files: Vec<FetchedFile>,
    /// Submodules and other entries that were left out.
    pub skipped: Vec<String>,
}

/// Why a fetch failed, in the classes a mirror status reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchClass {
    /// Connection refused, DNS failure, an upstream 5xx.
    Network,
    /// 401 or 403: the upstream wants credentials.
    Auth,
    /// 404, or the ref or folder does not exist.
    NotFound,
    Timeout,
    /// git was killed by a signal (it printed nothing).
    Signal,
    TooLarge,
    /// The local disk (a full or unwritable data folder).
    Disk,
}

impl FetchClass {
    pub fn as_str(&self) -> &'static str {
        match self {
            FetchClass::Network => "network",
            FetchClass::Auth => "auth",
            FetchClass::NotFound => "not_found",
            FetchClass::Timeout => "timeout",
            FetchClass::Signal => "signal",
            FetchClass::TooLarge => "too_large",
            FetchClass::Disk => "disk",
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct FetchError {
    pub class: FetchClass,
    pub message: String,
}

fn fail(class: FetchClass, message: impl Into<String>) -> FetchError {
    FetchError {
        class,
        message: message.into(),
    }
}

/// The class of a failed git command, from its exit status and what it printed.
fn classify(status: &std::process::ExitStatus, stderr: &str) -> FetchClass {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if status.signal().is_some() {
            return FetchClass::Signal;
        }
        // A shell-style 128+n with nothing printed: the process was killed.
        if status.code().is_some_and(|c| c > 128) && stderr.trim().is_empty() {
            return FetchClass::Signal;
        }
    }
    let e = stderr.to_ascii_lowercase();
    if e.contains("error: 401")
        || e.contains("error: 403")
        || e.contains("authentication")
        || e.contains("could not read username")
        || e.contains("could not read password")
        || e.contains("unable to get password")
        || e.contains("terminal prompts disabled")
    {
        FetchClass::Auth
    } else if e.contains("error: 404")
        || e.contains("not found")
        || e.contains("couldn't find remote ref")
        || e.contains("does not appear to be a git repository")
    {
        FetchClass::NotFound
    } else if e.contains("no space left") || e.contains("disk quota") {
        FetchClass::Disk
    } else {
        FetchClass::Network
    }
}

/// Runs a hardened git command with a deadline; stdout on success.
async fn git(git_dir: &Path, args: &[&str], deadline: tokio::time::Instant, input: Option<Vec<u8>>) -> Result<Vec<u8>, FetchError> {
    let what = args
        .iter()
        .copied()
        .find(|a| !a.starts_with('-') && !a.contains('='))
        .map_or("git".to_string(), |a| format!("git {a}"));
    let mut cmd = crate::command::git(Some(git_dir), args);
    cmd.env("GIT_TERMINAL_PROMPT", "0")
        .env("GCM_INTERACTIVE", "never")
        .env("GIT_ASKPASS", "")
        .env("SSH_ASKPASS", "")
        .env("GIT_LFS_SKIP_SMUDGE", "1")
        .env("GIT_PROTOCOL_FROM_USER", "0");
    if input.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().map_err(|e| fail(FetchClass::Disk, format!("cannot run git: {e}")))?;
    let writer = match (input, child.stdin.take()) {
        (Some(data), Some(mut stdin)) => Some(tokio::spawn(async move {
            let _ = stdin.write_all(&data).await;
        })),
        _ => None,
    };
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let work = async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let (a, b) = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
        a.and(b).map_err(|e| fail(FetchClass::Disk, format!("{what}: {e}")))?;
        let status = child.wait().await.map_err(|e| fail(FetchClass::Disk, format!("{what}: {e}")))?;
        Ok::<_, FetchError>((status, out, err))
    };
    let (status, out, err) = match tokio::time::timeout_at(deadline, work).await {
        Ok(r) => r?,
        // Dropping the child kills it (kill_on_drop).
        Err(_) => return Err(fail(FetchClass::Timeout, "the upstream did not answer in time")),
    };
    if let Some(w) = writer {
        let _ = w.await;
    }
    if !status.success() {
        let text = String::from_utf8_lossy(&err).trim().to_string();
        let class = classify(&status, &text);
        let message = if text.is_empty() {
            format!("{what} ended with {status} and printed nothing (killed by a signal?)")
        } else {
            let tail: String = text
                .lines()
                .rev()
                .take(3)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join(" / ");
            format!("{what}: {tail}")
        };
        return Err(fail(class, message));
    }
    Ok(out)
}

/// Fetches `git_ref` (the upstream's default branch when `None`) of `url` one commit deep into
/// a scratch repository under `scratch`, and reads the tree (or the folder `subdir` of it).
/// The caller checks the URL against its allow-list first; this refuses anything but
/// `https://` and `http://`, and follows no redirect.
pub async fn fetch_tree(
    url: &str,
    git_ref: Option<&str>,
    subdir: Option<&str>,
    scratch: &Path,
    limits: &FetchLimits,
) -> Result<Fetched, FetchError> {
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(fail(
            FetchClass::NotFound,
            format!("`{url}`: mirrors fetch over https:// or http:// only"),
        ));
    }
    let deadline = tokio::time::Instant::now() + limits.timeout;
    std::fs::create_dir_all(scratch).map_err(|e| fail(FetchClass::Disk, format!("{}: {e}", scratch.display())))?;
    let dir = scratch.join(format!("fetch-{}-{}", std::process::id(), rand_suffix()));
    let _cleanup = RemoveOnDrop(dir.clone());
    git(&dir, &["init", "--bare", "--quiet", dir.to_str().unwrap_or(".")], deadline, None).await?;
    let refspec = git_ref.unwrap_or("HEAD");
    let fetch_args = [
        "-c",
        "protocol.allow=never",
        "-c",
        "protocol.https.allow=always",
        "-c",
        "protocol.http.allow=always",
        "-c",
        "http.followRedirects=false",
        "-c",
        "fetch.recurseSubmodules=false",
        "-c",
        "submodule.recurse=false",
        "-c",
        "credential.helper=",
        "-c",
        "credential.interactive=false",
        "fetch",
        "--depth",
        "1",
        "--no-tags",
        "--quiet",
        "--",
        url,
        refspec,
    ];
    git(&dir, &fetch_args, deadline, None).await?;
    let commit_hex = git(&dir, &["rev-parse", "--verify", "FETCH_HEAD^{commit}"], deadline, None).await?;
    let commit: ObjectId = String::from_utf8_lossy(&commit_hex)
        .trim()
        .parse()
        .map_err(|_| fail(FetchClass::NotFound, "the upstream sent no commit"))?;
    let treeish = match subdir.map(|s| s.trim_matches('/')).filter(|s| !s.is_empty()) {
        Some(sub) => format!("{}:{sub}", commit.to_hex()),
        None => commit.to_hex(),
    };
    let listing = match git(&dir, &["ls-tree", "-r", "-l", "-z", &treeish], deadline, None).await {
        Ok(l) => l,
        Err(e) if subdir.is_some() => {
            return Err(fail(
                FetchClass::NotFound,
                format!("the folder `{}` is not in the upstream: {e}", subdir.unwrap_or("")),
            ));
        }
        Err(e) => return Err(e),
    };
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    let mut total: u64 = 0;
    for record in listing.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let text = String::from_utf8_lossy(record);
        let Some((meta, path)) = text.split_once('\t') else { continue };
        let parts: Vec<&str> = meta.split_whitespace().collect();
        if parts.len() < 4 {
            continue;
        }
        let (mode, kind, oid, size) = (parts[0], parts[1], parts[2], parts[3]);
        if kind != "blob" {
            skipped.push(format!("{path} ({kind}: submodules are not fetched)"));
            continue;
        }
        total += size.parse::<u64>().unwrap_or(0);
        if total > limits.max_bytes {
            return Err(fail(
                FetchClass::TooLarge,
                format!("the upstream tree is larger than {} bytes", limits.max_bytes),
            ));
        }
        entries.push((path.to_string(), mode.to_string(), oid.to_string()));
    }
    let input: Vec<u8> = entries.iter().flat_map(|(_, _, oid)| format!("{oid}\n").into_bytes()).collect();
    let batch = git(&dir, &["cat-file", "--batch"], deadline, Some(input)).await?;
    let mut files = Vec::with_capacity(entries.len());
    let mut rest = &batch[..];
    for (path, mode, _) in entries {
        let nl = rest
            .iter()
            .position(|b| *b == b'\n')
            .ok_or_else(|| fail(FetchClass::Network, "short read from git cat-file"))?;
        let header = String::from_utf8_lossy(&rest[..nl]).to_string();
        let size: usize = header
            .rsplit(' ')
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| fail(FetchClass::Network, format!("git cat-file: `{header}`")))?;
        let body_start = nl + 1;
        if rest.len() < body_start + size + 1 {
            return Err(fail(FetchClass::Network, "short read from git cat-file"));
        }
        let data = rest[body_start..body_start + size].to_vec();
        rest = &rest[body_start + size + 1..];
        files.push(FetchedFile {
            path,
            executable: mode == "100755",
            symlink: mode == "120000",
            data,
        });
    }
    Ok(Fetched { commit, files, skipped })
}

fn rand_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!("{nanos:08x}{}", COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_classified() {
        use std::os::unix::process::ExitStatusExt;
        let ok_status = std::process::ExitStatus::from_raw(1 << 8); // exited with 1
        assert_eq!(classify(&std::process::ExitStatus::from_raw(9), ""), FetchClass::Signal);
        assert_eq!(classify(&std::process::ExitStatus::from_raw(137 << 8), ""), FetchClass::Signal);
        assert_eq!(
            classify(&ok_status, "fatal: unable to access 'x': The requested URL returned error: 401"),
            FetchClass::Auth
        );
        assert_eq!(
            classify(&ok_status, "fatal: unable to access 'x': The requested URL returned error: 404"),
            FetchClass::NotFound
        );
        assert_eq!(classify(&ok_status, "fatal: couldn't find remote ref nope"), FetchClass::NotFound);
        assert_eq!(
            classify(&ok_status, "fatal: unable to access 'x': The requested URL returned error: 500"),
            FetchClass::Network
        );
        assert_eq!(
            classify(&ok_status, "fatal: unable to access 'x': Failed to connect to 127.0.0.1"),
            FetchClass::Network
        );
        assert_eq!(classify(&ok_status, "error: No space left on device"), FetchClass::Disk);
        assert_eq!(classify(&ok_status, "fatal: unable to get password from user"), FetchClass::Auth);
    }
}
