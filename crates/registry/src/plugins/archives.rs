//! Zip archives of plugin versions, for tenants that serve `archive` sources: rendered once per
//! version (keyed by its commit id, so a purge, which rewrites the later commits, never serves
//! a stale zip) under `<data>/archives/<tenant>/<plugin>/`, written atomically, then served as
//! a static file. The sha256 sits beside each zip, so the catalogue never re-reads one.

use std::path::PathBuf;

use sha2::{Digest, Sha256};
use skill_pool_core::archive::FileMode;
use skill_pool_core::zip::{ZipFile, write_zip};

use super::read::effective_version;
use super::*;

/// A rendered archive on disk.
#[derive(Debug, Clone)]
pub struct ServedArchive {
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
}

/// The refusal for a plugin whose files hold symbolic links (Claude Code's archive install
/// turns a link into a regular file holding the target's path).
pub(crate) fn symlink_refusal(slug: &str, links: &[String]) -> RegistryError {
    RegistryError::invalid_plugin(format!(
        "plugin `{slug}` has symbolic links ({}), which Claude Code cannot install from an archive (it turns each into a file holding the link's target): replace them with the files, or serve the tenant as git (`skill-pool tenant set --serve-as git`)",
        links.join(", ")
    ))
    .with_field(links.first().cloned().unwrap_or_default())
}

impl Registry {
    fn archive_dir(&self, tenant: TenantId, plugin: PluginId) -> PathBuf {
        self.config()
            .data_dir
            .join("archives")
            .join(tenant.get().to_string())
            .join(plugin.get().to_string())
    }

    /// Forgets a plugin's rendered archives (after a purge or a delete); they are rendered
    /// again on demand.
    pub(crate) async fn remove_archives(&self, tenant: TenantId, plugin: PluginId) {
        let dir = self.archive_dir(tenant, plugin);
        if let Err(e) = tokio::fs::remove_dir_all(&dir).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %dir.display(), error = %e, "could not remove rendered archives");
        }
    }

    /// Refuses to serve the tenant as archives while a served version has symbolic links,
    /// naming the plugin.
    pub(crate) async fn check_archivable(&self, tenant: TenantId) -> Result<()> {
        let plugins = self.store().list_plugins(tenant, None, i64::MAX).await?;
        for v in self.store().served_plugin_versions(tenant).await? {
            let links = self.version_symlinks(tenant, &v).await?;
            if !links.is_empty() {
                let slug = plugins
                    .iter()
                    .find(|p| p.id == v.plugin_id)
                    .map(|p| p.slug.clone())
                    .unwrap_or_default();
                return Err(symlink_refusal(&slug, &links));
            }
        }
        Ok(())
    }

    /// The symbolic links of a version's tree.
    pub(crate) async fn version_symlinks(&self, tenant: TenantId, version: &PluginVersionRow) -> Result<Vec<String>> {
        Ok(self
            .store()
            .plugin_version_tree(tenant, version.id)
            .await?
            .into_iter()
            .filter(|f| f.mode == FileMode::Symlink)
            .map(|f| f.path)
            .collect())
    }

    /// The zip of `version`, rendered now if it is not on disk yet.
    pub(crate) async fn ensure_archive(&self, tenant: TenantId, plugin: &PluginRow, version: &PluginVersionRow) -> Result<ServedArchive> {
        let dir = self.archive_dir(tenant, plugin.id);
        let path = dir.join(format!("{}.zip", version.commit_id));
        let sha_path = dir.join(format!("{}.zip.sha256", version.commit_id));
        if let Ok(sha) = tokio::fs::read_to_string(&sha_path).await
            && let Ok(meta) = tokio::fs::metadata(&path).await
        {
            return Ok(ServedArchive {
                path,
                sha256: sha.trim().to_string(),
                size: meta.len(),
            });
        }
        let tree = self.store().plugin_version_tree(tenant, version.id).await?;
        let links: Vec<String> = tree
            .iter()
            .filter(|f| f.mode == FileMode::Symlink)
            .map(|f| f.path.clone())
            .collect();
        if !links.is_empty() {
            return Err(symlink_refusal(&plugin.slug, &links));
        }
        let files = crate::tree::load_files(self, tree).await?;
        let (zip, sha) = tokio::task::spawn_blocking(move || -> std::io::Result<(Vec<u8>, String)> {
            let entries: Vec<ZipFile<'_>> = files
                .iter()
                .map(|f| ZipFile {
                    path: &f.path,
                    mode: if f.mode == FileMode::Executable { 0o755 } else { 0o644 },
                    data: &f.data,
                })
                .collect();
            let zip = write_zip(&entries)?;
            let sha = hex::encode(Sha256::digest(&zip));
            Ok((zip, sha))
        })
        .await?
        .map_err(RegistryError::io("rendering a plugin archive"))?;
        let size = zip.len() as u64;
        let write = |target: PathBuf, bytes: Vec<u8>| async move {
            let tmp = target.with_extension(format!("tmp-{}", rand::random::<u64>()));
            tokio::fs::write(&tmp, &bytes).await?;
            tokio::fs::rename(&tmp, &target).await
        };
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(RegistryError::io("creating the archive folder"))?;
        // The zip first: its sha256 beside it says it is complete.
        write(path.clone(), zip)
            .await
            .map_err(RegistryError::io("writing a plugin archive"))?;
        write(sha_path, sha.clone().into_bytes())
            .await
            .map_err(RegistryError::io("writing a plugin archive"))?;
        Ok(ServedArchive { path, sha256: sha, size })
    }

    /// `GET <T>/archives/<plugin>/<version>.zip`: any version of an internal or mirrored plugin
    /// (a client may still list an older one), by the version string Claude Code sees.
    pub async fn archive(&self, tenant: TenantId, slug: &str, file: &str) -> Result<ServedArchive> {
        let not_found = || RegistryError::NotFound(format!("no archive `{slug}/{file}`"));
        let version = file.strip_suffix(".zip").ok_or_else(not_found)?;
        let plugin = self.store().plugin(tenant, slug).await?.ok_or_else(not_found)?;
        if plugin.mode == SourcingMode::External || plugin.install_policy == skill_pool_core::api::InstallPolicy::Hidden {
            return Err(not_found());
        }
        let versions = self.store().plugin_versions(tenant, plugin.id).await?;
        let row = versions
            .iter()
            .rev()
            .find(|v| effective_version(v) == version)
            .ok_or_else(not_found)?;
        self.ensure_archive(tenant, &plugin, row).await
    }

    /// The archive source of a served version, for the catalogue: `None` when it cannot be an
    /// archive (symbolic links), so the entry stays a git source.
    pub(crate) async fn archive_source(
        &self,
        tenant: TenantId,
        tenant_slug: &str,
        plugin: &PluginRow,
        version: &PluginVersionRow,
    ) -> Result<Option<serde_json::Value>> {
        match self.ensure_archive(tenant, plugin, version).await {
            Ok(a) => {
                let url = format!(
                    "{}/archives/{}/{}.zip",
                    self.tenant_url(tenant_slug),
                    plugin.slug,
                    effective_version(version)
                );
                Ok(Some(serde_json::json!({ "source": "archive", "url": url, "sha256": a.sha256 })))
            }
            Err(e @ RegistryError::InvalidPlugin(_)) => {
                tracing::warn!(plugin = %plugin.slug, error = %e, "listed as a git source");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}
