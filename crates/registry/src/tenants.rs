//! Tenants and users: creation, the first-start bootstrap, lookup.

use std::path::PathBuf;

use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
use skill_pool_core::Role;
use skill_pool_core::slug::{Slug, check_tenant_slug};
use skill_pool_store::audit::NewAudit;
use skill_pool_store::tenants::TenantRow;
use skill_pool_store::{StoreError, TenantId};

use crate::tokens::CreatedSecret;
use crate::{Actor, Registry, RegistryError, Result, with_retry};

/// What the first start on an empty database created.
#[derive(Debug)]
pub struct Bootstrap {
    pub tenant: TenantRow,
    /// Where the admin token was written (mode 0600).
    pub token_file: PathBuf,
}

impl Registry {
    pub async fn tenant_by_slug(&self, slug: &str) -> Result<Option<TenantRow>> {
        Ok(self.store().tenant_by_slug(slug).await?)
    }

    /// Creates a tenant. The slug must be valid and not a marketplace name Claude Code reserves.
    pub async fn create_tenant(&self, slug: &str, display_name: Option<&str>) -> Result<TenantRow> {
        let slug = check_tenant_slug(slug).map_err(|e| RegistryError::BadRequest(e.to_string()))?;
        let display_name = display_name
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .unwrap_or(slug.as_str())
            .to_string();
        let mut tx = self.store().write().await?;
        let tenant = match tx.insert_tenant(slug.as_str(), &display_name).await {
            Ok(t) => t,
            Err(StoreError::Conflict(_)) => {
                return Err(RegistryError::Conflict(format!("tenant `{slug}` already exists")));
            }
            Err(e) => return Err(e.into()),
        };
        tx.insert_audit(
            tenant.id,
            NewAudit {
                actor: "admin-cli",
                action: "tenant.create",
                target: &format!("tenant:{slug}"),
                detail: serde_json::json!({ "display_name": display_name }),
                request_id: None,
            },
        )
        .await?;
        tx.commit().await?;
        tracing::info!(tenant = %slug, "tenant created");
        Ok(tenant)
    }

    /// On an empty database: creates the bootstrap tenant and an admin token, and writes the
    /// token to `<data>/admin-token` (mode 0600). Does nothing when any tenant exists.
    pub async fn bootstrap(&self, tenant_slug: &str) -> Result<Option<Bootstrap>> {
        if self.store().tenant_count().await? > 0 {
            return Ok(None);
        }
        let tenant = match self.create_tenant(tenant_slug, None).await {
            Ok(t) => t,
            // Another replica bootstrapped at the same moment.
            Err(RegistryError::Conflict(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let created = self
            .create_token(&Actor::operator(tenant.id), "bootstrap-admin", Role::Admin)
            .await?;
        let token_file = self.config().data_dir.join("admin-token");
        write_secret_file(&token_file, &created.secret)?;
        Ok(Some(Bootstrap { tenant, token_file }))
    }

    /// Creates a portal user with an argon2-hashed password.
    pub async fn create_user(&self, tenant: TenantId, username: &str, password: &str, role: Role) -> Result<i64> {
        let name = Slug::parse(username).map_err(|e| RegistryError::BadRequest(format!("username: {e}")))?;
        if password.chars().count() < 12 {
            return Err(RegistryError::BadRequest("the password must have at least 12 characters".into()));
        }
        let salt = SaltString::generate(&mut OsRng);
        let hash = argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| RegistryError::Internal(format!("hashing the password: {e}")))?
            .to_string();
        // The retried closure borrows; it must not move these.
        let (hash, name) = (&hash, &name);
        with_retry(|| async move {
            let mut tx = self.store().write().await?;
            let user = match tx.insert_user(tenant, name.as_str(), hash, role.as_str()).await {
                Ok(u) => u,
                Err(StoreError::Conflict(_)) => {
                    return Err(RegistryError::Conflict(format!("user `{name}` already exists in this tenant")));
                }
                Err(e) => return Err(e.into()),
            };
            tx.insert_audit(
                tenant,
                NewAudit {
                    actor: "admin-cli",
                    action: "user.create",
                    target: &format!("user:{name}"),
                    detail: serde_json::json!({ "role": role }),
                    request_id: None,
                },
            )
            .await?;
            tx.commit().await?;
            Ok(user.id)
        })
        .await
    }
}

impl CreatedSecret {
    /// For logs: never the secret itself.
    pub fn describe(&self) -> String {
        format!("token {} ({})", self.token.name, self.token.prefix)
    }
}

/// Writes a secret to a file only its owner can read, replacing any previous one.
pub fn write_secret_file(path: &std::path::Path, secret: &str) -> Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(RegistryError::io(format!("creating {}", dir.display())))?;
    }
    let _ = std::fs::remove_file(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(RegistryError::io(format!("writing {}", path.display())))?;
    writeln!(file, "{secret}").map_err(RegistryError::io(format!("writing {}", path.display())))?;
    Ok(())
}
