//! The OpenAPI 3 description of the JSON HTTP API, generated from the
//! handlers' `#[utoipa::path]` annotations and served at `GET /openapi.json`.
//!
//! It describes; it must never decide. It imports the handlers, and no
//! handler imports it: the shapes of bodies that a handler builds with
//! `serde_json::json!` are described beside that handler (a `shapes`
//! module of the route file), the error body in [`crate::error`]. The hosted login pages (`/login`, `/logout`, `/static/…`) are HTML
//! for browsers and left out. `tests/api/openapi.rs` checks every operation
//! against the running service and every route of the table against the
//! document.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tessera",
        description = "SSO token service: session tokens, short-lived RS256 authorization \
                       tokens, offline verification. Every error answers `ErrorBody`."
    ),
    paths(
        routes::session::create,
        routes::session::show,
        routes::session::delete,
        routes::refresh::refresh,
        routes::authorize::authorize,
        routes::well_known::jwks,
        routes::well_known::discovery,
        routes::well_known::public_key_pem,
        routes::well_known::openapi,
        routes::revocations::feed,
        routes::introspect::introspect,
        routes::introspect::userinfo,
        routes::introspect::userinfo_post,
        routes::oauth::token,
        routes::oauth::revoke,
        routes::admin::list_users,
        routes::admin::create_user,
        routes::admin::show_user,
        routes::admin::delete_user,
        routes::admin::disable_user,
        routes::admin::enable_user,
        routes::admin::set_password,
        routes::admin::list_grants,
        routes::admin::add_grants,
        routes::admin::remove_grants,
        routes::admin::list_sessions,
        routes::admin::revoke_all_sessions,
        routes::admin::revoke_session,
        routes::admin::list_keys,
        routes::oauth_clients::list_clients,
        routes::oauth_clients::create_client,
        routes::oauth_clients::show_client,
        routes::oauth_clients::delete_client,
        routes::oauth_clients::rotate_client_secret,
        routes::oauth_clients::disable_client,
        routes::oauth_clients::enable_client,
        routes::health::healthz,
        routes::health::readyz,
        routes::health::metrics,
    ),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&Additions),
    tags(
        (name = "session", description = "Logging in and out; session tokens"),
        (name = "tokens", description = "Authorization tokens and online checks of them"),
        (name = "oauth", description = "The OAuth 2.0 / OpenID Connect token endpoint and revocation; the authorization and end-session endpoints are browser pages"),
        (name = "keys", description = "Published keys, discovery and revocations, for verifiers"),
        (name = "admin", description = "Users, grants, sessions and keys; needs `tessera:admin` at audience `tessera`"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    )
)]
struct ApiDoc;

/// What the derive cannot say: the version, the bearer scheme, and the
/// second discovery path, served by the same handler.
struct Additions;

impl Modify for Additions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi.info.version = env!("CARGO_PKG_VERSION").into();
        openapi
            .components
            .get_or_insert_default()
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .build(),
                ),
            );
        // An OAuth client's id and secret (RFC 6749 §2.3.1), at the token
        // and revocation endpoints.
        openapi
            .components
            .get_or_insert_default()
            .add_security_scheme(
                "client",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
            );
        if let Some(mut item) = openapi
            .paths
            .paths
            .get("/.well-known/openid-configuration")
            .cloned()
        {
            if let Some(get) = item.get.as_mut() {
                get.operation_id = Some("oauth_authorization_server".into());
            }
            openapi
                .paths
                .paths
                .insert("/.well-known/oauth-authorization-server".into(), item);
        }
    }
}

/// The document, as served.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
