//! Tenants and users: creation, the first-start bootstrap, lookup.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
use skill_pool_core::Role;
use skill_pool_core::api::{TenantSettings, UpdateTenant};
use skill_pool_core::slug::{Slug, check_tenant_slug};
use skill_pool_store::tenants::TenantRow;
use skill_pool_store::{StoreError, TenantId};

use crate::tokens::CreatedSecret;
use crate::{Actor, Principal, Registry, RegistryError, Result, audit, with_retry};
use skill_pool_store::prelude::*;

/// What the first start on an empty database created.
#[derive(Debug)]
pub struct Bootstrap {
    pub tenant: TenantRow,
    /// Where the admin token was written (mode 0600).
    pub token_file: PathBuf,
}

/// The one tenant cache (routing, catalogue rendering, git URLs): positive lookups only and
/// briefly, so a tenant that `skill-pool-server tenant create` made on the same database is
/// visible at once, by slug and by id.
#[derive(Default)]
pub(crate) struct TenantCache {
    by_slug: Mutex<HashMap<String, (Arc<TenantRow>, Instant)>>,
    by_id: Mutex<HashMap<TenantId, (Arc<TenantRow>, Instant)>>,
    /// Bumped whenever a row is stored or dropped ([`Registry::cache_generation`]).
    generation: std::sync::atomic::AtomicU64,
}

pub(crate) const TENANT_TTL: Duration = Duration::from_secs(10);

impl TenantCache {
    fn get<K: std::hash::Hash + Eq + std::borrow::Borrow<Q>, Q: std::hash::Hash + Eq + ?Sized>(
        map: &Mutex<HashMap<K, (Arc<TenantRow>, Instant)>>,
        key: &Q,
    ) -> Option<Arc<TenantRow>> {
        Self::get_at(map, key).map(|(row, _)| row)
    }

    /// As [`Self::get`], with when the row was read.
    fn get_at<K: std::hash::Hash + Eq + std::borrow::Borrow<Q>, Q: std::hash::Hash + Eq + ?Sized>(
        map: &Mutex<HashMap<K, (Arc<TenantRow>, Instant)>>,
        key: &Q,
    ) -> Option<(Arc<TenantRow>, Instant)> {
        let map = map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key).filter(|(_, at)| at.elapsed() < TENANT_TTL).cloned()
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    fn bump(&self) {
        self.generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    fn put(&self, row: Arc<TenantRow>) {
        self.bump();
        let now = Instant::now();
        self.by_slug
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(row.slug.clone(), (row.clone(), now));
        self.by_id.lock().unwrap_or_else(|p| p.into_inner()).insert(row.id, (row, now));
    }
}

impl Registry {
    /// The tenant with this slug (cached briefly), for routing a request.
    pub async fn tenant_by_slug(&self, slug: &str) -> Result<Option<TenantRow>> {
        Ok(self.route_tenant(slug).await?.map(|row| TenantRow::clone(&row)))
    }

    /// As [`Registry::tenant_by_slug`], shared: what routing a request needs, without copying the row.
    pub async fn route_tenant(&self, slug: &str) -> Result<Option<Arc<TenantRow>>> {
        let cache = &self.inner.tenants;
        if let Some(row) = TenantCache::get(&cache.by_slug, slug) {
            return Ok(Some(row));
        }
        let row = self.store().tenant_by_slug(slug).await?.map(Arc::new);
        if let Some(row) = &row {
            cache.put(row.clone());
        }
        Ok(row)
    }

    /// The tenant with this slug when the cache has it, without waiting on anything: the hot
    /// path of a request answered before the routers, which falls back to [`Self::route_tenant`].
    pub fn route_tenant_cached(&self, slug: &str) -> Option<Arc<TenantRow>> {
        TenantCache::get(&self.inner.tenants.by_slug, slug)
    }

    /// As [`Self::route_tenant_cached`], with when the row was read.
    pub(crate) fn route_tenant_cached_at(&self, slug: &str) -> Option<(Arc<TenantRow>, Instant)> {
        TenantCache::get_at(&self.inner.tenants.by_slug, slug)
    }

    /// The tenant behind a routed id (cached briefly).
    pub(crate) async fn tenant_row(&self, tenant: TenantId) -> Result<TenantRow> {
        let cache = &self.inner.tenants;
        if let Some(row) = TenantCache::get(&cache.by_id, &tenant) {
            return Ok(TenantRow::clone(&row));
        }
        let row = self
            .store()
            .tenant_by_id(tenant)
            .await?
            .ok_or_else(|| RegistryError::NotFound("tenant not found".into()))?;
        cache.put(Arc::new(row.clone()));
        Ok(row)
    }

    /// Drops the cached row of a tenant that changed (branding), so this process sees it at once.
    pub(crate) fn forget_tenant(&self, tenant: TenantId) {
        let cache = &self.inner.tenants;
        cache.bump();
        cache.by_id.lock().unwrap_or_else(|p| p.into_inner()).remove(&tenant);
        cache
            .by_slug
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, (row, _)| row.id != tenant);
    }

    /// The settings of the actor's tenant (members and admins).
    pub async fn tenant_settings(&self, actor: &Actor) -> Result<TenantSettings> {
        actor.require(Role::Member)?;
        let row = self.tenant_row(actor.tenant).await?;
        Ok(self.settings_view(&row))
    }

    fn settings_view(&self, row: &TenantRow) -> TenantSettings {
        let tenant_url = self.tenant_url(&row.slug);
        TenantSettings {
            slug: row.slug.clone(),
            display_name: row.display_name.clone(),
            visibility: row.visibility,
            serve_as: row.serve_as,
            marketplace_url: tenant_url.clone(),
            tenant_url,
        }
    }

    /// Changes the actor's tenant's settings (admins; audited). Making a tenant private takes
    /// effect at once on this server and within the tenant cache's 10 s on others.
    pub async fn update_tenant(&self, actor: &Actor, change: UpdateTenant) -> Result<TenantSettings> {
        actor.require(Role::Admin)?;
        let display_name = match change.display_name.as_deref().map(str::trim) {
            Some("") => return Err(RegistryError::bad_request("a display name cannot be empty")),
            Some(d) if d.chars().count() > 200 || d.chars().any(char::is_control) => {
                return Err(RegistryError::bad_request(
                    "a display name must have at most 200 printable characters",
                ));
            }
            other => other.map(str::to_string),
        };
        if change.serve_as == Some(skill_pool_core::api::ServeAs::Archive) {
            self.check_archivable(actor.tenant).await?;
        }
        let mut tx = self.store().write().await?;
        let before = tx
            .tenant_by_id(actor.tenant)
            .await?
            .ok_or_else(|| RegistryError::NotFound("tenant not found".into()))?;
        let visibility = change.visibility.unwrap_or(before.visibility);
        let serve_as = change.serve_as.unwrap_or(before.serve_as);
        let display_name = display_name.unwrap_or_else(|| before.display_name.clone());
        tx.set_access(actor.tenant, visibility, serve_as).await?;
        if display_name != before.display_name {
            tx.set_branding(
                actor.tenant,
                &display_name,
                before.logo_url.as_deref(),
                before.accent_color.as_deref(),
            )
            .await?;
        }
        if serve_as != before.serve_as || display_name != before.display_name {
            // The catalogue's entries (or its owner) change.
            tx.bump_catalogue_rev(actor.tenant).await?;
        }
        audit::record(
            &mut tx,
            actor,
            "tenant.update",
            &format!("tenant:{}", before.slug),
            serde_json::json!({
                "visibility": { "from": before.visibility, "to": visibility },
                "serve_as": { "from": before.serve_as, "to": serve_as },
                "display_name": { "from": before.display_name, "to": display_name },
            }),
        )
        .await?;
        tx.commit().await?;
        self.forget_tenant(actor.tenant);
        // This process serves the new entries at once (others within a second).
        self.invalidate_catalogue(actor.tenant);
        let row = self.tenant_row(actor.tenant).await?;
        tracing::info!(tenant = %row.slug, visibility = row.visibility.as_str(), serve_as = row.serve_as.as_str(), "tenant settings changed");
        Ok(self.settings_view(&row))
    }

    /// The tenant served at the bare public URL: the configured one, else the oldest.
    pub async fn default_tenant(&self, configured: Option<&str>) -> Result<Option<TenantRow>> {
        match configured {
            Some(slug) => self.tenant_by_slug(slug).await,
            None => Ok(self.store().first_tenant().await?),
        }
    }

    /// Every tenant, by slug. Only the operator sees across tenants.
    pub async fn list_tenants(&self, by: &Principal) -> Result<Vec<TenantRow>> {
        require_operator(by, "list tenants")?;
        Ok(self.store().list_tenants().await?)
    }

    /// Creates a tenant. The slug must be valid and not a marketplace name Claude Code
    /// reserves. Only the operator creates tenants; the audit row lands in the new tenant.
    pub async fn create_tenant(&self, by: &Principal, slug: &str, display_name: Option<&str>) -> Result<TenantRow> {
        require_operator(by, "create a tenant")?;
        let slug = check_tenant_slug(slug).map_err(|e| RegistryError::bad_request(e.to_string()))?;
        let display_name = display_name
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .unwrap_or(slug.as_str())
            .to_string();
        // The retried closure borrows; it must not move these.
        let (slug, display_name) = (&slug, &display_name);
        let tenant = with_retry(|| async move {
            let mut tx = self.store().write().await?;
            let tenant = match tx.insert_tenant(slug.as_str(), display_name).await {
                Ok(t) => t,
                Err(StoreError::Conflict(_)) => {
                    return Err(RegistryError::Conflict(format!("tenant `{slug}` already exists")));
                }
                Err(e) => return Err(e.into()),
            };
            let actor = Actor::operator(tenant.id);
            audit::record(
                &mut tx,
                &actor,
                "tenant.create",
                &format!("tenant:{slug}"),
                serde_json::json!({ "display_name": display_name }),
            )
            .await?;
            tx.commit().await?;
            Ok(tenant)
        })
        .await?;
        tracing::info!(tenant = %slug, "tenant created");
        Ok(tenant)
    }

    /// On an empty database: creates the bootstrap tenant and an admin token, and writes the
    /// token to `<data>/admin-token` (mode 0600). Does nothing when any tenant exists.
    pub async fn bootstrap(&self, tenant_slug: &str) -> Result<Option<Bootstrap>> {
        if self.store().tenant_count().await? > 0 {
            return Ok(None);
        }
        let tenant = match self.create_tenant(&Principal::Operator, tenant_slug, None).await {
            Ok(t) => t,
            // Another replica bootstrapped at the same moment.
            Err(RegistryError::Conflict(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let created = self
            .create_token(&Actor::operator(tenant.id), "bootstrap-admin", Role::Admin)
            .await?;
        let token_file = self.config().data_dir.join("admin-token");
        write_secret_file(&token_file, &created.secret)?;
        Ok(Some(Bootstrap { tenant, token_file }))
    }

    /// Creates a portal user of the actor's tenant with an argon2-hashed password.
    pub async fn create_user(&self, actor: &Actor, username: &str, password: &str, role: Role) -> Result<i64> {
        actor.require(Role::Admin)?;
        let name = Slug::parse(username).map_err(|e| RegistryError::bad_request(format!("username: {e}")))?;
        if password.chars().count() < 12 {
            return Err(RegistryError::bad_request("the password must have at least 12 characters"));
        }
        let salt = SaltString::generate(&mut OsRng);
        // Hashing is deliberately slow: off the async runtime.
        let password = password.to_string();
        let hash = tokio::task::spawn_blocking(move || {
            argon2::Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
        })
        .await?
        .map_err(|e| RegistryError::Internal(format!("hashing the password: {e}")))?;
        // The retried closure borrows; it must not move these.
        let (hash, name) = (&hash, &name);
        with_retry(|| async move {
            let mut tx = self.store().write().await?;
            let user = match tx.insert_user(actor.tenant, name.as_str(), hash, role).await {
                Ok(u) => u,
                Err(StoreError::Conflict(_)) => {
                    return Err(RegistryError::Conflict(format!("user `{name}` already exists in this tenant")));
                }
                Err(e) => return Err(e.into()),
            };
            audit::record(
                &mut tx,
                actor,
                "user.create",
                &format!("user:{name}"),
                serde_json::json!({ "role": role }),
            )
            .await?;
            tx.commit().await?;
            Ok(user.id)
        })
        .await
    }
}

pub(crate) fn require_operator(by: &Principal, what: &str) -> Result<()> {
    match by {
        Principal::Operator => Ok(()),
        other => Err(RegistryError::Forbidden(format!(
            "only the operator (`skill-pool-server` on the server's machine) can {what}; {other} cannot"
        ))),
    }
}

impl CreatedSecret {
    /// For logs: never the secret itself.
    pub fn describe(&self) -> String {
        format!("token {} ({})", self.token.name, self.token.prefix)
    }
}

/// Writes a secret to a file only its owner can read, replacing any previous one.
pub fn write_secret_file(path: &std::path::Path, secret: &str) -> Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(RegistryError::io(format!("creating {}", dir.display())))?;
    }
    let _ = std::fs::remove_file(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(RegistryError::io(format!("writing {}", path.display())))?;
    writeln!(file, "{secret}").map_err(RegistryError::io(format!("writing {}", path.display())))?;
    Ok(())
}
