//! One classification of errors ([`ApiError`]: an [`ErrorCode`] and a message), rendered at
//! the edge in the shape the client reads: JSON `{"error","message","request_id"}` for `/v1`
//! and the catalogue, an HTML page for a browser (`/marketplace`, a page asked for as HTML),
//! and plain text for git (git prints a `text/plain` body to its user as `remote: …`).
//! Handlers return [`ApiError`]; its response carries the error in an extension and the
//! [`render_errors`] (called by the edge layer, `crate::edge`) writes the body. Axum's own 404/405 come out the same way.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use skill_pool_core::ErrorCode;
use skill_pool_core::api::ErrorBody;
use skill_pool_registry::RegistryError;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// The field or file at fault, for a form to show it beside the field.
    pub field: Option<String>,
    pub retry_after: Option<u64>,
    /// The challenge of a `401` (default: `Bearer realm="skill-pool"`).
    pub www_authenticate: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            field: None,
            retry_after: None,
            www_authenticate: None,
        }
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::NotFound, message)
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::BadRequest, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Unauthorized, message)
    }
    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::PayloadTooLarge, message)
    }
    pub fn internal() -> ApiError {
        ApiError::new(
            ErrorCode::Internal,
            "internal error: the server log has the details under this request id",
        )
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        let code = e.code();
        if code.http_status() >= 500 {
            // Logged once here (the request span carries the request id); never echoed.
            tracing::error!(error = %e, "request failed");
            match e.storage_fault() {
                Some(skill_pool_registry::StorageFault::Full) => {
                    return ApiError::new(
                        code,
                        "the server's data directory is full (no space left): a publish is refused until space is freed; published versions are still served",
                    );
                }
                Some(skill_pool_registry::StorageFault::ReadOnly) => {
                    return ApiError::new(
                        code,
                        "the server's data directory cannot be written (read-only or no permission): a publish is refused until it can; try again later",
                    );
                }
                None => {}
            }
            if code == ErrorCode::Unavailable {
                return ApiError::new(code, "the database is busy: try again in a moment");
            }
            return ApiError::internal();
        }
        if let RegistryError::Store(_) = e {
            // The database's own wording (constraint names) is not for clients.
            tracing::warn!(error = %e, "write lost to a concurrent change after retries");
            return ApiError::new(code, "another request changed the same thing at the same moment: try again");
        }
        ApiError {
            field: e.field().map(str::to_string),
            ..ApiError::new(code, e.to_string())
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = self.status().into_response();
        if self.code == ErrorCode::Unauthorized {
            let challenge = self
                .www_authenticate
                .as_deref()
                .and_then(|c| HeaderValue::from_str(c).ok())
                .unwrap_or(HeaderValue::from_static("Bearer realm=\"skill-pool\""));
            res.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
        }
        if let Some(secs) = self.retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res.extensions_mut().insert(self);
        res
    }
}

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Which client reads an error, from the request it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorFormat {
    Json,
    Html,
    PlainText,
}

impl ErrorFormat {
    /// Git routes get plain text; `/v1` always JSON (whatever it accepts); a browser page
    /// (`/marketplace`, `/portal…`, or anything else asked for as HTML) an HTML page.
    pub fn for_request(path: &str, headers: &HeaderMap) -> ErrorFormat {
        let relative = crate::tenant::tenant_relative_path(path);
        if relative.starts_with("/git/") {
            return ErrorFormat::PlainText;
        }
        if relative.starts_with("/v1/") || relative == "/v1" {
            return ErrorFormat::Json;
        }
        if relative == "/marketplace" || relative.starts_with("/marketplace/") || relative.starts_with("/portal") {
            return ErrorFormat::Html;
        }
        if crate::routes::public::prefers_html(headers) {
            ErrorFormat::Html
        } else {
            ErrorFormat::Json
        }
    }
}

/// Writes the error body (with the request id) of an error response, in the format the
/// request's client reads (`format`, from the request: [`ErrorFormat::for_request`]); any other
/// response is passed through. Called by the edge layer (`crate::edge`) on every answer.
pub fn render_errors(mut res: Response, format: ErrorFormat, request_id: &str, base: &str) -> Response {
    let error = match res.extensions_mut().remove::<ApiError>() {
        Some(e) => e,
        None if res.status() == StatusCode::METHOD_NOT_ALLOWED => {
            ApiError::new(ErrorCode::MethodNotAllowed, "this method is not allowed on this path")
        }
        None if res.status() == StatusCode::NOT_FOUND && !res.headers().contains_key(header::CONTENT_TYPE) => {
            ApiError::not_found("no such route: see /v1/openapi.json")
        }
        None => return res,
    };
    let (content_type, bytes) = render(format, &error, request_id, base);
    let (mut parts, _) = res.into_parts();
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_ENCODING);
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// The body of an error in one format, and its content type. `base` is the tenant prefix
/// of the request (the HTML page links the portal's stylesheet below it).
pub fn render(format: ErrorFormat, error: &ApiError, request_id: &str, base: &str) -> (&'static str, Vec<u8>) {
    match format {
        ErrorFormat::Json => {
            let body = ErrorBody {
                error: error.code,
                message: error.message.clone(),
                request_id: request_id.to_string(),
                field: error.field.clone(),
            };
            ("application/json", serde_json::to_vec(&body).unwrap_or_default())
        }
        ErrorFormat::PlainText => (
            "text/plain; charset=utf-8",
            format!("skill-pool: {} ({}, request {request_id})\n", error.message, error.code).into_bytes(),
        ),
        ErrorFormat::Html => {
            let title = error.code.title();
            let status = error.code.http_status();
            let message = escape_html(&error.message);
            let code = error.code.as_str();
            let request_id = escape_html(request_id);
            let base = escape_html(base);
            let page = format!(
                "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
                 <title>{title} · skill-pool</title><link rel=\"stylesheet\" href=\"{base}/-/static/portal.css\"></head>\
                 <body><main id=\"main\" class=\"narrow\"><h1>{title}</h1><p class=\"message\">{message}</p>\
                 <p class=\"muted\">{status} <code>{code}</code> · request <code>{request_id}</code></p>\
                 <p><a href=\"{base}/marketplace\">Marketplace</a> · <a href=\"{base}/portal\">Portal</a></p></main></body></html>\n"
            );
            ("text/html; charset=utf-8", page.into_bytes())
        }
    }
}

pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn the_format_follows_the_client() {
        let html = accept("text/html,application/xhtml+xml,*/*;q=0.8");
        let json = accept("application/json");
        assert_eq!(
            ErrorFormat::for_request("/t/acme/git/plugins/p.git/info/refs", &html),
            ErrorFormat::PlainText
        );
        assert_eq!(
            ErrorFormat::for_request("/git/plugins/p.git/git-upload-pack", &json),
            ErrorFormat::PlainText
        );
        assert_eq!(ErrorFormat::for_request("/t/acme/v1/skills", &html), ErrorFormat::Json);
        assert_eq!(ErrorFormat::for_request("/v1/skills", &html), ErrorFormat::Json);
        assert_eq!(ErrorFormat::for_request("/t/acme/marketplace", &json), ErrorFormat::Html);
        assert_eq!(ErrorFormat::for_request("/t/nobody", &html), ErrorFormat::Html);
        assert_eq!(ErrorFormat::for_request("/t/nobody", &json), ErrorFormat::Json);
        assert_eq!(ErrorFormat::for_request("/", &HeaderMap::new()), ErrorFormat::Json);
    }

    #[test]
    fn html_and_text_bodies_carry_the_message_escaped() {
        let e = ApiError::not_found("plugin `<x>` not found");
        let (ct, body) = render(ErrorFormat::Html, &e, "rid-1", "/t/acme");
        let body = String::from_utf8(body).unwrap();
        assert!(ct.starts_with("text/html"));
        assert!(body.contains("plugin `&lt;x&gt;` not found"), "{body}");
        assert!(body.contains("rid-1") && body.contains("not_found"), "{body}");
        assert!(
            body.contains("href=\"/t/acme/-/static/portal.css\"") && !body.contains("<style"),
            "{body}"
        );
        let (ct, body) = render(ErrorFormat::PlainText, &e, "rid-1", "");
        assert!(ct.starts_with("text/plain"));
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "skill-pool: plugin `<x>` not found (not_found, request rid-1)\n"
        );
        let (_, body) = render(ErrorFormat::Json, &e, "rid-1", "");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"], "not_found");
    }
}
