//! The public catalogue: `marketplace.json` and content negotiation at the tenant root (the
//! HTML marketplace browser is the portal's). Served from the registry's rendered cache: bytes, gzip, ETag.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{CatalogueAccess, Query, Tenant};

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|enc| {
            let mut parts = enc.split(';');
            let name = parts.next().unwrap_or("").trim();
            let zero_q = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !zero_q
        })
}

/// Whether the client prefers HTML (a browser) over the catalogue JSON (Claude Code sends
/// `application/json, text/plain, */*`).
pub(crate) fn prefers_html(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|accept| {
        accept
            .split(',')
            .any(|m| m.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("text/html")))
    })
}

fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(',')
            .any(|t| t.trim() == etag || t.trim() == "*" || t.trim().strip_prefix("W/") == Some(etag))
    })
}

/// `GET <T>/.claude-plugin/marketplace.json`. The request is taken whole (no extractor copies
/// its headers or the routed tenant): this is the hottest route.
pub async fn catalogue(State(state): State<AppState>, req: axum::extract::Request) -> Result<Response, ApiError> {
    let (mut parts, _) = req.into_parts();
    let tenant = parts
        .extensions
        .remove::<crate::tenant::RoutedTenant>()
        .ok_or_else(|| ApiError::not_found("no tenant addressed"))?;
    crate::extract::public_access(&parts, &state, &tenant, crate::extract::Surface::Catalogue).await?;
    let client = crate::extract::client_addr(&parts);
    catalogue_of(&state, &tenant, client, &parts.headers).await
}

/// The catalogue's bytes for a request already allowed to read them.
async fn catalogue_of(
    state: &AppState,
    tenant: &crate::tenant::RoutedTenant,
    client: Option<std::net::IpAddr>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let private = tenant.visibility == skill_pool_core::api::Visibility::Private;
    let rendered = state.registry.catalogue(tenant.id).await?;
    // A distinct-clients count (in memory; only a salted hash is ever written).
    if let Some(address) = client {
        let agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
        count_client(state, tenant.id, address, agent);
        state.metrics.catalogue_fetched();
    }
    Ok(catalogue_response(&rendered, headers, private))
}

/// What a catalogue answer is made of: the rendering's shared bytes, or a thread's own copy of
/// them (the fast path's memo, [`catalogue_hot`]).
pub(crate) struct CatalogueBytes {
    etag: HeaderValue,
    gzip: bytes::Bytes,
    json: bytes::Bytes,
}

impl CatalogueBytes {
    /// The rendering's own bytes (shared, no copy).
    fn shared(rendered: &skill_pool_registry::catalogue::RenderedCatalogue) -> CatalogueBytes {
        CatalogueBytes {
            etag: HeaderValue::from_maybe_shared(rendered.etag_bytes.clone()).unwrap_or_else(|_| HeaderValue::from_static("\"\"")),
            gzip: rendered.gzip.clone(),
            json: rendered.json.clone(),
        }
    }

    /// A copy of the ETag and of the bodies up to `max_copy` bytes, for one thread's memo: their
    /// reference counts are then that thread's alone. Larger bodies stay shared (and the gzip one
    /// keeps its address, which the file copy is recognised by).
    fn copied(rendered: &skill_pool_registry::catalogue::RenderedCatalogue, max_copy: usize) -> CatalogueBytes {
        let own = |b: &bytes::Bytes| {
            if b.len() <= max_copy {
                bytes::Bytes::copy_from_slice(b)
            } else {
                b.clone()
            }
        };
        CatalogueBytes {
            etag: HeaderValue::from_bytes(&rendered.etag_bytes).unwrap_or_else(|_| HeaderValue::from_static("\"\"")),
            gzip: own(&rendered.gzip),
            json: own(&rendered.json),
        }
    }
}

/// The answer for a cached catalogue: `304`, the gzip bytes or the JSON, with its headers.
pub(crate) fn catalogue_response(
    rendered: &skill_pool_registry::catalogue::RenderedCatalogue,
    headers: &HeaderMap,
    private: bool,
) -> Response {
    catalogue_answer(&CatalogueBytes::shared(rendered), headers, private)
}

fn catalogue_answer(bytes: &CatalogueBytes, headers: &HeaderMap, private: bool) -> Response {
    let etag = bytes.etag.to_str().unwrap_or("");
    let (status, body, gzip) = if etag_matches(headers, etag) {
        (StatusCode::NOT_MODIFIED, axum::body::Body::empty(), false)
    } else if accepts_gzip(headers) {
        (StatusCode::OK, axum::body::Body::from(bytes.gzip.clone()), true)
    } else {
        (StatusCode::OK, axum::body::Body::from(bytes.json.clone()), false)
    };
    let mut res = Response::new(body);
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.reserve(10);
    // A `304` carries no representation: what a cache keeps from the `200` stays (RFC 9111
    // §4.3.4), and the answer Claude Code's fleet sends most is a few bytes shorter.
    if status == StatusCode::OK {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    h.insert(header::ETAG, bytes.etag.clone());
    if private {
        // Only for the one who asked: no shared cache may keep it or answer another client.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
        h.insert(header::VARY, HeaderValue::from_static("Accept, Accept-Encoding, Authorization"));
    } else {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert(header::VARY, HeaderValue::from_static("Accept, Accept-Encoding"));
    }
    res
}

/// The route template of the catalogue, as the metrics label it.
pub(crate) const CATALOGUE_ROUTE: &str = "/.claude-plugin/marketplace.json";

/// `GET /t/<tenant>/.claude-plugin/marketplace.json` of a public tenant, answered at the edge
/// (`edge.rs`) before the routers: the same checks and answer as [`catalogue`] — the tenant,
/// its visibility, the rate limit, the client count, the metrics — without the two routers'
/// work. `None` when the request is not that (the routers answer it, errors included).
pub(crate) async fn catalogue_at_edge(state: &crate::AppState, req: &axum::http::request::Parts) -> Option<Response> {
    let started = std::time::Instant::now();
    let slug = fast_catalogue_slug(state, &req.method, &req.uri, &req.headers)?;
    let tenant = state.registry.route_tenant(slug).await.ok()??;
    if tenant.visibility != skill_pool_core::api::Visibility::Public {
        return None;
    }
    let client = crate::extract::client_addr(req);
    if let (Some(limiter), Some(address)) = (&state.limiter, client)
        && let Err(wait) = limiter.check(address)
    {
        let mut err = ApiError::new(
            skill_pool_core::ErrorCode::RateLimited,
            format!("too many requests from this address: try again in {wait} s"),
        );
        err.retry_after = Some(wait);
        let res = err.into_response();
        state.metrics.observe_catalogue_get(res.status().as_u16(), started);
        return Some(res);
    }
    let rendered = state.registry.catalogue(tenant.id).await.ok()?;
    let bytes = CatalogueBytes::shared(&rendered);
    Some(public_catalogue_answer(state, tenant.id, &bytes, &req.headers, client, started))
}

/// The same answer as [`catalogue_at_edge`], given before hyper's request reaches tower or
/// axum (`listener.rs`), and only when nothing has to be waited for: the tenant and its
/// rendered catalogue in the caches and the client within its rate limit. `None` otherwise,
/// and the request goes the usual way (which answers the `429`, the misses and the errors).
///
/// A gzip answer of a large catalogue comes with its file copy, for the socket to send with
/// `sendfile` (`zerocopy.rs`).
pub(crate) fn catalogue_hot<B>(
    state: &crate::AppState,
    req: &axum::http::Request<B>,
    client: std::net::IpAddr,
) -> Option<(Response, Option<crate::zerocopy::FileBody>)> {
    let started = std::time::Instant::now();
    let slug = fast_catalogue_slug(state, req.method(), req.uri(), req.headers())?;
    // A refused check takes nothing from the client's allowance: the routers check again and
    // answer the 429.
    let within_limit = |state: &crate::AppState| state.limiter.as_ref().is_none_or(|l| l.check(client).is_ok());
    HOT_MEMO.with(|memo| {
        let mut memo = memo.borrow_mut();
        let entry = memo.entry_for(state, slug, started)?;
        if !within_limit(state) {
            return None;
        }
        let tenant = entry.tenant;
        let res = public_catalogue_answer(state, tenant, &entry.bytes, req.headers(), Some(client), started);
        let file = (res.status() == StatusCode::OK && res.headers().contains_key(header::CONTENT_ENCODING))
            .then(|| entry.rendered.gzip_file())
            .flatten()
            .map(|file| crate::zerocopy::FileBody {
                bytes: entry.rendered.gzip.clone(),
                file: file.clone(),
                sent: state.metrics.catalogue_file_bytes.clone(),
            });
        Some((res, file))
    })
}

/// Bodies up to this size are copied into a thread's memo; larger ones stay shared.
const MEMO_COPY_MAX: usize = 16 * 1024;
/// Catalogues a thread's memo holds at most (it is emptied when full).
const MEMO_ENTRIES: usize = 256;

thread_local! {
    static HOT_MEMO: std::cell::RefCell<HotMemo> = std::cell::RefCell::new(HotMemo::default());
    /// The client fetches this thread counted last.
    static COUNTED: std::cell::RefCell<std::collections::HashSet<CountedClient>> =
        std::cell::RefCell::new(std::collections::HashSet::new());
}

/// (registry, tenant, day, address, user agent's hash) of a counted catalogue client.
type CountedClient = (usize, i64, i64, std::net::IpAddr, u64);

/// What the fast path served last on this thread, per tenant slug: the tenant, the rendering
/// and a copy of its small bytes, reused while the registry's caches have not changed
/// ([`skill_pool_registry::Registry::cache_generation`]) and the pair is fresh. A hit touches
/// nothing another core writes: no lock, no shared reference count.
#[derive(Default)]
struct HotMemo {
    /// The registry ([`skill_pool_registry::Registry::instance_id`]: several servers share a
    /// process in the tests) and the caches' generation the entries belong to.
    owner: (usize, u64),
    entries: std::collections::HashMap<Box<str>, MemoEntry>,
}

struct MemoEntry {
    tenant: skill_pool_store::TenantId,
    rendered: std::sync::Arc<skill_pool_registry::catalogue::RenderedCatalogue>,
    bytes: CatalogueBytes,
    fresh_until: std::time::Instant,
}

impl HotMemo {
    /// The entry for `slug`, from the memo while it is current, else from the registry's caches
    /// (kept when fresh). `None` when the caches cannot answer now.
    fn entry_for(&mut self, state: &crate::AppState, slug: &str, now: std::time::Instant) -> Option<&MemoEntry> {
        let registry = state.registry.instance_id();
        let owner = (registry, state.registry.cache_generation());
        if self.owner != owner {
            self.entries.clear();
            self.owner = owner;
        }
        let current = self.entries.get(slug).is_some_and(|e| now < e.fresh_until);
        if !current {
            let hot = state.registry.hot_catalogue(slug, now)?;
            // A stale pair is served while the registry revalidates it, for as long as that
            // takes: its bytes are shared, not copied for every request until then.
            let bytes = if now < hot.fresh_until {
                CatalogueBytes::copied(&hot.rendered, MEMO_COPY_MAX)
            } else {
                CatalogueBytes::shared(&hot.rendered)
            };
            let entry = MemoEntry {
                tenant: hot.tenant.id,
                bytes,
                rendered: hot.rendered,
                fresh_until: hot.fresh_until,
            };
            match self.entries.get_mut(slug) {
                Some(old) => *old = entry,
                None => {
                    if self.entries.len() >= MEMO_ENTRIES {
                        self.entries.clear();
                    }
                    self.entries.insert(slug.into(), entry);
                }
            }
        }
        self.entries.get(slug)
    }
}

/// A public catalogue fetch that passed its checks: counted (clients, metrics) and answered.
fn public_catalogue_answer(
    state: &crate::AppState,
    tenant: skill_pool_store::TenantId,
    bytes: &CatalogueBytes,
    headers: &HeaderMap,
    client: Option<std::net::IpAddr>,
    started: std::time::Instant,
) -> Response {
    if let Some(address) = client {
        let agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
        count_client(state, tenant, address, agent);
        state.metrics.catalogue_fetched();
    }
    let res = catalogue_answer(bytes, headers, false);
    state.metrics.observe_catalogue_get(res.status().as_u16(), started);
    res
}

/// Counts a distinct client of the day, once per thread and day: a client this thread already
/// counted today is not looked up in the registry's shared buffer again.
fn count_client(state: &crate::AppState, tenant: skill_pool_store::TenantId, address: std::net::IpAddr, agent: &str) {
    use std::hash::{BuildHasher, BuildHasherDefault};
    let day = skill_pool_registry::today_number();
    let agent_hash = BuildHasherDefault::<std::hash::DefaultHasher>::default().hash_one(agent);
    let key = (state.registry.instance_id(), tenant.get(), day, address, agent_hash);
    if COUNTED.with_borrow(|counted| counted.contains(&key)) {
        return;
    }
    if state.registry.record_catalogue_fetch(tenant, address, agent) == Some(day) {
        COUNTED.with_borrow_mut(|counted| {
            if counted.len() >= 4096 {
                counted.clear();
            }
            counted.insert(key);
        });
    }
}

/// The tenant's slug when the request is a plain `GET <prefix>/t/<slug>/.claude-plugin/marketplace.json`
/// that tenant routing would give to that tenant (no host-based tenants configured, one Host).
fn fast_catalogue_slug<'a>(
    state: &crate::AppState,
    method: &axum::http::Method,
    uri: &'a axum::http::Uri,
    headers: &HeaderMap,
) -> Option<&'a str> {
    if method != axum::http::Method::GET || state.config.base_domain.is_some() {
        return None;
    }
    let rest = uri.path().strip_prefix("/t/")?;
    let (slug, path) = rest.split_once('/')?;
    if path != &CATALOGUE_ROUTE[1..] || slug.is_empty() {
        return None;
    }
    let mut hosts = headers.get_all(header::HOST).iter();
    if hosts.next().is_some() && hosts.next().is_some() {
        return None;
    }
    Some(slug)
}

/// The tenant root: the catalogue for Claude Code (and anything that does not ask for
/// HTML), the marketplace browser for a browser (behind sign-in for a private tenant).
pub async fn root(state: State<AppState>, tenant: Tenant, parts: axum::http::request::Parts) -> Result<Response, ApiError> {
    if prefers_html(&parts.headers) {
        // The browser's session and search are read only here: Claude Code's request is
        // answered exactly as `marketplace.json` is, whatever its query string or cookies.
        let session = crate::portal::session_from_headers(&state, &tenant.0, &parts.headers).await?;
        let query = axum::extract::Query::<crate::portal::BrowseQuery>::try_from_uri(&parts.uri)
            .map(|q| q.0)
            .unwrap_or_default();
        return crate::portal::browser(state, tenant, crate::portal::MaybeSession(session), parts.uri, Query(query)).await;
    }
    let (State(state), Tenant(tenant)) = (state, tenant);
    crate::extract::public_access(&parts, &state, &tenant, crate::extract::Surface::Catalogue).await?;
    let client = crate::extract::client_addr(&parts);
    catalogue_of(&state, &tenant, client, &parts.headers).await
}

/// `GET <T>/archives/<plugin>/<version>.zip`: a version's zip for `archive` sources, rendered
/// once and served as a static file. Authorised like the catalogue (Claude Code sends the
/// catalogue's headers to same-origin archive downloads).
pub async fn archive(
    State(state): State<AppState>,
    CatalogueAccess { tenant }: CatalogueAccess,
    crate::extract::Path((plugin, file)): crate::extract::Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let served = state.registry.archive(tenant.id, &plugin, &file).await?;
    let etag = format!("\"{}\"", &served.sha256[..32]);
    let mut res = if etag_matches(&headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        // Streamed from the file: a large zip costs no memory per download.
        let file = tokio::fs::File::open(&served.path).await.map_err(|e| {
            ApiError::from(skill_pool_registry::RegistryError::Internal(format!(
                "reading {}: {e}",
                served.path.display()
            )))
        })?;
        let mut res = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file)).into_response();
        res.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(served.size));
        // A download is an install of the version (the file is named by its commit), counted
        // like a git fetch that gets a pack.
        if let Some(commit) = served.path.file_stem().and_then(|s| s.to_str()) {
            state.registry.record_pack_fetch(tenant.id, &plugin, &[commit.to_string()]);
            state.metrics.pack_fetched();
        }
        res
    };
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/zip"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    let cache = if tenant.visibility == skill_pool_core::api::Visibility::Private {
        "private, max-age=31536000, immutable"
    } else {
        "public, max-age=31536000, immutable"
    };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: header::HeaderName, v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(name, HeaderValue::from_str(v).unwrap());
        m
    }

    #[test]
    fn negotiation() {
        assert!(!prefers_html(&h(header::ACCEPT, "application/json, text/plain, */*")));
        assert!(prefers_html(&h(header::ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8")));
        assert!(!prefers_html(&HeaderMap::new()));
        assert!(accepts_gzip(&h(header::ACCEPT_ENCODING, "gzip, compress, deflate, br")));
        assert!(!accepts_gzip(&h(header::ACCEPT_ENCODING, "gzip;q=0, br")));
        assert!(!accepts_gzip(&h(header::ACCEPT_ENCODING, "br")));
        assert!(etag_matches(&h(header::IF_NONE_MATCH, "\"a\", \"b\""), "\"b\""));
    }
}
