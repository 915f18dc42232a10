//! The OpenAPI document, generated from the handlers' annotations and the wire types.

use axum::Json;
use utoipa::OpenApi;

use crate::routes::api;

#[derive(OpenApi)]
#[openapi(
    info(title = "skill-pool API", description = "Per-tenant registry of Claude Code skills, agents, commands and plugins. Every path is relative to a tenant root `<T>`; authenticate with `Authorization: Bearer <token>`."),
    paths(
        api::whoami, api::usage, api::tenant_settings, api::update_tenant, api::installs, api::list_pieces, api::publish_piece, api::show_piece, api::piece_versions, api::piece_version,
        api::download_piece, api::archive_piece, api::list_plugins, api::show_plugin, api::create_plugin, api::update_plugin,
        api::delete_plugin, api::purge_plugin_version, api::publish_plugin, api::import_catalogue, api::import_mirror, api::refresh_mirror, api::accept_mirror, api::serve_plugin, api::set_install_policy, api::managed_settings, api::job, api::list_tokens, api::create_token, api::revoke_token, api::audit,
    ),
    components(schemas(skill_pool_core::api::ErrorBody)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
