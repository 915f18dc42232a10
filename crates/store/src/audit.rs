//! The audit log: who did what to which target, when, under which request id.

use crate::{Db, Result, TenantId, Tx, now_ms};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub request_id: Option<String>,
    pub created_at: i64,
}

/// What one audit row says; written in the same transaction as the change it records.
#[derive(Debug, Clone)]
pub struct NewAudit<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub detail: serde_json::Value,
    pub request_id: Option<&'a str>,
}

impl Tx {
    pub async fn insert_audit(&mut self, tenant: TenantId, entry: NewAudit<'_>) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (tenant_id, actor, action, target, detail, request_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(tenant.0)
        .bind(entry.actor)
        .bind(entry.action)
        .bind(entry.target)
        .bind(entry.detail.to_string())
        .bind(entry.request_id)
        .bind(now_ms())
        .execute(self.conn())
        .await?;
        Ok(())
    }
}

/// Reads of the audit log.
pub trait AuditReads: Db {
    /// Newest first; `before` is an exclusive id cursor.
    async fn list_audit(&mut self, tenant: TenantId, before: Option<i64>, limit: i64) -> Result<Vec<AuditRow>> {
        Ok(sqlx::query_as(
            "SELECT id, actor, action, target, detail, request_id, created_at FROM audit_log \
             WHERE tenant_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(tenant.0)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(self.executor())
        .await?)
    }

    /// Newest first, narrowed: `actor` and `target` are substrings, `action` a prefix, times
    /// unix milliseconds (`since` inclusive, `until` exclusive). Empty strings match all.
    async fn search_audit(&mut self, tenant: TenantId, filter: &AuditFilter<'_>, before: Option<i64>, limit: i64) -> Result<Vec<AuditRow>> {
        Ok(sqlx::query_as(
            "SELECT id, actor, action, target, detail, request_id, created_at FROM audit_log \
             WHERE tenant_id = $1 AND id < $2 AND actor LIKE $3 ESCAPE '\\' AND action LIKE $4 ESCAPE '\\' \
             AND target LIKE $5 ESCAPE '\\' \
             AND created_at >= $6 AND created_at < $7 ORDER BY id DESC LIMIT $8",
        )
        .bind(tenant.0)
        .bind(before.unwrap_or(i64::MAX))
        .bind(format!("%{}%", like_escape(filter.actor)))
        .bind(format!("{}%", like_escape(filter.action)))
        .bind(format!("%{}%", like_escape(filter.target)))
        .bind(filter.since.unwrap_or(0))
        .bind(filter.until.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(self.executor())
        .await?)
    }
}

impl<T: Db> AuditReads for T {}

/// What an audit search keeps.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// LIKE's wildcards (`%`, `_`) are dropped from the search text: the backends disagree on
/// escapes, and no actor, action or target needs them to be found.
/// `s` as a literal inside a `LIKE … ESCAPE` pattern (backslash as the escape): `%`, `_` and the backslash match themselves.
fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
