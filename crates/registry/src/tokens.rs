//! API tokens: created with a random secret shown once, stored as a sha256 hash, one tenant
//! and one role each, revocable; and the authentication of a presented secret.

use rand::Rng;
use sha2::{Digest, Sha256};
use skill_pool_core::Role;
use skill_pool_core::api::Token;
use skill_pool_store::tokens::TokenRow;
use skill_pool_store::{TenantId, format_ms};

use crate::{Actor, Principal, Registry, RegistryError, Result, audit};
use skill_pool_store::prelude::*;

const SECRET_PREFIX: &str = "sp_";
const SECRET_LEN: usize = 40;
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A new token and its secret (shown once).
#[derive(Debug)]
pub struct CreatedSecret {
    pub token: Token,
    pub secret: String,
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn new_secret() -> String {
    random_secret(SECRET_PREFIX)
}

/// `prefix` and 40 random base62 characters (238 bits).
pub fn random_secret(prefix: &str) -> String {
    let mut rng = rand::rng();
    let body: String = (0..SECRET_LEN).map(|_| BASE62[rng.random_range(0..BASE62.len())] as char).collect();
    format!("{prefix}{body}")
}

pub fn token_view(row: &TokenRow) -> Token {
    Token {
        id: row.id,
        name: row.name.clone(),
        role: row.role,
        prefix: row.prefix.clone(),
        created_at: format_ms(row.created_at),
        last_used_at: row.last_used_at.map(format_ms),
        revoked_at: row.revoked_at.map(format_ms),
        expires_at: row.expires_at.map(format_ms),
    }
}

/// The longest lifetime a token may be given, in days (ten years).
pub const MAX_TOKEN_DAYS: u32 = 3650;

impl Registry {
    /// A token that never expires.
    pub async fn create_token(&self, actor: &Actor, name: &str, role: Role) -> Result<CreatedSecret> {
        self.create_token_expiring(actor, name, role, None).await
    }

    /// A token that stops working `expires_in_days` days from now (never, with `None`).
    pub async fn create_token_expiring(
        &self,
        actor: &Actor,
        name: &str,
        role: Role,
        expires_in_days: Option<u32>,
    ) -> Result<CreatedSecret> {
        actor.require(Role::Admin)?;
        if let Some(days) = expires_in_days
            && !(1..=MAX_TOKEN_DAYS).contains(&days)
        {
            return Err(RegistryError::bad_request(format!(
                "a token's lifetime must be 1 to {MAX_TOKEN_DAYS} days, not {days}"
            )));
        }
        let expires_at = expires_in_days.map(|d| skill_pool_store::now_ms() + i64::from(d) * 86_400_000);
        let name = name.trim();
        if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
            return Err(RegistryError::bad_request("a token name must have 1 to 100 printable characters"));
        }
        let secret = new_secret();
        let prefix: String = secret.chars().take(SECRET_PREFIX.len() + 6).collect();
        let mut tx = self.store().write().await?;
        let row = tx
            .insert_token(actor.tenant, name, role, &hash_secret(&secret), &prefix, expires_at)
            .await?;
        audit::record(
            &mut tx,
            actor,
            "token.create",
            &format!("token:{}#{}", row.name, row.id),
            serde_json::json!({ "role": role, "prefix": prefix, "expires_at": row.expires_at.map(format_ms) }),
        )
        .await?;
        tx.commit().await?;
        Ok(CreatedSecret {
            token: token_view(&row),
            secret,
        })
    }

    pub async fn list_tokens(&self, actor: &Actor) -> Result<Vec<Token>> {
        actor.require(Role::Admin)?;
        Ok(self.store().list_tokens(actor.tenant).await?.iter().map(token_view).collect())
    }

    pub async fn revoke_token(&self, actor: &Actor, id: i64) -> Result<Token> {
        actor.require(Role::Admin)?;
        let mut tx = self.store().write().await?;
        let row = tx
            .revoke_token(actor.tenant, id)
            .await?
            .ok_or_else(|| RegistryError::NotFound(format!("token {id} not found")))?;
        audit::record(
            &mut tx,
            actor,
            "token.revoke",
            &format!("token:{}#{}", row.name, row.id),
            serde_json::json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok(token_view(&row))
    }

    /// Checks a presented secret on a tenant's root and gives the actor it stands for (the
    /// token's own role, in that tenant). A token of another tenant is `NotFound`, so a caller
    /// learns nothing about the tenant it addressed.
    pub async fn authenticate(&self, tenant: TenantId, secret: &str, request_id: Option<String>) -> Result<Actor> {
        let row = self
            .store()
            .token_by_hash(&hash_secret(secret))
            .await?
            .ok_or_else(|| RegistryError::Unauthorized("unknown token: check SKILL_POOL_TOKEN or run `skill-pool login`".into()))?;
        if row.tenant_id != tenant {
            return Err(RegistryError::NotFound("not found".into()));
        }
        if row.revoked_at.is_some() {
            return Err(RegistryError::Unauthorized(
                "this token has been revoked: ask an admin for a new one".into(),
            ));
        }
        if let Some(expires_at) = row.expires_at
            && expires_at <= skill_pool_store::now_ms()
        {
            return Err(RegistryError::Unauthorized(format!(
                "this token expired at {}: ask an admin for a new one",
                format_ms(expires_at)
            )));
        }
        if let Err(e) = self.store().touch_token(row.id).await {
            tracing::warn!(error = %e, "could not record token use");
        }
        Ok(Actor {
            tenant,
            role: row.role,
            principal: Principal::Token {
                id: row.id,
                name: row.name,
            },
            request_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_prefixed() {
        let a = new_secret();
        let b = new_secret();
        assert_ne!(a, b);
        assert!(a.starts_with("sp_"));
        assert_eq!(a.len(), 3 + SECRET_LEN);
        assert_eq!(hash_secret(&a).len(), 64);
    }
}
