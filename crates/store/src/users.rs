//! Portal users: a tenant, a username, an argon2 password hash and a role.

use skill_pool_core::Role;

use crate::{Db, Result, TenantId, Tx, now_ms};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRow {
    pub id: i64,
    pub tenant_id: TenantId,
    pub username: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub created_at: i64,
}

/// A user with the stored password hash, for checking a sign-in.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserCredentials {
    #[sqlx(flatten)]
    pub user: UserRow,
    pub password_hash: String,
}

/// Reads of users, on the pool or in a transaction.
pub trait UserReads: Db {
    async fn user_credentials(&mut self, tenant: TenantId, username: &str) -> Result<Option<UserCredentials>> {
        Ok(sqlx::query_as(
            "SELECT id, tenant_id, username, role, created_at, password_hash FROM users WHERE tenant_id = $1 AND username = $2",
        )
        .bind(tenant.0)
        .bind(username)
        .fetch_optional(self.executor())
        .await?)
    }
}

impl<T: Db> UserReads for T {}

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
