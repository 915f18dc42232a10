//! Portal sign-in: sessions (a random cookie secret, stored as its sha256, expiring after
//! [`SESSION_TTL_MS`], deleted at sign-out), password sign-in against the users that
//! `skill-pool-server user create` makes (argon2, verified off the async runtime), sign-in with
//! a pasted API token (the session gets that token's role and ends when it is revoked), the
//! limit on failed sign-ins per address and per user, and the tenant's branding.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use skill_pool_core::Role;
use skill_pool_store::sessions::{NewSession, SessionOwner, SessionRow};
use skill_pool_store::{TenantId, now_ms};

use crate::tokens::{hash_secret, random_secret};
use crate::{Actor, Principal, Registry, RegistryError, Result, audit};
use skill_pool_store::prelude::*;

/// How long a session lives (12 hours), whatever is done with it.
pub const SESSION_TTL_MS: i64 = 12 * 3600 * 1000;
/// The window failed sign-ins are counted in (15 minutes).
pub const FAILURE_WINDOW_MS: i64 = 15 * 60 * 1000;
/// Failed sign-ins for one username in the window before that username is refused.
pub const MAX_FAILURES_PER_USER: i64 = 5;
/// Failed sign-ins from one client address in the window before that address is refused.
pub const MAX_FAILURES_PER_ADDRESS: i64 = 20;

/// A live session.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub actor: Actor,
    /// Every form of the session carries this; a POST without it is refused.
    pub csrf_token: String,
    /// The username, or the name of the API token signed in with.
    pub name: String,
    pub via_token: bool,
    pub expires_at: i64,
}

/// A new session and its cookie secret (given to the browser once, never stored).
#[derive(Debug)]
pub struct NewSessionSecret {
    pub secret: String,
    pub session: SignedIn,
}

/// What an admin sets for the tenant's public pages.
#[derive(Debug, Clone, Default)]
pub struct Branding {
    pub display_name: String,
    pub logo_url: Option<String>,
    pub accent_color: Option<String>,
}

fn signed_in(row: SessionRow, request_id: Option<String>) -> SignedIn {
    let principal = match (row.user_id, row.token_id) {
        (_, Some(id)) => Principal::Token {
            id,
            name: row.name.clone(),
        },
        (Some(id), None) => Principal::User {
            id,
            username: row.name.clone(),
        },
        (None, None) => Principal::User {
            id: 0,
            username: row.name.clone(),
        },
    };
    SignedIn {
        actor: Actor {
            tenant: row.tenant_id,
            role: row.role,
            principal,
            request_id,
        },
        csrf_token: row.csrf_token,
        name: row.name,
        via_token: row.token_id.is_some(),
        expires_at: row.expires_at,
    }
}

/// A hash verified when the username is unknown, so both refusals take as long.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        argon2::Argon2::default()
            .hash_password(b"no such user", &SaltString::generate(&mut OsRng))
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

fn address_subject(address: &str) -> String {
    format!("address:{address}")
}

fn user_subject(username: &str) -> String {
    format!("user:{username}")
}

impl Registry {
    /// Refuses when the address or the username has too many recent failures.
    async fn check_sign_in_limit(&self, tenant: TenantId, address: &str, username: Option<&str>) -> Result<()> {
        let since = now_ms() - FAILURE_WINDOW_MS;
        let minutes = FAILURE_WINDOW_MS / 60_000;
        if self.store().sign_in_failures(tenant, &address_subject(address), since).await? >= MAX_FAILURES_PER_ADDRESS {
            return Err(RegistryError::RateLimited(format!(
                "too many failed sign-ins from your address: try again in {minutes} minutes"
            )));
        }
        if let Some(u) = username
            && self.store().sign_in_failures(tenant, &user_subject(u), since).await? >= MAX_FAILURES_PER_USER
        {
            return Err(RegistryError::RateLimited(format!(
                "too many failed sign-ins for this user: try again in {minutes} minutes"
            )));
        }
        Ok(())
    }

    async fn record_failure(&self, tenant: TenantId, address: &str, username: Option<&str>) -> Result<()> {
        let mut tx = self.store().write().await?;
        let now = now_ms();
        tx.prune_sessions(now, now - FAILURE_WINDOW_MS).await?;
        tx.insert_sign_in_failure(tenant, &address_subject(address)).await?;
        if let Some(u) = username {
            tx.insert_sign_in_failure(tenant, &user_subject(u)).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn open_session(&self, actor: &Actor, owner: SessionOwner<'_>, address: &str, method: &str) -> Result<NewSessionSecret> {
        let secret = random_secret("sps_");
        let csrf = random_secret("");
        let mut tx = self.store().write().await?;
        // Expired sessions and old failures go at every sign-in, good or bad.
        let now = now_ms();
        tx.prune_sessions(now, now - FAILURE_WINDOW_MS).await?;
        let row = tx
            .insert_session(
                actor.tenant,
                &NewSession {
                    session_hash: &hash_secret(&secret),
                    csrf_token: &csrf,
                    owner,
                    role: actor.role,
                    address,
                    expires_at: now + SESSION_TTL_MS,
                },
            )
            .await?;
        if let SessionOwner::User { username, .. } = owner {
            tx.clear_sign_in_failures(actor.tenant, &user_subject(username)).await?;
        }
        audit::record(
            &mut tx,
            actor,
            "session.sign_in",
            &format!("session#{}", row.id),
            serde_json::json!({ "method": method, "address": address }),
        )
        .await?;
        tx.commit().await?;
        Ok(NewSessionSecret {
            secret,
            session: signed_in(row, actor.request_id.clone()),
        })
    }

    /// Signs a user of the tenant in with a password; `address` is the client's, for the limit.
    pub async fn sign_in_password(
        &self,
        tenant: TenantId,
        username: &str,
        password: &str,
        address: &str,
        request_id: Option<String>,
    ) -> Result<NewSessionSecret> {
        let username = username.trim();
        self.check_sign_in_limit(tenant, address, Some(username)).await?;
        let user = self.store().user_credentials(tenant, username).await?;
        let stored = user.as_ref().map_or_else(|| dummy_hash().to_string(), |u| u.password_hash.clone());
        let password = password.to_string();
        let good = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&stored).is_ok_and(|h| argon2::Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
        })
        .await?;
        let user = match user {
            Some(u) if good => u.user,
            _ => {
                self.record_failure(tenant, address, Some(username)).await?;
                return Err(RegistryError::Unauthorized("wrong username or password".into()));
            }
        };
        let actor = Actor {
            tenant,
            role: user.role,
            principal: Principal::User {
                id: user.id,
                username: user.username.clone(),
            },
            request_id,
        };
        self.open_session(
            &actor,
            SessionOwner::User {
                id: user.id,
                username: &user.username,
            },
            address,
            "password",
        )
        .await
    }

    /// Signs in with an API token of the tenant: the session has the token's role, and ends
    /// when the token is revoked.
    pub async fn sign_in_token(
        &self,
        tenant: TenantId,
        secret: &str,
        address: &str,
        request_id: Option<String>,
    ) -> Result<NewSessionSecret> {
        self.check_sign_in_limit(tenant, address, None).await?;
        let actor = match self.authenticate(tenant, secret.trim(), request_id).await {
            Ok(a) => a,
            Err(RegistryError::Unauthorized(_) | RegistryError::NotFound(_)) => {
                self.record_failure(tenant, address, None).await?;
                return Err(RegistryError::Unauthorized(
                    "this token is unknown or revoked here: paste an API token of this tenant".into(),
                ));
            }
            Err(e) => return Err(e),
        };
        let Principal::Token { id, name } = actor.principal.clone() else {
            return Err(RegistryError::Internal("a token authenticated as something else".into()));
        };
        self.open_session(&actor, SessionOwner::Token { id, name: &name }, address, "token")
            .await
    }

    /// The live session of the tenant behind a cookie secret, if any.
    pub async fn session(&self, tenant: TenantId, secret: &str, request_id: Option<String>) -> Result<Option<SignedIn>> {
        Ok(self
            .store()
            .live_session(tenant, &hash_secret(secret), now_ms())
            .await?
            .map(|row| signed_in(row, request_id)))
    }

    /// Ends the session behind a cookie secret (signing out).
    pub async fn sign_out(&self, session: &SignedIn, secret: &str) -> Result<()> {
        let mut tx = self.store().write().await?;
        if tx.delete_session(session.actor.tenant, &hash_secret(secret)).await? {
            audit::record(&mut tx, &session.actor, "session.sign_out", "session", serde_json::json!({})).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The tenant's display name and public-page branding.
    pub async fn branding(&self, tenant: TenantId) -> Result<Branding> {
        let row = self.tenant_row(tenant).await?;
        Ok(Branding {
            display_name: row.display_name,
            logo_url: row.logo_url,
            accent_color: row.accent_color,
        })
    }

    /// Sets the display name (also the catalogue's `owner.name`), logo and accent colour.
    pub async fn set_branding(&self, actor: &Actor, branding: Branding) -> Result<Branding> {
        actor.require(Role::Admin)?;
        let display_name = branding.display_name.trim().to_string();
        if display_name.is_empty() || display_name.chars().count() > 100 || display_name.chars().any(char::is_control) {
            return Err(RegistryError::bad_request("the display name must have 1 to 100 printable characters").with_field("display_name"));
        }
        let logo_url = branding.logo_url.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        if let Some(u) = &logo_url {
            check_logo_url(u)?;
        }
        let accent_color = branding
            .accent_color
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty());
        if let Some(c) = &accent_color
            && !(c.len() == 7 && c.starts_with('#') && c[1..].bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(RegistryError::bad_request("the accent colour is `#rrggbb`, e.g. #0b6bcb").with_field("accent_color"));
        }
        let mut tx = self.store().write().await?;
        tx.set_branding(actor.tenant, &display_name, logo_url.as_deref(), accent_color.as_deref())
            .await?;
        tx.bump_catalogue_rev(actor.tenant).await?;
        audit::record(
            &mut tx,
            actor,
            "tenant.branding",
            "tenant",
            serde_json::json!({ "display_name": display_name, "logo_url": logo_url, "accent_color": accent_color }),
        )
        .await?;
        tx.commit().await?;
        self.forget_tenant(actor.tenant);
        self.invalidate_catalogue(actor.tenant);
        Ok(Branding {
            display_name,
            logo_url,
            accent_color,
        })
    }
}

/// A logo is an `https://` (or `http://`) URL, or a path on this server; nothing a browser
/// would run (`javascript:`, `data:`).
fn check_logo_url(u: &str) -> Result<()> {
    let refuse =
        || RegistryError::bad_request("the logo is an https:// URL or a path on this server starting with `/`").with_field("logo_url");
    if u.len() > 2000
        || u.chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '<' | '>'))
    {
        return Err(refuse());
    }
    if u.starts_with('/') && !u.starts_with("//") {
        return Ok(());
    }
    match url::Url::parse(u) {
        Ok(parsed) if matches!(parsed.scheme(), "https" | "http") && parsed.host().is_some() => Ok(()),
        _ => Err(refuse()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logo_urls() {
        for ok in ["https://example.com/logo.png", "/static/logo.svg", "http://intranet.example/l.png"] {
            assert!(check_logo_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            "data:image/png;base64,AA",
            "//evil.example/x",
            "https://x/\"onload",
            "ftp://x/y",
        ] {
            assert!(check_logo_url(bad).is_err(), "{bad}");
        }
    }
}
