//! The registry of atomic pieces (skills, agents, commands) and their immutable versions.

use sqlx::Row;
use sqlx::any::AnyRow;

use skill_pool_core::api::PieceKind;
use skill_pool_core::archive::FileMode;

use crate::{Result, Store, TenantId, Tx, decode, now_ms};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceRow {
    pub id: i64,
    pub kind: PieceKind,
    pub slug: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceVersionRow {
    pub id: i64,
    pub piece_id: i64,
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    pub path: String,
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

fn piece_from_row(row: &AnyRow) -> Result<PieceRow> {
    Ok(PieceRow {
        id: row.try_get("id")?,
        kind: decode("kind", &row.try_get::<String, _>("kind")?, PieceKind::parse)?,
        slug: row.try_get("slug")?,
        created_at: row.try_get("created_at")?,
    })
}

fn version_from_row(row: &AnyRow) -> Result<PieceVersionRow> {
    Ok(PieceVersionRow {
        id: row.try_get("id")?,
        piece_id: row.try_get("piece_id")?,
        kind: decode("kind", &row.try_get::<String, _>("kind")?, PieceKind::parse)?,
        slug: row.try_get("slug")?,
        version: row.try_get("version")?,
        description: row.try_get("description")?,
        metadata: row.try_get("metadata")?,
        digest: row.try_get("digest")?,
        archived_at: row.try_get("archived_at")?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
    })
}

pub(crate) fn file_from_row(row: &AnyRow) -> Result<FileRow> {
    Ok(FileRow {
        path: row.try_get("path")?,
        mode: decode("mode", &row.try_get::<String, _>("mode")?, FileMode::parse)?,
        size: row.try_get("size")?,
        sha256: row.try_get("sha256")?,
        git_oid: row.try_get("git_oid")?,
    })
}

async fn piece_versions_of(conn: &mut sqlx::AnyConnection, tenant: TenantId, piece_id: i64) -> Result<Vec<PieceVersionRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {VERSION_COLUMNS} FROM piece_versions pv JOIN pieces p ON p.id = pv.piece_id \
         WHERE pv.tenant_id = $1 AND pv.piece_id = $2 ORDER BY pv.id"
    ))
    .bind(tenant.0)
    .bind(piece_id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(version_from_row).collect()
}

async fn piece_of(conn: &mut sqlx::AnyConnection, tenant: TenantId, kind: PieceKind, slug: &str) -> Result<Option<PieceRow>> {
    let row = sqlx::query("SELECT id, kind, slug, created_at FROM pieces WHERE tenant_id = $1 AND kind = $2 AND slug = $3")
        .bind(tenant.0)
        .bind(kind.as_str())
        .bind(slug)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(piece_from_row).transpose()
}

impl Store {
    /// A page of pieces of one kind, by slug, after the `after` slug.
    pub async fn list_pieces(&self, tenant: TenantId, kind: PieceKind, after: Option<&str>, limit: i64) -> Result<Vec<PieceRow>> {
        let rows = sqlx::query(
            "SELECT id, kind, slug, created_at FROM pieces WHERE tenant_id = $1 AND kind = $2 AND slug > $3 \
             ORDER BY slug LIMIT $4",
        )
        .bind(tenant.0)
        .bind(kind.as_str())
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(piece_from_row).collect()
    }

    /// All versions of the given pieces (of this tenant), oldest first.
    pub async fn versions_of_pieces(&self, tenant: TenantId, piece_ids: &[i64]) -> Result<Vec<PieceVersionRow>> {
        if piece_ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (0..piece_ids.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM piece_versions pv JOIN pieces p ON p.id = pv.piece_id \
             WHERE pv.tenant_id = $1 AND pv.piece_id IN ({}) ORDER BY pv.id",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql).bind(tenant.0);
        for id in piece_ids {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(version_from_row).collect()
    }

    pub async fn piece(&self, tenant: TenantId, kind: PieceKind, slug: &str) -> Result<Option<PieceRow>> {
        let mut conn = self.pool().acquire().await?;
        piece_of(&mut conn, tenant, kind, slug).await
    }

    pub async fn piece_versions(&self, tenant: TenantId, piece_id: i64) -> Result<Vec<PieceVersionRow>> {
        let mut conn = self.pool().acquire().await?;
        piece_versions_of(&mut conn, tenant, piece_id).await
    }

    /// The files of a piece version of this tenant, by path.
    pub async fn piece_files(&self, tenant: TenantId, version_id: i64) -> Result<Vec<FileRow>> {
        files_of(&mut *self.pool().acquire().await?, tenant, version_id).await
    }
}

async fn files_of(conn: &mut sqlx::AnyConnection, tenant: TenantId, version_id: i64) -> Result<Vec<FileRow>> {
    let rows = sqlx::query(
        "SELECT f.path, f.mode, f.size, f.sha256, f.git_oid FROM piece_files f \
             JOIN piece_versions pv ON pv.id = f.version_id WHERE pv.tenant_id = $1 AND f.version_id = $2 ORDER BY f.path",
    )
    .bind(tenant.0)
    .bind(version_id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(file_from_row).collect()
}

impl Tx {
    /// The files of a piece version, including one inserted in this transaction.
    pub async fn piece_files(&mut self, tenant: TenantId, version_id: i64) -> Result<Vec<FileRow>> {
        files_of(self.conn(), tenant, version_id).await
    }

    pub async fn piece(&mut self, tenant: TenantId, kind: PieceKind, slug: &str) -> Result<Option<PieceRow>> {
        piece_of(self.conn(), tenant, kind, slug).await
    }

    /// The piece, created if it does not exist yet.
    pub async fn ensure_piece(&mut self, tenant: TenantId, kind: PieceKind, slug: &str) -> Result<PieceRow> {
        if let Some(piece) = piece_of(self.conn(), tenant, kind, slug).await? {
            return Ok(piece);
        }
        let row = sqlx::query(
            "INSERT INTO pieces (tenant_id, kind, slug, created_at) VALUES ($1, $2, $3, $4) RETURNING id, kind, slug, created_at",
        )
        .bind(tenant.0)
        .bind(kind.as_str())
        .bind(slug)
        .bind(now_ms())
        .fetch_one(self.conn())
        .await?;
        piece_from_row(&row)
    }

    pub async fn piece_versions(&mut self, tenant: TenantId, piece_id: i64) -> Result<Vec<PieceVersionRow>> {
        piece_versions_of(self.conn(), tenant, piece_id).await
    }

    /// Inserts an immutable version with its files; `StoreError::Conflict` when the version exists.
    pub async fn insert_piece_version(
        &mut self,
        tenant: TenantId,
        piece_id: i64,
        new: &NewPieceVersion<'_>,
        files: &[FileRow],
    ) -> Result<i64> {
        let id: i64 = sqlx::query(
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
        .await?
        .try_get("id")?;
        for f in files {
            sqlx::query("INSERT INTO piece_files (version_id, path, mode, size, sha256, git_oid) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(id)
                .bind(&f.path)
                .bind(f.mode.as_str())
                .bind(f.size)
                .bind(&f.sha256)
                .bind(&f.git_oid)
                .execute(self.conn())
                .await?;
        }
        Ok(id)
    }

    /// Archives a version of this tenant (idempotent); false when there is no such version.
    pub async fn archive_piece_version(&mut self, tenant: TenantId, version_id: i64) -> Result<bool> {
        let done = sqlx::query("UPDATE piece_versions SET archived_at = COALESCE(archived_at, $1) WHERE tenant_id = $2 AND id = $3")
            .bind(now_ms())
            .bind(tenant.0)
            .bind(version_id)
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Slugs of plugins whose served version pins another version of this piece than `current_version_id`.
    pub async fn plugins_pinning_other_versions(
        &mut self,
        tenant: TenantId,
        piece_id: i64,
        current_version_id: i64,
    ) -> Result<Vec<String>> {
        let rows = sqlx::query(
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
        .bind(current_version_id)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(|r| Ok(r.try_get("slug")?)).collect()
    }
}
