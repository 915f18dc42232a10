//! `/v1`: the REST API for curators and admins. Each handler parses, calls the registry once,
//! and renders.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use skill_pool_core::api::{
    AuditEntry, CreatePlugin, CreateToken, CreatedToken, ImportCatalogue, ImportMirror, ImportReport, Job, JobAccepted, Page, Piece,
    PieceKind, PieceVersion, Plugin, PublishPieceResult, PublishPluginResult, PurgeResult, ServePlugin, SetInstallPolicy, TenantSettings,
    Token, UpdatePlugin, UpdateTenant, Usage, WhoAmI,
};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{AdminCaller, Caller, Json, Path, Query, Upload};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// From `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1–500, default 100.
    pub limit: Option<i64>,
}

impl ListQuery {
    fn limit(&self) -> Result<i64, ApiError> {
        match self.limit {
            None => Ok(100),
            Some(n) if (1..=500).contains(&n) => Ok(n),
            Some(n) => Err(ApiError::bad_request(format!("limit {n} is out of range: use 1 to 500"))),
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PublishQuery {
    /// The registry name; defaults to the folder (CLI) or the frontmatter name.
    pub slug: Option<String>,
    /// Strict semver; omitted → next patch (pieces) or commit-sha versioning (plugins).
    pub version: Option<String>,
}

fn kind_of(segment: &str) -> Result<PieceKind, ApiError> {
    match segment {
        "skills" => Ok(PieceKind::Skill),
        "agents" => Ok(PieceKind::Agent),
        "commands" => Ok(PieceKind::Command),
        _ => Err(ApiError::not_found("no such route: see /v1/openapi.json")),
    }
}

fn created<T: serde::Serialize>(created: bool, body: T) -> Response {
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    (status, axum::Json(body)).into_response()
}

#[utoipa::path(get, path = "/v1/whoami", tag = "tokens", responses((status = 200, body = WhoAmI)))]
pub async fn whoami(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<WhoAmI>, ApiError> {
    let tenant_url = state.registry.tenant_url(&caller.tenant.slug);
    Ok(axum::Json(WhoAmI {
        tenant: caller.tenant.slug.clone(),
        tenant_display_name: caller.tenant.display_name.clone(),
        role: caller.actor.role(),
        token_name: match caller.actor.principal() {
            skill_pool_registry::Principal::Token { name, .. } => name.clone(),
            other => other.audit_name(),
        },
        marketplace_url: tenant_url.clone(),
        tenant_url,
    }))
}

#[utoipa::path(get, path = "/v1/{kind}", tag = "pieces", params(("kind" = String, Path, description = "skills, agents or commands"), ListQuery), responses((status = 200, body = Page<Piece>)))]
pub async fn list_pieces(
    State(state): State<AppState>,
    caller: Caller,
    Path(kind): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<Page<Piece>>, ApiError> {
    let kind = kind_of(&kind)?;
    Ok(axum::Json(
        state
            .registry
            .list_pieces(&caller.actor, kind, q.cursor.as_deref(), q.limit()?)
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/{kind}", tag = "pieces", params(("kind" = String, Path, description = "skills (tar.gz body), agents or commands (markdown body)"), PublishQuery),
    request_body(content = Vec<u8>, description = "a skill folder as tar.gz, or the markdown file of an agent or command"),
    responses((status = 201, body = PublishPieceResult), (status = 200, body = PublishPieceResult, description = "identical content reused")))]
pub async fn publish_piece(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path(kind): Path<String>,
    Query(q): Query<PublishQuery>,
    Upload(body): Upload,
) -> Result<Response, ApiError> {
    let kind = kind_of(&kind)?;
    let result = match kind {
        PieceKind::Skill => {
            state
                .registry
                .publish_skill(&caller.actor, q.slug.as_deref(), q.version.as_deref(), body)
                .await?
        }
        _ => {
            state
                .registry
                .publish_markdown(&caller.actor, kind, q.slug.as_deref(), q.version.as_deref(), body)
                .await?
        }
    };
    Ok(created(result.created, result))
}

#[utoipa::path(get, path = "/v1/{kind}/{slug}", tag = "pieces", params(("kind" = String, Path), ("slug" = String, Path)), responses((status = 200, body = Piece)))]
pub async fn show_piece(
    State(state): State<AppState>,
    caller: Caller,
    Path((kind, slug)): Path<(String, String)>,
) -> Result<axum::Json<Piece>, ApiError> {
    Ok(axum::Json(state.registry.show_piece(&caller.actor, kind_of(&kind)?, &slug).await?))
}

#[utoipa::path(get, path = "/v1/{kind}/{slug}/versions", tag = "pieces", params(("kind" = String, Path), ("slug" = String, Path)), responses((status = 200, body = Page<PieceVersion>)))]
pub async fn piece_versions(
    State(state): State<AppState>,
    caller: Caller,
    Path((kind, slug)): Path<(String, String)>,
) -> Result<axum::Json<Page<PieceVersion>>, ApiError> {
    let items = state.registry.piece_versions(&caller.actor, kind_of(&kind)?, &slug).await?;
    Ok(axum::Json(Page { items, next_cursor: None }))
}

#[utoipa::path(get, path = "/v1/{kind}/{slug}/versions/{version}", tag = "pieces", params(("kind" = String, Path), ("slug" = String, Path), ("version" = String, Path)), responses((status = 200, body = PieceVersion)))]
pub async fn piece_version(
    State(state): State<AppState>,
    caller: Caller,
    Path((kind, slug, version)): Path<(String, String, String)>,
) -> Result<axum::Json<PieceVersion>, ApiError> {
    Ok(axum::Json(
        state
            .registry
            .piece_version(&caller.actor, kind_of(&kind)?, &slug, &version)
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/{kind}/{slug}/versions/{version}/download", tag = "pieces", params(("kind" = String, Path), ("slug" = String, Path), ("version" = String, Path)), responses((status = 200, content_type = "application/gzip", body = Vec<u8>)))]
pub async fn download_piece(
    State(state): State<AppState>,
    caller: Caller,
    Path((kind, slug, version)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let version = (version != "latest").then_some(version);
    let (name, bytes) = state
        .registry
        .download_piece(&caller.actor, kind_of(&kind)?, &slug, version.as_deref())
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/gzip".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        bytes,
    )
        .into_response())
}

#[utoipa::path(post, path = "/v1/{kind}/{slug}/versions/{version}/archive", tag = "pieces", params(("kind" = String, Path), ("slug" = String, Path), ("version" = String, Path)), responses((status = 200, body = PieceVersion)))]
pub async fn archive_piece(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path((kind, slug, version)): Path<(String, String, String)>,
) -> Result<axum::Json<PieceVersion>, ApiError> {
    Ok(axum::Json(
        state
            .registry
            .archive_piece_version(&caller.actor, kind_of(&kind)?, &slug, &version)
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/plugins", tag = "plugins", params(ListQuery), responses((status = 200, body = Page<Plugin>)))]
pub async fn list_plugins(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<Page<Plugin>>, ApiError> {
    Ok(axum::Json(
        state.registry.list_plugins(&caller.actor, q.cursor.as_deref(), q.limit()?).await?,
    ))
}

#[utoipa::path(get, path = "/v1/plugins/{slug}", tag = "plugins", params(("slug" = String, Path)), responses((status = 200, body = Plugin)))]
pub async fn show_plugin(State(state): State<AppState>, caller: Caller, Path(slug): Path<String>) -> Result<axum::Json<Plugin>, ApiError> {
    Ok(axum::Json(state.registry.show_plugin(&caller.actor, &slug).await?))
}

#[utoipa::path(post, path = "/v1/plugins", tag = "plugins", request_body = CreatePlugin, responses((status = 201, body = PublishPluginResult)))]
pub async fn create_plugin(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Json(req): Json<CreatePlugin>,
) -> Result<Response, ApiError> {
    let result = state.registry.create_plugin(&caller.actor, req).await?;
    Ok(created(result.created, result))
}

#[utoipa::path(post, path = "/v1/plugins/import-catalogue", tag = "plugins", request_body = ImportCatalogue,
    responses((status = 200, body = ImportReport, description = "one line per upstream entry: imported, updated, unchanged or skipped (with the reason)")))]
pub async fn import_catalogue(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Json(req): Json<ImportCatalogue>,
) -> Result<axum::Json<ImportReport>, ApiError> {
    Ok(axum::Json(state.registry.import_catalogue(&caller.actor, req).await?))
}

#[utoipa::path(post, path = "/v1/plugins/import", tag = "plugins", request_body = ImportMirror,
    responses((status = 202, body = JobAccepted, description = "the mirror exists; its first pull runs as the job")))]
pub async fn import_mirror(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Json(req): Json<ImportMirror>,
) -> Result<Response, ApiError> {
    let (plugin, job) = state.registry.import_mirror(&caller.actor, req).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(JobAccepted { plugin, job })).into_response())
}

#[utoipa::path(post, path = "/v1/plugins/{slug}/refresh", tag = "plugins", params(("slug" = String, Path)),
    responses((status = 202, body = JobAccepted, description = "a pull now, in the background")))]
pub async fn refresh_mirror(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    let job = state.registry.refresh_mirror(&caller.actor, &slug).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(JobAccepted { plugin: slug, job })).into_response())
}

#[utoipa::path(post, path = "/v1/plugins/{slug}/accept", tag = "plugins", params(("slug" = String, Path)),
    responses((status = 202, body = JobAccepted, description = "the hold is lifted; the pull serves the upstream as it is now")))]
pub async fn accept_mirror(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    let job = state.registry.accept_mirror(&caller.actor, &slug).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(JobAccepted { plugin: slug, job })).into_response())
}

#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs", params(("id" = i64, Path)), responses((status = 200, body = Job)))]
pub async fn job(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> Result<axum::Json<Job>, ApiError> {
    Ok(axum::Json(state.registry.job(&caller.actor, id).await?))
}

#[utoipa::path(patch, path = "/v1/plugins/{slug}", tag = "plugins", params(("slug" = String, Path)), request_body = UpdatePlugin, responses((status = 200, body = PublishPluginResult)))]
pub async fn update_plugin(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path(slug): Path<String>,
    Json(req): Json<UpdatePlugin>,
) -> Result<axum::Json<PublishPluginResult>, ApiError> {
    Ok(axum::Json(state.registry.update_plugin(&caller.actor, &slug, req).await?))
}

#[utoipa::path(delete, path = "/v1/plugins/{slug}", tag = "plugins", params(("slug" = String, Path)), responses((status = 204)))]
pub async fn delete_plugin(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path(slug): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.registry.delete_plugin(&caller.actor, &slug).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/plugins/{slug}/versions/{version}/purge", tag = "plugins",
    params(("slug" = String, Path), ("version" = String, Path, description = "the version's semver, or its commit id (7 hex at least)")),
    responses((status = 200, body = PurgeResult, description = "the version is gone: no ref serves it, later commit ids changed, unreferenced bodies deleted"),
        (status = 409, body = skill_pool_core::api::ErrorBody, description = "the plugin's only version: delete the plugin instead")))]
pub async fn purge_plugin_version(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path((slug, version)): Path<(String, String)>,
) -> Result<axum::Json<PurgeResult>, ApiError> {
    Ok(axum::Json(
        state.registry.purge_plugin_version(&caller.actor, &slug, &version).await?,
    ))
}

#[utoipa::path(post, path = "/v1/plugins/publish", tag = "plugins", params(PublishQuery),
    request_body(content = Vec<u8>, description = "a plugin folder in Claude Code layout, as tar.gz", content_type = "application/gzip"),
    responses((status = 201, body = PublishPluginResult), (status = 200, body = PublishPluginResult, description = "identical content already served")))]
pub async fn publish_plugin(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Query(q): Query<PublishQuery>,
    Upload(body): Upload,
) -> Result<Response, ApiError> {
    let result = state
        .registry
        .publish_plugin_folder(&caller.actor, q.slug.as_deref(), q.version.as_deref(), body)
        .await?;
    Ok(created(result.created, result))
}

#[utoipa::path(get, path = "/v1/tokens", tag = "tokens", responses((status = 200, body = Page<Token>)))]
pub async fn list_tokens(State(state): State<AppState>, AdminCaller(caller): AdminCaller) -> Result<axum::Json<Page<Token>>, ApiError> {
    Ok(axum::Json(Page {
        items: state.registry.list_tokens(&caller.actor).await?,
        next_cursor: None,
    }))
}

#[utoipa::path(post, path = "/v1/tokens", tag = "tokens", request_body = CreateToken, responses((status = 201, body = CreatedToken)))]
pub async fn create_token(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Json(req): Json<CreateToken>,
) -> Result<Response, ApiError> {
    let created = state
        .registry
        .create_token_expiring(&caller.actor, &req.name, req.role, req.expires_in_days)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedToken {
            token: created.token,
            secret: created.secret,
        }),
    )
        .into_response())
}

#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "tokens", params(("id" = i64, Path)), responses((status = 204)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    state.registry.revoke_token(&caller.actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/plugins/{slug}/serve", tag = "plugins", params(("slug" = String, Path)), request_body = ServePlugin, responses((status = 200, body = Plugin)))]
pub async fn serve_plugin(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path(slug): Path<String>,
    Json(req): Json<ServePlugin>,
) -> Result<axum::Json<Plugin>, ApiError> {
    Ok(axum::Json(state.registry.serve_plugin(&caller.actor, &slug, req).await?))
}

#[utoipa::path(post, path = "/v1/plugins/{slug}/policy", tag = "plugins", params(("slug" = String, Path)), request_body = SetInstallPolicy, responses((status = 200, body = Plugin)))]
pub async fn set_install_policy(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path(slug): Path<String>,
    Json(req): Json<SetInstallPolicy>,
) -> Result<axum::Json<Plugin>, ApiError> {
    Ok(axum::Json(
        state.registry.set_install_policy(&caller.actor, &slug, req.install_policy).await?,
    ))
}

#[utoipa::path(get, path = "/v1/usage", tag = "tenant", responses((status = 200, body = Usage)))]
pub async fn usage(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<Usage>, ApiError> {
    Ok(axum::Json(state.registry.usage(&caller.actor).await?))
}

#[utoipa::path(get, path = "/v1/tenant", tag = "tenant", responses((status = 200, body = TenantSettings)))]
pub async fn tenant_settings(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<TenantSettings>, ApiError> {
    Ok(axum::Json(state.registry.tenant_settings(&caller.actor).await?))
}

#[utoipa::path(patch, path = "/v1/tenant", tag = "tenant", request_body = UpdateTenant, responses((status = 200, body = TenantSettings)))]
pub async fn update_tenant(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Json(change): Json<UpdateTenant>,
) -> Result<axum::Json<TenantSettings>, ApiError> {
    Ok(axum::Json(state.registry.update_tenant(&caller.actor, change).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct InstallsQuery {
    /// The window in UTC days, today included: 1–366, default 30.
    pub days: Option<u32>,
}

#[utoipa::path(get, path = "/v1/installs", tag = "tenant", params(InstallsQuery), responses((status = 200, body = skill_pool_core::api::InstallSummary)))]
pub async fn installs(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<InstallsQuery>,
) -> Result<axum::Json<skill_pool_core::api::InstallSummary>, ApiError> {
    Ok(axum::Json(
        state.registry.install_summary(&caller.actor, q.days.unwrap_or(30)).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AuditQuery {
    /// From `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1–500, default 100.
    pub limit: Option<i64>,
    /// Entries whose actor contains this (`token:ci`, `user:ana`, `operator`).
    pub actor: Option<String>,
    /// Entries whose action starts with this (`plugin.`, `mirror.pull`, `access.denied`).
    pub action: Option<String>,
    /// Entries whose target contains this (`plugin:toolbox`).
    pub target: Option<String>,
    /// From this time on: RFC 3339 (`2026-12-01T09:00:00Z`) or a day (`2026-12-01`).
    pub since: Option<String>,
    /// Before this time: RFC 3339, or a day (up to its end).
    pub until: Option<String>,
}

/// Unix milliseconds of an RFC 3339 time or a `YYYY-MM-DD` day (its start, or with `end_of_day`
/// the start of the next day).
fn parse_time(field: &str, value: &str, end_of_day: bool) -> Result<i64, ApiError> {
    let value = value.trim();
    if let Ok(t) = time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339) {
        return Ok((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let day = time::macros::format_description!("[year]-[month]-[day]");
    match time::Date::parse(value, &day) {
        Ok(d) => {
            let d = if end_of_day { d.next_day().unwrap_or(d) } else { d };
            Ok(d.midnight().assume_utc().unix_timestamp() * 1000)
        }
        Err(_) => {
            let mut err = ApiError::bad_request(format!(
                "{field}: `{value}` is neither an RFC 3339 time (2026-12-01T09:00:00Z) nor a day (2026-12-01)"
            ));
            err.field = Some(field.to_string());
            Err(err)
        }
    }
}

#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditQuery), responses((status = 200, body = Page<AuditEntry>)))]
pub async fn audit(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Query(q): Query<AuditQuery>,
) -> Result<axum::Json<Page<AuditEntry>>, ApiError> {
    let before = match q.cursor.as_deref() {
        Some(c) => Some(
            c.parse::<i64>()
                .map_err(|_| ApiError::bad_request("cursor: use the next_cursor of the previous page"))?,
        ),
        None => None,
    };
    let limit = ListQuery {
        cursor: None,
        limit: q.limit,
    }
    .limit()?;
    let filter = skill_pool_registry::audit::AuditFilter {
        actor: q.actor.as_deref().unwrap_or(""),
        action: q.action.as_deref().unwrap_or(""),
        target: q.target.as_deref().unwrap_or(""),
        since: q.since.as_deref().map(|v| parse_time("since", v, false)).transpose()?,
        until: q.until.as_deref().map(|v| parse_time("until", v, true)).transpose()?,
    };
    Ok(axum::Json(
        state.registry.search_audit(&caller.actor, &filter, before, limit).await?,
    ))
}

#[utoipa::path(get, path = "/v1/managed-settings", tag = "tenant",
    params(("allow" = Option<Vec<String>>, Query, description = "another marketplace to allow (repeat): owner/repo, a git or catalogue URL, or a JSON source object")),
    responses((status = 200, description = "the managed-settings fragment: extraKnownMarketplaces, strictKnownMarketplaces, enabledPlugins", body = Object)))]
pub async fn managed_settings(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    uri: axum::http::Uri,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    // `allow` repeats, which the plain query extractor cannot read into a list.
    let allow: Vec<String> = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .filter(|(k, _)| k == "allow")
        .map(|(_, v)| v.into_owned())
        .collect();
    Ok(axum::Json(state.registry.managed_settings(&caller.actor, &allow).await?))
}
