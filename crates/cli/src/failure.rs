//! How a command fails: the [`Failure`] type (exit code and the message printed after `error:`),
//! its conversions from [`anyhow::Error`] and [`ClientError`] (with a hint for the server's
//! common refusals), [`usage`] for exit code 2, and the [`Outcome`] every handler returns.

use skill_pool_client::ClientError;
use skill_pool_core::ErrorCode;

/// A failure with its exit code.
pub struct Failure {
    /// 1 failed, 2 usage error.
    pub code: u8,
    pub message: String,
}

impl Failure {
    /// A failure with exit code 1.
    pub fn failed(message: impl Into<String>) -> Self {
        Failure {
            code: 1,
            message: message.into(),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::failed(format!("{e:#}"))
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        let hint = match e.code() {
            Some(ErrorCode::Unauthorized) => Some("check the token, or run `skill-pool login`"),
            Some(ErrorCode::Forbidden) => Some("this needs a token with the admin role"),
            Some(ErrorCode::RateLimited | ErrorCode::Unavailable) => Some("wait a moment and run the command again"),
            Some(ErrorCode::InsufficientStorage) => Some("the server's disk is full: its operator must free space, then publish again"),
            Some(ErrorCode::VersionConflict) => Some("publish under a higher version (`--version`, or `version` in plugin.json)"),
            _ => None,
        };
        let message = match hint {
            Some(hint) => format!("{e}\nhint: {hint}"),
            None => e.to_string(),
        };
        Failure::failed(message)
    }
}

/// A usage error: exit code 2.
pub fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: message.into(),
    }
}

/// What every command handler returns.
pub type Outcome = Result<(), Failure>;
