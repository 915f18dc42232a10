//! The tenant's `marketplace.json`: rendered once per change, served many times. The rendered
//! bytes, their gzip form and a strong ETag are cached per tenant and revalidated against the
//! tenant's `catalogue_rev` (one cheap query, at most once a second; between 1 and 10 seconds of age
//! the cached answer is served at once while one background query revalidates it, so a busy
//! catalogue never waits for the database, and a change made by another server process is served
//! at most [`SERVE_STALE_FOR`] later). The cache is bounded by
//! the bytes it holds (`RegistryConfig::catalogue_cache_bytes`): past it, the catalogues used
//! least recently are dropped (and rendered again when asked for).

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
/// Until this age a cached catalogue is served while it is revalidated in the background; past
/// it, the request waits for the check. A change made by this process drops its entry at once.
pub const SERVE_STALE_FOR: Duration = Duration::from_secs(10);

/// The default bound of the catalogue cache (the bytes of every cached catalogue together).
pub const DEFAULT_CACHE_BYTES: u64 = 64 << 20;

/// A rendered catalogue.
#[derive(Debug)]
pub struct RenderedCatalogue {
    pub rev: i64,
    pub json: bytes::Bytes,
    pub gzip: bytes::Bytes,
    /// Strong ETag, quoted.
    pub etag: String,
    /// The same ETag as shared bytes: a response header is made from it without a copy.
    pub etag_bytes: bytes::Bytes,
    /// The gzip bytes again as a sealed in-memory file, made on first use for a large catalogue
    /// ([`Self::gzip_file`]): the server sends it with `sendfile` instead of copying it into the
    /// socket for every request.
    gzip_file: std::sync::OnceLock<Option<Arc<std::fs::File>>>,
}

/// From this size on, the gzip bytes get a file copy ([`RenderedCatalogue::gzip_file`]): below
/// it, copying into the socket costs less than the extra system call.
pub const GZIP_FILE_MIN_BYTES: usize = 16 * 1024;

impl RenderedCatalogue {
    /// A rendering of these bytes (what [`Registry::catalogue`] caches).
    pub fn new(rev: i64, json: bytes::Bytes, gzip: bytes::Bytes) -> RenderedCatalogue {
        let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&json))[..32]);
        RenderedCatalogue {
            rev,
            json,
            gzip,
            etag_bytes: bytes::Bytes::copy_from_slice(etag.as_bytes()),
            etag,
            gzip_file: std::sync::OnceLock::new(),
        }
    }

    /// What it costs the cache: its bytes (a large catalogue's gzip bytes twice, for their file
    /// copy) and a fixed overhead. (The parsed value is not kept: its maps and strings took twice
    /// the JSON's size again, for every cached tenant.)
    pub fn weight(&self) -> usize {
        let file = if self.gzip.len() >= GZIP_FILE_MIN_BYTES {
            self.gzip.len()
        } else {
            0
        };
        self.json.len() + self.gzip.len() + file + self.etag.len() + 256
    }

    /// The gzip bytes as a sealed in-memory file (`memfd`, nothing on disk) holding exactly
    /// [`Self::gzip`], made on first use, for a catalogue of at least [`GZIP_FILE_MIN_BYTES`];
    /// `None` for a smaller one or when the file cannot be made (the bytes are then sent as
    /// they are).
    pub fn gzip_file(&self) -> Option<&Arc<std::fs::File>> {
        if self.gzip.len() < GZIP_FILE_MIN_BYTES {
            return None;
        }
        self.gzip_file
            .get_or_init(|| match sealed_memory_file(&self.gzip) {
                Ok(file) => Some(Arc::new(file)),
                Err(e) => {
                    tracing::warn!(error = %e, "could not make the catalogue's in-memory file; it is copied instead");
                    None
                }
            })
            .as_ref()
    }

    /// The catalogue as a value, parsed from the JSON (for the few readers that need it).
    pub fn parsed(&self) -> Result<Catalogue> {
        serde_json::from_slice(&self.json).map_err(|e| RegistryError::Internal(format!("reading a rendered catalogue: {e}")))
    }
}

struct Cached {
    rendered: Arc<RenderedCatalogue>,
    checked: Instant,
    /// The cache's use counter at the last hit: the smallest is the least recently used.
    used: u64,
    /// A background revalidation is under way (one at a time per tenant).
    revalidating: bool,
}

#[derive(Default)]
struct Entries {
    map: HashMap<TenantId, Cached>,
    /// Sum of the entries' weights.
    bytes: usize,
    /// Bumped on every hit and insert.
    uses: u64,
    /// Per tenant: the JSON length of its last rendering and the changes made since (what a
    /// publish's room check estimates from without rendering; a few bytes per tenant).
    sizes: HashMap<TenantId, (usize, usize)>,
}

/// A public tenant's cached catalogue, as the catalogue's fast path uses it
/// ([`Registry::hot_catalogue`]).
pub struct HotCatalogue {
    pub tenant: Arc<skill_pool_store::tenants::TenantRow>,
    pub rendered: Arc<RenderedCatalogue>,
    /// Until when both may be used again without asking the caches.
    pub fresh_until: Instant,
}

pub(crate) struct CatalogueCache {
    entries: Mutex<Entries>,
    max_bytes: usize,
    /// Bumped whenever an entry is stored or dropped ([`Registry::cache_generation`]).
    generation: std::sync::atomic::AtomicU64,
}

impl CatalogueCache {
    pub(crate) fn new(max_bytes: u64) -> CatalogueCache {
        CatalogueCache {
            entries: Mutex::new(Entries::default()),
            max_bytes: usize::try_from(max_bytes).unwrap_or(usize::MAX),
            generation: Default::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    fn bump(&self) {
        self.generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// The cached catalogue and when it was last checked, counted as a use.
    fn get(&self, tenant: TenantId) -> Option<(Arc<RenderedCatalogue>, Instant)> {
        let mut entries = self.lock();
        entries.uses += 1;
        let uses = entries.uses;
        let cached = entries.map.get_mut(&tenant)?;
        cached.used = uses;
        Some((cached.rendered.clone(), cached.checked))
    }

    /// Stores `rendered` as checked now, then drops the least recently used entries while the
    /// cache holds more than its bound (down to 7/8 of it, so that the sort is rare).
    fn put(&self, tenant: TenantId, rendered: Arc<RenderedCatalogue>) {
        let mut entries = self.lock();
        self.bump();
        entries.uses += 1;
        let used = entries.uses;
        let weight = rendered.weight();
        let cached = Cached {
            rendered,
            checked: Instant::now(),
            used,
            revalidating: false,
        };
        let json_len = cached.rendered.json.len();
        if let Some(old) = entries.map.insert(tenant, cached) {
            entries.bytes -= old.rendered.weight();
        }
        entries.sizes.insert(tenant, (json_len, 0));
        entries.bytes += weight;
        if entries.bytes <= self.max_bytes {
            return;
        }
        let target = self.max_bytes - self.max_bytes / 8;
        let mut by_use: Vec<(u64, TenantId)> = entries.map.iter().map(|(id, c)| (c.used, *id)).collect();
        by_use.sort_unstable();
        for (_, id) in by_use {
            if entries.bytes <= target {
                break;
            }
            if let Some(old) = entries.map.remove(&id) {
                entries.bytes -= old.rendered.weight();
            }
        }
    }

    /// Whether the caller may revalidate `tenant` in the background (no one else is).
    fn claim_revalidation(&self, tenant: TenantId) -> bool {
        let mut entries = self.lock();
        match entries.map.get_mut(&tenant) {
            Some(c) if !c.revalidating => {
                c.revalidating = true;
                true
            }
            _ => false,
        }
    }

    fn end_revalidation(&self, tenant: TenantId) {
        if let Some(c) = self.lock().map.get_mut(&tenant) {
            c.revalidating = false;
        }
    }

    fn remove(&self, tenant: TenantId) {
        let mut entries = self.lock();
        self.bump();
        if let Some(old) = entries.map.remove(&tenant) {
            entries.bytes -= old.rendered.weight();
        }
    }

    /// Drops the tenant's catalogue after a change, counting the change for [`Self::size_estimate`].
    fn changed(&self, tenant: TenantId) {
        self.remove(tenant);
        if let Some((_, changes)) = self.lock().sizes.get_mut(&tenant) {
            *changes += 1;
        }
    }

    /// The catalogue's JSON length: the cached rendering's, else the last rendering's plus
    /// `per_change` for every change since; `None` when it was never rendered.
    fn size_estimate(&self, tenant: TenantId, per_change: usize) -> Option<usize> {
        let entries = self.lock();
        if let Some(cached) = entries.map.get(&tenant) {
            return Some(cached.rendered.json.len());
        }
        entries.sizes.get(&tenant).map(|(len, changes)| len + changes * per_change)
    }

    /// (entries, bytes) held now.
    #[cfg(test)]
    fn usage(&self) -> (usize, usize) {
        let entries = self.lock();
        (entries.map.len(), entries.bytes)
    }
}

impl Registry {
    /// The tenant's catalogue, from the cache when it is current.
    pub async fn catalogue(&self, tenant: TenantId) -> Result<Arc<RenderedCatalogue>> {
        match self.catalogue_lookup(tenant) {
            Ok(rendered) => Ok(rendered),
            Err(cached) => self.revalidate_catalogue(tenant, cached).await,
        }
    }

    /// The cached catalogue when it may be served without waiting on the database (fresh, or
    /// stale within bounds and being revalidated in the background), else `None`: the hot path
    /// of a request answered before the routers, which falls back to [`Self::catalogue`].
    pub fn catalogue_cached(&self, tenant: TenantId) -> Option<Arc<RenderedCatalogue>> {
        self.catalogue_lookup(tenant).ok()
    }

    /// A public tenant's catalogue from the caches alone, with the instant until which the
    /// pair may be used again without asking the caches (the tenant's row and the rendering are
    /// both fresh until then, as long as [`Self::cache_generation`] has not moved). `None` when
    /// either is not cached, the tenant is not public, or the rendering must be revalidated.
    pub fn hot_catalogue(&self, slug: &str, now: Instant) -> Option<HotCatalogue> {
        let (tenant, tenant_at) = self.route_tenant_cached_at(slug)?;
        if tenant.visibility != skill_pool_core::api::Visibility::Public {
            return None;
        }
        let (rendered, checked) = self.inner.catalogues.get(tenant.id)?;
        let fresh_until = (checked + REVALIDATE_AFTER).min(tenant_at + crate::tenants::TENANT_TTL);
        if now >= fresh_until {
            // Stale: the usual lookup revalidates it (and may still serve it).
            let rendered = self.catalogue_cached(tenant.id)?;
            return Some(HotCatalogue {
                tenant,
                rendered,
                fresh_until: now,
            });
        }
        Some(HotCatalogue {
            tenant,
            rendered,
            fresh_until,
        })
    }

    /// Moves whenever a cached tenant row or catalogue is stored or dropped: what
    /// [`Self::hot_catalogue`] gave stays right while this has not moved (and before its
    /// `fresh_until`).
    pub fn cache_generation(&self) -> u64 {
        self.inner.catalogues.generation().wrapping_add(self.inner.tenants.generation())
    }

    /// `Ok` when the cache can answer now; `Err` with what it holds (too old to serve) when the
    /// database must be asked first.
    fn catalogue_lookup(&self, tenant: TenantId) -> std::result::Result<Arc<RenderedCatalogue>, Option<Arc<RenderedCatalogue>>> {
        let cache = &self.inner.catalogues;
        let Some((rendered, checked)) = cache.get(tenant) else {
            return Err(None);
        };
        let age = checked.elapsed();
        if age < REVALIDATE_AFTER {
            return Ok(rendered);
        }
        if age >= SERVE_STALE_FOR {
            return Err(Some(rendered));
        }
        if cache.claim_revalidation(tenant) {
            let registry = self.clone();
            let stale = rendered.clone();
            tokio::spawn(async move {
                if let Err(e) = registry.revalidate_catalogue(tenant, Some(stale)).await {
                    tracing::debug!(tenant = %tenant, error = %e, "revalidating a cached catalogue failed");
                    registry.inner.catalogues.end_revalidation(tenant);
                }
            });
        }
        Ok(rendered)
    }

    /// Checks `cached` against the tenant's `catalogue_rev` and renders it again if it changed.
    async fn revalidate_catalogue(&self, tenant: TenantId, cached: Option<Arc<RenderedCatalogue>>) -> Result<Arc<RenderedCatalogue>> {
        let cache = &self.inner.catalogues;
        let rev = match self.store().catalogue_rev(tenant).await? {
            Some(rev) => rev,
            None => {
                cache.remove(tenant);
                return Err(RegistryError::NotFound("tenant not found".into()));
            }
        };
        if let Some(rendered) = cached
            && rendered.rev == rev
        {
            cache.put(tenant, rendered.clone());
            return Ok(rendered);
        }
        let rendered = Arc::new(self.render_catalogue(tenant, rev).await?);
        cache.put(tenant, rendered.clone());
        Ok(rendered)
    }

    /// Drops the cached catalogue after a change made by this process.
    pub(crate) fn invalidate_catalogue(&self, tenant: TenantId) {
        self.inner.catalogues.changed(tenant);
    }

    /// The catalogue's JSON length without rendering it when that is cheap: an estimate that
    /// counts `per_change` bytes for every change since the last rendering (an entry is rarely
    /// bigger). Rendered for real when the estimate comes within half of `exact_above`'s margin.
    pub(crate) async fn catalogue_len(&self, tenant: TenantId, per_change: usize, exact_above: u64) -> Result<u64> {
        match self.inner.catalogues.size_estimate(tenant, per_change) {
            Some(len) if (len as u64) < exact_above => Ok(len as u64),
            _ => Ok(self.catalogue(tenant).await?.json.len() as u64),
        }
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
        let mut json = catalogue.to_json_bytes();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&json).map_err(RegistryError::io("compressing the catalogue"))?;
        let mut gzip = gz.finish().map_err(RegistryError::io("compressing the catalogue"))?;
        // Kept for as long as the tenant is cached: no spare capacity from the buffers' growth.
        json.shrink_to_fit();
        gzip.shrink_to_fit();
        Ok(RenderedCatalogue::new(rev, json.into(), gzip.into()))
    }
}

/// `data` in a new memfd, sealed against any change of its size or content.
fn sealed_memory_file(data: &[u8]) -> std::io::Result<std::fs::File> {
    use rustix::fs::{MemfdFlags, SealFlags};
    let fd = rustix::fs::memfd_create("skill-pool-catalogue", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
    let mut file = std::fs::File::from(fd);
    file.write_all(data)?;
    rustix::fs::fcntl_add_seals(&file, SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL)?;
    Ok(file)
}

/// A stored JSON object (absent or unreadable: empty).
pub(crate) fn json_object(text: Option<&str>) -> serde_json::Map<String, serde_json::Value> {
    match text.map(serde_json::from_str) {
        Some(Ok(serde_json::Value::Object(m))) => m,
        _ => serde_json::Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(size: usize) -> Arc<RenderedCatalogue> {
        Arc::new(RenderedCatalogue::new(1, vec![b' '; size].into(), vec![0; size / 10].into()))
    }

    #[test]
    fn a_large_catalogue_has_a_sealed_file_copy_of_its_gzip_bytes() {
        use std::io::{Read, Seek, Write};
        let small = RenderedCatalogue::new(1, "{}".into(), vec![7; GZIP_FILE_MIN_BYTES - 1].into());
        assert!(small.gzip_file().is_none());
        let gzip: Vec<u8> = (0..GZIP_FILE_MIN_BYTES * 3).map(|i| (i * 31 % 251) as u8).collect();
        let large = RenderedCatalogue::new(1, "{}".into(), gzip.clone().into());
        let file = large.gzip_file().expect("a file copy");
        assert!(Arc::ptr_eq(file, large.gzip_file().unwrap()), "made once");
        let mut copy = Vec::new();
        (&**file).rewind().unwrap();
        (&**file).read_to_end(&mut copy).unwrap();
        assert!(copy == gzip);
        // Sealed: neither written nor grown.
        (&**file).rewind().unwrap();
        assert!((&**file).write_all(b"x").is_err());
        assert!(file.set_len(1).is_err());
        assert_eq!(large.weight(), 2 + 2 * gzip.len() + large.etag.len() + 256);
    }

    #[test]
    fn the_cache_is_bounded_by_bytes_and_drops_the_least_recently_used() {
        let one = rendered(10_000).weight();
        // Room for ten catalogues.
        let cache = CatalogueCache::new((10 * one) as u64);
        let t = TenantId::for_tests;
        for id in 0..10 {
            cache.put(t(id), rendered(10_000));
        }
        assert_eq!(cache.usage(), (10, 10 * one));
        // Tenant 0 is used again: the least recently used is now tenant 1.
        assert!(cache.get(t(0)).is_some());
        cache.put(t(10), rendered(10_000));
        let (entries, bytes) = cache.usage();
        assert!(bytes <= 10 * one, "{bytes} > {}", 10 * one);
        assert!((8..11).contains(&entries), "{entries}");
        assert!(cache.get(t(0)).is_some(), "the recently used one stays");
        assert!(cache.get(t(10)).is_some(), "the new one stays");
        assert!(cache.get(t(1)).is_none(), "the least recently used one went first");
        // Replacing an entry and removing one keep the byte count exact.
        cache.put(t(10), rendered(20_000));
        cache.remove(t(0));
        let expected: usize = {
            let e = cache.lock();
            e.map.values().map(|c| c.rendered.weight()).sum()
        };
        assert_eq!(cache.usage().1, expected);
        // A catalogue larger than the whole bound is served but not kept.
        let small = CatalogueCache::new(100);
        small.put(t(1), rendered(10_000));
        assert_eq!(small.usage(), (0, 0));
    }

    #[test]
    fn the_size_is_estimated_from_the_last_rendering_and_the_changes_since() {
        let cache = CatalogueCache::new(1 << 20);
        let t = TenantId::for_tests;
        assert_eq!(cache.size_estimate(t(1), 600), None, "never rendered");
        cache.put(t(1), rendered(5_000));
        assert_eq!(cache.size_estimate(t(1), 600), Some(5_000));
        cache.changed(t(1));
        cache.changed(t(1));
        assert_eq!(cache.size_estimate(t(1), 600), Some(6_200), "two changes of at most 600 bytes");
        // Evicted or not, a new rendering starts the count again.
        cache.put(t(1), rendered(5_300));
        assert_eq!(cache.size_estimate(t(1), 600), Some(5_300));
    }
}
