//! One classification of errors, rendered at the edge as `{"error","message","request_id"}`.
//! Handlers return [`ApiError`]; its response carries the error in an extension and the
//! [`render_errors`] middleware writes the body with the request id. Axum's own 404/405
//! come out in the same shape.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use skill_pool_core::api::ErrorBody;
use skill_pool_registry::RegistryError;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        use RegistryError as E;
        let (status, code) = match &e {
            E::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            E::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            E::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            E::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            E::InvalidVersion(_) => (StatusCode::BAD_REQUEST, "invalid_version"),
            E::InvalidArchive(_) => (StatusCode::BAD_REQUEST, "invalid_archive"),
            E::InvalidManifest(_) => (StatusCode::BAD_REQUEST, "invalid_manifest"),
            E::InvalidPiece(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_piece"),
            E::InvalidPlugin(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_plugin"),
            E::VersionConflict(_) => (StatusCode::CONFLICT, "version_conflict"),
            E::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            E::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            E::Store(se) if se.is_retryable() => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            E::Store(_) | E::Git(_) | E::Io { .. } | E::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        if status.is_server_error() {
            // Logged once here (the request span carries the request id); never echoed.
            tracing::error!(error = %e, "request failed");
            let message = if status == StatusCode::SERVICE_UNAVAILABLE {
                "the database is busy: try again in a moment"
            } else {
                "internal error: the server log has the details under this request id"
            };
            return ApiError::new(status, code, message);
        }
        ApiError::new(status, code, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = self.status.into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"skill-pool\""));
        }
        if let Some(secs) = self.retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res.extensions_mut().insert(self);
        res
    }
}

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Writes the JSON error body (with the request id) for every error response.
pub async fn render_errors(req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut res = next.run(req).await;
    let error = match res.extensions_mut().remove::<ApiError>() {
        Some(e) => e,
        None if res.status() == StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this method is not allowed on this path",
        ),
        None if res.status() == StatusCode::NOT_FOUND && !res.headers().contains_key(header::CONTENT_TYPE) => {
            ApiError::not_found("no such route: see /v1/openapi.json")
        }
        None => return res,
    };
    let body = ErrorBody {
        error: error.code.to_string(),
        message: error.message,
        request_id,
    };
    let (mut parts, _) = res.into_parts();
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_ENCODING);
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    Response::from_parts(parts, axum::body::Body::from(bytes))
}
