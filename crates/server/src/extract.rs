//! Extractors that reject in our error shape: the authenticated caller, JSON bodies,
//! queries, path parameters, and bounded upload bodies.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use skill_pool_registry::Actor;

use crate::AppState;
use crate::error::{ApiError, REQUEST_ID_HEADER};
use crate::tenant::RoutedTenant;

/// The tenant of the request (always present behind `dispatch`).
pub struct Tenant(pub RoutedTenant);

impl<S: Send + Sync> FromRequestParts<S> for Tenant {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<RoutedTenant>()
            .cloned()
            .map(Tenant)
            .ok_or_else(|| ApiError::not_found("no tenant addressed"))
    }
}

/// The client's address, when the server was reached over a socket (not in in-process tests).
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(client_addr(parts)))
    }
}

pub(crate) fn client_addr(parts: &Parts) -> Option<std::net::IpAddr> {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The authenticated caller: a bearer token of the routed tenant.
pub struct Caller {
    pub actor: Actor,
    pub tenant: RoutedTenant,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Tenant(tenant) = Tenant::from_request_parts(parts, state).await?;
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing token: send `Authorization: Bearer <token>`"))?;
        let secret = bearer(header).ok_or_else(|| ApiError::unauthorized("malformed Authorization header: use `Bearer <token>`"))?;
        let actor = authenticate(parts, state, &tenant, &secret).await?;
        Ok(Caller { actor, tenant })
    }
}

/// The token of `Authorization: Bearer <token>`.
fn bearer(header: &header::HeaderValue) -> Option<String> {
    header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The password of `Authorization: Basic <base64(user:password)>` (git sends the token there,
/// with any user name).
fn basic_password(header: &header::HeaderValue) -> Option<String> {
    use base64::Engine;
    let value = header.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (_, password) = text.split_once(':')?;
    let password = password.trim();
    (!password.is_empty()).then(|| password.to_string())
}

/// Checks a presented token against the routed tenant, with the failed-authentication limit
/// per address, a warning in the log (never the token) and the metric.
async fn authenticate(parts: &Parts, state: &AppState, tenant: &RoutedTenant, secret: &str) -> Result<Actor, ApiError> {
    let request_id = parts
        .headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // An address that has guessed wrong too often is refused before its token is looked at.
    let addr = client_addr(parts);
    if let Some(a) = addr
        && let Err(wait) = state.auth_failures.check(a)
    {
        state.metrics.auth_failure(true);
        let mut err = ApiError::new(
            skill_pool_core::ErrorCode::RateLimited,
            format!("too many failed authentications from this address: try again in {wait} s"),
        );
        err.retry_after = Some(wait);
        return Err(err);
    }
    match state.registry.authenticate(tenant.id, secret, request_id).await {
        Ok(actor) => Ok(actor),
        Err(e) => {
            let err = ApiError::from(e);
            if err.code == skill_pool_core::ErrorCode::Unauthorized {
                if let Some(a) = addr {
                    state.auth_failures.failed(a);
                }
                state.metrics.auth_failure(false);
                // Never the token, not even a part of it.
                tracing::warn!(
                    tenant = %tenant.slug,
                    client = %addr.map(|a| a.to_string()).unwrap_or_else(|| "-".into()),
                    method = %parts.method,
                    path = %parts.uri.path(),
                    "authentication failed: unknown, revoked or expired token"
                );
            }
            Err(err)
        }
    }
}

/// Which public surface asks for a credential: it decides the challenge and the advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// The catalogue and the archives: what Claude Code's `headers`/`headersHelper` send.
    Catalogue,
    /// The git endpoint: what git's credential helper answers (Basic, token as password).
    Git,
}

/// Reads a private tenant's public surface: passes a public tenant through; for a private
/// one, a token of that tenant (any role) as `Bearer`, or as the password of `Basic` (what git
/// sends). Anything else is `401` with the challenge of the surface. A token of another tenant
/// is refused like a wrong one (and counted as a failed authentication).
pub async fn public_access(parts: &Parts, state: &AppState, tenant: &RoutedTenant, surface: Surface) -> Result<Option<Actor>, ApiError> {
    if tenant.visibility == skill_pool_core::api::Visibility::Public {
        return Ok(None);
    }
    let secret = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|h| bearer(h).or_else(|| basic_password(h)));
    let challenge = |message: String| {
        let mut err = ApiError::unauthorized(message);
        err.www_authenticate = Some(match surface {
            Surface::Catalogue => format!("Bearer realm=\"skill-pool {}\"", tenant.slug),
            Surface::Git => format!("Basic realm=\"skill-pool {}\"", tenant.slug),
        });
        err
    };
    let Some(secret) = secret else {
        return Err(challenge(match surface {
            Surface::Catalogue => format!(
                "the marketplace `{}` is private: send `Authorization: Bearer <token>` with a token of the tenant. \
                 For Claude Code, run `skill-pool setup claude` (it adds the marketplace with a headersHelper), \
                 or see the server's docs/private-marketplaces.md",
                tenant.slug
            ),
            Surface::Git => format!(
                "the plugins of `{}` are private: git needs a token of the tenant as its password. \
                 Run `skill-pool setup claude` (it configures `skill-pool auth git-credential` as git's credential helper)",
                tenant.slug
            ),
        }));
    };
    match authenticate(parts, state, tenant, &secret).await {
        Ok(actor) => Ok(Some(actor)),
        Err(e)
            if matches!(
                e.code,
                skill_pool_core::ErrorCode::Unauthorized | skill_pool_core::ErrorCode::NotFound
            ) =>
        {
            if e.code == skill_pool_core::ErrorCode::NotFound {
                // A token of another tenant: refused as a wrong one.
                if let Some(a) = client_addr(parts) {
                    state.auth_failures.failed(a);
                }
                state.metrics.auth_failure(false);
                return Err(challenge(format!("this token is not a token of `{}`", tenant.slug)));
            }
            Err(challenge(e.message))
        }
        Err(e) => Err(e),
    }
}

/// The catalogue (and archives) of the routed tenant, readable by this request.
pub struct CatalogueAccess {
    pub tenant: RoutedTenant,
}

impl FromRequestParts<AppState> for CatalogueAccess {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Tenant(tenant) = Tenant::from_request_parts(parts, state).await?;
        public_access(parts, state, &tenant, Surface::Catalogue).await?;
        Ok(CatalogueAccess { tenant })
    }
}

/// The git endpoint of the routed tenant, readable by this request.
pub struct GitAccess {
    pub tenant: RoutedTenant,
}

impl FromRequestParts<AppState> for GitAccess {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Tenant(tenant) = Tenant::from_request_parts(parts, state).await?;
        public_access(parts, state, &tenant, Surface::Git).await?;
        Ok(GitAccess { tenant })
    }
}

/// An authenticated caller with the admin role, checked before the request body is read (so a
/// member cannot make the server read a large body). A refusal is written to the audit log.
pub struct AdminCaller(pub Caller);

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if let Err(e) = caller.actor.require(skill_pool_core::Role::Admin) {
            let route = parts
                .extensions
                .get::<axum::extract::MatchedPath>()
                .map(|m| m.as_str().to_string())
                .unwrap_or_else(|| parts.uri.path().to_string());
            state
                .registry
                .record_denied(&caller.actor, &format!("{} {route}", parts.method))
                .await;
            return Err(e.into());
        }
        Ok(AdminCaller(caller))
    }
}

/// JSON body with rejections in our shape.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Json<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| m.trim().to_ascii_lowercase())
            .is_some_and(|m| m == "application/json" || (m.starts_with("application/") && m.ends_with("+json")));
        if !is_json {
            return Err(ApiError::new(
                skill_pool_core::ErrorCode::UnsupportedMediaType,
                "Expected request with `Content-Type: application/json`",
            ));
        }
        let limit = state.config.max_json_bytes;
        let body = read_limited(req.into_body(), limit).await.map_err(|_| {
            ApiError::too_large(format!(
                "the JSON body is larger than the server's limit of {limit} bytes (SKILL_POOL_MAX_JSON_BYTES)"
            ))
        })?;
        match axum::Json::<T>::from_bytes(&body) {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rejection) => Err(ApiError::new(skill_pool_core::ErrorCode::BadRequest, rejection.body_text())),
        }
    }
}

/// Query string with rejections in our shape.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Query(v))
            .map_err(|r| ApiError::bad_request(r.body_text()))
    }
}

/// Path parameters with rejections in our shape.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Path(v))
            .map_err(|r| ApiError::not_found(r.body_text()))
    }
}

/// A request body read whole, refused past `SKILL_POOL_MAX_UPLOAD_BYTES` with `413`.
pub struct Upload(pub bytes::Bytes);

impl FromRequest<AppState> for Upload {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let limit = state.config.max_upload_bytes;
        let too_large = || {
            ApiError::too_large(format!(
                "the upload is larger than the server's limit of {limit} bytes (SKILL_POOL_MAX_UPLOAD_BYTES)"
            ))
        };
        let body = read_limited(req.into_body(), limit).await.map_err(|_| too_large())?;
        if body.is_empty() {
            return Err(ApiError::bad_request("the request body is empty"));
        }
        Ok(Upload(body))
    }
}

/// Past this many bytes over the limit, a refused upload is no longer read to the end (the
/// connection is closed instead).
const DRAIN_AT_MOST: u64 = 32 << 20;

/// Reads a body up to `limit` bytes. An oversized body is still read (and dropped) up to
/// [`DRAIN_AT_MOST`] more, so an ordinary client sees the `413` answer instead of a reset.
async fn read_limited(body: axum::body::Body, limit: u64) -> Result<bytes::Bytes, ()> {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut buf = bytes::BytesMut::new();
    let mut seen: u64 = 0;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { return Err(()) };
        let Ok(chunk) = frame.into_data() else { continue };
        seen += chunk.len() as u64;
        if seen > limit {
            if seen > limit.saturating_add(DRAIN_AT_MOST) {
                return Err(());
            }
            buf.clear();
            continue;
        }
        buf.extend_from_slice(&chunk);
    }
    if seen > limit { Err(()) } else { Ok(buf.freeze()) }
}
