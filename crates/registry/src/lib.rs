//! skill-pool's use cases. The HTTP handlers and the `skill-pool-server` admin commands call
//! the same functions here, so checks and audit rows cannot be forgotten on one path.
//!
//! Invariants: no HTTP here; every tenant-owned operation takes the routed [`TenantId`];
//! a write and its audit row commit in one transaction.

pub mod catalogue;
pub mod error;
pub mod pieces;
pub mod plugins;
pub mod repos;
pub mod tenants;
pub mod tokens;
mod tree;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use error::RegistryError;
use skill_pool_core::Role;
use skill_pool_store::{Store, TenantId};

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
}

/// Who is acting, for authorisation and the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    pub tenant: TenantId,
    pub role: Role,
    /// Shown in the audit log, e.g. `token:ci#3` or `admin-cli`.
    pub name: String,
    pub request_id: Option<String>,
}

impl Actor {
    /// An operator acting through `skill-pool-server` subcommands on one tenant.
    pub fn operator(tenant: TenantId) -> Actor {
        Actor {
            tenant,
            role: Role::Admin,
            name: "admin-cli".into(),
            request_id: None,
        }
    }

    pub fn require(&self, role: Role) -> Result<()> {
        if self.role.allows(role) {
            Ok(())
        } else {
            Err(RegistryError::Forbidden(format!(
                "this needs the {role} role; the token has the {} role",
                self.role
            )))
        }
    }
}

/// The use cases, over one store and one data directory. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: RegistryConfig,
    repo_locks: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
    /// plugin id → the commit its repo on disk was last seen at.
    verified_repos: Mutex<HashMap<i64, String>>,
    catalogues: catalogue::CatalogueCache,
}

impl Registry {
    pub fn new(store: Store, config: RegistryConfig) -> Registry {
        Registry {
            inner: Arc::new(Inner {
                store,
                config,
                repo_locks: Mutex::new(HashMap::new()),
                verified_repos: Mutex::new(HashMap::new()),
                catalogues: catalogue::CatalogueCache::default(),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.inner.config
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
