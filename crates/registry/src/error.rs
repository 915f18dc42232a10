//! The registry's errors: variants callers branch on; the server maps each to a status and code.

use skill_pool_core::ErrorCode;
use skill_pool_core::archive::ArchiveError;
use skill_pool_store::StoreError;

/// The boxed cause of a refusal (a core error, a semver error…).
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Input that was refused: a message that says what to do, the field (or file) it concerns
/// when there is one — so a form can show it beside the field — and the error underneath.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    /// The request field or uploaded file at fault: `version`, `source`, `contents`,
    /// `homepage`, `agents/review.md`…
    pub field: Option<String>,
    pub message: String,
    #[source]
    pub source: Option<Cause>,
}

impl Invalid {
    pub fn new(message: impl Into<String>) -> Invalid {
        Invalid {
            field: None,
            message: message.into(),
            source: None,
        }
    }
}

/// Why the storage refused a write (see [`RegistryError::storage_fault`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageFault {
    /// No space left, or a quota exceeded: `insufficient_storage` (507).
    Full,
    /// A read-only file system, or no permission to write: `unavailable` (503).
    ReadOnly,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// The request itself is malformed (bad query, bad name).
    #[error(transparent)]
    BadRequest(Invalid),
    #[error(transparent)]
    InvalidVersion(Invalid),
    #[error(transparent)]
    InvalidArchive(ArchiveError),
    /// `plugin.json` that Claude Code would refuse.
    #[error(transparent)]
    InvalidManifest(Invalid),
    /// A skill, agent or command that breaks the rules (frontmatter, name).
    #[error(transparent)]
    InvalidPiece(Invalid),
    /// A plugin that breaks the rules (contents, blobs, layout, name mismatch).
    #[error(transparent)]
    InvalidPlugin(Invalid),
    /// Changed content under an existing version; `suggestion` is a version that would do.
    #[error("{message}")]
    VersionConflict { message: String, suggestion: Option<String> },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    /// The change would make the tenant's catalogue too large.
    #[error("{0}")]
    CatalogueTooLarge(String),
    /// The change would take the tenant over a quota.
    #[error("{0}")]
    QuotaExceeded(String),
    /// Too many attempts (failed sign-ins): wait and try again.
    #[error("{0}")]
    RateLimited(String),
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
    pub fn bad_request(message: impl Into<String>) -> RegistryError {
        RegistryError::BadRequest(Invalid::new(message))
    }
    pub fn invalid_version(message: impl Into<String>) -> RegistryError {
        RegistryError::InvalidVersion(Invalid::new(message))
    }
    pub fn invalid_manifest(message: impl Into<String>) -> RegistryError {
        RegistryError::InvalidManifest(Invalid::new(message))
    }
    pub fn invalid_piece(message: impl Into<String>) -> RegistryError {
        RegistryError::InvalidPiece(Invalid::new(message))
    }
    pub fn invalid_plugin(message: impl Into<String>) -> RegistryError {
        RegistryError::InvalidPlugin(Invalid::new(message))
    }

    fn invalid_mut(&mut self) -> Option<&mut Invalid> {
        match self {
            RegistryError::BadRequest(i)
            | RegistryError::InvalidVersion(i)
            | RegistryError::InvalidManifest(i)
            | RegistryError::InvalidPiece(i)
            | RegistryError::InvalidPlugin(i) => Some(i),
            _ => None,
        }
    }

    /// Names the field (or file) a refusal concerns.
    pub fn with_field(mut self, field: impl Into<String>) -> RegistryError {
        if let Some(i) = self.invalid_mut() {
            i.field = Some(field.into());
        }
        self
    }

    /// Keeps the error underneath a refusal.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> RegistryError {
        if let Some(i) = self.invalid_mut() {
            i.source = Some(Box::new(source));
        }
        self
    }

    /// The field (or file) a refusal concerns, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            RegistryError::BadRequest(i)
            | RegistryError::InvalidVersion(i)
            | RegistryError::InvalidManifest(i)
            | RegistryError::InvalidPiece(i)
            | RegistryError::InvalidPlugin(i) => i.field.as_deref(),
            // The uploaded file at fault (a name, a link, a traversal…).
            RegistryError::InvalidArchive(e) => e.path(),
            _ => None,
        }
    }

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
            E::VersionConflict { .. } => ErrorCode::VersionConflict,
            E::Conflict(_) => ErrorCode::Conflict,
            E::TooLarge(_) => ErrorCode::PayloadTooLarge,
            E::CatalogueTooLarge(_) => ErrorCode::CatalogueTooLarge,
            E::QuotaExceeded(_) => ErrorCode::QuotaExceeded,
            E::RateLimited(_) => ErrorCode::RateLimited,
            // A unique constraint that still refused the write after the retries: a conflict
            // the caller can act on, not a busy database.
            E::Store(StoreError::Conflict(_)) => ErrorCode::Conflict,
            E::Store(StoreError::Busy(_)) => ErrorCode::Unavailable,
            _ => match self.storage_fault() {
                Some(StorageFault::Full) => ErrorCode::InsufficientStorage,
                Some(StorageFault::ReadOnly) => ErrorCode::Unavailable,
                None => ErrorCode::Internal,
            },
        }
    }

    /// The data directory (or the database) refused a write: full, or read-only. Such a publish
    /// is refused before its transaction commits, so nothing points at what was not written.
    pub fn storage_fault(&self) -> Option<StorageFault> {
        use std::io::ErrorKind as K;
        let kind = match self {
            RegistryError::Io { source, .. } => skill_pool_store::storage_fault_kind(source.kind()),
            RegistryError::Store(e) => e.storage_fault(),
            RegistryError::Git(e) => e.storage_fault(),
            _ => None,
        }?;
        Some(match kind {
            K::StorageFull | K::QuotaExceeded => StorageFault::Full,
            _ => StorageFault::ReadOnly,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        // A unique constraint that still refused the write after the retries is a conflict the
        // caller can act on (409), a busy database is 503, anything else from the store is 500.
        assert_eq!(
            RegistryError::Store(StoreError::Conflict("unique".into())).code(),
            ErrorCode::Conflict
        );
        assert_eq!(
            RegistryError::Store(StoreError::Conflict("unique".into())).code().http_status(),
            409
        );
        assert_eq!(
            RegistryError::Store(StoreError::Busy("locked".into())).code(),
            ErrorCode::Unavailable
        );
        assert_eq!(RegistryError::Store(StoreError::Corrupt("x".into())).code(), ErrorCode::Internal);
        let e = RegistryError::invalid_plugin("`homepage` must be a URL")
            .with_field("homepage")
            .with_source(std::io::Error::other("cause"));
        assert_eq!((e.code(), e.field()), (ErrorCode::InvalidPlugin, Some("homepage")));
        assert!(std::error::Error::source(&e).is_some(), "the cause is kept");
        assert_eq!(e.to_string(), "`homepage` must be a URL");
        // A full or read-only data dir is 507 / 503, whichever layer noticed it.
        let io = |kind: std::io::ErrorKind| RegistryError::Io {
            context: "writing a file body".into(),
            source: std::io::Error::from(kind),
        };
        assert_eq!(io(std::io::ErrorKind::StorageFull).code().http_status(), 507);
        assert_eq!(io(std::io::ErrorKind::QuotaExceeded).code(), ErrorCode::InsufficientStorage);
        assert_eq!(io(std::io::ErrorKind::ReadOnlyFilesystem).code(), ErrorCode::Unavailable);
        assert_eq!(io(std::io::ErrorKind::NotFound).code(), ErrorCode::Internal);
        let git = |stderr: &str| {
            RegistryError::Git(skill_pool_git::GitError::Failed {
                command: "repack".into(),
                status: "exit status: 128".into(),
                stderr: stderr.into(),
            })
        };
        assert_eq!(
            git("fatal: write error: No space left on device").code(),
            ErrorCode::InsufficientStorage
        );
        assert_eq!(
            git("error: unable to create temporary file: Read-only file system").code(),
            ErrorCode::Unavailable
        );
        assert_eq!(
            git("fatal: sha1 file '/d/objects/pack/tmp_pack_x' write error. Out of diskspace").code(),
            ErrorCode::InsufficientStorage
        );
        assert_eq!(git("fatal: bad object").code(), ErrorCode::Internal);
        // Only refusals carry a field.
        assert_eq!(RegistryError::NotFound("x".into()).with_field("y").field(), None);
    }
}
