#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("could not run `git {command}`: {source} (is git 2.25 or newer on PATH?)")]
    Spawn { command: String, source: std::io::Error },
    #[error("`git {command}` failed ({status}): {stderr}")]
    Failed { command: String, status: String, stderr: String },
    #[error("`git {command}` took longer than {secs} s and was stopped")]
    Timeout { command: String, secs: u64 },
    #[error("i/o error talking to `git {command}`: {source}")]
    Io { command: String, source: std::io::Error },
    #[error("invalid object id `{0}`: expected 40 hex characters")]
    BadObjectId(String),
    #[error("invalid tree: {0}")]
    BadTree(String),
    #[error("{path} is not a usable bare git repository: {reason}")]
    NotARepo { path: String, reason: String },
    #[error("history version {index}: git wrote commit {actual}, expected {expected}")]
    Mismatch { index: usize, expected: String, actual: String },
    #[error("reading the body {sha256} of {path}: {source}")]
    Body {
        path: String,
        sha256: String,
        source: std::io::Error,
    },
}

impl GitError {
    /// A write the repository's storage refused, as the I/O error kind it amounts to:
    /// `StorageFull` (no space left, quota exceeded) or `ReadOnlyFilesystem`/`PermissionDenied`;
    /// read from the error itself or, for a git command that failed, from its message (git
    /// runs with `LC_ALL=C`, so it says `strerror`'s English words).
    pub fn storage_fault(&self) -> Option<std::io::ErrorKind> {
        use std::io::ErrorKind as K;
        match self {
            GitError::Io { source, .. } => match source.kind() {
                k @ (K::StorageFull | K::QuotaExceeded | K::ReadOnlyFilesystem | K::PermissionDenied) => Some(k),
                _ => None,
            },
            GitError::Failed { stderr, .. } => {
                // git says "Out of diskspace" for a pack it cannot write (repack, fetch).
                let full = ["No space left on device", "Disk quota exceeded", "Out of diskspace"];
                if full.iter().any(|m| stderr.contains(m)) {
                    Some(K::StorageFull)
                } else if stderr.contains("Read-only file system") {
                    Some(K::ReadOnlyFilesystem)
                } else if stderr.contains("Permission denied") {
                    Some(K::PermissionDenied)
                } else {
                    None
                }
            }
            _ => None,
        }
    }
}
