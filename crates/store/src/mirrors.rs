//! Mirrored plugins (where each pulls from, how its last pull went, when the next is due) and
//! background jobs (what was asked, by whom, how it ended).

use crate::{Db, PluginId, Result, TenantId, Tx, now_ms};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MirrorRow {
    pub plugin_id: PluginId,
    pub tenant_id: TenantId,
    pub url: String,
    pub path: Option<String>,
    pub git_ref: Option<String>,
    pub refresh_secs: i64,
    /// The upstream commit the served version was made from.
    pub upstream_commit: Option<String>,
    pub last_pulled_at: Option<i64>,
    pub last_success_at: Option<i64>,
    /// `{"class", "message"}` of the last pull when it failed.
    pub last_error: Option<String>,
    /// Why the mirror is frozen (no pulls until an admin accepts), if it is.
    pub held: Option<String>,
    /// Failed pulls in a row (for the back-off).
    pub failures: i64,
    pub next_pull_at: i64,
}

const MIRROR_COLUMNS: &str = "plugin_id, tenant_id, url, path, git_ref, refresh_secs, upstream_commit, last_pulled_at, \
     last_success_at, last_error, held, failures, next_pull_at";

/// A new mirror's upstream.
#[derive(Debug, Clone)]
pub struct NewMirror<'a> {
    pub url: &'a str,
    pub path: Option<&'a str>,
    pub git_ref: Option<&'a str>,
    pub refresh_secs: i64,
}

/// How a pull ended, for the mirror's status.
#[derive(Debug, Clone)]
pub struct PullOutcome<'a> {
    /// The upstream commit now served (a success), or `None` (a failure).
    pub upstream_commit: Option<&'a str>,
    pub error: Option<&'a str>,
    pub held: Option<&'a str>,
    pub failures: i64,
    pub next_pull_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct JobRow {
    pub id: i64,
    pub tenant_id: TenantId,
    pub kind: String,
    pub target: String,
    pub state: String,
    pub error: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

const JOB_COLUMNS: &str = "id, tenant_id, kind, target, state, error, created_by, created_at, started_at, finished_at";

/// Reads of mirrors and jobs.
pub trait MirrorReads: Db {
    async fn mirror(&mut self, tenant: TenantId, plugin_id: PluginId) -> Result<Option<MirrorRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {MIRROR_COLUMNS} FROM mirrors WHERE tenant_id = $1 AND plugin_id = $2"
        ))
        .bind(tenant.0)
        .bind(plugin_id.0)
        .fetch_optional(self.executor())
        .await?)
    }

    /// Mirrors of every tenant whose next pull is due at `now`, not held, soonest first.
    async fn due_mirrors(&mut self, now: i64, limit: i64) -> Result<Vec<MirrorRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {MIRROR_COLUMNS} FROM mirrors WHERE next_pull_at <= $1 AND held IS NULL ORDER BY next_pull_at LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(self.executor())
        .await?)
    }

    async fn job(&mut self, tenant: TenantId, id: i64) -> Result<Option<JobRow>> {
        Ok(
            sqlx::query_as(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE tenant_id = $1 AND id = $2"))
                .bind(tenant.0)
                .bind(id)
                .fetch_optional(self.executor())
                .await?,
        )
    }

    /// A job by id, whatever its tenant (for the queue's consumers: the id comes from the queue).
    async fn job_by_id(&mut self, id: i64) -> Result<Option<JobRow>> {
        Ok(sqlx::query_as(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.executor())
            .await?)
    }

    /// Jobs left `queued` or `running` by a process that stopped (to run them again).
    async fn unfinished_jobs(&mut self) -> Result<Vec<JobRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE state IN ('queued', 'running') ORDER BY id"
        ))
        .fetch_all(self.executor())
        .await?)
    }
}

impl<T: Db> MirrorReads for T {}

impl Tx {
    pub async fn insert_mirror(&mut self, tenant: TenantId, plugin_id: PluginId, m: &NewMirror<'_>) -> Result<()> {
        sqlx::query(
            "INSERT INTO mirrors (plugin_id, tenant_id, url, path, git_ref, refresh_secs, failures, next_pull_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7)",
        )
        .bind(plugin_id.0)
        .bind(tenant.0)
        .bind(m.url)
        .bind(m.path)
        .bind(m.git_ref)
        .bind(m.refresh_secs)
        .bind(now_ms())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Records how a pull ended. A pull sets a hold (a force-push) but never lifts one: only an
    /// accept does (`mirror_due_now`), so a hold set while the pull ran (a purge) stays.
    pub async fn record_pull(&mut self, tenant: TenantId, plugin_id: PluginId, o: &PullOutcome<'_>) -> Result<()> {
        let now = now_ms();
        sqlx::query(
            "UPDATE mirrors SET last_pulled_at = $1, \
               last_success_at = CASE WHEN $2 IS NULL THEN last_success_at ELSE $1 END, \
               upstream_commit = COALESCE($2, upstream_commit), \
               last_error = $3, held = COALESCE($4, held), failures = $5, next_pull_at = $6 \
             WHERE tenant_id = $7 AND plugin_id = $8",
        )
        .bind(now)
        .bind(o.upstream_commit)
        .bind(o.error)
        .bind(o.held)
        .bind(o.failures)
        .bind(o.next_pull_at)
        .bind(tenant.0)
        .bind(plugin_id.0)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Claims a due mirror for one pull: moves its next pull to `until` if it is still due at
    /// `now`. False when another process claimed it first (one pull per due mirror, across processes).
    pub async fn claim_due_mirror(&mut self, tenant: TenantId, plugin_id: PluginId, now: i64, until: i64) -> Result<bool> {
        let done = sqlx::query("UPDATE mirrors SET next_pull_at = $1 WHERE tenant_id = $2 AND plugin_id = $3 AND next_pull_at <= $4")
            .bind(until)
            .bind(tenant.0)
            .bind(plugin_id.0)
            .bind(now)
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Holds a mirror (no pulls until an admin accepts its upstream), e.g. after a purge.
    pub async fn hold_mirror(&mut self, tenant: TenantId, plugin_id: PluginId, reason: &str) -> Result<()> {
        sqlx::query("UPDATE mirrors SET held = $1 WHERE tenant_id = $2 AND plugin_id = $3")
            .bind(reason)
            .bind(tenant.0)
            .bind(plugin_id.0)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Makes a mirror due now (a manual refresh, or an accepted hold).
    pub async fn mirror_due_now(&mut self, tenant: TenantId, plugin_id: PluginId, clear_hold: bool) -> Result<()> {
        let sql = if clear_hold {
            "UPDATE mirrors SET next_pull_at = $1, held = NULL, upstream_commit = NULL WHERE tenant_id = $2 AND plugin_id = $3"
        } else {
            "UPDATE mirrors SET next_pull_at = $1 WHERE tenant_id = $2 AND plugin_id = $3"
        };
        sqlx::query(sql)
            .bind(now_ms())
            .bind(tenant.0)
            .bind(plugin_id.0)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    pub async fn insert_job(&mut self, tenant: TenantId, kind: &str, target: &str, created_by: &str) -> Result<JobRow> {
        Ok(sqlx::query_as(&format!(
            "INSERT INTO jobs (tenant_id, kind, target, state, created_by, created_at) VALUES ($1, $2, $3, 'queued', $4, $5) \
             RETURNING {JOB_COLUMNS}"
        ))
        .bind(tenant.0)
        .bind(kind)
        .bind(target)
        .bind(created_by)
        .bind(now_ms())
        .fetch_one(self.conn())
        .await?)
    }

    /// Moves a job to `running`, `done` or `failed`.
    pub async fn set_job_state(&mut self, id: i64, state: &str, error: Option<&str>) -> Result<()> {
        let now = now_ms();
        sqlx::query(
            "UPDATE jobs SET state = $1, error = $2, \
               started_at = CASE WHEN $1 = 'running' THEN $3 ELSE started_at END, \
               finished_at = CASE WHEN $1 IN ('done', 'failed') THEN $3 ELSE finished_at END \
             WHERE id = $4",
        )
        .bind(state)
        .bind(error)
        .bind(now)
        .bind(id)
        .execute(self.conn())
        .await?;
        Ok(())
    }
}
