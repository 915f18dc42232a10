//! Portal users: a tenant, a username, an argon2 password hash and a role.

use sqlx::Row;

use crate::{Result, TenantId, Tx, now_ms};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: i64,
    pub tenant_id: TenantId,
    pub username: String,
    pub role: skill_pool_core::Role,
    pub created_at: i64,
}

impl Tx {
    /// Inserts a user; `StoreError::Conflict` when the username is taken in this tenant.
    pub async fn insert_user(
        &mut self,
        tenant: TenantId,
        username: &str,
        password_hash: &str,
        role: skill_pool_core::Role,
    ) -> Result<UserRow> {
        let row = sqlx::query(
            "INSERT INTO users (tenant_id, username, password_hash, role, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id, tenant_id, username, role, created_at",
        )
        .bind(tenant.0)
        .bind(username)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(now_ms())
        .fetch_one(self.conn())
        .await?;
        Ok(UserRow {
            id: row.try_get("id")?,
            tenant_id: TenantId::from_db(row.try_get("tenant_id")?),
            username: row.try_get("username")?,
            role: crate::decode("role", &row.try_get::<String, _>("role")?, skill_pool_core::Role::parse)?,
            created_at: row.try_get("created_at")?,
        })
    }
}
