//! Admin → Plugins: the list (mode, version, last change, the warning chip of a mirror whose
//! last pull failed), a plugin's page (versions, pinned contents with "newer version" notes,
//! mirror status and "refresh now", delete with confirmation) and the composer (new and
//! edit), which previews the tree and publishes through the same use cases as `/v1/plugins`.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use skill_pool_core::api::{
    Author, ContentRef, CreatePlugin, PieceKind, Plugin, PluginBlobs, PluginContent, PluginMetadata, SourcingMode, UpdatePlugin,
};
use skill_pool_registry::RegistryError;
use skill_pool_registry::plugins::PreviewFile;
use skill_pool_registry::plugins::page::{ComposerPiece, PluginPage};

use super::market::{Installs, installs};
use super::session::{AdminSession, Form, FormData, Refusal, Session, see_other};
use super::{Chrome, filters, render, safe_url, short_time};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Path, Query};

/// One row of the plugins list.
pub struct Row {
    pub slug: String,
    pub title: String,
    pub mode: &'static str,
    pub version: String,
    pub updated_at: String,
    /// `2026-12-01 12:33 UTC`
    pub updated_short: String,
    /// The warning chip: the class of a mirror's failed last pull.
    pub failing: Option<String>,
    pub held: bool,
}

fn row(p: &Plugin) -> Row {
    Row {
        slug: p.slug.clone(),
        title: p.metadata.display_name.clone().unwrap_or_default(),
        mode: p.mode.as_str(),
        version: p
            .current
            .as_ref()
            .map(|v| v.effective_version.clone())
            .or_else(|| p.entry.get("version").and_then(|v| v.as_str()).map(str::to_string))
            .unwrap_or_else(|| "—".into()),
        updated_at: p.updated_at.clone(),
        updated_short: short_time(&p.updated_at),
        failing: p.mirror.as_ref().and_then(|m| m.last_error.as_ref()).map(|e| e.class.clone()),
        held: p.mirror.as_ref().is_some_and(|m| m.held.is_some()),
    }
}

#[derive(Template)]
#[template(path = "portal/plugins.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
}

pub async fn list(State(state): State<AppState>, s: Session) -> Result<Response, Refusal> {
    let page = state
        .registry
        .list_plugins(&s.signed_in.actor, None, 500)
        .await
        .map_err(ApiError::from)?;
    Ok(render(&ListPage {
        chrome: Chrome::of(&state, &s, "plugins").await?,
        rows: page.items.iter().map(row).collect(),
    })?)
}

#[derive(Template)]
#[template(path = "portal/plugin.html")]
struct DetailPage {
    chrome: Chrome,
    p: Plugin,
    /// Each version (newest first) with what it changed.
    versions: Vec<(skill_pool_core::api::PluginVersion, Vec<String>)>,
    /// Each pinned piece with the newer version of it, when one exists.
    contents: Vec<(PluginContent, Option<String>)>,
    installs: Installs,
    external: Option<String>,
    homepage: Option<String>,
    notice: Option<String>,
    /// A composed plugin (the composer can edit it).
    composed: bool,
}

#[derive(Debug, serde::Deserialize, Default)]
pub struct DetailQuery {
    published: Option<String>,
    refreshed: Option<i64>,
}

pub async fn detail(
    State(state): State<AppState>,
    s: Session,
    Path(slug): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Result<Response, Refusal> {
    let page = state
        .registry
        .plugin_page(&s.signed_in.actor, &slug)
        .await
        .map_err(ApiError::from)?;
    let notice = match (q.published, q.refreshed) {
        (Some(v), _) => Some(format!("Published {v}. Claude Code sees it at the next marketplace update.")),
        (None, Some(job)) => Some(format!("Refresh queued as job {job}: reload this page to see how it went.")),
        _ => None,
    };
    let p = page.plugin.clone();
    let composed = page.composed;
    Ok(render(&DetailPage {
        chrome: Chrome::of(&state, &s, "plugins").await?,
        installs: installs(&page),
        external: p.external_source.as_ref().map(|v| v.to_string()),
        homepage: p.metadata.homepage.clone().filter(|u| safe_url(u)),
        notice,
        composed,
        contents: p.contents.iter().cloned().zip(page.newer.iter().cloned()).collect(),
        versions: p
            .versions
            .iter()
            .map(|v| (v.clone(), page.changes.get(&v.seq).cloned().unwrap_or_default()))
            .collect(),
        p,
    })?)
}

pub async fn refresh(State(state): State<AppState>, Path(slug): Path<String>, form: Form) -> Result<Response, Refusal> {
    let job = state
        .registry
        .refresh_mirror(&form.session.signed_in.actor, &slug)
        .await
        .map_err(ApiError::from)?;
    Ok(see_other(&format!(
        "{}/portal/plugins/{slug}?refreshed={}",
        form.session.tenant.base, job.id
    )))
}

/// Lifts the hold of a mirror whose upstream was force-pushed.
pub async fn accept(State(state): State<AppState>, Path(slug): Path<String>, form: Form) -> Result<Response, Refusal> {
    let job = state
        .registry
        .accept_mirror(&form.session.signed_in.actor, &slug)
        .await
        .map_err(ApiError::from)?;
    Ok(see_other(&format!(
        "{}/portal/plugins/{slug}?refreshed={}",
        form.session.tenant.base, job.id
    )))
}

#[derive(Template)]
#[template(path = "portal/delete.html")]
struct DeletePage {
    chrome: Chrome,
    slug: String,
    error: Option<String>,
}

pub async fn confirm_delete(
    State(state): State<AppState>,
    AdminSession(s): AdminSession,
    Path(slug): Path<String>,
) -> Result<Response, Refusal> {
    // Only an existing plugin gets a confirmation page.
    state
        .registry
        .show_plugin(&s.signed_in.actor, &slug)
        .await
        .map_err(ApiError::from)?;
    Ok(render(&DeletePage {
        chrome: Chrome::of(&state, &s, "plugins").await?,
        slug,
        error: None,
    })?)
}

pub async fn delete(State(state): State<AppState>, Path(slug): Path<String>, form: Form) -> Result<Response, Refusal> {
    let s = &form.session;
    if form.data.get("confirm").trim() != slug {
        let mut res = render(&DeletePage {
            chrome: Chrome::of(&state, s, "plugins").await?,
            error: Some(format!("type `{slug}` to confirm")),
            slug,
        })?;
        *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(res);
    }
    state
        .registry
        .delete_plugin(&s.signed_in.actor, &slug)
        .await
        .map_err(ApiError::from)?;
    Ok(see_other(&format!("{}/portal/plugins", s.tenant.base)))
}

/// The composer's fields, as typed.
#[derive(Debug, Default, Clone)]
pub struct Fields {
    pub slug: String,
    pub display_name: String,
    pub version: String,
    pub description: String,
    pub author: String,
    pub category: String,
    pub keywords: String,
    pub homepage: String,
    pub hooks: String,
    pub mcp_servers: String,
    pub lsp_servers: String,
    pub monitors: String,
    /// One dependency a line: `name`, `name@^1.0.0`, `name@marketplace`, or a JSON object.
    pub dependencies: String,
    /// `kind:slug` → the version chosen ("" = latest).
    pub chosen: BTreeMap<String, String>,
}

impl Fields {
    fn from_form(f: &FormData) -> Fields {
        let mut chosen = BTreeMap::new();
        for key in f.all("piece") {
            chosen.insert(key.to_string(), f.get(&format!("v:{key}")).trim().to_string());
        }
        Fields {
            slug: f.get("slug").trim().to_string(),
            display_name: f.get("display_name").trim().to_string(),
            version: f.get("version").trim().to_string(),
            description: f.get("description").trim().to_string(),
            author: f.get("author").trim().to_string(),
            category: f.get("category").trim().to_string(),
            keywords: f.get("keywords").trim().to_string(),
            homepage: f.get("homepage").trim().to_string(),
            hooks: f.get("hooks").to_string(),
            mcp_servers: f.get("mcp_servers").to_string(),
            lsp_servers: f.get("lsp_servers").to_string(),
            monitors: f.get("monitors").to_string(),
            dependencies: f.get("dependencies").to_string(),
            chosen,
        }
    }

    fn from_page(page: &PluginPage) -> Fields {
        let p = &page.plugin;
        let m = &p.metadata;
        let pretty = |v: &Option<serde_json::Value>| v.as_ref().and_then(|v| serde_json::to_string_pretty(v).ok()).unwrap_or_default();
        Fields {
            slug: p.slug.clone(),
            display_name: m.display_name.clone().unwrap_or_default(),
            version: p.current.as_ref().and_then(|v| v.version.clone()).unwrap_or_default(),
            description: m.description.clone().unwrap_or_default(),
            author: m.author.as_ref().map(|a| a.name.clone()).unwrap_or_default(),
            category: m.category.clone().unwrap_or_default(),
            keywords: m.keywords.join(", "),
            homepage: m.homepage.clone().unwrap_or_default(),
            hooks: pretty(&page.blobs.hooks),
            mcp_servers: pretty(&page.blobs.mcp_servers),
            lsp_servers: pretty(&page.blobs.lsp_servers),
            monitors: pretty(&page.blobs.monitors),
            dependencies: page
                .dependencies
                .iter()
                .map(|d| d.as_str().map(str::to_string).unwrap_or_else(|| d.to_string()))
                .collect::<Vec<_>>()
                .join("\n"),
            chosen: p
                .contents
                .iter()
                .map(|c| (format!("{}:{}", c.kind, c.slug), c.version.clone()))
                .collect(),
        }
    }

    fn metadata(&self) -> PluginMetadata {
        let opt = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
        PluginMetadata {
            display_name: opt(&self.display_name),
            description: opt(&self.description),
            author: opt(&self.author).map(|name| Author {
                name,
                email: None,
                url: None,
            }),
            homepage: opt(&self.homepage),
            keywords: self
                .keywords
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(str::to_string)
                .collect(),
            category: opt(&self.category),
            ..PluginMetadata::default()
        }
    }

    fn contents(&self) -> Result<Vec<ContentRef>, FieldError> {
        self.chosen
            .iter()
            .map(|(key, version)| {
                let (kind, slug) = key
                    .split_once(':')
                    .and_then(|(k, s)| PieceKind::parse(k).map(|k| (k, s)))
                    .ok_or_else(|| FieldError::new("contents", format!("`{key}` is not a registered piece")))?;
                Ok(ContentRef {
                    kind,
                    slug: slug.to_string(),
                    version: Some(version.clone()).filter(|v| !v.is_empty()),
                })
            })
            .collect()
    }

    fn blobs(&self) -> Result<PluginBlobs, FieldError> {
        let parse = |field: &str, text: &str| -> Result<Option<serde_json::Value>, FieldError> {
            if text.trim().is_empty() {
                return Ok(None);
            }
            serde_json::from_str(text)
                .map(Some)
                .map_err(|e| FieldError::new(field, format!("not valid JSON: {e}")))
        };
        Ok(PluginBlobs {
            hooks: parse("hooks", &self.hooks)?,
            mcp_servers: parse("mcp_servers", &self.mcp_servers)?,
            lsp_servers: parse("lsp_servers", &self.lsp_servers)?,
            monitors: parse("monitors", &self.monitors)?,
        })
    }

    fn dependencies(&self) -> Result<Vec<serde_json::Value>, FieldError> {
        self.dependencies
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|line| {
                if line.starts_with('{') {
                    serde_json::from_str(line).map_err(|e| FieldError::new("dependencies", format!("`{line}` is not valid JSON: {e}")))
                } else {
                    Ok(serde_json::Value::String(line.to_string()))
                }
            })
            .collect()
    }

    fn create_request(&self) -> Result<CreatePlugin, FieldError> {
        Ok(CreatePlugin {
            slug: self.slug.clone(),
            mode: None,
            version: Some(self.version.clone()).filter(|v| !v.is_empty()),
            metadata: self.metadata(),
            contents: self.contents()?,
            blobs: self.blobs()?,
            dependencies: self.dependencies()?,
            source: None,
            entry: serde_json::Map::new(),
        })
    }

    fn is_chosen(&self, kind: &PieceKind, slug: &str) -> bool {
        self.chosen.contains_key(&format!("{kind}:{slug}"))
    }

    fn chosen_version(&self, kind: &PieceKind, slug: &str) -> &str {
        self.chosen.get(&format!("{kind}:{slug}")).map_or("", String::as_str)
    }
}

/// A refusal shown beside one field of the composer.
#[derive(Debug, Clone)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    fn new(field: &str, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Which composer field a registry refusal belongs to.
    fn from_registry(e: &RegistryError) -> FieldError {
        let raw = e.field().unwrap_or("");
        let field = if matches!(e, RegistryError::VersionConflict { .. }) {
            "version"
        } else if let Some(rest) = raw.strip_prefix("blobs.") {
            ["hooks", "mcp_servers", "lsp_servers", "monitors"]
                .into_iter()
                .find(|b| rest.starts_with(b))
                .unwrap_or("general")
        } else {
            match raw {
                "slug" | "name" => "slug",
                "version" => "version",
                "contents" => "contents",
                "description" | "author" | "category" | "keywords" | "homepage" => raw,
                "displayName" | "display_name" => "display_name",
                f if f.starts_with("author") => "author",
                _ => "general",
            }
        };
        FieldError::new(field, e.to_string())
    }
}

#[derive(Template)]
#[template(path = "portal/composer.html")]
struct ComposerPage {
    chrome: Chrome,
    editing: bool,
    f: Fields,
    pieces: Vec<ComposerPiece>,
    preview: Option<Vec<PreviewFile>>,
    error: Option<FieldError>,
}

impl ComposerPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        self.error.as_ref().filter(|e| e.field == field).map(|e| e.message.as_str())
    }

    fn action(&self) -> String {
        if self.editing {
            format!("{}/portal/plugins/{}/edit", self.chrome.base, self.f.slug)
        } else {
            format!("{}/portal/plugins/new", self.chrome.base)
        }
    }
}

async fn composer(
    state: &AppState,
    s: &Session,
    editing: bool,
    f: Fields,
    preview: Option<Vec<PreviewFile>>,
    error: Option<FieldError>,
) -> Result<Response, Refusal> {
    let pieces = state.registry.composer_pieces(&s.signed_in.actor).await.map_err(ApiError::from)?;
    let failed = error.is_some();
    let mut res = render(&ComposerPage {
        chrome: Chrome::of(state, s, "plugins").await?,
        editing,
        f,
        pieces,
        preview,
        error,
    })?;
    if failed {
        *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(res)
}

pub async fn new_form(State(state): State<AppState>, AdminSession(s): AdminSession) -> Result<Response, Refusal> {
    composer(&state, &s, false, Fields::default(), None, None).await
}

pub async fn edit_form(
    State(state): State<AppState>,
    AdminSession(s): AdminSession,
    Path(slug): Path<String>,
) -> Result<Response, Refusal> {
    let page = state
        .registry
        .plugin_page(&s.signed_in.actor, &slug)
        .await
        .map_err(ApiError::from)?;
    if page.plugin.mode != SourcingMode::Internal {
        return Err(ApiError::bad_request(format!(
            "plugin `{slug}` is {}: only composed plugins are edited here",
            page.plugin.mode.as_str()
        ))
        .into());
    }
    composer(&state, &s, true, Fields::from_page(&page), None, None).await
}

/// Preview (`action=preview`) or publish (`action=publish`) what the composer holds.
async fn submit(state: &AppState, form: Form, editing: Option<String>) -> Result<Response, Refusal> {
    if !form.session.is_admin() {
        return Err(Refusal::Error(ApiError::new(
            skill_pool_core::ErrorCode::Forbidden,
            "composing plugins is for admins",
        )));
    }
    let s = &form.session;
    let mut f = Fields::from_form(&form.data);
    if let Some(slug) = &editing {
        f.slug = slug.clone();
    }
    let req = match f.create_request() {
        Ok(r) => r,
        Err(e) => return composer(state, s, editing.is_some(), f, None, Some(e)).await,
    };
    let actor = &s.signed_in.actor;
    // The preview is shown with every answer, so what is published is what was previewed.
    let preview = match state.registry.preview_plugin(actor, &req).await {
        Ok(p) => p,
        Err(e) if e.code().http_status() < 500 => {
            return composer(state, s, editing.is_some(), f, None, Some(FieldError::from_registry(&e))).await;
        }
        Err(e) => return Err(ApiError::from(e).into()),
    };
    if form.data.get("action") != "publish" {
        return composer(state, s, editing.is_some(), f, Some(preview), None).await;
    }
    let outcome = match &editing {
        None => state.registry.create_plugin(actor, req).await,
        Some(slug) => {
            state
                .registry
                .update_plugin(
                    actor,
                    slug,
                    UpdatePlugin {
                        version: Some(req.version.clone().unwrap_or_default()),
                        metadata: Some(req.metadata),
                        contents: Some(req.contents),
                        blobs: Some(req.blobs),
                        dependencies: Some(req.dependencies),
                        source: None,
                    },
                )
                .await
        }
    };
    match outcome {
        Ok(done) => {
            let version = done
                .plugin
                .current
                .as_ref()
                .map(|v| v.effective_version.clone())
                .unwrap_or_default();
            let version: String = url::form_urlencoded::byte_serialize(version.as_bytes()).collect();
            Ok(see_other(&format!(
                "{}/portal/plugins/{}?published={version}",
                s.tenant.base, done.plugin.slug
            )))
        }
        Err(e) if e.code().http_status() < 500 => {
            composer(state, s, editing.is_some(), f, Some(preview), Some(FieldError::from_registry(&e))).await
        }
        Err(e) => Err(ApiError::from(e).into()),
    }
}

/// `POST /portal/plugins/validate`: the composer's fields checked as they are typed (the same
/// checks as Publish, nothing written): `{"ok": true, "files": [...]}` or `{"ok": false,
/// "field": …, "message": …}`.
pub async fn validate(State(state): State<AppState>, form: Form) -> Result<Response, Refusal> {
    use axum::response::IntoResponse;
    let s = &form.session;
    let mut f = Fields::from_form(&form.data);
    if let Some(slug) = form.data.opt("editing") {
        f.slug = slug;
    }
    let outcome = match f.create_request() {
        Err(e) => Err(e),
        Ok(req) => match state.registry.preview_plugin(&s.signed_in.actor, &req).await {
            Ok(files) => Ok(files),
            Err(e) if e.code().http_status() < 500 => Err(FieldError::from_registry(&e)),
            Err(e) => return Err(ApiError::from(e).into()),
        },
    };
    let body = match outcome {
        Ok(files) => serde_json::json!({
            "ok": true,
            "files": files.iter().map(|f| serde_json::json!({"path": f.path, "size": f.size, "from": f.from})).collect::<Vec<_>>(),
        }),
        Err(e) => serde_json::json!({ "ok": false, "field": e.field, "message": e.message }),
    };
    Ok((
        [(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"))],
        axum::Json(body),
    )
        .into_response())
}

pub async fn submit_new(State(state): State<AppState>, form: Form) -> Result<Response, Refusal> {
    submit(&state, form, None).await
}

pub async fn submit_edit(State(state): State<AppState>, Path(slug): Path<String>, form: Form) -> Result<Response, Refusal> {
    submit(&state, form, Some(slug)).await
}
