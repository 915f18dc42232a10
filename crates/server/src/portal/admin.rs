//! Sign-in and sign-out, and the pages around the plugins: branding settings, API tokens,
//! the audit log, the registry of skills, agents and commands.

use askama::Template;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use skill_pool_core::api::{AuditEntry, Piece, PieceKind, Token};
use skill_pool_core::{ErrorCode, Role};
use skill_pool_registry::RegistryError;
use skill_pool_registry::audit::AuditFilter;
use skill_pool_registry::pieces::PiecePage;
use skill_pool_registry::sessions::{Branding, SESSION_TTL_MS};
use skill_pool_registry::tokens::CreatedSecret;

use super::session::{
    AdminSession, Form, LOGIN_CSRF_COOKIE, MaybeSession, Refusal, SESSION_COOKIE, Session, client_address, cookie, csrf_refused, read_form,
    request_id, same_secret, see_other, set_cookie,
};
use super::{Chrome, filters, render};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Path, Query, Tenant};

#[derive(Template)]
#[template(path = "portal/login.html")]
struct LoginPage {
    chrome: Chrome,
    login_csrf: String,
    next: String,
    username: String,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// Where to go after signing in: a page of this tenant's portal or marketplace, nothing else.
fn next_target(base: &str, next: &str) -> String {
    let ok = [format!("{base}/portal"), format!("{base}/marketplace")]
        .iter()
        .any(|p| next == p || next.starts_with(&format!("{p}/")) || next.starts_with(&format!("{p}?")));
    if ok && !next.contains("//") && !next.contains('\\') {
        next.to_string()
    } else {
        format!("{base}/portal/plugins")
    }
}

fn new_login_csrf() -> String {
    skill_pool_registry::tokens::random_secret("")
}

async fn login_form(
    state: &AppState,
    tenant: &crate::tenant::RoutedTenant,
    status: StatusCode,
    next: String,
    username: String,
    error: Option<String>,
) -> Result<Response, ApiError> {
    let login_csrf = new_login_csrf();
    let page = LoginPage {
        chrome: Chrome::new(state, tenant, None, "login").await?,
        login_csrf: login_csrf.clone(),
        next,
        username,
        error,
    };
    let mut res = render(&page)?;
    *res.status_mut() = status;
    if let Ok(v) = set_cookie(state, tenant, LOGIN_CSRF_COOKIE, &login_csrf, 3600).parse() {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(res)
}

pub async fn login_page(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    MaybeSession(session): MaybeSession,
    Query(q): Query<LoginQuery>,
) -> Result<Response, ApiError> {
    let next = next_target(&tenant.base, q.next.as_deref().unwrap_or(""));
    if session.is_some() {
        return Ok(see_other(&next));
    }
    login_form(&state, &tenant, StatusCode::OK, next, String::new(), None).await
}

/// `POST /portal/login`: a password or an API token; the form's CSRF token must match the
/// cookie the sign-in page set (there is no session yet to hold it).
pub async fn login(State(state): State<AppState>, Tenant(tenant): Tenant, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let form = read_form(body).await?;
    let expected = cookie(&parts.headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same_secret(form.get("csrf"), &expected) {
        return Err(csrf_refused());
    }
    let address = client_address(&parts);
    let next = next_target(&tenant.base, form.get("next"));
    let username = form.get("username").trim().to_string();
    let outcome = match form.get("method") {
        "token" => {
            state
                .registry
                .sign_in_token(tenant.id, form.get("token"), &address, request_id(&parts.headers))
                .await
        }
        _ => {
            state
                .registry
                .sign_in_password(tenant.id, &username, form.get("password"), &address, request_id(&parts.headers))
                .await
        }
    };
    match outcome {
        Ok(created) => {
            let mut res = see_other(&next);
            let h = res.headers_mut();
            for c in [
                set_cookie(&state, &tenant, SESSION_COOKIE, &created.secret, SESSION_TTL_MS / 1000),
                set_cookie(&state, &tenant, LOGIN_CSRF_COOKIE, "", 0),
            ] {
                if let Ok(v) = c.parse() {
                    h.append(header::SET_COOKIE, v);
                }
            }
            Ok(res)
        }
        Err(e @ (RegistryError::Unauthorized(_) | RegistryError::RateLimited(_))) => {
            let status = if matches!(e, RegistryError::RateLimited(_)) {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::UNAUTHORIZED
            };
            login_form(&state, &tenant, status, next, username, Some(e.to_string())).await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn logout(State(state): State<AppState>, form: Form) -> Result<Response, ApiError> {
    let s = &form.session;
    state.registry.sign_out(&s.signed_in, &s.secret).await?;
    let mut res = see_other(&format!("{}/portal/login", s.tenant.base));
    if let Ok(v) = set_cookie(&state, &s.tenant, SESSION_COOKIE, "", 0).parse() {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(res)
}

pub async fn home(session: Session) -> Response {
    see_other(&format!("{}/portal/plugins", session.tenant.base))
}

#[derive(Template)]
#[template(path = "portal/settings.html")]
struct SettingsPage {
    chrome: Chrome,
    display_name: String,
    logo_url: String,
    accent_color: String,
    saved: bool,
    error: Option<String>,
    field: String,
}

pub async fn settings(State(state): State<AppState>, AdminSession(s): AdminSession) -> Result<Response, ApiError> {
    let b = state.registry.branding(s.tenant.id).await?;
    render(&SettingsPage {
        chrome: Chrome::of(&state, &s, "settings").await?,
        display_name: b.display_name,
        logo_url: b.logo_url.unwrap_or_default(),
        accent_color: b.accent_color.unwrap_or_default(),
        saved: false,
        error: None,
        field: String::new(),
    })
}

pub async fn save_settings(State(state): State<AppState>, form: Form) -> Result<Response, Refusal> {
    let s = &form.session;
    let branding = Branding {
        display_name: form.data.get("display_name").to_string(),
        logo_url: form.data.opt("logo_url"),
        accent_color: form.data.opt("accent_color"),
    };
    let outcome = state.registry.set_branding(&s.signed_in.actor, branding.clone()).await;
    let (saved, error, field, shown) = match outcome {
        Ok(b) => (true, None, String::new(), b),
        Err(e) if e.code().http_status() < 500 && e.code() != ErrorCode::Forbidden => {
            (false, Some(e.to_string()), e.field().unwrap_or("").to_string(), branding)
        }
        Err(e) => return Err(ApiError::from(e).into()),
    };
    let mut res = render(&SettingsPage {
        chrome: Chrome::of(&state, s, "settings").await?,
        display_name: shown.display_name,
        logo_url: shown.logo_url.unwrap_or_default(),
        accent_color: shown.accent_color.unwrap_or_default(),
        saved,
        error,
        field,
    })?;
    if !saved {
        *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(res)
}

#[derive(Template)]
#[template(path = "portal/tokens.html")]
struct TokensPage {
    chrome: Chrome,
    tokens: Vec<Token>,
    created: Option<CreatedSecret>,
    error: Option<String>,
}

pub async fn tokens(State(state): State<AppState>, AdminSession(s): AdminSession) -> Result<Response, ApiError> {
    let tokens = state.registry.list_tokens(&s.signed_in.actor).await?;
    render(&TokensPage {
        chrome: Chrome::of(&state, &s, "tokens").await?,
        tokens,
        created: None,
        error: None,
    })
}

pub async fn create_token(State(state): State<AppState>, form: Form) -> Result<Response, Refusal> {
    let s = &form.session;
    let role = form.data.get("role").parse::<Role>().unwrap_or(Role::Member);
    let expires_in_days = match form.data.get("expires_in_days").trim() {
        "" => None,
        days => days.parse::<u32>().ok().or(Some(0)),
    };
    let (created, error) = match state
        .registry
        .create_token_expiring(&s.signed_in.actor, form.data.get("name"), role, expires_in_days)
        .await
    {
        Ok(c) => (Some(c), None),
        Err(e @ RegistryError::BadRequest(_)) => (None, Some(e.to_string())),
        Err(e) => return Err(ApiError::from(e).into()),
    };
    let tokens = state.registry.list_tokens(&s.signed_in.actor).await.map_err(ApiError::from)?;
    let failed = error.is_some();
    let mut res = render(&TokensPage {
        chrome: Chrome::of(&state, s, "tokens").await?,
        tokens,
        error,
        created,
    })?;
    if failed {
        *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(res)
}

pub async fn revoke_token(State(state): State<AppState>, Path(id): Path<i64>, form: Form) -> Result<Response, Refusal> {
    let s = &form.session;
    state.registry.revoke_token(&s.signed_in.actor, id).await.map_err(ApiError::from)?;
    Ok(see_other(&format!("{}/portal/tokens", s.tenant.base)))
}

#[derive(Template)]
#[template(path = "portal/audit.html")]
struct AuditPage {
    chrome: Chrome,
    entries: Vec<AuditEntry>,
    q_actor: String,
    q_action: String,
    q_target: String,
    q_since: String,
    q_until: String,
    next: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    before: Option<i64>,
}

/// `YYYY-MM-DD` (UTC midnight) as unix milliseconds.
fn day_ms(s: &str) -> Option<i64> {
    let mut it = s.trim().splitn(3, '-');
    let (y, m, d): (i64, i64, i64) = (it.next()?.parse().ok()?, it.next()?.parse().ok()?, it.next()?.parse().ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400_000)
}

pub async fn audit(
    State(state): State<AppState>,
    AdminSession(s): AdminSession,
    Query(q): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    let mut error = None;
    let mut parse_day = |v: &str, what: &str| -> Option<i64> {
        if v.trim().is_empty() {
            return None;
        }
        let ms = day_ms(v);
        if ms.is_none() {
            error = Some(format!("{what}: use a date like 2026-12-01"));
        }
        ms
    };
    let since = parse_day(&q.since, "from");
    // "Until" includes the whole day.
    let until = parse_day(&q.until, "until").map(|ms| ms + 86_400_000);
    let filter = AuditFilter {
        actor: q.actor.trim(),
        action: q.action.trim(),
        target: q.target.trim(),
        since,
        until,
    };
    let page = state.registry.search_audit(&s.signed_in.actor, &filter, q.before, 100).await?;
    let next = page.next_cursor.map(|c| {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("actor", &q.actor)
            .append_pair("action", &q.action)
            .append_pair("target", &q.target)
            .append_pair("since", &q.since)
            .append_pair("until", &q.until)
            .append_pair("before", &c)
            .finish()
    });
    render(&AuditPage {
        chrome: Chrome::of(&state, &s, "audit").await?,
        entries: page.items,
        q_actor: q.actor,
        q_action: q.action,
        q_target: q.target,
        q_since: q.since,
        q_until: q.until,
        next,
        error,
    })
}

fn kind_of(segment: &str) -> Result<PieceKind, ApiError> {
    match segment {
        "skills" => Ok(PieceKind::Skill),
        "agents" => Ok(PieceKind::Agent),
        "commands" => Ok(PieceKind::Command),
        _ => Err(ApiError::not_found("the registry has skills, agents and commands")),
    }
}

#[derive(Template)]
#[template(path = "portal/pieces.html")]
struct PiecesPage {
    chrome: Chrome,
    kind: String,
    kind_singular: String,
    pieces: Vec<Piece>,
}

pub async fn pieces(State(state): State<AppState>, s: Session, Path(kind): Path<String>) -> Result<Response, Refusal> {
    let k = kind_of(&kind)?;
    let list = state
        .registry
        .list_pieces(&s.signed_in.actor, k, None, 500)
        .await
        .map_err(ApiError::from)?;
    Ok(render(&PiecesPage {
        chrome: Chrome::of(&state, &s, "registry").await?,
        kind_singular: k.to_string(),
        kind,
        pieces: list.items,
    })?)
}

#[derive(Template)]
#[template(path = "portal/piece.html")]
struct PieceView {
    chrome: Chrome,
    kind: String,
    kind_singular: String,
    slug: String,
    page: PiecePage,
    rendered: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct VersionQuery {
    version: Option<String>,
}

pub async fn piece(
    State(state): State<AppState>,
    s: Session,
    Path((kind, slug)): Path<(String, String)>,
    Query(q): Query<VersionQuery>,
) -> Result<Response, Refusal> {
    let k = kind_of(&kind)?;
    let page = state
        .registry
        .piece_page(&s.signed_in.actor, k, &slug, q.version.as_deref())
        .await
        .map_err(ApiError::from)?;
    let rendered = page.text.as_deref().map(super::markdown::to_safe_html);
    Ok(render(&PieceView {
        chrome: Chrome::of(&state, &s, "registry").await?,
        kind_singular: k.to_string(),
        kind,
        slug,
        page,
        rendered,
    })?)
}

async fn set_archived(state: &AppState, form: &Form, kind: &str, slug: &str, version: &str, archived: bool) -> Result<Response, Refusal> {
    let k = kind_of(kind)?;
    let actor = &form.session.signed_in.actor;
    let outcome = if archived {
        state.registry.archive_piece_version(actor, k, slug, version).await
    } else {
        state.registry.unarchive_piece_version(actor, k, slug, version).await
    };
    outcome.map_err(ApiError::from)?;
    let version: String = url::form_urlencoded::byte_serialize(version.as_bytes()).collect();
    Ok(see_other(&format!(
        "{}/portal/registry/{kind}/{slug}?version={version}",
        form.session.tenant.base
    )))
}

pub async fn archive(
    State(state): State<AppState>,
    Path((kind, slug, version)): Path<(String, String, String)>,
    form: Form,
) -> Result<Response, Refusal> {
    set_archived(&state, &form, &kind, &slug, &version, true).await
}

pub async fn unarchive(
    State(state): State<AppState>,
    Path((kind, slug, version)): Path<(String, String, String)>,
    form: Form,
) -> Result<Response, Refusal> {
    set_archived(&state, &form, &kind, &slug, &version, false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_targets() {
        assert_eq!(day_ms("1970-01-01"), Some(0));
        assert_eq!(day_ms("2023-11-14"), Some(1_699_920_000_000));
        assert_eq!(day_ms("2023-13-01"), None);
        assert_eq!(next_target("/t/a", "/t/a/portal/plugins/x"), "/t/a/portal/plugins/x");
        assert_eq!(next_target("/t/a", "https://evil.example/"), "/t/a/portal/plugins");
        assert_eq!(next_target("/t/a", "/t/b/portal"), "/t/a/portal/plugins");
        assert_eq!(next_target("", "//evil.example/portal"), "/portal/plugins");
    }
}
