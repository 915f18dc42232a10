//! What one tenant may take: the size of its public catalogue (Claude Code reads it whole, at
//! most 5 MiB) and, when configured, quotas on bytes stored, plugins and plugin versions. The
//! checks run inside the transaction of the change they guard, so two concurrent publishes
//! cannot both slip under a quota.

use skill_pool_core::Role;
use skill_pool_core::api::{Usage, UsageLimits};
use skill_pool_store::prelude::*;
use skill_pool_store::{TenantId, Tx};

use crate::{Actor, Registry, RegistryError, Result};

/// The default catalogue limit: a margin under Claude Code's 5 MiB.
pub const DEFAULT_MAX_CATALOGUE_BYTES: u64 = 4 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantLimits {
    /// Largest rendered catalogue (`marketplace.json`, uncompressed).
    pub max_catalogue_bytes: u64,
    /// Bytes of distinct file bodies a tenant's versions may reference (`None`: no quota).
    pub max_bytes: Option<u64>,
    pub max_plugins: Option<u64>,
    /// Plugin versions in all, across the tenant's plugins.
    pub max_versions: Option<u64>,
}

impl Default for TenantLimits {
    fn default() -> Self {
        TenantLimits {
            max_catalogue_bytes: DEFAULT_MAX_CATALOGUE_BYTES,
            max_bytes: None,
            max_plugins: None,
            max_versions: None,
        }
    }
}

fn quota(what: &str, used: u64, adding: u64, limit: u64) -> RegistryError {
    RegistryError::QuotaExceeded(format!(
        "this would take the tenant to {} {what}; its quota is {limit} (in use: {used}); remove or purge something, or ask the operator for a higher quota",
        used + adding
    ))
}

impl Registry {
    pub(crate) fn limits(&self) -> &TenantLimits {
        &self.config().limits
    }

    /// Inside the change's transaction: refuses it if it would exceed a quota. `new_plugin`:
    /// the change creates a plugin; `new_version`: it adds a version; `new_bodies`: sha256 and
    /// size of each body it stores (those the tenant's rows reference already cost nothing).
    pub(crate) async fn check_quotas(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        new_plugin: bool,
        new_version: bool,
        new_bodies: &[(&str, u64)],
    ) -> Result<()> {
        let l = *self.limits();
        if l.max_bytes.is_none() && l.max_plugins.is_none() && l.max_versions.is_none() {
            return Ok(());
        }
        let usage = tx.tenant_usage(tenant).await?;
        if let Some(max) = l.max_plugins
            && new_plugin
            && usage.plugins as u64 + 1 > max
        {
            return Err(quota("plugins", usage.plugins as u64, 1, max));
        }
        if let Some(max) = l.max_versions
            && new_version
            && usage.plugin_versions as u64 + 1 > max
        {
            return Err(quota("plugin versions", usage.plugin_versions as u64, 1, max));
        }
        if let Some(max) = l.max_bytes {
            let mut adding = 0u64;
            let mut seen = std::collections::HashSet::new();
            for (sha, size) in new_bodies {
                if seen.insert(*sha) && !tx.tenant_has_blob(tenant, sha).await? {
                    adding += size;
                }
            }
            // `usage` is read inside the change's transaction: it already counts the rows the
            // change inserted before this check (e.g. new pieces); `adding` is the rest.
            if usage.bytes as u64 + adding > max {
                return Err(quota("bytes stored", usage.bytes as u64, adding, max));
            }
        }
        Ok(())
    }

    /// Before a change that adds `entry_bytes` to the catalogue: refuses it if the catalogue
    /// would pass its limit. (An approximation: an updated entry counts as added.)
    pub(crate) async fn check_catalogue_room(&self, tenant: TenantId, entry_bytes: usize) -> Result<()> {
        let max = self.limits().max_catalogue_bytes;
        // A publish in a row of many must not render the whole catalogue each time: far from
        // the limit an estimate does (the last rendering plus a generous entry per change since).
        let current = self.catalogue_len(tenant, entry_bytes.max(2048), max / 2).await?;
        let after = current + entry_bytes as u64;
        if after > max {
            return Err(RegistryError::CatalogueTooLarge(format!(
                "this would make the catalogue about {after} bytes; its limit is {max} (SKILL_POOL_MAX_CATALOGUE_BYTES; Claude Code reads at most 5 MiB): shorten descriptions or remove plugins"
            )));
        }
        Ok(())
    }

    /// `GET /v1/usage`: what the tenant uses against its limits (members may read it).
    pub async fn usage(&self, actor: &Actor) -> Result<Usage> {
        actor.require(Role::Member)?;
        let mut store = self.store().read().await?;
        let row = store.tenant_usage(actor.tenant).await?;
        drop(store);
        let catalogue = self.catalogue(actor.tenant).await?.json.len() as u64;
        let l = *self.limits();
        Ok(Usage {
            plugins: row.plugins as u64,
            plugin_versions: row.plugin_versions as u64,
            bytes_stored: row.bytes as u64,
            catalogue_bytes: catalogue,
            limits: UsageLimits {
                max_catalogue_bytes: l.max_catalogue_bytes,
                max_bytes: l.max_bytes,
                max_plugins: l.max_plugins,
                max_versions: l.max_versions,
            },
        })
    }
}
