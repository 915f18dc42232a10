//! The public marketplace browser: the tenant's plugins as cards (search by name, keyword and
//! category; the two Claude Code commands with copy buttons) and a page per plugin saying
//! what it installs. Also the tenant's accent colour as a stylesheet (no inline styles).

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use skill_pool_core::api::{PieceKind, Plugin, PluginBlobs, SourcingMode};
use skill_pool_registry::plugins::page::PluginPage;

use super::session::{MaybeSession, Refusal, Session};
use super::{Chrome, render, safe_url};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Path, Query, Tenant};
use crate::tenant::RoutedTenant;

/// `:root { --accent: … }` from the tenant's branding.
pub async fn brand_css(State(state): State<AppState>, Tenant(tenant): Tenant) -> Result<Response, ApiError> {
    let b = state.registry.branding(tenant.id).await?;
    // Stored values are checked `#rrggbb`; anything else falls back to the default.
    let accent = b
        .accent_color
        .filter(|c| c.len() == 7 && c.starts_with('#') && c[1..].bytes().all(|x| x.is_ascii_hexdigit()))
        .unwrap_or_else(|| "#0b6bcb".into());
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        format!(":root {{ --accent: {accent}; }}\n"),
    )
        .into_response())
}

/// One plugin as a card.
pub struct Card {
    pub slug: String,
    pub title: String,
    pub description: String,
    pub version: String,
    pub mode: &'static str,
    pub category: String,
    pub keywords: Vec<String>,
    /// Lowercased text the page's filter matches.
    pub search: String,
    pub install: String,
}

fn version_of(p: &Plugin) -> String {
    p.current
        .as_ref()
        .map(|v| v.effective_version.clone())
        .or_else(|| p.entry.get("version").and_then(|v| v.as_str()).map(str::to_string))
        .unwrap_or_else(|| "—".into())
}

fn card(p: &Plugin, tenant_slug: &str) -> Card {
    let m = &p.metadata;
    let title = m.display_name.clone().unwrap_or_else(|| p.slug.clone());
    let description = m.description.clone().unwrap_or_default();
    let category = m.category.clone().unwrap_or_default();
    let search = format!("{} {} {} {} {}", p.slug, title, description, category, m.keywords.join(" ")).to_lowercase();
    Card {
        install: format!("/plugin install {}@{tenant_slug}", p.slug),
        slug: p.slug.clone(),
        title,
        description,
        version: version_of(p),
        mode: p.mode.as_str(),
        category,
        keywords: m.keywords.clone(),
        search,
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct BrowseQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    category: String,
}

#[derive(Template)]
#[template(path = "portal/marketplace.html")]
struct BrowserPage {
    chrome: Chrome,
    add: String,
    cards: Vec<Card>,
    total: usize,
    categories: Vec<String>,
    q: String,
    category: String,
}

/// A private tenant's marketplace pages are for its signed-in people only: anyone else is
/// sent to the sign-in page, coming back here afterwards.
fn private_gate(tenant: &RoutedTenant, session: Option<&Session>, uri: &axum::http::Uri) -> Option<Response> {
    if tenant.visibility == skill_pool_core::api::Visibility::Public || session.is_some() {
        return None;
    }
    let here = uri.path_and_query().map_or("/marketplace", |p| p.as_str());
    let next: String = url::form_urlencoded::byte_serialize(format!("{}{here}", tenant.base).as_bytes()).collect();
    Some(Refusal::SignIn(format!("{}/portal/login?next={next}", tenant.base)).into_response())
}

pub async fn browser(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    MaybeSession(session): MaybeSession,
    uri: axum::http::Uri,
    Query(query): Query<BrowseQuery>,
) -> Result<Response, ApiError> {
    if let Some(refusal) = private_gate(&tenant, session.as_ref(), &uri) {
        return Ok(refusal);
    }
    let plugins = state.registry.public_plugins(tenant.id).await?;
    let mut categories: Vec<String> = plugins.iter().filter_map(|p| p.metadata.category.clone()).collect();
    categories.sort();
    categories.dedup();
    let total = plugins.len();
    let needle = query.q.trim().to_lowercase();
    let cards = plugins
        .iter()
        .map(|p| card(p, &tenant.slug))
        .filter(|c| needle.split_whitespace().all(|w| c.search.contains(w)))
        .filter(|c| query.category.is_empty() || c.category == query.category)
        .collect();
    let mut res = render(&BrowserPage {
        chrome: Chrome::new(&state, &tenant, session.as_ref(), "marketplace").await?,
        add: format!("/plugin marketplace add {}", state.registry.tenant_url(&tenant.slug)),
        cards,
        total,
        categories,
        q: query.q,
        category: query.category,
    })?;
    res.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept, Cookie"));
    Ok(res)
}

/// A hook as a line of the "what it runs" list.
pub struct HookLine {
    pub event: String,
    pub matcher: String,
    pub command: String,
}

/// An MCP, LSP server or monitor as a line.
pub struct ServerLine {
    pub name: String,
    pub how: String,
}

/// What a plugin installs and runs, from its configuration.
#[derive(Default)]
pub struct Installs {
    pub skills: Vec<(String, String)>,
    pub agents: Vec<(String, String)>,
    pub commands: Vec<(String, String)>,
    pub hooks: Vec<HookLine>,
    pub mcp: Vec<ServerLine>,
    pub lsp: Vec<ServerLine>,
    pub monitors: Vec<ServerLine>,
}

fn command_line(v: &serde_json::Value) -> String {
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    if let Some(url) = s("url") {
        return format!("{} {url}", s("type").unwrap_or_else(|| "http".into()));
    }
    let mut line = s("command").unwrap_or_default();
    if let Some(args) = v.get("args").and_then(|a| a.as_array()) {
        for a in args.iter().filter_map(|a| a.as_str()) {
            line.push(' ');
            line.push_str(a);
        }
    }
    line
}

fn servers(v: Option<&serde_json::Value>) -> Vec<ServerLine> {
    let Some(serde_json::Value::Object(map)) = v else {
        return Vec::new();
    };
    map.iter()
        .map(|(name, s)| ServerLine {
            name: name.clone(),
            how: command_line(s),
        })
        .collect()
}

pub fn installs(page: &PluginPage) -> Installs {
    let mut out = Installs::default();
    for c in &page.plugin.contents {
        let line = (c.slug.clone(), c.version.clone());
        match c.kind {
            PieceKind::Skill => out.skills.push(line),
            PieceKind::Agent => out.agents.push(line),
            PieceKind::Command => out.commands.push(line),
        }
    }
    let PluginBlobs {
        hooks,
        mcp_servers,
        lsp_servers,
        monitors,
    } = &page.blobs;
    if let Some(events) = hooks.as_ref().and_then(|h| h.get("hooks")).and_then(|h| h.as_object()) {
        for (event, matchers) in events {
            for m in matchers.as_array().into_iter().flatten() {
                let matcher = m.get("matcher").and_then(|x| x.as_str()).unwrap_or("*").to_string();
                for h in m.get("hooks").and_then(|x| x.as_array()).into_iter().flatten() {
                    out.hooks.push(HookLine {
                        event: event.clone(),
                        matcher: matcher.clone(),
                        command: h.get("command").and_then(|x| x.as_str()).unwrap_or("").to_string(),
                    });
                }
            }
        }
    }
    let mcp = mcp_servers.as_ref().map(|m| m.get("mcpServers").unwrap_or(m));
    out.mcp = servers(mcp);
    out.lsp = servers(lsp_servers.as_ref());
    if let Some(list) = monitors.as_ref().and_then(|m| m.as_array()) {
        out.monitors = list
            .iter()
            .map(|m| ServerLine {
                name: m.get("name").and_then(|x| x.as_str()).unwrap_or("monitor").to_string(),
                how: command_line(m),
            })
            .collect();
    } else {
        out.monitors = servers(monitors.as_ref());
    }
    out
}

#[derive(Template)]
#[template(path = "portal/plugin_public.html")]
struct DetailPage {
    chrome: Chrome,
    card: Card,
    add: String,
    installs: Installs,
    homepage: Option<String>,
    repository: Option<String>,
    author: Option<String>,
    external: Option<String>,
    files: Vec<String>,
}

pub async fn detail(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    MaybeSession(session): MaybeSession,
    uri: axum::http::Uri,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    if let Some(refusal) = private_gate(&tenant, session.as_ref(), &uri) {
        return Ok(refusal);
    }
    let page = state.registry.public_plugin_page(tenant.id, &slug).await?;
    let p = &page.plugin;
    let m = &p.metadata;
    render(&DetailPage {
        chrome: Chrome::new(&state, &tenant, session.as_ref(), "marketplace").await?,
        card: card(p, &tenant.slug),
        add: format!("/plugin marketplace add {}", state.registry.tenant_url(&tenant.slug)),
        installs: installs(&page),
        homepage: m.homepage.clone().filter(|u| safe_url(u)),
        repository: m.repository.clone().filter(|u| safe_url(u)),
        author: m.author.as_ref().map(|a| a.name.clone()),
        external: (p.mode == SourcingMode::External).then(|| p.external_source.as_ref().map(|s| s.to_string()).unwrap_or_default()),
        files: p.files.iter().map(|f| f.path.clone()).collect(),
    })
}
