//! What a tenant uses: plugins, plugin versions and the bytes of the distinct file bodies its
//! versions (of plugins and pieces) reference. For quotas and `GET /v1/usage`.

use crate::{Db, Result, TenantId};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageRow {
    pub plugins: i64,
    pub plugin_versions: i64,
    pub bytes: i64,
}

pub trait UsageReads: Db {
    async fn tenant_usage(&mut self, tenant: TenantId) -> Result<UsageRow> {
        Ok(sqlx::query_as(
            "SELECT \
               (SELECT COUNT(*) FROM plugins WHERE tenant_id = $1) AS plugins, \
               (SELECT COUNT(*) FROM plugin_versions WHERE tenant_id = $1) AS plugin_versions, \
               (SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM ( \
                  SELECT f.sha256, f.size FROM plugin_version_files f \
                    JOIN plugin_versions v ON v.id = f.plugin_version_id WHERE v.tenant_id = $1 \
                  UNION \
                  SELECT pf.sha256, pf.size FROM piece_files pf \
                    JOIN piece_versions pv ON pv.id = pf.version_id WHERE pv.tenant_id = $1 \
               ) AS blobs) AS bytes",
        )
        .bind(tenant.0)
        .fetch_one(self.executor())
        .await?)
    }

    /// True when the tenant already references the body `sha256` (so storing it again costs nothing).
    async fn tenant_has_blob(&mut self, tenant: TenantId, sha256: &str) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT CAST((SELECT COUNT(*) FROM plugin_version_files f JOIN plugin_versions v ON v.id = f.plugin_version_id \
                     WHERE v.tenant_id = $1 AND f.sha256 = $2) \
                  + (SELECT COUNT(*) FROM piece_files pf JOIN piece_versions pv ON pv.id = pf.version_id \
                     WHERE pv.tenant_id = $1 AND pf.sha256 = $2) AS BIGINT)",
        )
        .bind(tenant.0)
        .bind(sha256)
        .fetch_one(self.executor())
        .await?;
        Ok(n > 0)
    }
}

impl<T: Db> UsageReads for T {}
