//! Plugins and their versions: the pinned pieces and the plugin's own files of each version.

use skill_pool_core::api::{PieceKind, SourcingMode};

use crate::pieces::FileRow;
use crate::{Db, PieceVersionId, PluginId, Result, TenantId, Tx, now_ms};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PluginRow {
    pub id: PluginId,
    pub tenant_id: TenantId,
    pub slug: String,
    #[sqlx(try_from = "String")]
    pub mode: SourcingMode,
    /// `PluginMetadata` as JSON text.
    pub metadata: String,
    pub external_source: Option<String>,
    /// External listings: the catalogue entry's other fields, verbatim (JSON object text).
    pub catalogue_extra: Option<String>,
    /// The version an admin pinned as served; `None`: the newest is served.
    pub served_version_id: Option<i64>,
    #[sqlx(try_from = "String")]
    pub install_policy: skill_pool_core::api::InstallPolicy,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PluginVersionRow {
    pub id: i64,
    pub plugin_id: PluginId,
    pub seq: i64,
    pub version: Option<String>,
    pub commit_id: String,
    pub digest: String,
    /// The inline blobs of a composed version, as JSON text.
    pub blobs: Option<String>,
    pub created_at: i64,
    pub created_by: String,
}

/// A piece version a plugin version pins, and where its files sit.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PinnedPieceRow {
    pub piece_version_id: PieceVersionId,
    pub mount_path: String,
    #[sqlx(try_from = "String")]
    pub kind: PieceKind,
    pub slug: String,
    pub version: String,
    pub archived_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewPluginVersion<'a> {
    pub seq: i64,
    pub version: Option<&'a str>,
    pub commit_id: &'a str,
    pub digest: &'a str,
    pub blobs: Option<&'a str>,
    pub created_at: i64,
    pub created_by: &'a str,
}

const PLUGIN_COLUMNS: &str =
    "id, tenant_id, slug, mode, metadata, external_source, catalogue_extra, served_version_id, install_policy, created_at, updated_at";
const VERSION_COLUMNS: &str = "id, plugin_id, seq, version, commit_id, digest, blobs, created_at, created_by";

/// Reads of plugins and their versions, on the pool or in a transaction.
pub trait PluginReads: Db {
    async fn plugin(&mut self, tenant: TenantId, slug: &str) -> Result<Option<PluginRow>> {
        Ok(
            sqlx::query_as(&format!("SELECT {PLUGIN_COLUMNS} FROM plugins WHERE tenant_id = $1 AND slug = $2"))
                .bind(tenant.0)
                .bind(slug)
                .fetch_optional(self.executor())
                .await?,
        )
    }

    async fn plugin_by_id(&mut self, tenant: TenantId, id: PluginId) -> Result<Option<PluginRow>> {
        Ok(
            sqlx::query_as(&format!("SELECT {PLUGIN_COLUMNS} FROM plugins WHERE tenant_id = $1 AND id = $2"))
                .bind(tenant.0)
                .bind(id.0)
                .fetch_optional(self.executor())
                .await?,
        )
    }

    /// A page of plugins, by slug, after the `after` slug.
    async fn list_plugins(&mut self, tenant: TenantId, after: Option<&str>, limit: i64) -> Result<Vec<PluginRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {PLUGIN_COLUMNS} FROM plugins WHERE tenant_id = $1 AND slug > $2 ORDER BY slug LIMIT $3"
        ))
        .bind(tenant.0)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.executor())
        .await?)
    }

    /// All versions, oldest first.
    async fn plugin_versions(&mut self, tenant: TenantId, plugin_id: PluginId) -> Result<Vec<PluginVersionRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {VERSION_COLUMNS} FROM plugin_versions WHERE tenant_id = $1 AND plugin_id = $2 ORDER BY seq"
        ))
        .bind(tenant.0)
        .bind(plugin_id.0)
        .fetch_all(self.executor())
        .await?)
    }

    /// The served (highest `seq`) version.
    async fn latest_plugin_version(&mut self, tenant: TenantId, plugin_id: PluginId) -> Result<Option<PluginVersionRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {VERSION_COLUMNS} FROM plugin_versions WHERE tenant_id = $1 AND plugin_id = $2 ORDER BY seq DESC LIMIT 1"
        ))
        .bind(tenant.0)
        .bind(plugin_id.0)
        .fetch_optional(self.executor())
        .await?)
    }

    /// The served version of every plugin of the tenant that has one.
    async fn latest_plugin_versions(&mut self, tenant: TenantId) -> Result<Vec<PluginVersionRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {VERSION_COLUMNS} FROM plugin_versions v WHERE v.tenant_id = $1 \
             AND v.seq = (SELECT MAX(v2.seq) FROM plugin_versions v2 WHERE v2.plugin_id = v.plugin_id)"
        ))
        .bind(tenant.0)
        .fetch_all(self.executor())
        .await?)
    }

    /// The served version of every plugin of the tenant that has one: the pinned one, else the
    /// newest.
    async fn served_plugin_versions(&mut self, tenant: TenantId) -> Result<Vec<PluginVersionRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {VERSION_COLUMNS} FROM plugin_versions v WHERE v.tenant_id = $1 \
             AND v.id = COALESCE( \
               (SELECT p.served_version_id FROM plugins p WHERE p.id = v.plugin_id), \
               (SELECT v2.id FROM plugin_versions v2 WHERE v2.plugin_id = v.plugin_id ORDER BY v2.seq DESC LIMIT 1))"
        ))
        .bind(tenant.0)
        .fetch_all(self.executor())
        .await?)
    }

    /// The pieces a version pins, by kind and slug.
    async fn plugin_version_pieces(&mut self, tenant: TenantId, version_id: i64) -> Result<Vec<PinnedPieceRow>> {
        Ok(sqlx::query_as(
            "SELECT vp.piece_version_id, vp.mount_path, p.kind, p.slug, pv.version, pv.archived_at \
             FROM plugin_version_pieces vp \
             JOIN plugin_versions v ON v.id = vp.plugin_version_id \
             JOIN piece_versions pv ON pv.id = vp.piece_version_id \
             JOIN pieces p ON p.id = pv.piece_id \
             WHERE v.tenant_id = $1 AND v.id = $2 ORDER BY p.kind, p.slug",
        )
        .bind(tenant.0)
        .bind(version_id)
        .fetch_all(self.executor())
        .await?)
    }

    /// The plugin's own files of a version (not its pieces' files), by path in byte order.
    async fn plugin_version_files(&mut self, tenant: TenantId, version_id: i64) -> Result<Vec<FileRow>> {
        let mut files: Vec<FileRow> = sqlx::query_as(
            "SELECT f.path, f.mode, f.size, f.sha256, f.git_oid FROM plugin_version_files f \
             JOIN plugin_versions v ON v.id = f.plugin_version_id WHERE v.tenant_id = $1 AND v.id = $2 ORDER BY f.path",
        )
        .bind(tenant.0)
        .bind(version_id)
        .fetch_all(self.executor())
        .await?;
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// The bodies (sha256) the plugin's own files reference, over all its versions, distinct.
    async fn plugin_file_blobs(&mut self, tenant: TenantId, plugin_id: PluginId) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT f.sha256 FROM plugin_version_files f \
             JOIN plugin_versions v ON v.id = f.plugin_version_id WHERE v.tenant_id = $1 AND v.plugin_id = $2 ORDER BY f.sha256",
        )
        .bind(tenant.0)
        .bind(plugin_id.0)
        .fetch_all(self.executor())
        .await?)
    }

    /// The whole tree of a version, sorted by path: its own files and its pinned pieces' files
    /// under their mount paths.
    async fn plugin_version_tree(&mut self, tenant: TenantId, version_id: i64) -> Result<Vec<FileRow>> {
        let mut files = self.plugin_version_files(tenant, version_id).await?;
        let pieces: Vec<FileRow> = sqlx::query_as(
            "SELECT vp.mount_path || '/' || f.path AS path, f.mode, f.size, f.sha256, f.git_oid \
             FROM plugin_version_pieces vp \
             JOIN plugin_versions v ON v.id = vp.plugin_version_id \
             JOIN piece_files f ON f.version_id = vp.piece_version_id \
             WHERE v.tenant_id = $1 AND v.id = $2",
        )
        .bind(tenant.0)
        .bind(version_id)
        .fetch_all(self.executor())
        .await?;
        files.extend(pieces);
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }
}

impl<T: Db> PluginReads for T {}

impl Tx {
    /// Inserts a plugin; `StoreError::Conflict` when the slug is taken in this tenant.
    pub async fn insert_plugin(
        &mut self,
        tenant: TenantId,
        slug: &str,
        mode: SourcingMode,
        metadata: &str,
        external_source: Option<&str>,
    ) -> Result<PluginRow> {
        let now = now_ms();
        Ok(sqlx::query_as(&format!(
            "INSERT INTO plugins (tenant_id, slug, mode, metadata, external_source, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {PLUGIN_COLUMNS}"
        ))
        .bind(tenant.0)
        .bind(slug)
        .bind(mode.as_str())
        .bind(metadata)
        .bind(external_source)
        .bind(now)
        .fetch_one(self.conn())
        .await?)
    }

    pub async fn set_install_policy(
        &mut self,
        tenant: TenantId,
        plugin_id: PluginId,
        policy: skill_pool_core::api::InstallPolicy,
    ) -> Result<()> {
        sqlx::query("UPDATE plugins SET install_policy = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4")
            .bind(policy.as_str())
            .bind(now_ms())
            .bind(tenant.0)
            .bind(plugin_id.0)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Pins the served version (`None`: serve the newest again).
    pub async fn set_served_version(&mut self, tenant: TenantId, plugin_id: PluginId, version_id: Option<i64>) -> Result<()> {
        sqlx::query("UPDATE plugins SET served_version_id = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4")
            .bind(version_id)
            .bind(now_ms())
            .bind(tenant.0)
            .bind(plugin_id.0)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    pub async fn update_plugin(
        &mut self,
        tenant: TenantId,
        plugin_id: PluginId,
        metadata: &str,
        external_source: Option<&str>,
    ) -> Result<()> {
        sqlx::query("UPDATE plugins SET metadata = $1, external_source = $2, updated_at = $3 WHERE tenant_id = $4 AND id = $5")
            .bind(metadata)
            .bind(external_source)
            .bind(now_ms())
            .bind(tenant.0)
            .bind(plugin_id.0)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Sets an external listing's other catalogue entry fields (JSON object text, or none).
    pub async fn set_catalogue_extra(&mut self, tenant: TenantId, plugin_id: PluginId, extra: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE plugins SET catalogue_extra = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4")
            .bind(extra)
            .bind(now_ms())
            .bind(tenant.0)
            .bind(plugin_id.0)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Deletes the plugin and its versions (pieces stay registered).
    pub async fn delete_plugin(&mut self, tenant: TenantId, plugin_id: PluginId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM plugins WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(plugin_id.0)
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Takes the plugin's row lock for the rest of the transaction (a no-op update): changes of
    /// its history (a new version, a purge) take it before they read the versions, so on
    /// PostgreSQL one waits for the other to commit and then reads what it wrote (SQLite runs
    /// one write transaction at a time anyway).
    pub async fn lock_plugin(&mut self, tenant: TenantId, plugin_id: PluginId) -> Result<()> {
        sqlx::query("UPDATE plugins SET updated_at = updated_at WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(plugin_id.0)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Deletes one version with its pinned pieces and own files (a purge; the pieces stay).
    pub async fn delete_plugin_version(&mut self, tenant: TenantId, version_id: i64) -> Result<bool> {
        // Explicit rather than relying on ON DELETE CASCADE (SQLite enforces it only with
        // `foreign_keys = ON`, which every connection sets, but a purge must never leave a file row).
        for table in ["plugin_version_files", "plugin_version_pieces"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE plugin_version_id IN (SELECT id FROM plugin_versions WHERE tenant_id = $1 AND id = $2)"
            ))
            .bind(tenant.0)
            .bind(version_id)
            .execute(self.conn())
            .await?;
        }
        let done = sqlx::query("DELETE FROM plugin_versions WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(version_id)
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records a version's recomputed commit id (its history was rewritten by a purge).
    pub async fn set_plugin_version_commit(&mut self, tenant: TenantId, version_id: i64, commit_id: &str) -> Result<()> {
        sqlx::query("UPDATE plugin_versions SET commit_id = $1 WHERE tenant_id = $2 AND id = $3")
            .bind(commit_id)
            .bind(tenant.0)
            .bind(version_id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Inserts a version with its pinned pieces `(piece_version_id, mount_path)` and own files.
    /// `StoreError::Conflict` when a concurrent publish took the same `seq`.
    pub async fn insert_plugin_version(
        &mut self,
        tenant: TenantId,
        plugin_id: PluginId,
        new: &NewPluginVersion<'_>,
        pieces: &[(PieceVersionId, String)],
        files: &[FileRow],
    ) -> Result<PluginVersionRow> {
        let version: PluginVersionRow = sqlx::query_as(&format!(
            "INSERT INTO plugin_versions (tenant_id, plugin_id, seq, version, commit_id, digest, blobs, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {VERSION_COLUMNS}"
        ))
        .bind(tenant.0)
        .bind(plugin_id.0)
        .bind(new.seq)
        .bind(new.version)
        .bind(new.commit_id)
        .bind(new.digest)
        .bind(new.blobs)
        .bind(new.created_at)
        .bind(new.created_by)
        .fetch_one(self.conn())
        .await?;
        for (piece_version_id, mount_path) in pieces {
            sqlx::query("INSERT INTO plugin_version_pieces (plugin_version_id, piece_version_id, mount_path) VALUES ($1, $2, $3)")
                .bind(version.id)
                .bind(piece_version_id.0)
                .bind(mount_path)
                .execute(self.conn())
                .await?;
        }
        crate::pieces::insert_files(self.conn(), "plugin_version_files (plugin_version_id", version.id, files).await?;
        Ok(version)
    }
}
