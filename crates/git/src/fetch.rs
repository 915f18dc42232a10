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
    /// Whether `commit` descends from the previous upstream commit: `Some(false)` when the
    /// upstream history was rewritten (a force-push); `None` when there was nothing to compare.
    pub descends: Option<bool>,
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
    // Its own process group: git's helpers (`git-remote-https`, `index-pack`) are stopped with it.
    cmd.process_group(0);
    let mut child = cmd.spawn().map_err(|e| fail(FetchClass::Disk, format!("cannot run git: {e}")))?;
    let group = ProcessGroup(child.id());
    let writer = match (input, child.stdin.take()) {
        (Some(data), Some(mut stdin)) => Some(tokio::spawn(async move {
            let _ = stdin.write_all(&data).await;
        })),
        _ => None,
    };
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let read_out = tokio::spawn(async move {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out).await;
        out
    });
    let read_err = tokio::spawn(async move {
        let mut err = Vec::new();
        let _ = stderr.read_to_end(&mut err).await;
        err
    });
    // The exit of git itself decides (a helper it left behind may hold the pipes open).
    let status = match tokio::time::timeout_at(deadline, child.wait()).await {
        Ok(r) => r.map_err(|e| fail(FetchClass::Disk, format!("{what}: {e}")))?,
        // `group` is killed when dropped.
        Err(_) => return Err(fail(FetchClass::Timeout, "the upstream did not answer in time")),
    };
    drop(group);
    let grace = std::time::Duration::from_secs(2);
    let out = tokio::time::timeout(grace, read_out)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let err = tokio::time::timeout(grace, read_err)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
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

/// Whether a git command succeeded (for `merge-base --is-ancestor` and `cat-file -e`).
async fn git_ok(git_dir: &Path, args: &[&str], deadline: tokio::time::Instant) -> Result<bool, FetchError> {
    match git(git_dir, args, deadline, None).await {
        Ok(_) => Ok(true),
        Err(e) if e.class == FetchClass::Timeout || e.class == FetchClass::Disk => Err(e),
        Err(_) => Ok(false),
    }
}

const FETCH_CONFIG: &[&str] = &[
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
    // The cache keeps what it fetched (the served commit must stay to compare with).
    "-c",
    "gc.auto=0",
    "-c",
    "maintenance.auto=false",
];

/// Fetches `git_ref` (the upstream's default branch when `None`) of `url` into the mirror's
/// cache repository `cache` (created when missing), and reads the tree (or the folder `subdir`
/// of it). The first fetch is one commit deep; later ones fetch the history since `previous`
/// (the upstream commit served so far) — little when the upstream only moved forward — so that
/// [`Fetched::descends`] can tell a force-push. The caller checks the URL against its
/// allow-list first; this refuses anything but `https://` and `http://`, and follows no redirect.
pub async fn fetch_tree(
    url: &str,
    git_ref: Option<&str>,
    subdir: Option<&str>,
    cache: &Path,
    previous: Option<&str>,
    pins: &[String],
    limits: &FetchLimits,
) -> Result<Fetched, FetchError> {
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(fail(
            FetchClass::NotFound,
            format!("`{url}`: mirrors fetch over https:// or http:// only"),
        ));
    }
    let deadline = tokio::time::Instant::now() + limits.timeout;
    let dir = cache.to_path_buf();
    if !dir.join("HEAD").is_file() {
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent).map_err(|e| fail(FetchClass::Disk, format!("{}: {e}", parent.display())))?;
        }
        let _ = std::fs::remove_dir_all(&dir);
        git(&dir, &["init", "--bare", "--quiet", dir.to_str().unwrap_or(".")], deadline, None).await?;
    }
    let refspec = git_ref.unwrap_or("HEAD");
    // The previous upstream commit, when the cache still has it: its time bounds the history
    // fetched now (enough to see whether the new commit descends from it).
    let previous = match previous {
        Some(p) if git_ok(&dir, &["cat-file", "-e", &format!("{p}^{{commit}}")], deadline).await? => Some(p.to_string()),
        _ => None,
    };
    let since = match &previous {
        Some(p) => {
            let out = git(&dir, &["log", "-1", "--format=%ct", p], deadline, None).await?;
            String::from_utf8_lossy(&out)
                .trim()
                .parse::<i64>()
                .ok()
                .map(|t| (t - 1).to_string())
        }
        None => None,
    };
    // Keep the previous commit reachable in the cache, whatever git does with FETCH_HEAD.
    if let Some(p) = &previous {
        git(&dir, &["update-ref", "refs/skill-pool/served", p], deadline, None).await?;
    }
    // Connect to the addresses the caller checked, not to a second DNS answer.
    let resolve: Vec<String> = pins.iter().map(|p| format!("http.curloptResolve={p}")).collect();
    let mut config: Vec<&str> = FETCH_CONFIG.to_vec();
    for r in &resolve {
        config.push("-c");
        config.push(r);
    }
    let depth_one: Vec<&str> = config
        .iter()
        .copied()
        .chain(["fetch", "--depth", "1", "--no-tags", "--quiet", "--", url, refspec])
        .collect();
    let mut descends_unknown = previous.is_none();
    match &since {
        Some(t) => {
            let shallow_since = format!("--shallow-since={t}");
            let args: Vec<&str> = config
                .iter()
                .copied()
                .chain(["fetch", &shallow_since, "--no-tags", "--quiet", "--", url, refspec])
                .collect();
            if let Err(e) = git(&dir, &args, deadline, None).await {
                // A timeout, a kill or a full disk is the answer; anything else may be the
                // server refusing the deepening (nothing newer than the previous commit: the
                // upstream went back in time): one commit deep, then compare.
                if matches!(e.class, FetchClass::Timeout | FetchClass::Signal | FetchClass::Disk) {
                    return Err(e);
                }
                tracing::debug!(error = %e, "fetch since the served commit failed; fetching one commit deep");
                git(&dir, &depth_one, deadline, None).await?;
            }
        }
        None => {
            git(&dir, &depth_one, deadline, None).await?;
            descends_unknown = true;
        }
    }
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
    let descends = match (&previous, descends_unknown) {
        (Some(p), false) if *p != commit.to_hex() => {
            Some(git_ok(&dir, &["merge-base", "--is-ancestor", p, &commit.to_hex()], deadline).await?)
        }
        (Some(_), false) => Some(true),
        _ => None,
    };
    Ok(Fetched {
        commit,
        descends,
        files,
        skipped,
    })
}

/// A process group, killed (SIGKILL) when dropped: git and every helper it started.
struct ProcessGroup(Option<u32>);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            #[allow(clippy::disallowed_methods)] // crates/git runs programs; this one stops them
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
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
