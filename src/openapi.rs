//! The OpenAPI 3 description of the JSON HTTP API, generated from the
//! handlers' `#[utoipa::path]` annotations and served at `GET /openapi.json`.
//!
//! It describes; it must never decide. No handler reads it, and the types
//! here that only name the shape of a `serde_json::json!` body are never
//! built. The hosted login pages (`/login`, `/logout`, `/static/…`) are HTML
//! for browsers and left out. `tests/api/openapi.rs` checks every operation
//! against the running service and every route of the table against the
//! document.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

pub(crate) use shapes::*;

/// The shapes of bodies that handlers build with `serde_json::json!` or
/// serialize from elsewhere; only described, never built.
mod shapes {
    #![expect(
        dead_code,
        reason = "these types only describe bodies; nothing builds them"
    )]

    use chrono::{DateTime, Utc};
    use utoipa::ToSchema;

    /// Every error: `{"error": "<code>", "message": "<text>"}`.
    #[derive(ToSchema)]
    #[schema(example = json!({"error": "invalid_token", "message": "the session has ended"}))]
    pub(crate) struct ErrorBody {
        /// A stable code: `invalid_request`, `invalid_credentials`,
        /// `invalid_token`, `forbidden`, `not_found`, `conflict`,
        /// `method_not_allowed`, `payload_too_large`, `too_many_requests`,
        /// `unavailable`, `internal_error`.
        error: String,
        /// For people; may change.
        message: String,
    }

    /// `GET /healthz`.
    #[derive(ToSchema)]
    pub(crate) struct Health {
        /// Always `ok`.
        status: String,
    }

    /// `GET /readyz`.
    #[derive(ToSchema)]
    pub(crate) struct Readiness {
        /// Always `ready`.
        status: String,
        /// The key that signs new tokens.
        signing_kid: String,
    }

    /// A JSON Web Key Set (RFC 7517): `{"keys": [...]}`.
    #[derive(ToSchema)]
    pub(crate) struct Jwks {
        #[schema(value_type = Vec<Object>)]
        keys: Vec<String>,
    }

    /// The discovery document: issuer, endpoints and supported algorithms.
    #[derive(ToSchema)]
    pub(crate) struct Discovery {
        issuer: String,
        jwks_uri: String,
        session_endpoint: String,
        authorization_token_endpoint: String,
        public_key_pem_uri_template: String,
        introspection_endpoint: String,
        userinfo_endpoint: String,
        revocation_feed_endpoint: String,
        response_types_supported: Vec<String>,
        subject_types_supported: Vec<String>,
        grant_types_supported: Vec<String>,
        id_token_signing_alg_values_supported: Vec<String>,
        token_endpoint_auth_signing_alg_values_supported: Vec<String>,
        claims_supported: Vec<String>,
    }

    /// `POST /introspect` (RFC 7662): `{"active": false}`, or `active: true`
    /// with the token's claims (`sub`, `aud`, `exp`, `scopes`, …) beside it.
    #[derive(ToSchema)]
    pub(crate) struct Introspection {
        active: bool,
        /// The scopes, space-separated (authorization tokens).
        scope: Option<String>,
        client_id: Option<String>,
        /// `session` or `authorization`.
        token_type: Option<String>,
    }

    /// One grant: a scope at an audience.
    #[derive(ToSchema)]
    pub(crate) struct Grant {
        audience: String,
        scope: String,
    }

    /// `GET /admin/users`.
    #[derive(ToSchema)]
    pub(crate) struct UserPage {
        users: Vec<super::routes::admin::UserView>,
        offset: i64,
        limit: i64,
    }

    /// `GET /admin/users/{name}`.
    #[derive(ToSchema)]
    pub(crate) struct UserDetail {
        user: super::routes::admin::UserView,
        grants: Vec<Grant>,
    }

    /// `GET /admin/users/{name}/grants`.
    #[derive(ToSchema)]
    pub(crate) struct GrantList {
        grants: Vec<Grant>,
    }

    /// `DELETE /admin/users/{name}/grants`.
    #[derive(ToSchema)]
    pub(crate) struct GrantsRemoved {
        /// How many of the named grants the user held.
        removed: u64,
    }

    /// `GET /admin/users/{name}/sessions`.
    #[derive(ToSchema)]
    pub(crate) struct SessionList {
        sessions: Vec<super::routes::admin::SessionView>,
    }

    /// `DELETE /admin/users/{name}/sessions`.
    #[derive(ToSchema)]
    pub(crate) struct SessionsRevoked {
        /// How many live sessions ended.
        revoked: u64,
    }

    /// One signing key and where it stands in its lifecycle.
    #[derive(ToSchema)]
    pub(crate) struct KeyStatus {
        kid: String,
        /// `published`, `active`, `retired` or `revoked`.
        state: String,
        /// Whether this server holds the key. One whose file it cannot
        /// load keeps its place in the lifecycle; when that is `active`,
        /// this server signs nothing.
        loaded: bool,
        created: Option<DateTime<Utc>>,
        activates: Option<DateTime<Utc>>,
        retires: Option<DateTime<Utc>>,
        verifies_until: Option<DateTime<Utc>>,
    }

    /// A file of the key directory that this server does not use.
    #[derive(ToSchema)]
    pub(crate) struct KeyFileProblem {
        /// The file's path on this server.
        file: String,
        /// Why it is not used.
        reason: String,
        /// The file had loaded before: its last good copy is still in use.
        kept: bool,
    }

    /// `GET /admin/keys`.
    #[derive(ToSchema)]
    pub(crate) struct KeyList {
        keys: Vec<KeyStatus>,
        /// The key whose turn it is to sign, by the lifecycle.
        signing_kid: String,
        /// Whether this server can sign with it; when not, `/readyz`
        /// answers 503.
        signing: bool,
        problems: Vec<KeyFileProblem>,
    }
}

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
        routes::health::healthz,
        routes::health::readyz,
        routes::health::metrics,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Additions),
    tags(
        (name = "session", description = "Logging in and out; session tokens"),
        (name = "tokens", description = "Authorization tokens and online checks of them"),
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
