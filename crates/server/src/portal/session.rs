//! The signed-in browser: the session cookie, the extractors that give a handler its
//! session ([`Session`], [`AdminSession`]), and form bodies checked against the session's
//! CSRF token ([`Form`]).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use skill_pool_core::{ErrorCode, Role};
use skill_pool_registry::sessions::SignedIn;

use crate::AppState;
use crate::error::{ApiError, REQUEST_ID_HEADER};
use crate::tenant::RoutedTenant;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "sp_session";
/// The cookie that carries the sign-in form's CSRF token before there is a session.
pub const LOGIN_CSRF_COOKIE: &str = "sp_login_csrf";
/// Largest form body read.
const MAX_FORM_BYTES: u64 = 4 << 20;

/// The value of one cookie of the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax`, scoped to the tenant, `Secure` when the
/// public URL is https. `max_age` 0 removes the cookie.
pub fn set_cookie(state: &AppState, tenant: &RoutedTenant, name: &str, value: &str, max_age_secs: i64) -> String {
    let path = if tenant.base.is_empty() { "/" } else { tenant.base.as_str() };
    let secure = if state.config.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!("{name}={value}; Path={path}; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{secure}")
}

pub fn request_id(headers: &HeaderMap) -> Option<String> {
    headers.get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// The client's address, for the failed sign-in limit.
pub fn client_address(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string())
}

/// Why a page needing a session did not get one.
pub enum Refusal {
    /// Not signed in: to the sign-in page, coming back here afterwards.
    SignIn(String),
    Error(ApiError),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::SignIn(to) => Redirect::to(&to).into_response(),
            Refusal::Error(e) => e.into_response(),
        }
    }
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal::Error(e)
    }
}

/// A signed-in browser of the routed tenant (any role).
pub struct Session {
    pub signed_in: SignedIn,
    pub tenant: RoutedTenant,
    /// The cookie's secret (for signing out).
    pub secret: String,
}

impl Session {
    pub fn is_admin(&self) -> bool {
        self.signed_in.actor.role().allows(Role::Admin)
    }
}

async fn session_of(parts: &mut Parts, state: &AppState) -> Result<Option<Session>, ApiError> {
    let tenant = parts
        .extensions
        .get::<RoutedTenant>()
        .cloned()
        .ok_or_else(|| ApiError::not_found("no tenant addressed"))?;
    session_from_headers(state, &tenant, &parts.headers).await
}

/// The session behind the request's cookie, if it is a live one of `tenant`.
pub async fn session_from_headers(state: &AppState, tenant: &RoutedTenant, headers: &HeaderMap) -> Result<Option<Session>, ApiError> {
    let Some(secret) = cookie(headers, SESSION_COOKIE).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let found = state.registry.session(tenant.id, &secret, request_id(headers)).await?;
    Ok(found.map(|signed_in| Session {
        signed_in,
        tenant: tenant.clone(),
        secret,
    }))
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Refusal;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Refusal> {
        match session_of(parts, state).await? {
            Some(s) => Ok(s),
            None => {
                let base = parts.extensions.get::<RoutedTenant>().map(|t| t.base.clone()).unwrap_or_default();
                let here = parts.uri.path_and_query().map_or("/portal", |p| p.as_str());
                let next: String = url::form_urlencoded::byte_serialize(format!("{base}{here}").as_bytes()).collect();
                Err(Refusal::SignIn(format!("{base}/portal/login?next={next}")))
            }
        }
    }
}

/// A session, when there is one (the public pages show "signed in as").
pub struct MaybeSession(pub Option<Session>);

impl FromRequestParts<AppState> for MaybeSession {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(MaybeSession(session_of(parts, state).await?))
    }
}

/// A signed-in admin; a member gets the 403 page.
pub struct AdminSession(pub Session);

impl FromRequestParts<AppState> for AdminSession {
    type Rejection = Refusal;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Refusal> {
        let s = Session::from_request_parts(parts, state).await?;
        if !s.is_admin() {
            return Err(Refusal::Error(ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "this page is for admins; you are signed in as {} with the {} role",
                    s.signed_in.name,
                    s.signed_in.actor.role()
                ),
            )));
        }
        Ok(AdminSession(s))
    }
}

/// A urlencoded form body as its pairs (repeated names kept in order).
#[derive(Debug, Default, Clone)]
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    pub fn parse(body: &[u8]) -> FormData {
        FormData(url::form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `name`, or "".
    pub fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
    }

    /// The first value of `name`, trimmed, `None` when empty.
    pub fn opt(&self, name: &str) -> Option<String> {
        Some(self.get(name).trim().to_string()).filter(|s| !s.is_empty())
    }

    pub fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The refusal of a form without the right CSRF token: 403, as an HTML page.
pub fn csrf_refused() -> ApiError {
    ApiError::new(
        ErrorCode::Forbidden,
        "this form is out of date or did not come from this site (CSRF check failed): reload the page and try again",
    )
}

/// A form posted by the signed-in browser, its `csrf` field checked against the session's.
pub struct Form {
    pub session: Session,
    pub data: FormData,
}

impl FromRequest<AppState> for Form {
    type Rejection = Refusal;
    async fn from_request(req: Request, state: &AppState) -> Result<Self, Refusal> {
        let (mut parts, body) = req.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        let data = read_form(body).await?;
        if !same_secret(data.get("csrf"), &session.signed_in.csrf_token) {
            return Err(Refusal::Error(csrf_refused()));
        }
        Ok(Form { session, data })
    }
}

/// Reads a form body (bounded).
pub async fn read_form(body: axum::body::Body) -> Result<FormData, ApiError> {
    use http_body_util::BodyExt;
    let limited = http_body_util::Limited::new(body, MAX_FORM_BYTES as usize);
    let bytes = limited
        .collect()
        .await
        .map_err(|_| ApiError::new(ErrorCode::PayloadTooLarge, "the form is too large"))?
        .to_bytes();
    Ok(FormData::parse(&bytes))
}

/// `303 See Other` to a page of the tenant.
pub fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_secrets() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=1; sp_session=abc ; b=2".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("", "a"));
        let f = FormData::parse(b"csrf=x&piece=skill%3Aa&piece=agent%3Ab&empty=");
        assert_eq!(f.all("piece").collect::<Vec<_>>(), ["skill:a", "agent:b"]);
        assert_eq!(f.opt("empty"), None);
    }
}
