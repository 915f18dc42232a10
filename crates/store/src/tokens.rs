//! API tokens: one tenant and one role each, stored as a sha256 hash of the secret.

use skill_pool_core::Role;

use crate::{Db, Result, Store, TenantId, Tx, now_ms};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TokenRow {
    pub id: i64,
    pub tenant_id: TenantId,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub prefix: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// Unix ms after which the token no longer authenticates; `None`: never.
    pub expires_at: Option<i64>,
}

const COLUMNS: &str = "id, tenant_id, name, role, prefix, created_at, last_used_at, revoked_at, expires_at";

/// How stale `last_used_at` may get before a use writes it again (avoids a write per request).
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// Reads of tokens, on the pool or in a transaction.
pub trait TokenReads: Db {
    /// The token with this hash, revoked or not.
    async fn token_by_hash(&mut self, token_hash: &str) -> Result<Option<TokenRow>> {
        Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM api_tokens WHERE token_hash = $1"))
            .bind(token_hash)
            .fetch_optional(self.executor())
            .await?)
    }

    async fn list_tokens(&mut self, tenant: TenantId) -> Result<Vec<TokenRow>> {
        Ok(
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM api_tokens WHERE tenant_id = $1 ORDER BY id"))
                .bind(tenant.0)
                .fetch_all(self.executor())
                .await?,
        )
    }
}

impl<T: Db> TokenReads for T {}

impl Store {
    /// Records a use, at most once per minute per token.
    pub async fn touch_token(&self, id: i64) -> Result<()> {
        let now = now_ms();
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)")
            .bind(now)
            .bind(id)
            .bind(now - LAST_USED_RESOLUTION_MS)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

impl Tx {
    pub async fn insert_token(
        &mut self,
        tenant: TenantId,
        name: &str,
        role: Role,
        token_hash: &str,
        prefix: &str,
        expires_at: Option<i64>,
    ) -> Result<TokenRow> {
        Ok(sqlx::query_as(&format!(
            "INSERT INTO api_tokens (tenant_id, name, role, token_hash, prefix, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
        ))
        .bind(tenant.0)
        .bind(name)
        .bind(role.as_str())
        .bind(token_hash)
        .bind(prefix)
        .bind(now_ms())
        .bind(expires_at)
        .fetch_one(self.conn())
        .await?)
    }

    /// Revokes a token of this tenant; `None` when the tenant has no such token.
    pub async fn revoke_token(&mut self, tenant: TenantId, id: i64) -> Result<Option<TokenRow>> {
        Ok(sqlx::query_as(&format!(
            "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE tenant_id = $2 AND id = $3 RETURNING {COLUMNS}"
        ))
        .bind(now_ms())
        .bind(tenant.0)
        .bind(id)
        .fetch_optional(self.conn())
        .await?)
    }
}
