//! The registry's errors: variants callers branch on; the server maps each to a status and code.

use skill_pool_core::ErrorCode;
use skill_pool_core::archive::ArchiveError;
use skill_pool_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// The request itself is malformed (bad query, bad version string).
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    InvalidVersion(String),
    #[error(transparent)]
    InvalidArchive(ArchiveError),
    #[error("{0}")]
    InvalidManifest(String),
    /// A skill, agent or command that breaks the rules (frontmatter, name).
    #[error("{0}")]
    InvalidPiece(String),
    /// A plugin that breaks the rules (contents, blobs, layout, name mismatch).
    #[error("{0}")]
    InvalidPlugin(String),
    /// Changed content under an existing version.
    #[error("{0}")]
    VersionConflict(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Git(#[from] skill_pool_git::GitError),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("{0}")]
    Internal(String),
}

impl RegistryError {
    /// The code a client sees (and its HTTP status): one classification for every renderer.
    pub fn code(&self) -> ErrorCode {
        use RegistryError as E;
        match self {
            E::NotFound(_) => ErrorCode::NotFound,
            E::Unauthorized(_) => ErrorCode::Unauthorized,
            E::Forbidden(_) => ErrorCode::Forbidden,
            E::BadRequest(_) => ErrorCode::BadRequest,
            E::InvalidVersion(_) => ErrorCode::InvalidVersion,
            E::InvalidArchive(_) => ErrorCode::InvalidArchive,
            E::InvalidManifest(_) => ErrorCode::InvalidManifest,
            E::InvalidPiece(_) => ErrorCode::InvalidPiece,
            E::InvalidPlugin(_) => ErrorCode::InvalidPlugin,
            E::VersionConflict(_) => ErrorCode::VersionConflict,
            E::Conflict(_) => ErrorCode::Conflict,
            E::TooLarge(_) => ErrorCode::PayloadTooLarge,
            // A unique constraint that still refused the write after the retries: a conflict
            // the caller can act on, not a busy database.
            E::Store(StoreError::Conflict(_)) => ErrorCode::Conflict,
            E::Store(StoreError::Busy(_)) => ErrorCode::Unavailable,
            E::Store(_) | E::Git(_) | E::Io { .. } | E::Internal(_) => ErrorCode::Internal,
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, RegistryError::Store(e) if e.is_retryable())
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> RegistryError {
        let context = context.into();
        move |source| RegistryError::Io { context, source }
    }
}

impl From<ArchiveError> for RegistryError {
    fn from(e: ArchiveError) -> Self {
        if e.is_limit() {
            RegistryError::TooLarge(e.to_string())
        } else {
            RegistryError::InvalidArchive(e)
        }
    }
}

impl From<tokio::task::JoinError> for RegistryError {
    fn from(e: tokio::task::JoinError) -> Self {
        RegistryError::Internal(format!("background task failed: {e}"))
    }
}
