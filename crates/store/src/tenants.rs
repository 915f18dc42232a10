//! Tenants: the unit of isolation. Also the tenant's catalogue revision counter.

use sqlx::Row;

use crate::{Result, Store, TenantId, Tx, now_ms};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRow {
    pub id: TenantId,
    pub slug: String,
    pub display_name: String,
    pub catalogue_rev: i64,
    pub created_at: i64,
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<TenantRow> {
    Ok(TenantRow {
        id: TenantId::from_db(row.try_get("id")?),
        slug: row.try_get("slug")?,
        display_name: row.try_get("display_name")?,
        catalogue_rev: row.try_get("catalogue_rev")?,
        created_at: row.try_get("created_at")?,
    })
}

const COLUMNS: &str = "id, slug, display_name, catalogue_rev, created_at";

impl Store {
    pub async fn tenant_by_slug(&self, slug: &str) -> Result<Option<TenantRow>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM tenants WHERE slug = $1"))
            .bind(slug)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn tenant_by_id(&self, id: TenantId) -> Result<Option<TenantRow>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM tenants WHERE id = $1"))
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// The first tenant created (the default tenant when none is configured).
    pub async fn first_tenant(&self) -> Result<Option<TenantRow>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM tenants ORDER BY id LIMIT 1"))
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn tenant_count(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM tenants")
            .fetch_one(self.pool())
            .await?
            .try_get("n")?)
    }

    pub async fn list_tenants(&self) -> Result<Vec<TenantRow>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM tenants ORDER BY slug"))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// The tenant's catalogue revision: one cheap query to revalidate a cached catalogue.
    pub async fn catalogue_rev(&self, tenant: TenantId) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT catalogue_rev FROM tenants WHERE id = $1")
            .bind(tenant.0)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("catalogue_rev")?),
            None => None,
        })
    }
}

impl Tx {
    /// Inserts a tenant; `StoreError::Conflict` when the slug is taken.
    pub async fn insert_tenant(&mut self, slug: &str, display_name: &str) -> Result<TenantRow> {
        let row = sqlx::query(&format!(
            "INSERT INTO tenants (slug, display_name, catalogue_rev, created_at) VALUES ($1, $2, 0, $3) RETURNING {COLUMNS}"
        ))
        .bind(slug)
        .bind(display_name)
        .bind(now_ms())
        .fetch_one(self.conn())
        .await?;
        from_row(&row)
    }

    pub async fn tenant_count(&mut self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM tenants")
            .fetch_one(self.conn())
            .await?
            .try_get("n")?)
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
