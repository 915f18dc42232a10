//! Tenants: the unit of isolation. Also the tenant's catalogue revision counter.

use skill_pool_core::api::{ServeAs, Visibility};

use crate::{Db, Result, TenantId, Tx, now_ms};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TenantRow {
    pub id: TenantId,
    pub slug: String,
    pub display_name: String,
    pub catalogue_rev: i64,
    pub created_at: i64,
    /// The `renames` map of the tenant's catalogue (JSON object), from imported catalogues.
    pub catalogue_renames: Option<String>,
    /// Branding of the public pages: a logo (an `https://` URL or a path on this server).
    pub logo_url: Option<String>,
    /// Branding of the public pages: `#rrggbb`.
    pub accent_color: Option<String>,
    /// Who may read the public surface.
    #[sqlx(try_from = "String")]
    pub visibility: Visibility,
    /// How the catalogue points at internal and mirrored plugins.
    #[sqlx(try_from = "String")]
    pub serve_as: ServeAs,
}

const COLUMNS: &str = "id, slug, display_name, catalogue_rev, created_at, catalogue_renames, logo_url, accent_color, visibility, serve_as";

/// Reads of tenants, on the pool or in a transaction.
pub trait TenantReads: Db {
    async fn tenant_by_slug(&mut self, slug: &str) -> Result<Option<TenantRow>> {
        Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM tenants WHERE slug = $1"))
            .bind(slug)
            .fetch_optional(self.executor())
            .await?)
    }

    async fn tenant_by_id(&mut self, id: TenantId) -> Result<Option<TenantRow>> {
        Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM tenants WHERE id = $1"))
            .bind(id.0)
            .fetch_optional(self.executor())
            .await?)
    }

    /// The first tenant created (the default tenant when none is configured).
    async fn first_tenant(&mut self) -> Result<Option<TenantRow>> {
        Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM tenants ORDER BY id LIMIT 1"))
            .fetch_optional(self.executor())
            .await?)
    }

    async fn tenant_count(&mut self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM tenants")
            .fetch_one(self.executor())
            .await?)
    }

    async fn list_tenants(&mut self) -> Result<Vec<TenantRow>> {
        Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM tenants ORDER BY slug"))
            .fetch_all(self.executor())
            .await?)
    }

    /// The tenant's catalogue revision: one cheap query to revalidate a cached catalogue.
    async fn catalogue_rev(&mut self, tenant: TenantId) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar("SELECT catalogue_rev FROM tenants WHERE id = $1")
            .bind(tenant.0)
            .fetch_optional(self.executor())
            .await?)
    }
}

impl<T: Db> TenantReads for T {}

impl Tx {
    /// Inserts a tenant; `StoreError::Conflict` when the slug is taken.
    pub async fn insert_tenant(&mut self, slug: &str, display_name: &str) -> Result<TenantRow> {
        Ok(sqlx::query_as(&format!(
            "INSERT INTO tenants (slug, display_name, catalogue_rev, created_at) VALUES ($1, $2, 0, $3) RETURNING {COLUMNS}"
        ))
        .bind(slug)
        .bind(display_name)
        .bind(now_ms())
        .fetch_one(self.conn())
        .await?)
    }

    /// Replaces the tenant's catalogue `renames` map (JSON object text, or none).
    pub async fn set_catalogue_renames(&mut self, tenant: TenantId, renames: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE tenants SET catalogue_renames = $1 WHERE id = $2")
            .bind(renames)
            .bind(tenant.0)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Sets the tenant's display name and branding.
    pub async fn set_branding(
        &mut self,
        tenant: TenantId,
        display_name: &str,
        logo_url: Option<&str>,
        accent_color: Option<&str>,
    ) -> Result<()> {
        sqlx::query("UPDATE tenants SET display_name = $1, logo_url = $2, accent_color = $3 WHERE id = $4")
            .bind(display_name)
            .bind(logo_url)
            .bind(accent_color)
            .bind(tenant.0)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Sets who may read the tenant's public surface and how its catalogue serves plugins.
    pub async fn set_access(&mut self, tenant: TenantId, visibility: Visibility, serve_as: ServeAs) -> Result<()> {
        sqlx::query("UPDATE tenants SET visibility = $1, serve_as = $2 WHERE id = $3")
            .bind(visibility.as_str())
            .bind(serve_as.as_str())
            .bind(tenant.0)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Marks the tenant's catalogue as changed.
    pub async fn bump_catalogue_rev(&mut self, tenant: TenantId) -> Result<()> {
        sqlx::query("UPDATE tenants SET catalogue_rev = catalogue_rev + 1 WHERE id = $1")
            .bind(tenant.0)
            .execute(self.conn())
            .await?;
        Ok(())
    }
}
