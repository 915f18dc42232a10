//! Materialised repositories: each internal plugin is a bare git repo on disk, a cache of the
//! database. `ensure_repo` brings it to the commit the database says is served, rebuilding
//! the history (same commit ids) when it is missing, stale or corrupt.

use std::path::PathBuf;
use std::sync::Arc;

use skill_pool_git::object::{ObjectId, plugin_version_message, plugin_version_tags};
use skill_pool_git::repo::{BareRepo, BodySource, HistoryVersion};
use skill_pool_store::plugins::{PluginRow, PluginVersionRow};
use skill_pool_store::{BlobStore, PluginId, TenantId};

use std::collections::HashMap;

use crate::tree::{Bodies, tree_files};
use crate::{Registry, RegistryError, Result};
use skill_pool_store::prelude::*;

/// Bodies for a repo write: from the blob store, or from memory when the publish that just
/// committed still holds them (no read back and no second hash of what it hashed already).
struct Blobs {
    store: BlobStore,
    known: Option<(Bodies, HashMap<String, usize>)>,
}

impl Blobs {
    fn new(store: BlobStore, known: Option<&Bodies>) -> Blobs {
        let known = known.map(|b| {
            let index = b.list().iter().enumerate().map(|(i, (address, _))| (address.clone(), i)).collect();
            (b.clone(), index)
        });
        Blobs { store, known }
    }
}

impl BodySource for Blobs {
    fn read(&self, sha256: &str) -> std::io::Result<Vec<u8>> {
        if let Some((bodies, index)) = &self.known
            && let Some(i) = index.get(sha256)
        {
            return Ok(bodies.list()[*i].1.clone());
        }
        self.store.get(sha256)
    }
}

impl Registry {
    fn repo_lock(&self, plugin_id: PluginId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.inner.repo_locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(plugin_id).or_default().clone()
    }

    pub fn repo_path(&self, tenant: TenantId, plugin_id: PluginId) -> PathBuf {
        skill_pool_git::repo_path(&self.config().data_dir, tenant.get(), plugin_id.get())
    }

    /// Makes sure the plugin's repo serves its latest version; returns the repo path, or
    /// `NotFound` when the plugin has nothing to serve.
    pub async fn ensure_repo(&self, tenant: TenantId, plugin: &PluginRow) -> Result<PathBuf> {
        Ok(self.materialise(tenant, plugin, false, None).await?.0)
    }

    /// [`Registry::ensure_repo`] right after a publish, with the bodies it holds in memory.
    pub(crate) async fn ensure_repo_with(&self, tenant: TenantId, plugin: &PluginRow, bodies: &Bodies) -> Result<PathBuf> {
        Ok(self.materialise(tenant, plugin, false, Some(bodies)).await?.0)
    }

    /// Rebuilds the plugin's repo from nothing (after a purge): the new repo holds the objects
    /// of the remaining versions only, and replaces the old one in one rename.
    pub(crate) async fn rebuild_repo(&self, tenant: TenantId, plugin: &PluginRow) -> Result<PathBuf> {
        self.inner
            .verified_repos
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&plugin.id);
        self.forget_packs(tenant, plugin.id);
        Ok(self.materialise(tenant, plugin, true, None).await?.0)
    }

    /// Drops the plugin's answers in the pack cache (its history was rewritten, or it is gone).
    fn forget_packs(&self, tenant: TenantId, plugin_id: PluginId) {
        let root = skill_pool_git::pack_cache_root(&self.config().data_dir);
        skill_pool_git::answers::forget_plugin(&root, tenant.get(), plugin_id.get());
    }

    /// The repo and the head commit it serves.
    async fn materialise(&self, tenant: TenantId, plugin: &PluginRow, fresh: bool, known: Option<&Bodies>) -> Result<(PathBuf, String)> {
        let latest = self
            .store()
            .latest_plugin_version(tenant, plugin.id)
            .await?
            .ok_or_else(|| RegistryError::NotFound(format!("plugin `{}` has no published version", plugin.slug)))?;
        let path = self.repo_path(tenant, plugin.id);
        if !fresh && self.is_verified(plugin.id, &latest.commit_id) {
            return Ok((path, latest.commit_id));
        }
        let lock = self.repo_lock(plugin.id);
        let _guard = lock.lock().await;
        if !fresh && self.is_verified(plugin.id, &latest.commit_id) {
            return Ok((path, latest.commit_id));
        }
        let expected: ObjectId = latest
            .commit_id
            .parse()
            .map_err(|_| RegistryError::Internal("stored commit id is not valid".into()))?;
        // Between processes too (several servers on one data folder): an exclusive file lock
        // beside the repo, held until the repo is at the expected commit.
        let _file_lock = match lock_file(path.with_extension("lock")).await {
            Ok(lock) => lock,
            // A read-only data dir: nobody can be writing the repo, so one already at the
            // expected commit is served as it is (and anything else cannot be mended now).
            Err(e) if e.storage_fault() == Some(crate::StorageFault::ReadOnly) => {
                let current = match BareRepo::open_or_init(&path).await {
                    Ok(repo) => repo.head_commit().await.ok().flatten(),
                    Err(_) => None,
                };
                if current != Some(expected) {
                    return Err(e);
                }
                self.inner
                    .verified_repos
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(plugin.id, latest.commit_id.clone());
                return Ok((path, latest.commit_id));
            }
            Err(e) => return Err(e),
        };
        // What a rebuild killed between its renames leaves: the old repo (purged objects in it)
        // and a half-written new one. Neither is served; neither stays.
        for leftover in [path.with_extension("old"), path.with_extension("rebuild")] {
            if tokio::fs::try_exists(&leftover).await.unwrap_or(false) {
                tracing::warn!(path = %leftover.display(), "removing what an interrupted repo rebuild left");
                let _ = tokio::fs::remove_dir_all(&leftover).await;
            }
        }
        // Read under the lock: a purge commits before it rebuilds, so this sees its outcome.
        let versions = self.store().plugin_versions(tenant, plugin.id).await?;
        let latest = versions
            .last()
            .cloned()
            .ok_or_else(|| RegistryError::NotFound(format!("plugin `{}` has no published version", plugin.slug)))?;
        let expected: ObjectId = latest
            .commit_id
            .parse()
            .map_err(|_| RegistryError::Internal("stored commit id is not valid".into()))?;
        let repo = match BareRepo::open_or_init(&path).await {
            Ok(repo) => repo,
            Err(e) => {
                tracing::warn!(plugin = %plugin.slug, error = %e, "repo unusable, rebuilding it");
                let _ = tokio::fs::remove_dir_all(&path).await;
                BareRepo::open_or_init(&path).await?
            }
        };
        let head = repo.head_commit().await.ok().flatten();
        // A repo at the right head may still lack tags its versions get (written by an older
        // skill-pool, or a tag lost on disk): the history is written again, which adds them.
        let tags_missing = head == Some(expected) && {
            let have = repo.tags().await.unwrap_or_default();
            versions
                .iter()
                .filter_map(|v| v.version.as_deref())
                .flat_map(|version| plugin_version_tags(&plugin.slug, version))
                .any(|tag| !have.contains(&tag))
        };
        // A head the database no longer knows: the history was rewritten by a purge (in another
        // process, or one interrupted before its rebuild). Writing on top would keep the purged
        // objects in the repo, fetchable by id: rebuild from nothing instead.
        let rewritten = head.is_some_and(|h| !versions.iter().any(|v| v.commit_id == h.to_hex()));
        if fresh || rewritten {
            let started = std::time::Instant::now();
            let history = self.history(tenant, plugin, &versions).await?;
            let staging = path.with_extension("rebuild");
            let fresh_repo = BareRepo::open_or_init(&staging).await?;
            let written = fresh_repo
                .write_history(&history, &Blobs::new(self.store().blobs().clone(), known))
                .await?;
            if written != expected {
                let _ = tokio::fs::remove_dir_all(&staging).await;
                return Err(RegistryError::Internal(format!(
                    "rebuilt repo of `{}` ended at {written}, expected {expected}",
                    plugin.slug
                )));
            }
            let old = path.with_extension("old");
            tokio::fs::rename(&path, &old)
                .await
                .map_err(RegistryError::io(format!("moving {} aside", path.display())))?;
            tokio::fs::rename(&staging, &path)
                .await
                .map_err(RegistryError::io(format!("moving the rebuilt repo to {}", path.display())))?;
            if let Err(e) = tokio::fs::remove_dir_all(&old).await {
                tracing::warn!(path = %old.display(), error = %e, "could not remove the repo a rebuild replaced");
            }
            tracing::info!(plugin = %plugin.slug, commit = %expected, versions = versions.len(), ms = started.elapsed().as_millis() as u64, "repo rebuilt from nothing");
        } else if head != Some(expected) || tags_missing {
            let started = std::time::Instant::now();
            // The versions up to the head are in the repo: their trees are not needed again.
            let at = head.and_then(|h| versions.iter().position(|v| v.commit_id == h.to_hex()));
            let history = self.history_from(tenant, plugin, &versions, at.map_or(0, |i| i + 1)).await?;
            let bodies = Blobs::new(self.store().blobs().clone(), known);
            let written = match repo.write_history_at(head, &history, &bodies).await {
                Ok(head) => head,
                Err(e) => {
                    // A corrupt cache: start from an empty repo once.
                    tracing::warn!(plugin = %plugin.slug, error = %e, "writing history failed, rebuilding the repo from scratch");
                    let _ = tokio::fs::remove_dir_all(&path).await;
                    let repo = BareRepo::open_or_init(&path).await?;
                    let history = self.history(tenant, plugin, &versions).await?;
                    repo.write_history(&history, &bodies).await?
                }
            };
            if written != expected {
                return Err(RegistryError::Internal(format!(
                    "repo of `{}` ended at {written}, expected {expected}",
                    plugin.slug
                )));
            }
            tracing::info!(plugin = %plugin.slug, commit = %expected, versions = versions.len(), ms = started.elapsed().as_millis() as u64, "repo materialised");
        }
        self.inner
            .verified_repos
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(plugin.id, latest.commit_id.clone());
        Ok((path, latest.commit_id))
    }

    /// The history the database describes, oldest first.
    async fn history(&self, tenant: TenantId, plugin: &PluginRow, versions: &[PluginVersionRow]) -> Result<Vec<HistoryVersion>> {
        self.history_from(tenant, plugin, versions, 0).await
    }

    /// The history, with the trees of the versions from `from` on only (those before are in the
    /// repo already: `write_history` resumes after its head and needs their ids and tags alone).
    async fn history_from(
        &self,
        tenant: TenantId,
        plugin: &PluginRow,
        versions: &[PluginVersionRow],
        from: usize,
    ) -> Result<Vec<HistoryVersion>> {
        let mut history = Vec::with_capacity(versions.len());
        for (i, v) in versions.iter().enumerate() {
            let files = if i >= from {
                tree_files(&self.store().plugin_version_tree(tenant, v.id).await?)?
            } else {
                Vec::new()
            };
            history.push(HistoryVersion {
                files,
                time_secs: v.created_at / 1000,
                message: plugin_version_message(&plugin.slug, v.seq, v.version.as_deref()),
                tags: v
                    .version
                    .as_deref()
                    .map(|version| plugin_version_tags(&plugin.slug, version))
                    .unwrap_or_default(),
                expected: v
                    .commit_id
                    .parse()
                    .map_err(|_| RegistryError::Internal("stored commit id is not valid".into()))?,
            });
        }
        Ok(history)
    }

    fn is_verified(&self, plugin_id: PluginId, commit: &str) -> bool {
        self.inner
            .verified_repos
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&plugin_id)
            .is_some_and(|c| c == commit)
    }

    /// Forgets what was verified (tests use this after damaging a repo on purpose).
    pub fn forget_verified_repos(&self) {
        self.inner.verified_repos.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// A mirror's cache of its upstream history.
    pub(crate) fn mirror_cache_path(&self, tenant: TenantId, plugin_id: PluginId) -> PathBuf {
        self.config()
            .data_dir
            .join("mirrors")
            .join(tenant.get().to_string())
            .join(format!("{}.git", plugin_id.get()))
    }

    pub(crate) async fn remove_repo(&self, tenant: TenantId, plugin_id: PluginId) {
        self.inner
            .verified_repos
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&plugin_id);
        let path = self.repo_path(tenant, plugin_id);
        let _ = tokio::fs::remove_file(path.with_extension("lock")).await;
        for leftover in [path.with_extension("old"), path.with_extension("rebuild")] {
            let _ = tokio::fs::remove_dir_all(leftover).await;
        }
        let _ = tokio::fs::remove_dir_all(self.mirror_cache_path(tenant, plugin_id)).await;
        self.forget_packs(tenant, plugin_id);
        if let Err(e) = tokio::fs::remove_dir_all(&path).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "could not remove a deleted plugin's repo");
        }
    }

    /// The served plugin for a git request: internal (or mirrored) plugins with a version only.
    pub async fn git_repo_for(&self, tenant: TenantId, plugin_slug: &str) -> Result<PathBuf> {
        Ok(self.served_repo(tenant, plugin_slug).await?.path)
    }

    /// The served plugin for a git request, with the head commit the database says it serves
    /// (what the answer caches are keyed by) and the ids that name its pack cache folder.
    pub async fn served_repo(&self, tenant: TenantId, plugin_slug: &str) -> Result<ServedRepo> {
        let plugin = self.plugin_row(tenant, plugin_slug).await?;
        if plugin.mode == skill_pool_core::api::SourcingMode::External {
            return Err(RegistryError::NotFound(format!(
                "plugin `{plugin_slug}` is external: clone it from its upstream"
            )));
        }
        let (path, head) = self.materialise(tenant, &plugin, false, None).await?;
        Ok(ServedRepo {
            path,
            head,
            tenant_id: tenant.get(),
            plugin_id: plugin.id.get(),
        })
    }
}

/// A plugin's repository as a git request gets it.
#[derive(Debug, Clone)]
pub struct ServedRepo {
    pub path: PathBuf,
    /// The commit `main` points at (hex).
    pub head: String,
    pub tenant_id: i64,
    pub plugin_id: i64,
}

/// Takes an exclusive lock on `path` (created if needed), off the async runtime; released when
/// the file is dropped.
async fn lock_file(path: PathBuf) -> Result<std::fs::File> {
    let shown = path.display().to_string();
    tokio::task::spawn_blocking(move || {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
        file.lock()?;
        Ok::<_, std::io::Error>(file)
    })
    .await?
    .map_err(RegistryError::io(format!("locking {shown}")))
}
