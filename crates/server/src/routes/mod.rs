//! The tenant router: everything under a tenant root `<T>`.

pub mod api;
pub mod git;
pub mod ops;
pub mod public;

use axum::Router;
use axum::routing::{delete, get, post};

use crate::AppState;

/// `state` is used by layers built here (its own `tenant_router` is not read).
pub fn tenant_router(state: &AppState) -> Router<AppState> {
    let public = Router::new()
        .route("/", get(public::root))
        .route("/.claude-plugin/marketplace.json", get(public::catalogue))
        .route("/archives/{plugin}/{file}", get(public::archive))
        .route("/git/plugins/{repo}/info/refs", get(git::info_refs))
        .route("/git/plugins/{repo}/git-upload-pack", post(git::upload_pack))
        .route("/git/plugins/{repo}/git-receive-pack", post(git::receive_pack))
        .route_layer(crate::ratelimit::LimitLayer(state.limiter.clone()));
    let v1 = Router::new()
        .route("/v1/openapi.json", get(crate::openapi::document))
        .route("/v1/whoami", get(api::whoami))
        .route("/v1/usage", get(api::usage))
        .route("/v1/tenant", get(api::tenant_settings).patch(api::update_tenant))
        .route("/v1/installs", get(api::installs))
        .route("/v1/plugins", get(api::list_plugins).post(api::create_plugin))
        .route("/v1/plugins/publish", post(api::publish_plugin))
        .route("/v1/plugins/import-catalogue", post(api::import_catalogue))
        .route("/v1/plugins/import", post(api::import_mirror))
        .route("/v1/plugins/{slug}/refresh", post(api::refresh_mirror))
        .route("/v1/plugins/{slug}/accept", post(api::accept_mirror))
        .route("/v1/plugins/{slug}/versions/{version}/purge", post(api::purge_plugin_version))
        .route("/v1/plugins/{slug}/serve", post(api::serve_plugin))
        .route("/v1/plugins/{slug}/policy", post(api::set_install_policy))
        .route("/v1/jobs/{id}", get(api::job))
        .route(
            "/v1/plugins/{slug}",
            get(api::show_plugin).patch(api::update_plugin).delete(api::delete_plugin),
        )
        .route("/v1/tokens", get(api::list_tokens).post(api::create_token))
        .route("/v1/tokens/{id}", delete(api::revoke_token))
        .route("/v1/audit", get(api::audit))
        .route("/v1/managed-settings", get(api::managed_settings))
        .route("/v1/{kind}", get(api::list_pieces).post(api::publish_piece))
        .route("/v1/{kind}/{slug}", get(api::show_piece))
        .route("/v1/{kind}/{slug}/versions", get(api::piece_versions))
        .route("/v1/{kind}/{slug}/versions/{version}", get(api::piece_version))
        .route("/v1/{kind}/{slug}/versions/{version}/download", get(api::download_piece))
        .route("/v1/{kind}/{slug}/versions/{version}/archive", post(api::archive_piece));
    let portal = crate::portal::routes().route_layer(crate::ratelimit::LimitLayer(state.limiter.clone()));
    public
        .merge(portal)
        .merge(v1)
        .fallback(|| async { crate::error::ApiError::not_found("no such route: see /v1/openapi.json") })
}
