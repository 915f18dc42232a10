//! The portal (HTML): sign-in, the public marketplace browser, the admin pages (plugins and
//! the composer, registry, audit log, tokens, branding). Server-rendered with askama; one
//! stylesheet and one small script of our own, served from here; no inline script.
//!
//! Every handler parses, makes one `registry` call, renders. Writes run the same registry
//! use cases as `/v1`, with the signed-in user (or the token signed in with) as the actor.

mod admin;
mod markdown;
mod market;
mod plugins;
mod session;

use askama::Template;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use crate::AppState;
use crate::error::ApiError;
use crate::tenant::RoutedTenant;
pub use market::{BrowseQuery, browser};
pub use session::{MaybeSession, Session, session_from_headers};

pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; \
                       object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Security headers on every answer with a body: no MIME sniffing, and on HTML (pages and
/// error pages) a CSP without inline script, no framing, no referrer to other sites.
pub fn security_headers(res: &mut Response) {
    if res.status() == axum::http::StatusCode::NOT_MODIFIED {
        // No body to sniff or frame; a cache keeps the headers of the `200` it holds.
        return;
    }
    let html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"));
    let h = res.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if html {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
        h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
}

/// The portal's routes, below a tenant root.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/-/static/portal.css", get(stylesheet))
        .route("/-/static/portal.js", get(script))
        .route("/-/brand.css", get(market::brand_css))
        .route("/marketplace", get(market::browser))
        .route("/marketplace/{slug}", get(market::detail))
        .route("/portal", get(admin::home))
        .route("/portal/", get(admin::home))
        .route("/portal/login", get(admin::login_page).post(admin::login))
        .route("/portal/logout", post(admin::logout))
        .route("/portal/settings", get(admin::settings).post(admin::save_settings))
        .route("/portal/tokens", get(admin::tokens).post(admin::create_token))
        .route("/portal/tokens/{id}/revoke", post(admin::revoke_token))
        .route("/portal/audit", get(admin::audit))
        .route("/portal/registry/{kind}", get(admin::pieces))
        .route("/portal/registry/{kind}/{slug}", get(admin::piece))
        .route("/portal/registry/{kind}/{slug}/{version}/archive", post(admin::archive))
        .route("/portal/registry/{kind}/{slug}/{version}/unarchive", post(admin::unarchive))
        .route("/portal/plugins", get(plugins::list))
        .route("/portal/plugins/new", get(plugins::new_form).post(plugins::submit_new))
        .route("/portal/plugins/validate", post(plugins::validate))
        .route("/portal/plugins/{slug}", get(plugins::detail))
        .route("/portal/plugins/{slug}/edit", get(plugins::edit_form).post(plugins::submit_edit))
        .route("/portal/plugins/{slug}/refresh", post(plugins::refresh))
        .route("/portal/plugins/{slug}/accept", post(plugins::accept))
        .route("/portal/plugins/{slug}/delete", get(plugins::confirm_delete).post(plugins::delete))
}

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", include_str!("../../static/portal.css"))
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", include_str!("../../static/portal.js"))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300")),
        ],
        body,
    )
        .into_response()
}

/// What every page's frame shows: the tenant, its branding, who is signed in.
pub struct Chrome {
    /// The tenant prefix every link starts with.
    pub base: String,
    pub tenant_slug: String,
    pub display_name: String,
    pub logo_url: Option<String>,
    /// The signed-in name and role, when there is a session.
    pub user: Option<(String, String)>,
    pub admin: bool,
    pub csrf: String,
    /// Which nav entry is current.
    pub section: &'static str,
}

impl Chrome {
    pub async fn new(
        state: &AppState,
        tenant: &RoutedTenant,
        session: Option<&Session>,
        section: &'static str,
    ) -> Result<Chrome, ApiError> {
        let branding = state.registry.branding(tenant.id).await?;
        Ok(Chrome {
            base: tenant.base.clone(),
            tenant_slug: tenant.slug.clone(),
            display_name: branding.display_name,
            logo_url: branding.logo_url.filter(|u| safe_url(u)),
            user: session.map(|s| (s.signed_in.name.clone(), s.signed_in.actor.role().to_string())),
            admin: session.is_some_and(Session::is_admin),
            csrf: session.map(|s| s.signed_in.csrf_token.clone()).unwrap_or_default(),
            section,
        })
    }

    pub async fn of(state: &AppState, session: &Session, section: &'static str) -> Result<Chrome, ApiError> {
        Chrome::new(state, &session.tenant, Some(session), section).await
    }

    pub fn is(&self, section: &str) -> bool {
        self.section == section
    }
}

/// Whether a URL from user input may become a link or an image: `https://`, `http://`, or a
/// path on this server. Never `javascript:` or `data:`.
pub fn safe_url(u: &str) -> bool {
    let lower = u.trim().to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://") || (lower.starts_with('/') && !lower.starts_with("//"))
}

/// Template filters: `{{ t|when }}` shows an RFC 3339 time as `2026-12-01 12:33 UTC`.
pub mod filters {
    pub fn when<T: std::fmt::Display>(t: T, _: &dyn askama::Values) -> askama::Result<String> {
        Ok(super::short_time(&t.to_string()))
    }
}

/// An RFC 3339 UTC time as `YYYY-MM-DD HH:MM UTC` (anything else as it is).
pub fn short_time(t: &str) -> String {
    match (t.get(..10), t.get(11..16)) {
        (Some(day), Some(hm)) if t.ends_with('Z') && t.as_bytes().get(10) == Some(&b'T') => format!("{day} {hm} UTC"),
        _ => t.to_string(),
    }
}

/// Renders a page (never cached: it may carry a CSRF token or a secret).
pub fn render(page: &impl Template) -> Result<Response, ApiError> {
    let html = page.render().map_err(|e| {
        tracing::error!(error = %e, "rendering a portal page");
        ApiError::internal()
    })?;
    Ok(([(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))], Html(html)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_times() {
        for ok in ["https://x.example", "HTTP://x", "/logo.svg"] {
            assert!(safe_url(ok), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            " JavaScript:x",
            "data:text/html,x",
            "//evil.example",
            "vbscript:x",
            "",
        ] {
            assert!(!safe_url(bad), "{bad}");
        }
        assert_eq!(short_time("2026-12-01T12:33:34.107Z"), "2026-12-01 12:33 UTC");
        assert_eq!(short_time("soon"), "soon");
    }
}
