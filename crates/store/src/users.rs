//! Portal users: a tenant, a username, an argon2 password hash and a role.

use skill_pool_core::Role;

use crate::{Result, TenantId, Tx, now_ms};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRow {
    pub id: i64,
    pub tenant_id: TenantId,
    pub username: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub created_at: i64,
}

impl Tx {
    /// Inserts a user; `StoreError::Conflict` when the username is taken in this tenant.
    pub async fn insert_user(&mut self, tenant: TenantId, username: &str, password_hash: &str, role: Role) -> Result<UserRow> {
        Ok(sqlx::query_as(
            "INSERT INTO users (tenant_id, username, password_hash, role, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id, tenant_id, username, role, created_at",
        )
        .bind(tenant.0)
        .bind(username)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(now_ms())
        .fetch_one(self.conn())
        .await?)
    }
}
