//! Portal sessions (stored by the hash of the cookie's secret, expiring, deleted at sign-out)
//! and the failed sign-ins the per-address and per-user limit counts.

use skill_pool_core::Role;

use crate::{Db, Result, TenantId, Tx, now_ms};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRow {
    pub id: i64,
    pub tenant_id: TenantId,
    pub csrf_token: String,
    pub user_id: Option<i64>,
    pub token_id: Option<i64>,
    /// The username, or the API token's name.
    pub name: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub created_at: i64,
    pub expires_at: i64,
}

/// Who a new session is for.
#[derive(Debug, Clone, Copy)]
pub enum SessionOwner<'a> {
    User { id: i64, username: &'a str },
    Token { id: i64, name: &'a str },
}

#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub session_hash: &'a str,
    pub csrf_token: &'a str,
    pub owner: SessionOwner<'a>,
    pub role: Role,
    pub address: &'a str,
    pub expires_at: i64,
}

const COLUMNS: &str = "s.id, s.tenant_id, s.csrf_token, s.user_id, s.token_id, s.name, s.role, s.created_at, s.expires_at";

/// Reads of sessions and sign-in failures, on the pool or in a transaction.
pub trait SessionReads: Db {
    /// The live session of this tenant with this hash: not expired, and (for a token
    /// session) its token not revoked.
    async fn live_session(&mut self, tenant: TenantId, session_hash: &str, now: i64) -> Result<Option<SessionRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM sessions s LEFT JOIN api_tokens t ON t.id = s.token_id \
             WHERE s.tenant_id = $1 AND s.session_hash = $2 AND s.expires_at > $3 AND t.revoked_at IS NULL"
        ))
        .bind(tenant.0)
        .bind(session_hash)
        .bind(now)
        .fetch_optional(self.executor())
        .await?)
    }

    /// Failed sign-ins of `subject` in this tenant since `since` (unix ms).
    async fn sign_in_failures(&mut self, tenant: TenantId, subject: &str, since: i64) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM sign_in_failures WHERE tenant_id = $1 AND subject = $2 AND created_at > $3")
                .bind(tenant.0)
                .bind(subject)
                .bind(since)
                .fetch_one(self.executor())
                .await?,
        )
    }
}

impl<T: Db> SessionReads for T {}

impl Tx {
    pub async fn insert_session(&mut self, tenant: TenantId, s: &NewSession<'_>) -> Result<SessionRow> {
        let (user_id, token_id, name) = match s.owner {
            SessionOwner::User { id, username } => (Some(id), None, username),
            SessionOwner::Token { id, name } => (None, Some(id), name),
        };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO sessions (tenant_id, session_hash, csrf_token, user_id, token_id, name, role, address, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(tenant.0)
        .bind(s.session_hash)
        .bind(s.csrf_token)
        .bind(user_id)
        .bind(token_id)
        .bind(name)
        .bind(s.role.as_str())
        .bind(s.address)
        .bind(now_ms())
        .bind(s.expires_at)
        .fetch_one(self.conn())
        .await?;
        Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM sessions s WHERE s.id = $1"))
            .bind(id)
            .fetch_one(self.conn())
            .await?)
    }

    /// Deletes a session of this tenant; whether there was one.
    pub async fn delete_session(&mut self, tenant: TenantId, session_hash: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND session_hash = $2")
            .bind(tenant.0)
            .bind(session_hash)
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes expired sessions and failures older than `failures_before` (any tenant).
    pub async fn prune_sessions(&mut self, now: i64, failures_before: i64) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(self.conn())
            .await?;
        sqlx::query("DELETE FROM sign_in_failures WHERE created_at <= $1")
            .bind(failures_before)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    pub async fn insert_sign_in_failure(&mut self, tenant: TenantId, subject: &str) -> Result<()> {
        sqlx::query("INSERT INTO sign_in_failures (tenant_id, subject, created_at) VALUES ($1, $2, $3)")
            .bind(tenant.0)
            .bind(subject)
            .bind(now_ms())
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Forgets the failures of a subject (after a good sign-in of that user).
    pub async fn clear_sign_in_failures(&mut self, tenant: TenantId, subject: &str) -> Result<()> {
        sqlx::query("DELETE FROM sign_in_failures WHERE tenant_id = $1 AND subject = $2")
            .bind(tenant.0)
            .bind(subject)
            .execute(self.conn())
            .await?;
        Ok(())
    }
}
