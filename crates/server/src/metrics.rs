//! Prometheus metrics: requests by route, method and status; latency histogram; the database pool.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::shards::{ShardedCounter, ShardedHistogram};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// The method as a label from a closed set: anything else is `other`, so made-up methods
/// cannot grow the label space.
pub(crate) fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GitAnswerLabels {
    kind: &'static str,
    from: &'static str,
}

/// What a git answer was (the label `kind` of `skill_pool_git_answers_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GitAnswerKind {
    /// `info/refs` (v0 or v2).
    Advertisement,
    /// A v2 `ls-refs` command.
    LsRefs,
    /// A fetch (the pack), or any other `git-upload-pack` request.
    Fetch,
}

/// Where a git answer came from (the label `from`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GitAnswerFrom {
    /// The in-memory answers (advertisements, `ls-refs`).
    Memory,
    /// The pack cache on disk (a first fetch).
    PackCache,
    /// A `git upload-pack` process.
    Git,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

pub struct Metrics {
    registry: Registry,
    /// Requests and latencies are written by every request on every core: sharded per thread.
    requests: Family<RequestLabels, ShardedCounter>,
    latency: Family<RouteLabels, ShardedHistogram>,
    pool: Family<PoolLabels, Gauge>,
    auth_failures: Family<ReasonLabels, Counter>,
    git_refused: Family<ReasonLabels, Counter>,
    packs_fetched: Counter,
    git_answers: Family<GitAnswerLabels, Counter>,
    catalogue_fetches: ShardedCounter,
    /// Catalogue answers given from the caches before the routers (`edge::hot_answer`).
    catalogue_early: ShardedCounter,
    /// Catalogue bytes sent from their file with `sendfile` (`zerocopy.rs`).
    pub(crate) catalogue_file_bytes: Counter,
    /// The catalogue's series (latency, `200`, `304` of `GET`), looked up once: the hot path
    /// records a request without hashing labels or allocating them.
    catalogue: std::sync::OnceLock<(ShardedHistogram, ShardedCounter, ShardedCounter)>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("skill_pool");
        let requests = Family::<RequestLabels, ShardedCounter>::default();
        // Buckets: `shards::LATENCY_BUCKETS`.
        let latency = Family::<RouteLabels, ShardedHistogram>::default();
        let pool = Family::<PoolLabels, Gauge>::default();
        registry.register("http_requests", "HTTP requests by route, method and status", requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency by route", latency.clone());
        registry.register("db_pool_connections", "Database pool connections by state", pool.clone());
        let auth_failures = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "auth_failures",
            "Failed authentications (wrong or revoked tokens), and requests refused for too many of them",
            auth_failures.clone(),
        );
        let git_refused = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "git_refused",
            "git requests refused because too many upload-pack processes ran (in all, or for the address)",
            git_refused.clone(),
        );
        // No labels at all: tenants, plugins and versions are per-tenant data (in `/v1/installs`).
        let packs_fetched = Counter::default();
        registry.register(
            "git_packs_fetched",
            "git fetches that downloaded a pack of a plugin (installs and updates), all tenants",
            packs_fetched.clone(),
        );
        let git_answers = Family::<GitAnswerLabels, Counter>::default();
        registry.register(
            "git_answers",
            "git smart-HTTP answers by kind (advertisement, ls-refs, fetch) and where they came from \
             (memory, pack_cache, git: a git upload-pack process), all tenants",
            git_answers.clone(),
        );
        let catalogue_fetches = ShardedCounter::default();
        registry.register(
            "catalogue_fetches",
            "catalogue fetches (marketplace.json and the tenant root), all tenants",
            catalogue_fetches.clone(),
        );
        let catalogue_early = ShardedCounter::default();
        registry.register(
            "catalogue_early_answers",
            "catalogue answers given from the caches before the routers (the fast path), all tenants",
            catalogue_early.clone(),
        );
        let catalogue_file_bytes = Counter::default();
        registry.register(
            "catalogue_sendfile_bytes",
            "catalogue bytes sent straight from their file with sendfile (large gzip answers), all tenants",
            catalogue_file_bytes.clone(),
        );
        Metrics {
            catalogue: std::sync::OnceLock::new(),
            catalogue_early,
            catalogue_file_bytes,
            packs_fetched,
            git_answers,
            catalogue_fetches,
            registry,
            requests,
            latency,
            pool,
            auth_failures,
            git_refused,
        }
    }

    /// One failed authentication (`wrong_token`), or one request refused for too many (`limited`).
    pub fn auth_failure(&self, limited: bool) {
        let reason = if limited { "limited" } else { "wrong_token" };
        self.auth_failures.get_or_create(&ReasonLabels { reason }).inc();
    }

    pub fn git_refused(&self, busy: bool) {
        let reason = if busy { "busy" } else { "address" };
        self.git_refused.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// One answered request under its route template (`route`), method and status.
    pub fn observe(&self, route: &str, method: &'static str, status: u16, started: Instant) {
        let route = route.to_string();
        self.latency
            .get_or_create(&RouteLabels { route: route.clone() })
            .observe(started.elapsed());
        self.requests.get_or_create(&RequestLabels { route, method, status }).inc();
    }

    /// [`Self::observe`] for a `GET` of the catalogue route.
    pub fn observe_catalogue_get(&self, status: u16, started: Instant) {
        let route = crate::routes::public::CATALOGUE_ROUTE;
        let (latency, ok, not_modified) = self.catalogue.get_or_init(|| {
            let counter = |status| {
                self.requests
                    .get_or_create(&RequestLabels {
                        route: route.into(),
                        method: "GET",
                        status,
                    })
                    .clone()
            };
            let latency = self.latency.get_or_create(&RouteLabels { route: route.into() }).clone();
            (latency, counter(200), counter(304))
        });
        match status {
            200 => ok.inc(),
            304 => not_modified.inc(),
            _ => return self.observe(route, "GET", status, started),
        };
        latency.observe(started.elapsed());
    }

    /// One git answer given: what it was and where it came from.
    pub fn git_answered(&self, kind: GitAnswerKind, from: GitAnswerFrom) {
        let kind = match kind {
            GitAnswerKind::Advertisement => "advertisement",
            GitAnswerKind::LsRefs => "ls-refs",
            GitAnswerKind::Fetch => "fetch",
        };
        let from = match from {
            GitAnswerFrom::Memory => "memory",
            GitAnswerFrom::PackCache => "pack_cache",
            GitAnswerFrom::Git => "git",
        };
        self.git_answers.get_or_create(&GitAnswerLabels { kind, from }).inc();
    }

    pub fn pack_fetched(&self) {
        self.packs_fetched.inc();
    }

    pub fn catalogue_fetched(&self) {
        self.catalogue_fetches.inc();
    }

    /// One catalogue answer from the caches, before the routers.
    pub fn catalogue_answered_early(&self) {
        self.catalogue_early.inc();
    }

    /// The Prometheus text exposition, with the pool gauges read now.
    pub fn render(&self, pool: (u32, u32)) -> String {
        self.pool.get_or_create(&PoolLabels { state: "in_use" }).set(i64::from(pool.0));
        self.pool.get_or_create(&PoolLabels { state: "idle" }).set(i64::from(pool.1));
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Records each request under its route template (not the raw path: bounded label values).
#[derive(Clone)]
pub struct TrackLayer(pub Arc<Metrics>);

impl<S> tower::Layer<S> for TrackLayer {
    type Service = Track<S>;
    fn layer(&self, inner: S) -> Track<S> {
        Track {
            inner,
            metrics: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Track<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> tower::Service<Request> for Track<S>
where
    S: tower::Service<Request, Response = Response, Error = std::convert::Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response, std::convert::Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let route = req.extensions().get::<MatchedPath>().cloned();
        let method = method_label(req.method());
        let metrics = self.metrics.clone();
        let started = Instant::now();
        // Called now, on the service our caller polled ready (no clone of it); awaited below.
        let answer = self.inner.call(req);
        Box::pin(async move {
            let Ok(res) = answer.await;
            let route = route.as_ref().map_or("unmatched", |m| m.as_str());
            metrics.observe(route, method, res.status().as_u16(), started);
            Ok(res)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_come_from_a_closed_set() {
        assert_eq!(method_label(&axum::http::Method::GET), "GET");
        let made_up = axum::http::Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&made_up), "other");
    }
}
