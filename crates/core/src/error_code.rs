//! The error codes of every skill-pool answer: one enum that the server renders (JSON for
//! `/v1`, an HTML page for browsers, plain text for git) and that `skill-pool-client` parses,
//! so no code is a string literal at a call site. `docs/API-DESIGN.md` lists each one.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A stable, machine-readable error code and the HTTP status that goes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// 400: malformed JSON, query or body.
    BadRequest,
    /// 400: an upload archive that is unsafe or unreadable (traversal, links out, devices…).
    InvalidArchive,
    /// 400: `plugin.json` that Claude Code would refuse.
    InvalidManifest,
    /// 400: not a semver version.
    InvalidVersion,
    /// 401: no token, or an unknown or revoked one.
    Unauthorized,
    /// 403: the role does not allow the action.
    Forbidden,
    /// 403: a git client speaking the dumb HTTP protocol.
    SmartHttpOnly,
    /// 403: a push to a served repository.
    ReadOnly,
    /// 404: unknown tenant, route or resource (also another tenant's).
    NotFound,
    /// 405.
    MethodNotAllowed,
    /// 409: the thing exists already, or a concurrent change won.
    Conflict,
    /// 409: other content under an existing version.
    VersionConflict,
    /// 413: an upload over a limit.
    PayloadTooLarge,
    /// 413: the change would make the tenant's catalogue larger than its limit.
    CatalogueTooLarge,
    /// 403: the change would take the tenant over a quota (bytes stored, plugins, versions).
    QuotaExceeded,
    /// 415.
    UnsupportedMediaType,
    /// 422: a skill, agent or command that breaks the rules.
    InvalidPiece,
    /// 422: a plugin that breaks the rules.
    InvalidPlugin,
    /// 429: with `Retry-After`.
    RateLimited,
    /// 500: details only in the server log, under the request id.
    Internal,
    /// 503: the database is busy or unreachable, or the data directory is read-only; try again.
    Unavailable,
    /// 507: the server's storage is full (disk or quota): nothing was written.
    InsufficientStorage,
    /// A code this client does not know (a newer server).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// Every code a server sends, in the order of `docs/API-DESIGN.md`.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::BadRequest,
        ErrorCode::InvalidArchive,
        ErrorCode::InvalidManifest,
        ErrorCode::InvalidVersion,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::SmartHttpOnly,
        ErrorCode::ReadOnly,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Conflict,
        ErrorCode::VersionConflict,
        ErrorCode::PayloadTooLarge,
        ErrorCode::CatalogueTooLarge,
        ErrorCode::QuotaExceeded,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::InvalidPiece,
        ErrorCode::InvalidPlugin,
        ErrorCode::RateLimited,
        ErrorCode::Internal,
        ErrorCode::Unavailable,
        ErrorCode::InsufficientStorage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::InvalidArchive => "invalid_archive",
            ErrorCode::InvalidManifest => "invalid_manifest",
            ErrorCode::InvalidVersion => "invalid_version",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::SmartHttpOnly => "smart_http_only",
            ErrorCode::ReadOnly => "read_only",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Conflict => "conflict",
            ErrorCode::VersionConflict => "version_conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::CatalogueTooLarge => "catalogue_too_large",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::InvalidPiece => "invalid_piece",
            ErrorCode::InvalidPlugin => "invalid_plugin",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Internal => "internal",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::InsufficientStorage => "insufficient_storage",
            ErrorCode::Unknown => "unknown",
        }
    }

    /// The code for a string; [`ErrorCode::Unknown`] for one this version does not know.
    pub fn parse(s: &str) -> ErrorCode {
        ErrorCode::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .unwrap_or(ErrorCode::Unknown)
    }

    /// The HTTP status a server answers with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest | ErrorCode::InvalidArchive | ErrorCode::InvalidManifest | ErrorCode::InvalidVersion => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden | ErrorCode::SmartHttpOnly | ErrorCode::ReadOnly | ErrorCode::QuotaExceeded => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Conflict | ErrorCode::VersionConflict => 409,
            ErrorCode::PayloadTooLarge | ErrorCode::CatalogueTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::InvalidPiece | ErrorCode::InvalidPlugin => 422,
            ErrorCode::RateLimited => 429,
            ErrorCode::Internal | ErrorCode::Unknown => 500,
            ErrorCode::Unavailable => 503,
            ErrorCode::InsufficientStorage => 507,
        }
    }

    /// A short title for an error page.
    pub fn title(self) -> &'static str {
        match self.http_status() {
            400 => "Bad request",
            401 => "Sign-in needed",
            403 => "Not allowed",
            404 => "Not found",
            405 => "Method not allowed",
            409 => "Conflict",
            413 => "Too large",
            415 => "Unsupported media type",
            422 => "Not accepted",
            429 => "Too many requests",
            503 => "Unavailable",
            507 => "Insufficient storage",
            _ => "Server error",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_through_serde_and_parse() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), *code);
            assert_eq!(ErrorCode::parse(code.as_str()), *code);
            assert!((400..600).contains(&code.http_status()));
        }
        assert_eq!(
            serde_json::from_str::<ErrorCode>("\"from_the_future\"").unwrap(),
            ErrorCode::Unknown
        );
        assert_eq!(ErrorCode::parse("nope"), ErrorCode::Unknown);
    }

    /// docs/API-DESIGN.md names every code.
    #[test]
    fn the_api_design_lists_every_code() {
        let doc = include_str!("../../../docs/API-DESIGN.md");
        for code in ErrorCode::ALL {
            assert!(
                doc.contains(&format!("`{}`", code.as_str())),
                "docs/API-DESIGN.md does not list `{code}`"
            );
        }
    }
}
