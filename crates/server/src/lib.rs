//! skill-pool's HTTP server: tenant routing, the `/v1` API, the public catalogue and git
//! endpoint, the portal (HTML), health and metrics. Handlers parse, make one `registry` call, and render.

pub mod config;
mod conntimer;
mod edge;
pub mod error;
mod extract;
mod gitslots;
mod listener;
mod metrics;
mod openapi;
mod portal;
mod ratelimit;
mod routes;
mod shards;
mod tenant;
mod zerocopy;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use skill_pool_registry::{Registry, RegistryConfig};
use skill_pool_store::{BlobStore, Store, StoreOptions};

pub use config::{ServeArgs, ServerConfig, StorageArgs};

/// How often buffered install counts are written.
const INSTALLS_FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Shared by every handler. One `Arc`: axum clones the state several times per request (each
/// layer, handler and `State` extractor), so a clone is one counter, not one per field.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] shares.
#[derive(Clone)]
pub struct Shared {
    pub registry: Registry,
    pub config: Arc<ServerConfig>,
    metrics: Arc<metrics::Metrics>,
    limiter: Option<Arc<ratelimit::Limiter>>,
    auth_failures: Arc<ratelimit::FailureLimiter>,
    git_slots: Arc<gitslots::GitSlots>,
    /// Ref advertisements and `ls-refs` answers, per head (`skill_pool_git::answers`).
    git_answers: Arc<skill_pool_git::answers::SmallAnswers>,
    /// Packs of first fetches on disk; `None` when turned off.
    pack_cache: Option<Arc<skill_pool_git::answers::PackCache>>,
    tenant_router: Router,
}

/// Opens the store named by the configuration and applies migrations.
pub async fn open_store(data_dir: &std::path::Path, database_url: &str) -> anyhow::Result<Store> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    // The data directory holds tokens, the database and every published file: owner only.
    if !data_dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    } else if let Ok(meta) = std::fs::metadata(data_dir)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            data_dir = %data_dir.display(),
            mode = format!("{:o}", meta.permissions().mode() & 0o777),
            "the data directory is readable by other users; `chmod 700` it"
        );
    }
    let store = Store::connect(database_url, BlobStore::new(data_dir.join("blobs")), &StoreOptions::default())
        .await
        .with_context(|| format!("connecting to {}", skill_pool_store::redact_url(database_url)))?;
    store.migrate().await.context("applying database migrations")?;
    // SQLite's files (the database and its journal) are the owner's only.
    if let Some(path) = database_url.strip_prefix("sqlite://").map(|p| p.split('?').next().unwrap_or(p)) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let file = std::path::PathBuf::from(format!("{path}{suffix}"));
            if file.exists() {
                let _ = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600));
            }
        }
    }
    Ok(store)
}

pub fn registry_for(store: Store, config: &ServerConfig) -> Registry {
    registry_with_queue(store, config, None)
}

fn registry_with_queue(store: Store, config: &ServerConfig, queue: Option<skill_pool_registry::queue::RedisQueue>) -> Registry {
    Registry::with_queue(
        store,
        RegistryConfig {
            data_dir: config.data_dir.clone(),
            public_url: config.public_url.clone(),
            max_upload_bytes: config.max_upload_bytes,
            mirror: config.mirror.clone(),
            limits: config.tenant_limits,
            catalogue_cache_bytes: config.catalogue_cache_bytes,
        },
        queue,
    )
}

/// The whole application as a router (for tests that drive it in-process).
pub fn app(registry: Registry, config: ServerConfig) -> Router {
    app_and_state(registry, config).0
}

/// The application and the state its routes share (what the listener's hot path reads).
fn app_and_state(registry: Registry, config: ServerConfig) -> (Router, AppState) {
    let config = Arc::new(config);
    let metrics = Arc::new(metrics::Metrics::new());
    let limiter = (config.rate_limit_per_min > 0).then(|| Arc::new(ratelimit::Limiter::new(config.rate_limit_per_min)));
    let shared = Shared {
        registry,
        config: config.clone(),
        metrics: metrics.clone(),
        limiter,
        auth_failures: Arc::new(ratelimit::FailureLimiter::new(config.auth_failures_per_min)),
        git_slots: gitslots::GitSlots::new(config.git.max_concurrent, config.git.max_per_address),
        git_answers: Arc::new(skill_pool_git::answers::SmallAnswers::new(16_384, 64 << 20)),
        pack_cache: (config.git.pack_cache_bytes > 0).then(|| {
            let cache =
                skill_pool_git::answers::PackCache::new(skill_pool_git::pack_cache_root(&config.data_dir), config.git.pack_cache_bytes);
            // What earlier runs left is counted (and bounded) in the background.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let scanning = cache.clone();
                runtime.spawn_blocking(move || scanning.scan());
            }
            cache
        }),
        tenant_router: Router::new(),
    };
    let state = AppState(Arc::new(shared.clone()));
    let tenant_router = routes::tenant_router(&state)
        .layer(metrics::TrackLayer(metrics.clone()))
        .with_state(state);
    let state = AppState(Arc::new(Shared { tenant_router, ..shared }));
    let edge = edge::EdgeLayer(Some(state.clone()));
    let router = Router::new()
        .route("/healthz", get(routes::ops::healthz))
        .route("/readyz", get(routes::ops::readyz))
        .route("/metrics", get(routes::ops::metrics))
        .route_layer(metrics::TrackLayer(metrics))
        .fallback(tenant::dispatch)
        .with_state(state.clone())
        .layer(DefaultBodyLimit::disable())
        // Request id, tracing span, error bodies, security headers: one layer (`edge.rs`).
        // (and the public catalogue answered there, before the routers).
        .layer(edge);
    (router, state)
}

/// Runs the server on `listener` until `shutdown` resolves, then drains connections.
/// On an empty database it first creates the bootstrap tenant and admin token.
pub async fn serve(
    config: ServerConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = open_store(&config.data_dir, &config.database_url).await?;
    let queue = match &config.redis_url {
        Some(url) => Some(
            skill_pool_registry::queue::RedisQueue::connect(url, &config.redis_prefix)
                .await
                .with_context(|| format!("connecting to the Redis job queue at {}", skill_pool_store::redact_url(url)))?,
        ),
        None => None,
    };
    let redis = queue.is_some();
    let registry = registry_with_queue(store.clone(), &config, queue);
    if let Some(boot) = registry
        .bootstrap(&config.bootstrap_tenant)
        .await
        .context("bootstrapping the first tenant")?
    {
        tracing::info!(
            tenant = %boot.tenant.slug,
            token_file = %boot.token_file.display(),
            "first start: created tenant `{}` and an admin token, written to {} (mode 0600)",
            boot.tenant.slug,
            boot.token_file.display()
        );
    }
    match registry.recover_jobs().await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(jobs = n, "jobs left unfinished by the previous run were marked failed"),
        Err(e) => tracing::warn!(error = %e, "could not look for unfinished jobs"),
    }
    // The mirror worker: wakes every tick and queues the pulls that are due; stops with the server.
    let (stop_worker, mut worker_stopped) = tokio::sync::watch::channel(false);
    let worker = {
        let registry = registry.clone();
        let tick = config.mirror.tick;
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(tick);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = interval.tick() => {}
                    _ = worker_stopped.changed() => break,
                }
                if let Err(e) = registry.pull_due_mirrors().await {
                    tracing::warn!(error = %e, "the mirror worker could not queue pulls");
                }
            }
        })
    };
    let consumer = redis.then(|| {
        let registry = registry.clone();
        let stop = stop_worker.subscribe();
        tokio::spawn(async move { registry.consume_jobs(stop).await })
    });
    // Install counts: buffered by the handlers, written every few seconds and once at the end.
    let flusher = {
        let registry = registry.clone();
        let mut stopped = stop_worker.subscribe();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(INSTALLS_FLUSH_EVERY);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = interval.tick() => {}
                    _ = stopped.changed() => break,
                }
                registry.flush_installs().await;
            }
            registry.flush_installs().await;
        })
    };
    let local = listener.local_addr().context("reading the bound address")?;
    // "listening on http://<addr>" is a stable line: with `--bind 127.0.0.1:0` it tells the
    // port the system chose (tests and supervisors read it).
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    tracing::info!(public_url = %config.public_url, database = %skill_pool_store::redact_url(&config.database_url), "skill-pool listening on {scheme}://{local}");
    let limits = config.limits;
    let tls = config.tls.as_ref().map(listener::tls_acceptor).transpose()?;
    let (app, state) = app_and_state(registry, config);
    // The public catalogue straight from the caches, before tower and axum (`edge::hot_answer`).
    let hot: listener::HotPath = Arc::new(move |req, client| edge::hot_answer(&state, req, client));
    listener::serve(listener, app, Some(hot), tls, limits, shutdown, std::time::Duration::from_secs(30))
        .await
        .context("serving HTTP")?;
    let _ = stop_worker.send(true);
    let _ = worker.await;
    let _ = flusher.await;
    if let Some(c) = consumer {
        let _ = c.await;
    }
    store.close().await;
    tracing::info!("skill-pool stopped");
    Ok(())
}
