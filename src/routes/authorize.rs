//! `POST /authorize`: a session token in, a short-lived authorization token
//! out, carrying the user's scopes at the requested audience.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::extract;
use crate::domain::{Audience, Scope};
use crate::error::ApiError;
use crate::sessions::AuthorizationRequest;
use crate::state::AppState;

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AuthorizeBody {
    #[serde(default)]
    audience: Option<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct AuthorizeResponse {
    token: String,
    token_type: &'static str,
    expires_in: u64,
    expires_at: DateTime<Utc>,
}

#[utoipa::path(
    post,
    path = "/authorize",
    tag = "tokens",
    request_body(content = Option<AuthorizeBody>, description = "Audience and scopes; empty for the defaults", content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A short-lived authorization token", body = AuthorizeResponse),
        (status = 400, description = "The request is malformed", body = crate::error::ErrorBody),
        (status = 401, description = "The session token is missing, invalid, replaced, or its session has ended", body = crate::error::ErrorBody),
        (status = 403, description = "The user holds none of the requested scopes at that audience", body = crate::error::ErrorBody),
        (status = 413, description = "The body is larger than 16 KiB", body = crate::error::ErrorBody),
        (status = 503, description = "The database or the password hasher is busy or unreachable, or this server cannot sign now; see `Retry-After`", body = crate::error::ErrorBody),
    ),
)]
pub async fn authorize(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let verified = extract::verified_session(&req, &state)?;
    let body = extract::body(&req, &state, payload).await?;
    let body: AuthorizeBody = extract::optional_json(&req, &body)?;
    let request = AuthorizationRequest {
        audience: body.audience.as_deref().map(Audience::parse).transpose()?,
        scopes: body
            .scopes
            .map(|scopes| {
                scopes
                    .iter()
                    .map(|s| Scope::parse(s))
                    .collect::<Result<_, _>>()
            })
            .transpose()?,
        client_id: None,
        oauth_scopes: None,
    };
    let authorized = state.sessions.authorize(&verified, request).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(AuthorizeResponse {
            token: authorized.token,
            token_type: "Bearer",
            expires_in: authorized.lifetime,
            expires_at: authorized.expires_at,
        }))
}
