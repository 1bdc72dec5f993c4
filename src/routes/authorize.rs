//! `POST /authorize`: a session token in, a short-lived authorization token
//! out, carrying the user's scopes at the requested audience.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::extract;
use crate::domain::{Audience, Scope};
use crate::error::ApiError;
use crate::sessions::{self, AuthorizationRequest};
use crate::state::AppState;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AuthorizeBody {
    #[serde(default)]
    audience: Option<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

#[derive(Serialize)]
struct AuthorizeResponse {
    token: String,
    token_type: &'static str,
    expires_in: u64,
    expires_at: DateTime<Utc>,
}

pub async fn authorize(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (claims, sid) = extract::session_claims(&req, &state)?;
    let body = extract::body(&req, payload).await?;
    let body: AuthorizeBody = if body.iter().all(u8::is_ascii_whitespace) {
        AuthorizeBody::default()
    } else {
        extract::json(&body)?
    };
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
    };
    let authorized = sessions::authorize(&state, &claims, sid, request).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(AuthorizeResponse {
            token: authorized.token,
            token_type: "Bearer",
            expires_in: authorized.lifetime,
            expires_at: authorized.expires_at,
        }))
}
