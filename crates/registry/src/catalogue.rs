//! The tenant's `marketplace.json`: rendered once per change, served many times. The rendered
//! bytes, their gzip form and a strong ETag are cached per tenant and revalidated against the
//! tenant's `catalogue_rev` (one cheap query, at most once a second).

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use skill_pool_core::api::{PluginMetadata, SourcingMode};
use skill_pool_core::catalogue::{Catalogue, CatalogueEntry, Owner, git_source};
use skill_pool_store::{PluginId, TenantId};

use crate::{Registry, RegistryError, Result};
use skill_pool_store::prelude::*;

const REVALIDATE_AFTER: Duration = Duration::from_secs(1);

/// A rendered catalogue.
#[derive(Debug)]
pub struct RenderedCatalogue {
    pub rev: i64,
    pub json: bytes::Bytes,
    pub gzip: bytes::Bytes,
    /// Strong ETag, quoted.
    pub etag: String,
    /// The catalogue as a value, for the HTML page.
    pub catalogue: Catalogue,
}

struct Cached {
    rendered: Arc<RenderedCatalogue>,
    checked: Instant,
}

#[derive(Default)]
pub(crate) struct CatalogueCache {
    entries: Mutex<HashMap<TenantId, Cached>>,
}

impl Registry {
    /// The tenant's catalogue, from the cache when it is current.
    pub async fn catalogue(&self, tenant: TenantId) -> Result<Arc<RenderedCatalogue>> {
        let cache = &self.inner.catalogues;
        let cached = {
            let entries = cache.entries.lock().unwrap_or_else(|p| p.into_inner());
            entries.get(&tenant).map(|c| (c.rendered.clone(), c.checked))
        };
        if let Some((rendered, checked)) = &cached
            && checked.elapsed() < REVALIDATE_AFTER
        {
            return Ok(rendered.clone());
        }
        let rev = self
            .store()
            .catalogue_rev(tenant)
            .await?
            .ok_or_else(|| RegistryError::NotFound("tenant not found".into()))?;
        if let Some((rendered, _)) = cached
            && rendered.rev == rev
        {
            let mut entries = cache.entries.lock().unwrap_or_else(|p| p.into_inner());
            entries.insert(
                tenant,
                Cached {
                    rendered: rendered.clone(),
                    checked: Instant::now(),
                },
            );
            return Ok(rendered);
        }
        let rendered = Arc::new(self.render_catalogue(tenant, rev).await?);
        let mut entries = cache.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.insert(
            tenant,
            Cached {
                rendered: rendered.clone(),
                checked: Instant::now(),
            },
        );
        Ok(rendered)
    }

    /// Drops the cached catalogue after a change made by this process.
    pub(crate) fn invalidate_catalogue(&self, tenant: TenantId) {
        self.inner
            .catalogues
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&tenant);
    }

    pub(crate) async fn tenant_slug(&self, tenant: TenantId) -> Result<String> {
        Ok(self.tenant_row(tenant).await?.slug)
    }

    async fn render_catalogue(&self, tenant: TenantId, rev: i64) -> Result<RenderedCatalogue> {
        // Fresh, not from the tenant cache: the row carries catalogue data (`renames`).
        let tenant_row = self
            .store()
            .tenant_by_id(tenant)
            .await?
            .ok_or_else(|| RegistryError::NotFound("tenant not found".into()))?;
        let mut plugins = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self.store().list_plugins(tenant, cursor.as_deref(), 500).await?;
            let done = page.len() < 500;
            cursor = page.last().map(|p| p.slug.clone());
            plugins.extend(page);
            if done {
                break;
            }
        }
        let latest: HashMap<PluginId, _> = self
            .store()
            .served_plugin_versions(tenant)
            .await?
            .into_iter()
            .map(|v| (v.plugin_id, v))
            .collect();
        let mut entries = Vec::with_capacity(plugins.len());
        for p in &plugins {
            // Hidden plugins (under review, withdrawn) are kept but not listed.
            if p.install_policy == skill_pool_core::api::InstallPolicy::Hidden {
                continue;
            }
            let meta: PluginMetadata = serde_json::from_str(&p.metadata).unwrap_or_default();
            let (source, version) = match p.mode {
                SourcingMode::External => match p.external_source.as_deref().and_then(|s| serde_json::from_str(s).ok()) {
                    Some(source) => (source, None),
                    None => continue,
                },
                _ => match latest.get(&p.id) {
                    Some(v) => {
                        let archive = if tenant_row.serve_as == skill_pool_core::api::ServeAs::Archive {
                            self.archive_source(tenant, &tenant_row.slug, p, v).await?
                        } else {
                            None
                        };
                        let source = archive.unwrap_or_else(|| git_source(&self.git_url(&tenant_row.slug, &p.slug), &v.commit_id));
                        (source, v.version.clone())
                    }
                    // Nothing served yet (e.g. a mirror before its first pull).
                    None => continue,
                },
            };
            let extra = json_object(p.catalogue_extra.as_deref());
            entries.push(CatalogueEntry::new(p.slug.clone(), source, version, meta, extra));
        }
        let catalogue = Catalogue {
            name: tenant_row.slug.clone(),
            owner: Owner {
                name: tenant_row.display_name.clone(),
                email: None,
                url: None,
            },
            description: Some(format!("Claude Code plugins of {}", tenant_row.display_name)),
            plugins: entries,
            renames: json_object(tenant_row.catalogue_renames.as_deref()),
        };
        let json = catalogue.to_json_bytes();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&json).map_err(RegistryError::io("compressing the catalogue"))?;
        let gzip = gz.finish().map_err(RegistryError::io("compressing the catalogue"))?;
        let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&json))[..32]);
        Ok(RenderedCatalogue {
            rev,
            json: json.into(),
            gzip: gzip.into(),
            etag,
            catalogue,
        })
    }
}

/// A stored JSON object (absent or unreadable: empty).
pub(crate) fn json_object(text: Option<&str>) -> serde_json::Map<String, serde_json::Value> {
    match text.map(serde_json::from_str) {
        Some(Ok(serde_json::Value::Object(m))) => m,
        _ => serde_json::Map::new(),
    }
}
