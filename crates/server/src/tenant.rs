//! Tenant routing: `/t/<tenant>/…`, `Host: <tenant>.<base-domain>`, or the default tenant at
//! the bare public URL. The routed tenant goes into the request extensions; the path is
//! rewritten to the tenant-relative path and handed to the tenant router.

use axum::extract::{Request, State};
use axum::http::{Uri, header};
use axum::response::{IntoResponse, Response};
use skill_pool_store::TenantId;
use tower::ServiceExt;

use crate::AppState;
use crate::error::ApiError;

/// The tenant a request addresses.
#[derive(Debug, Clone)]
pub struct RoutedTenant {
    pub id: TenantId,
    pub slug: String,
    pub display_name: String,
    /// The path prefix of the tenant root as this request addressed it: `/t/<slug>`, or ""
    /// (by Host header, or the default tenant at the bare URL). Portal links and the session
    /// cookie's `Path` start with it.
    pub base: String,
    /// Whether its public surface needs a credential of the tenant.
    pub visibility: skill_pool_core::api::Visibility,
}

/// Splits `/t/<slug>/rest` into (`slug`, `/rest`).
fn split_tenant_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/t/")?;
    match rest.find('/') {
        Some(i) => Some((&rest[..i], &rest[i..])),
        None => Some((rest, "/")),
    }
}

/// The tenant prefix of a request path: `/t/<slug>/rest` → `/t/<slug>`, else "".
pub fn tenant_base(path: &str) -> &str {
    split_tenant_path(path).map_or("", |(slug, _)| &path[..3 + slug.len()])
}

/// The path below the tenant root: `/t/<slug>/rest` → `/rest`; any other path as it is (the
/// tenant comes from the Host header or is the default one).
pub fn tenant_relative_path(path: &str) -> &str {
    split_tenant_path(path).map_or(path, |(_, rest)| rest)
}

fn host_tenant<'a>(host: &'a str, base_domain: &str) -> Option<&'a str> {
    let host = host
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h);
    let prefix = host.strip_suffix(base_domain)?.strip_suffix('.')?;
    (!prefix.is_empty() && !prefix.contains('.')).then_some(prefix)
}

pub async fn dispatch(State(state): State<AppState>, mut req: Request) -> Response {
    // Two Host headers could route one request to two tenants at two layers: refuse it.
    if req.headers().get_all(header::HOST).iter().count() > 1 {
        return ApiError::bad_request("the request has more than one Host header").into_response();
    }
    let path = req.uri().path().to_string();
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_ascii_lowercase);
    let by_host = match (&state.config.base_domain, &host) {
        (Some(base), Some(host)) => host_tenant(host, base).map(str::to_string),
        _ => None,
    };
    let (slug, rest, base) = if let Some(slug) = by_host {
        (slug, path.clone(), String::new())
    } else if let Some((slug, rest)) = split_tenant_path(&path) {
        (slug.to_string(), rest.to_string(), format!("/t/{slug}"))
    } else {
        let default = match &state.config.default_tenant {
            Some(d) => Some(d.clone()),
            None => match state.registry.default_tenant(None).await {
                Ok(t) => t.map(|t| t.slug),
                Err(e) => return ApiError::from(e).into_response(),
            },
        };
        match default {
            Some(d) => (d, path.clone(), String::new()),
            None => return ApiError::not_found("no tenant exists yet: create one with `skill-pool-server tenant create`").into_response(),
        }
    };
    let tenant = match state.registry.tenant_by_slug(&slug).await {
        Ok(Some(t)) => t,
        Ok(None) => return ApiError::not_found(format!("tenant `{slug}` not found")).into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let new_uri = match req.uri().query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest,
    };
    match new_uri.parse::<Uri>() {
        Ok(uri) => *req.uri_mut() = uri,
        Err(_) => return ApiError::bad_request("malformed request path").into_response(),
    }
    req.extensions_mut().insert(RoutedTenant {
        id: tenant.id,
        slug: tenant.slug,
        display_name: tenant.display_name,
        base,
        visibility: tenant.visibility,
    });
    match state.tenant_router.clone().oneshot(req).await {
        Ok(res) => res,
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_tenant_paths() {
        assert_eq!(split_tenant_path("/t/acme/v1/skills"), Some(("acme", "/v1/skills")));
        assert_eq!(split_tenant_path("/t/acme"), Some(("acme", "/")));
        assert_eq!(split_tenant_path("/t/acme/"), Some(("acme", "/")));
        assert_eq!(split_tenant_path("/v1/skills"), None);
        assert_eq!(tenant_base("/t/acme/portal"), "/t/acme");
        assert_eq!(tenant_base("/t/acme"), "/t/acme");
        assert_eq!(tenant_base("/portal"), "");
    }

    #[test]
    fn host_tenants() {
        assert_eq!(host_tenant("acme.pool.example.com", "pool.example.com"), Some("acme"));
        assert_eq!(host_tenant("acme.pool.example.com:8080", "pool.example.com"), Some("acme"));
        assert_eq!(host_tenant("pool.example.com", "pool.example.com"), None);
        assert_eq!(host_tenant("a.b.pool.example.com", "pool.example.com"), None);
        assert_eq!(host_tenant("evilpool.example.com", "pool.example.com"), None);
    }
}
