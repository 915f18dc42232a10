//! The one way a use case writes the audit log: inside its own transaction, with the actor's
//! principal and request id, so a change and its audit row commit or roll back together.

use skill_pool_core::Role;
use skill_pool_core::api::{AuditEntry, Page};
pub use skill_pool_store::audit::AuditFilter;
use skill_pool_store::audit::NewAudit;
use skill_pool_store::{TenantId, Tx, format_ms};

use crate::{Actor, Registry, Result};
use skill_pool_store::prelude::*;

/// Writes one audit row for `actor` in `tx`: `action` such as `plugin.publish`, `target` such
/// as `plugin:toolbox`, `detail` any JSON object.
pub(crate) async fn record(tx: &mut Tx, actor: &Actor, action: &str, target: &str, detail: serde_json::Value) -> Result<()> {
    record_in(tx, actor.tenant, actor, action, target, detail).await
}

/// As [`record`], for a row that belongs to another tenant than the actor's (creating a tenant).
pub(crate) async fn record_in(
    tx: &mut Tx,
    tenant: TenantId,
    actor: &Actor,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> Result<()> {
    tx.insert_audit(
        tenant,
        NewAudit {
            actor: &actor.audit_name(),
            action,
            target,
            detail,
            request_id: actor.request_id(),
        },
    )
    .await?;
    Ok(())
}

impl Registry {
    /// Writes that `actor` was refused `what` (e.g. `POST /v1/tokens`) for its role. Never fails
    /// the request: a row that cannot be written is logged.
    pub async fn record_denied(&self, actor: &Actor, what: &str) {
        let result = async {
            let mut tx = self.store().write().await?;
            record(
                &mut tx,
                actor,
                "access.denied",
                what,
                serde_json::json!({ "role": actor.role().as_str() }),
            )
            .await?;
            tx.commit().await?;
            Ok::<(), crate::RegistryError>(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not write a denied action to the audit log");
        }
    }

    /// The audit log, newest first; `before` is the `next_cursor` of the previous page.
    pub async fn audit(&self, actor: &Actor, before: Option<i64>, limit: i64) -> Result<Page<AuditEntry>> {
        self.search_audit(actor, &AuditFilter::default(), before, limit).await
    }

    /// The audit log narrowed by actor and target (substrings), action (a prefix) and time.
    pub async fn search_audit(&self, actor: &Actor, filter: &AuditFilter<'_>, before: Option<i64>, limit: i64) -> Result<Page<AuditEntry>> {
        actor.require(Role::Admin)?;
        let rows = self.store().search_audit(actor.tenant, filter, before, limit + 1).await?;
        let more = rows.len() as i64 > limit;
        let rows = &rows[..rows.len().min(limit as usize)];
        let items = rows
            .iter()
            .map(|r| AuditEntry {
                id: r.id,
                actor: r.actor.clone(),
                action: r.action.clone(),
                target: r.target.clone(),
                detail: serde_json::from_str(&r.detail).unwrap_or_else(|_| serde_json::json!({})),
                request_id: r.request_id.clone(),
                created_at: format_ms(r.created_at),
            })
            .collect();
        let next_cursor = if more { rows.last().map(|r| r.id.to_string()) } else { None };
        Ok(Page { items, next_cursor })
    }
}
