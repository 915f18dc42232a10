//! Materialised repositories: each internal plugin is a bare git repo on disk, a cache of the
//! database. `ensure_repo` brings it to the commit the database says is served, rebuilding
//! the history (same commit ids) when it is missing, stale or corrupt.

use std::path::PathBuf;
use std::sync::Arc;

use skill_pool_git::object::{ObjectId, plugin_version_message, plugin_version_tag};
use skill_pool_git::repo::{BareRepo, BodySource, HistoryVersion};
use skill_pool_store::plugins::PluginRow;
use skill_pool_store::{BlobStore, PluginId, TenantId};

use crate::tree::tree_files;
use crate::{Registry, RegistryError, Result};
use skill_pool_store::prelude::*;

struct Blobs(BlobStore);

impl BodySource for Blobs {
    fn read(&self, sha256: &str) -> std::io::Result<Vec<u8>> {
        self.0.get(sha256)
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
        let latest = self
            .store()
            .latest_plugin_version(tenant, plugin.id)
            .await?
            .ok_or_else(|| RegistryError::NotFound(format!("plugin `{}` has no published version", plugin.slug)))?;
        let path = self.repo_path(tenant, plugin.id);
        if self.is_verified(plugin.id, &latest.commit_id) {
            return Ok(path);
        }
        let lock = self.repo_lock(plugin.id);
        let _guard = lock.lock().await;
        if self.is_verified(plugin.id, &latest.commit_id) {
            return Ok(path);
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
                return Ok(path);
            }
            Err(e) => return Err(e),
        };
        let repo = match BareRepo::open_or_init(&path).await {
            Ok(repo) => repo,
            Err(e) => {
                tracing::warn!(plugin = %plugin.slug, error = %e, "repo unusable, rebuilding it");
                let _ = tokio::fs::remove_dir_all(&path).await;
                BareRepo::open_or_init(&path).await?
            }
        };
        if repo.head_commit().await.ok().flatten() != Some(expected) {
            let started = std::time::Instant::now();
            let versions = self.store().plugin_versions(tenant, plugin.id).await?;
            let mut history = Vec::with_capacity(versions.len());
            for v in &versions {
                let files = self.store().plugin_version_tree(tenant, v.id).await?;
                history.push(HistoryVersion {
                    files: tree_files(&files)?,
                    time_secs: v.created_at / 1000,
                    message: plugin_version_message(&plugin.slug, v.seq, v.version.as_deref()),
                    tag: v.version.as_deref().map(plugin_version_tag),
                    expected: v
                        .commit_id
                        .parse()
                        .map_err(|_| RegistryError::Internal("stored commit id is not valid".into()))?,
                });
            }
            let bodies = Blobs(self.store().blobs().clone());
            let written = match repo.write_history(&history, &bodies).await {
                Ok(head) => head,
                Err(e) => {
                    // A corrupt cache: start from an empty repo once.
                    tracing::warn!(plugin = %plugin.slug, error = %e, "writing history failed, rebuilding the repo from scratch");
                    let _ = tokio::fs::remove_dir_all(&path).await;
                    let repo = BareRepo::open_or_init(&path).await?;
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
        Ok(path)
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

    pub(crate) async fn remove_repo(&self, tenant: TenantId, plugin_id: PluginId) {
        self.inner
            .verified_repos
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&plugin_id);
        let path = self.repo_path(tenant, plugin_id);
        let _ = tokio::fs::remove_file(path.with_extension("lock")).await;
        // A mirror's cache of its upstream.
        let cache = self
            .config()
            .data_dir
            .join("mirrors")
            .join(tenant.get().to_string())
            .join(format!("{}.git", plugin_id.get()));
        let _ = tokio::fs::remove_dir_all(&cache).await;
        if let Err(e) = tokio::fs::remove_dir_all(&path).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "could not remove a deleted plugin's repo");
        }
    }

    /// The served plugin for a git request: internal (or mirrored) plugins with a version only.
    pub async fn git_repo_for(&self, tenant: TenantId, plugin_slug: &str) -> Result<PathBuf> {
        let plugin = self.plugin_row(tenant, plugin_slug).await?;
        if plugin.mode == skill_pool_core::api::SourcingMode::External {
            return Err(RegistryError::NotFound(format!(
                "plugin `{plugin_slug}` is external: clone it from its upstream"
            )));
        }
        self.ensure_repo(tenant, &plugin).await
    }
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
