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
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return ApiError::bad_request("the request has more than one Host header").into_response();
    }
    // `<tenant>.<base-domain>`: lower-cased only when it is not already (no copy otherwise).
    let by_host: Option<std::borrow::Cow<'_, str>> = match (&state.config.base_domain, host.and_then(|h| h.to_str().ok())) {
        (Some(base), Some(host)) if host.bytes().any(|b| b.is_ascii_uppercase()) => {
            host_tenant(&host.to_ascii_lowercase(), base).map(|s| std::borrow::Cow::Owned(s.to_string()))
        }
        (Some(base), Some(host)) => host_tenant(host, base).map(std::borrow::Cow::Borrowed),
        _ => None,
    };
    let path = req.uri().path();
    // The slug, and where the tenant-relative path starts when the path has a `/t/<slug>` prefix.
    let (slug, prefix): (std::borrow::Cow<'_, str>, Option<usize>) = if let Some(slug) = by_host {
        (slug, None)
    } else if let Some((slug, _)) = split_tenant_path(path) {
        (std::borrow::Cow::Borrowed(slug), Some(3 + slug.len()))
    } else {
        let default = match &state.config.default_tenant {
            Some(d) => Some(d.clone()),
            None => match state.registry.default_tenant(None).await {
                Ok(t) => t.map(|t| t.slug),
                Err(e) => return ApiError::from(e).into_response(),
            },
        };
        match default {
            Some(d) => (std::borrow::Cow::Owned(d), None),
            None => return ApiError::not_found("no tenant exists yet: create one with `skill-pool-server tenant create`").into_response(),
        }
    };
    let tenant = match state.registry.route_tenant(&slug).await {
        Ok(Some(t)) => t,
        Ok(None) => return ApiError::not_found(format!("tenant `{slug}` not found")).into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    drop(slug);
    let base = match prefix {
        // `/t/<slug>/rest?query` → `/rest?query`: the one case where the URI changes.
        Some(end) => {
            let uri = req.uri();
            let path = uri.path();
            let rest = if path.len() > end { &path[end..] } else { "/" };
            let mut new_uri = String::with_capacity(rest.len() + uri.query().map_or(0, |q| q.len() + 1));
            new_uri.push_str(rest);
            if let Some(q) = uri.query() {
                new_uri.push('?');
                new_uri.push_str(q);
            }
            let base = path[..end].to_string();
            match Uri::try_from(new_uri) {
                Ok(uri) => *req.uri_mut() = uri,
                Err(_) => return ApiError::bad_request("malformed request path").into_response(),
            }
            base
        }
        None => String::new(),
    };
    req.extensions_mut().insert(RoutedTenant {
        id: tenant.id,
        slug: tenant.slug.clone(),
        display_name: tenant.display_name.clone(),
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
