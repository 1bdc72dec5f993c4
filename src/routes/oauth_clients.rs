//! `/admin/clients`: registering and changing OAuth 2.0 / OpenID Connect
//! clients, for administrators (`tessera:admin` at audience `tessera`). A
//! confidential client's secret is in the answer that makes it, once; no
//! answer ever shows a stored secret or its hash.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::admin::ADMIN_SCOPE;
use super::extract;
use crate::error::ApiError;
use crate::oauth::clients::{ClientSpec, OAuthClients};
use crate::state::AppState;
use crate::store::OAuthClient;

/// The client service on behalf of the administrator behind the request.
async fn clients<'a>(req: &HttpRequest, state: &'a AppState) -> Result<OAuthClients<'a>, ApiError> {
    let caller = extract::authorized_caller(req, state, ADMIN_SCOPE).await?;
    Ok(OAuthClients::new(
        state.store.as_ref(),
        &state.settings.tokens.allowed_audiences,
        state.sessions.clock(),
        caller.user.username,
    )
    .with_cache(state.provider.client_cache()))
}

/// A grant: a scope at an audience.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    audience: String,
    scope: String,
}

/// A registered client, without its secret.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ClientView {
    client_id: String,
    /// `confidential` (authenticates with a secret) or `public` (PKCE).
    client_type: &'static str,
    redirect_uris: Vec<String>,
    post_logout_redirect_uris: Vec<String>,
    audience: String,
    scopes: Vec<String>,
    grant_types: Vec<String>,
    /// The grant a user must hold to use the client.
    required_grant: Option<GrantBody>,
    is_active: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<OAuthClient> for ClientView {
    fn from(client: OAuthClient) -> Self {
        Self {
            client_type: if client.secret_hash.is_some() {
                "confidential"
            } else {
                "public"
            },
            client_id: client.id,
            redirect_uris: client.redirect_uris,
            post_logout_redirect_uris: client.post_logout_redirect_uris,
            audience: client.audience,
            scopes: client.scopes,
            grant_types: client.grant_types,
            required_grant: client
                .required_grant
                .map(|(audience, scope)| GrantBody { audience, scope }),
            is_active: client.is_active,
            created_at: client.created_at,
            updated_at: client.updated_at,
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewClientBody {
    client_id: String,
    /// No secret: a browser or native app, which must use PKCE.
    #[serde(default)]
    public: bool,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    audience: String,
    #[serde(default)]
    scopes: Vec<String>,
    /// Default: `authorization_code` and `refresh_token`.
    #[serde(default)]
    grant_types: Vec<String>,
    #[serde(default)]
    required_grant: Option<GrantBody>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct NewClientAnswer {
    client: ClientView,
    /// The secret of a confidential client: shown only here.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct SecretAnswer {
    /// The new secret: shown only here. The old one no longer works.
    client_secret: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ClientList {
    clients: Vec<ClientView>,
}

#[utoipa::path(
    get,
    path = "/admin/clients",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every registered client, by id", body = ClientList),
        (status = 401, description = "The bearer token is missing, invalid, expired or its session has ended", body = crate::error::ErrorBody),
        (status = 403, description = "The token lacks `tessera:admin` at audience `tessera`", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unreachable; see `Retry-After`", body = crate::error::ErrorBody),
    ),
)]
pub async fn list_clients(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let clients = clients(&req, &state).await?.list().await?;
    Ok(HttpResponse::Ok().json(ClientList {
        clients: clients.into_iter().map(ClientView::from).collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/admin/clients",
    tag = "admin",
    request_body(content = NewClientBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Registered; a confidential client's secret is in this answer only", body = NewClientAnswer),
        (status = 400, description = "The request is malformed, or the client is not valid (its id, redirect URIs, audience, scopes or grant types)", body = crate::error::ErrorBody),
        (status = 401, description = "The bearer token is missing, invalid, expired or its session has ended", body = crate::error::ErrorBody),
        (status = 403, description = "The token lacks `tessera:admin` at audience `tessera`", body = crate::error::ErrorBody),
        (status = 409, description = "A client has that id", body = crate::error::ErrorBody),
        (status = 413, description = "The body is larger than 16 KiB", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unreachable; see `Retry-After`", body = crate::error::ErrorBody),
    ),
)]
pub async fn create_client(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let clients = clients(&req, &state).await?;
    let body = extract::body(&req, &state, payload).await?;
    let body: NewClientBody = extract::json(&req, &body)?;
    let registered = clients
        .register(ClientSpec {
            id: body.client_id,
            public: body.public,
            redirect_uris: body.redirect_uris,
            post_logout_redirect_uris: body.post_logout_redirect_uris,
            audience: body.audience,
            scopes: body.scopes,
            grant_types: body.grant_types,
            required_grant: body.required_grant.map(|g| (g.audience, g.scope)),
        })
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(("cache-control", "no-store"))
        .json(NewClientAnswer {
            client: registered.client.into(),
            client_secret: registered
                .secret
                .map(|s| secrecy::ExposeSecret::expose_secret(&s).to_owned()),
        }))
}

#[utoipa::path(
    get,
    path = "/admin/clients/{client_id}",
    tag = "admin",
    params(("client_id" = String, Path, description = "A client id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The client", body = ClientView),
        (status = 401, description = "The bearer token is missing, invalid, expired or its session has ended", body = crate::error::ErrorBody),
        (status = 403, description = "The token lacks `tessera:admin` at audience `tessera`", body = crate::error::ErrorBody),
        (status = 404, description = "No such client", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unreachable; see `Retry-After`", body = crate::error::ErrorBody),
    ),
)]
pub async fn show_client(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let client = clients(&req, &state).await?.find(&path).await?;
    Ok(HttpResponse::Ok().json(ClientView::from(client)))
}

#[utoipa::path(
    delete,
    path = "/admin/clients/{client_id}",
    tag = "admin",
    params(("client_id" = String, Path, description = "A client id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "The bearer token is missing, invalid, expired or its session has ended", body = crate::error::ErrorBody),
        (status = 403, description = "The token lacks `tessera:admin` at audience `tessera`", body = crate::error::ErrorBody),
        (status = 404, description = "No such client", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unreachable; see `Retry-After`", body = crate::error::ErrorBody),
    ),
)]
pub async fn delete_client(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    clients(&req, &state).await?.delete(&path).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    post,
    path = "/admin/clients/{client_id}/secret",
    tag = "admin",
    params(("client_id" = String, Path, description = "A client id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A new secret, in this answer only; the old one no longer works", body = SecretAnswer),
        (status = 401, description = "The bearer token is missing, invalid, expired or its session has ended", body = crate::error::ErrorBody),
        (status = 403, description = "The token lacks `tessera:admin` at audience `tessera`", body = crate::error::ErrorBody),
        (status = 404, description = "No such client", body = crate::error::ErrorBody),
        (status = 409, description = "The client is public: it has no secret", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unreachable; see `Retry-After`", body = crate::error::ErrorBody),
    ),
)]
pub async fn rotate_client_secret(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let secret = clients(&req, &state).await?.rotate_secret(&path).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(SecretAnswer {
            client_secret: secrecy::ExposeSecret::expose_secret(&secret).to_owned(),
        }))
}

#[utoipa::path(
    post,
    path = "/admin/clients/{client_id}/disable",
    tag = "admin",
    params(("client_id" = String, Path, description = "A client id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The client's requests are refused until it is enabled"),
        (status = 401, description = "The bearer token is missing, invalid, expired or its session has ended", body = crate::error::ErrorBody),
        (status = 403, description = "The token lacks `tessera:admin` at audience `tessera`", body = crate::error::ErrorBody),
        (status = 404, description = "No such client", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unreachable; see `Retry-After`", body = crate::error::ErrorBody),
    ),
)]
pub async fn disable_client(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    clients(&req, &state)
        .await?
        .set_active(&path, false)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    post,
    path = "/admin/clients/{client_id}/enable",
    tag = "admin",
    params(("client_id" = String, Path, description = "A client id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The client's requests are accepted again"),
        (status = 401, description = "The bearer token is missing, invalid, expired or its session has ended", body = crate::error::ErrorBody),
        (status = 403, description = "The token lacks `tessera:admin` at audience `tessera`", body = crate::error::ErrorBody),
        (status = 404, description = "No such client", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unreachable; see `Retry-After`", body = crate::error::ErrorBody),
    ),
)]
pub async fn enable_client(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    clients(&req, &state).await?.set_active(&path, true).await?;
    Ok(HttpResponse::NoContent().finish())
}
