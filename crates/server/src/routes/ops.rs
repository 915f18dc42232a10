//! Liveness, readiness and metrics.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;

use skill_pool_core::ErrorCode;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::ClientAddr;

pub async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], "ok\n")
}

pub async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    state.registry.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "readiness check failed");
        ApiError::new(ErrorCode::Unavailable, "the database is not reachable")
    })?;
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], "ready\n"))
}

/// `/metrics`: open to the addresses in `SKILL_POOL_METRICS_ALLOW` (loopback by default), and
/// to anyone with `SKILL_POOL_METRICS_TOKEN` as a bearer token.
pub async fn metrics(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let allowed_address = addr.is_some_and(|a| state.config.metrics_allow.iter().any(|net| net.contains(&a)));
    let token_ok = match (
        &state.config.metrics_token,
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()),
    ) {
        (Some(token), Some(given)) => given
            .strip_prefix("Bearer ")
            .is_some_and(|g| constant_time_eq(g.trim().as_bytes(), token.as_bytes())),
        _ => false,
    };
    // In-process (no socket): the caller is the embedding program itself.
    if !(allowed_address || token_ok || addr.is_none()) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "metrics are readable from the addresses in SKILL_POOL_METRICS_ALLOW or with SKILL_POOL_METRICS_TOKEN",
        ));
    }
    let body = state.metrics.render(state.registry.pool_stats());
    Ok((
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        body,
    ))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
