//! Published keys and metadata: the JWKS, the discovery documents and PEM
//! exports, all served from bodies serialized once.

use actix_web::http::header::{self, CacheControl, CacheDirective, ContentType};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct KidQuery {
    kid: Option<String>,
}

/// `GET /.well-known/jwks.json`: every published key, or only the one named
/// by a `kid` header (Hue's key-server client sends one) or `?kid=`.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "keys",
    params(("kid" = Option<String>, Query, description = "Only the key with this kid"), ("kid" = Option<String>, Header, description = "Only the key with this kid")),
    responses(
        (status = 200, description = "The published keys", body = shapes::Jwks),
        (status = 404, description = "No published key has that kid", body = crate::error::ErrorBody),
    ),
)]
pub async fn jwks(
    req: HttpRequest,
    query: web::Query<KidQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let header_kid = req.headers().get("kid").and_then(|v| v.to_str().ok());
    let kid = header_kid.or(query.kid.as_deref());
    let keys = state.keys.current();
    let body = match kid {
        None => keys.jwks().clone(),
        Some(kid) => keys
            .jwks_for(kid)
            .cloned()
            .ok_or_else(|| ApiError::NotFound("no published key has that kid".into()))?,
    };
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .insert_header(CacheControl(vec![
            CacheDirective::Public,
            CacheDirective::MaxAge(
                u32::try_from(state.settings.keys.jwks_max_age.as_secs()).unwrap_or(u32::MAX),
            ),
        ]))
        .body(body))
}

/// `GET /.well-known/openid-configuration` and
/// `/.well-known/oauth-authorization-server`.
#[utoipa::path(
    get,
    path = "/.well-known/openid-configuration",
    tag = "keys",
    responses(
        (status = 200, description = "The discovery document (also at `/.well-known/oauth-authorization-server`)", body = shapes::Discovery),
    ),
)]
pub async fn discovery(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(state.discovery.clone())
}

/// `GET /keys/{kid}.pem`: one public key as a SubjectPublicKeyInfo PEM, for
/// verifiers configured with key files (djangorestframework-sso).
#[utoipa::path(
    get,
    path = "/keys/{file}",
    tag = "keys",
    params(("file" = String, Path, description = "`{kid}.pem`")),
    responses(
        (status = 200, description = "The public key as a SubjectPublicKeyInfo PEM", body = String, content_type = "application/x-pem-file"),
        (status = 404, description = "No published key has that kid", body = crate::error::ErrorBody),
    ),
)]
pub async fn public_key_pem(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::NotFound("no published key has that kid".into());
    let kid = path.strip_suffix(".pem").ok_or_else(not_found)?;
    let pem = state
        .keys
        .current()
        .get(kid)
        .ok_or_else(not_found)?
        .pem
        .clone();
    Ok(HttpResponse::Ok()
        .content_type("application/x-pem-file")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(pem))
}

/// `GET /openapi.json`: the OpenAPI 3 document of this API, serialized once
/// at start-up.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses(
        (status = 200, description = "This document", body = Object, content_type = "application/json"),
    ),
)]
pub async fn openapi(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(state.openapi.clone())
}

/// The discovery document for `issuer`.
pub fn discovery_document(issuer: &str) -> serde_json::Value {
    serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth2/authorize"),
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "revocation_endpoint": format!("{issuer}/oauth2/revoke"),
        "introspection_endpoint": format!("{issuer}/introspect"),
        "end_session_endpoint": format!("{issuer}/oauth2/logout"),
        "session_endpoint": format!("{issuer}/session"),
        "authorization_token_endpoint": format!("{issuer}/authorize"),
        "public_key_pem_uri_template": format!("{issuer}/keys/{{kid}}.pem"),
        "revocation_feed_endpoint": format!("{issuer}/revocations"),
        // No implicit or hybrid flow (RFC 9700 §2.1.2).
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:token-exchange"
        ],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": crate::oauth::provider::OPENID_SCOPES,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "prompt_values_supported": ["none", "login"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        // RFC 9207: every authorization response carries `iss`.
        "authorization_response_iss_parameter_supported": true,
        "claims_supported": [
            "iss", "sub", "aud", "iat", "nbf", "exp", "jti", "auth_time", "nonce", "at_hash",
            "sid", "preferred_username", "name", "email", "email_verified", "groups",
            "token", "cid", "uid", "username", "scopes", "client_id", "scope"
        ],
    })
}

/// The shapes of bodies built with `serde_json::json!` or serialized from
/// elsewhere, for the OpenAPI document; only described, never built.
mod shapes {
    #![expect(
        dead_code,
        reason = "these types only describe bodies; nothing builds them"
    )]

    use utoipa::ToSchema;

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
        authorization_endpoint: String,
        token_endpoint: String,
        revocation_endpoint: String,
        end_session_endpoint: String,
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
        code_challenge_methods_supported: Vec<String>,
        token_endpoint_auth_methods_supported: Vec<String>,
        scopes_supported: Vec<String>,
        authorization_response_iss_parameter_supported: bool,
        id_token_signing_alg_values_supported: Vec<String>,
        claims_supported: Vec<String>,
    }
}
