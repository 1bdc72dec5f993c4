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
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "session_endpoint": format!("{issuer}/session"),
        "authorization_token_endpoint": format!("{issuer}/authorize"),
        "public_key_pem_uri_template": format!("{issuer}/keys/{{kid}}.pem"),
        "introspection_endpoint": format!("{issuer}/introspect"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "revocation_feed_endpoint": format!("{issuer}/revocations"),
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "grant_types_supported": ["password"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
        "claims_supported": [
            "iss", "sub", "aud", "iat", "nbf", "exp", "jti", "token", "sid", "cid",
            "uid", "email", "username", "scopes"
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
}
