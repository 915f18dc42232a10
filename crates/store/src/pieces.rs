//! The registry of atomic pieces (skills, agents, commands) and their immutable versions.

use skill_pool_core::api::PieceKind;
use skill_pool_core::archive::FileMode;

use crate::{Db, PieceVersionId, Result, TenantId, Tx, now_ms};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PieceRow {
    pub id: i64,
    #[sqlx(try_from = "String")]
    pub kind: PieceKind,
    pub slug: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PieceVersionRow {
    pub id: PieceVersionId,
    pub piece_id: i64,
    #[sqlx(try_from = "String")]
    pub kind: PieceKind,
    pub slug: String,
    pub version: String,
    pub description: Option<String>,
    /// Frontmatter as JSON text.
    pub metadata: String,
    pub digest: String,
    pub archived_at: Option<i64>,
    pub created_at: i64,
    pub created_by: String,
}

/// One stored file of a version (piece or plugin).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FileRow {
    pub path: String,
    #[sqlx(try_from = "String")]
    pub mode: FileMode,
    pub size: i64,
    pub sha256: String,
    pub git_oid: String,
}

/// What a new piece version says besides its files.
#[derive(Debug, Clone)]
pub struct NewPieceVersion<'a> {
    pub version: &'a str,
    pub description: Option<&'a str>,
    pub metadata: &'a str,
    pub digest: &'a str,
    pub created_by: &'a str,
}

const VERSION_COLUMNS: &str = "pv.id, pv.piece_id, p.kind, p.slug, pv.version, pv.description, pv.metadata, \
     pv.digest, pv.archived_at, pv.created_at, pv.created_by";
const PIECE_COLUMNS: &str = "id, kind, slug, created_at";

/// Reads of pieces, on the pool or in a transaction.
pub trait PieceReads: Db {
    async fn piece(&mut self, tenant: TenantId, kind: PieceKind, slug: &str) -> Result<Option<PieceRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {PIECE_COLUMNS} FROM pieces WHERE tenant_id = $1 AND kind = $2 AND slug = $3"
        ))
        .bind(tenant.0)
        .bind(kind.as_str())
        .bind(slug)
        .fetch_optional(self.executor())
        .await?)
    }

    /// A page of pieces of one kind, by slug, after the `after` slug.
    async fn list_pieces(&mut self, tenant: TenantId, kind: PieceKind, after: Option<&str>, limit: i64) -> Result<Vec<PieceRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {PIECE_COLUMNS} FROM pieces WHERE tenant_id = $1 AND kind = $2 AND slug > $3 ORDER BY slug LIMIT $4"
        ))
        .bind(tenant.0)
        .bind(kind.as_str())
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.executor())
        .await?)
    }

    /// All versions of a piece of this tenant, oldest first.
    async fn piece_versions(&mut self, tenant: TenantId, piece_id: i64) -> Result<Vec<PieceVersionRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {VERSION_COLUMNS} FROM piece_versions pv JOIN pieces p ON p.id = pv.piece_id \
             WHERE pv.tenant_id = $1 AND pv.piece_id = $2 ORDER BY pv.id"
        ))
        .bind(tenant.0)
        .bind(piece_id)
        .fetch_all(self.executor())
        .await?)
    }

    /// All versions of the given pieces (of this tenant), oldest first.
    async fn versions_of_pieces(&mut self, tenant: TenantId, piece_ids: &[i64]) -> Result<Vec<PieceVersionRow>> {
        if piece_ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (0..piece_ids.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM piece_versions pv JOIN pieces p ON p.id = pv.piece_id \
             WHERE pv.tenant_id = $1 AND pv.piece_id IN ({}) ORDER BY pv.id",
            placeholders.join(", ")
        );
        let mut query = sqlx::query_as(&sql).bind(tenant.0);
        for id in piece_ids {
            query = query.bind(*id);
        }
        Ok(query.fetch_all(self.executor()).await?)
    }

    /// The files of a piece version of this tenant (also one inserted in this transaction), by
    /// path in byte order (sorted here, not by the database's collation, so both backends agree).
    async fn piece_files(&mut self, tenant: TenantId, version_id: PieceVersionId) -> Result<Vec<FileRow>> {
        let mut files: Vec<FileRow> = sqlx::query_as(
            "SELECT f.path, f.mode, f.size, f.sha256, f.git_oid FROM piece_files f \
             JOIN piece_versions pv ON pv.id = f.version_id WHERE pv.tenant_id = $1 AND f.version_id = $2 ORDER BY f.path",
        )
        .bind(tenant.0)
        .bind(version_id.0)
        .fetch_all(self.executor())
        .await?;
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// Slugs of plugins whose served version pins another version of this piece than `current_version_id`.
    async fn plugins_pinning_other_versions(
        &mut self,
        tenant: TenantId,
        piece_id: i64,
        current_version_id: PieceVersionId,
    ) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT pl.slug FROM plugins pl \
             JOIN plugin_versions v ON v.plugin_id = pl.id \
             JOIN plugin_version_pieces vp ON vp.plugin_version_id = v.id \
             JOIN piece_versions pv ON pv.id = vp.piece_version_id \
             WHERE pl.tenant_id = $1 AND pv.piece_id = $2 AND pv.id <> $3 \
               AND v.seq = (SELECT MAX(v2.seq) FROM plugin_versions v2 WHERE v2.plugin_id = pl.id) \
             ORDER BY pl.slug",
        )
        .bind(tenant.0)
        .bind(piece_id)
        .bind(current_version_id.0)
        .fetch_all(self.executor())
        .await?)
    }

    /// Which plugin serves which version of this piece: (plugin slug, piece version), from
    /// each plugin's newest version, sorted.
    async fn piece_used_by(&mut self, tenant: TenantId, piece_id: i64) -> Result<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT DISTINCT pl.slug, pv.version FROM plugins pl \
             JOIN plugin_versions v ON v.plugin_id = pl.id \
             JOIN plugin_version_pieces vp ON vp.plugin_version_id = v.id \
             JOIN piece_versions pv ON pv.id = vp.piece_version_id \
             WHERE pl.tenant_id = $1 AND pv.piece_id = $2 \
               AND v.seq = (SELECT MAX(v2.seq) FROM plugin_versions v2 WHERE v2.plugin_id = pl.id) \
             ORDER BY pl.slug, pv.version",
        )
        .bind(tenant.0)
        .bind(piece_id)
        .fetch_all(self.executor())
        .await?)
    }
}

impl<T: Db> PieceReads for T {}

impl Tx {
    /// The piece, created if it does not exist yet.
    pub async fn ensure_piece(&mut self, tenant: TenantId, kind: PieceKind, slug: &str) -> Result<PieceRow> {
        if let Some(piece) = self.piece(tenant, kind, slug).await? {
            return Ok(piece);
        }
        Ok(sqlx::query_as(&format!(
            "INSERT INTO pieces (tenant_id, kind, slug, created_at) VALUES ($1, $2, $3, $4) RETURNING {PIECE_COLUMNS}"
        ))
        .bind(tenant.0)
        .bind(kind.as_str())
        .bind(slug)
        .bind(now_ms())
        .fetch_one(self.conn())
        .await?)
    }

    /// Inserts an immutable version with its files; `StoreError::Conflict` when the version exists.
    pub async fn insert_piece_version(
        &mut self,
        tenant: TenantId,
        piece_id: i64,
        new: &NewPieceVersion<'_>,
        files: &[FileRow],
    ) -> Result<PieceVersionId> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO piece_versions (tenant_id, piece_id, version, description, metadata, digest, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(tenant.0)
        .bind(piece_id)
        .bind(new.version)
        .bind(new.description)
        .bind(new.metadata)
        .bind(new.digest)
        .bind(now_ms())
        .bind(new.created_by)
        .fetch_one(self.conn())
        .await?;
        insert_files(self.conn(), "piece_files (version_id", id, files).await?;
        Ok(PieceVersionId(id))
    }

    /// Takes a version of this tenant out of the archive (idempotent); false when there is no such version.
    pub async fn unarchive_piece_version(&mut self, tenant: TenantId, version_id: PieceVersionId) -> Result<bool> {
        let done = sqlx::query("UPDATE piece_versions SET archived_at = NULL WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(version_id.0)
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Archives a version of this tenant (idempotent); false when there is no such version.
    pub async fn archive_piece_version(&mut self, tenant: TenantId, version_id: PieceVersionId) -> Result<bool> {
        let done = sqlx::query("UPDATE piece_versions SET archived_at = COALESCE(archived_at, $1) WHERE tenant_id = $2 AND id = $3")
            .bind(now_ms())
            .bind(tenant.0)
            .bind(version_id.0)
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

/// Rows of files per statement: 6 parameters each, well below SQLite's and PostgreSQL's limits.
const FILES_PER_INSERT: usize = 100;

/// Inserts the file rows of one version in a few multi-row statements (not a round trip per
/// file). `table` names the table and its owner column: `piece_files (version_id`.
pub(crate) async fn insert_files(conn: &mut sqlx::AnyConnection, table: &str, owner: i64, files: &[FileRow]) -> Result<()> {
    for chunk in files.chunks(FILES_PER_INSERT) {
        let mut sql = format!("INSERT INTO {table}, path, mode, size, sha256, git_oid) VALUES ");
        for i in 0..chunk.len() {
            let n = i * 6;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("(${}, ${}, ${}, ${}, ${}, ${})", n + 1, n + 2, n + 3, n + 4, n + 5, n + 6));
        }
        let mut query = sqlx::query(&sql);
        for f in chunk {
            query = query
                .bind(owner)
                .bind(&f.path)
                .bind(f.mode.as_str())
                .bind(f.size)
                .bind(&f.sha256)
                .bind(&f.git_oid);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}
