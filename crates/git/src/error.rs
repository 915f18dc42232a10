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
