//! Install counts: packs fetched per plugin version and UTC day, distinct catalogue clients
//! per tenant and day (salted hashes, never an address), and the salt of each day.

use crate::{Db, PluginId, Result, TenantId, Tx};

/// Installs of one version on one day.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InstallRow {
    pub version_id: i64,
    pub seq: i64,
    pub version: Option<String>,
    pub commit_id: String,
    pub day: String,
    pub count: i64,
}

/// One plugin's installs: in all, and since a day.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PluginInstallTotal {
    pub slug: String,
    pub total: i64,
    pub recent: i64,
}

/// Distinct catalogue clients of one day.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ClientsRow {
    pub day: String,
    pub clients: i64,
}

pub trait InstallReads: Db {
    /// Every (version, day) count of a plugin, oldest day first.
    async fn plugin_installs(&mut self, tenant: TenantId, plugin_id: PluginId) -> Result<Vec<InstallRow>> {
        Ok(sqlx::query_as(
            "SELECT i.version_id, v.seq, v.version, v.commit_id, i.day, i.count FROM plugin_installs i \
               JOIN plugin_versions v ON v.id = i.version_id \
             WHERE i.tenant_id = $1 AND i.plugin_id = $2 ORDER BY i.day, v.seq",
        )
        .bind(tenant.get())
        .bind(plugin_id.get())
        .fetch_all(self.executor())
        .await?)
    }

    /// Per plugin: installs in all and on `since` (a `YYYY-MM-DD` day) or later.
    async fn tenant_install_totals(&mut self, tenant: TenantId, since: &str) -> Result<Vec<PluginInstallTotal>> {
        Ok(sqlx::query_as(
            "SELECT p.slug, CAST(SUM(i.count) AS BIGINT) AS total, \
                    CAST(SUM(CASE WHEN i.day >= $2 THEN i.count ELSE 0 END) AS BIGINT) AS recent \
             FROM plugin_installs i JOIN plugins p ON p.id = i.plugin_id \
             WHERE i.tenant_id = $1 GROUP BY p.slug ORDER BY p.slug",
        )
        .bind(tenant.get())
        .bind(since)
        .fetch_all(self.executor())
        .await?)
    }

    /// Distinct catalogue clients per day, from `since` on.
    async fn catalogue_clients(&mut self, tenant: TenantId, since: &str) -> Result<Vec<ClientsRow>> {
        Ok(sqlx::query_as(
            "SELECT day, CAST(COUNT(*) AS BIGINT) AS clients FROM catalogue_clients \
             WHERE tenant_id = $1 AND day >= $2 GROUP BY day ORDER BY day",
        )
        .bind(tenant.get())
        .bind(since)
        .fetch_all(self.executor())
        .await?)
    }

    async fn install_salt(&mut self, day: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT salt FROM install_salts WHERE day = $1")
            .bind(day)
            .fetch_optional(self.executor())
            .await?)
    }
}

impl<T: Db> InstallReads for T {}

impl Tx {
    /// Adds `count` installs of a version on `day`.
    pub async fn add_installs(&mut self, tenant: TenantId, plugin_id: PluginId, version_id: i64, day: &str, count: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO plugin_installs (tenant_id, plugin_id, version_id, day, count) \
             SELECT $1, $2, v.id, $4, $5 FROM plugin_versions v WHERE v.id = $3 AND v.tenant_id = $1 AND v.plugin_id = $2 \
             ON CONFLICT (version_id, day) DO UPDATE SET count = plugin_installs.count + excluded.count",
        )
        .bind(tenant.get())
        .bind(plugin_id.get())
        .bind(version_id)
        .bind(day)
        .bind(count)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Records a catalogue client of `day` (a salted hash); a known one adds nothing.
    pub async fn add_catalogue_client(&mut self, tenant: TenantId, day: &str, client_hash: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO catalogue_clients (tenant_id, day, client_hash) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id, day, client_hash) DO NOTHING",
        )
        .bind(tenant.get())
        .bind(day)
        .bind(client_hash)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// The salt of `day`: the stored one, else `candidate` (stored now). Every server on the
    /// database gets the same one.
    pub async fn day_salt(&mut self, day: &str, candidate: &str) -> Result<String> {
        sqlx::query("INSERT INTO install_salts (day, salt) VALUES ($1, $2) ON CONFLICT (day) DO NOTHING")
            .bind(day)
            .bind(candidate)
            .execute(self.conn())
            .await?;
        Ok(self.install_salt(day).await?.unwrap_or_else(|| candidate.to_string()))
    }

    /// Deletes the salts of days before `day`: their hashes can no longer be recomputed.
    pub async fn delete_salts_before(&mut self, day: &str) -> Result<u64> {
        let done = sqlx::query("DELETE FROM install_salts WHERE day < $1")
            .bind(day)
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected())
    }
}
