//! skill-pool's use cases. The HTTP handlers and the `skill-pool-server` admin commands call
//! the same functions here, so checks and audit rows cannot be forgotten on one path.
//!
//! Invariants: no HTTP here; every tenant-owned operation takes the routed [`TenantId`];
//! a write and its audit row commit in one transaction.

mod actor;
pub mod audit;
pub mod catalogue;
pub mod error;
mod gc;
pub mod installs;
pub mod limits;
pub mod managed;
pub mod mirrors;
pub mod pieces;
pub mod plugins;
pub mod queue;
pub mod repos;
pub mod sessions;
mod space;
pub mod tenants;
pub mod tokens;
mod tree;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use actor::{Actor, Principal};
pub use error::{RegistryError, StorageFault};
pub use gc::SweepReport;
pub use installs::today_number;
use skill_pool_store::{PluginId, Store};

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// Settings the use cases need.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Where repos live (`<data>/git/...`).
    pub data_dir: PathBuf,
    /// The base of every absolute URL in catalogues, without a trailing slash.
    pub public_url: String,
    /// Largest accepted upload (compressed); unpacked limit is 4× that.
    pub max_upload_bytes: u64,
    pub mirror: mirrors::MirrorSettings,
    /// Catalogue size limit and per-tenant quotas.
    pub limits: limits::TenantLimits,
    /// Bound of the in-memory cache of rendered catalogues, all tenants together
    /// ([`catalogue::DEFAULT_CACHE_BYTES`]); the least recently used are dropped past it.
    pub catalogue_cache_bytes: u64,
}

/// The use cases, over one store and one data directory. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: RegistryConfig,
    repo_locks: Mutex<HashMap<PluginId, Arc<tokio::sync::Mutex<()>>>>,
    /// plugin id → the commit its repo on disk was last seen at.
    verified_repos: Mutex<HashMap<PluginId, String>>,
    catalogues: catalogue::CatalogueCache,
    tenants: tenants::TenantCache,
    /// Pulls queued or running per mirror in this process (the worker adds none while one is).
    pulls: Mutex<HashMap<PluginId, usize>>,
    /// The Redis queue, when configured (else jobs run in-process).
    queue: Option<queue::RedisQueue>,
    /// One pull of a mirror at a time.
    pull_locks: Mutex<HashMap<PluginId, Arc<tokio::sync::Mutex<()>>>>,
    /// At most `mirror.concurrency` pulls at once.
    pull_slots: tokio::sync::Semaphore,
    /// Install counts not written yet.
    installs: installs::InstallBuffer,
    /// Unique per registry in the process ([`Registry::instance_id`]).
    id: usize,
}

impl Registry {
    pub fn new(store: Store, config: RegistryConfig) -> Registry {
        Registry::with_queue(store, config, None)
    }

    /// As [`Registry::new`], with jobs on a shared Redis queue instead of in-process.
    pub fn with_queue(store: Store, config: RegistryConfig, queue: Option<queue::RedisQueue>) -> Registry {
        let pull_slots = config.mirror.concurrency.max(1);
        let catalogues = catalogue::CatalogueCache::new(config.catalogue_cache_bytes);
        Registry {
            inner: Arc::new(Inner {
                store,
                config,
                repo_locks: Mutex::new(HashMap::new()),
                verified_repos: Mutex::new(HashMap::new()),
                catalogues,
                tenants: tenants::TenantCache::default(),
                pulls: Mutex::new(HashMap::new()),
                pull_locks: Mutex::new(HashMap::new()),
                queue,
                pull_slots: tokio::sync::Semaphore::new(pull_slots),
                installs: installs::InstallBuffer::default(),
                id: {
                    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
                    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                },
            }),
        }
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    pub(crate) fn config(&self) -> &RegistryConfig {
        &self.inner.config
    }

    /// A number no other registry of this process has (per-thread memos are keyed by it:
    /// several servers share a process in the tests).
    pub fn instance_id(&self) -> usize {
        self.inner.id
    }

    /// The base of every absolute URL in catalogues.
    pub fn public_url(&self) -> &str {
        &self.inner.config.public_url
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        Ok(self.store().ping().await?)
    }

    /// The connection pool's state, `(in use, idle)` (for `/metrics`).
    pub fn pool_stats(&self) -> (u32, u32) {
        self.store().pool_stats()
    }

    /// The tenant root `<public-url>/t/<tenant>`.
    pub fn tenant_url(&self, tenant_slug: &str) -> String {
        format!("{}/t/{}", self.inner.config.public_url, tenant_slug)
    }
}

/// Runs a write transaction, again when it lost a race (unique conflict) or met a busy database.
pub(crate) async fn with_retry<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut tries = 0u32;
    loop {
        match attempt().await {
            Err(e) if e.is_retryable() && tries < 12 => {
                tries += 1;
                let jitter = rand::random::<u64>() % (5 * u64::from(tries) + 1);
                tokio::time::sleep(std::time::Duration::from_millis(jitter + u64::from(tries))).await;
            }
            other => return other,
        }
    }
}
