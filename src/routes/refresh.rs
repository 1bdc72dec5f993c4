//! `POST /session/refresh`: a new session token for the same session,
//! signed with the active key. The presented token stops working, and the
//! session no longer depends on the key that signed it, so that key can be
//! pruned once retired.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::extract;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
struct RefreshResponse {
    token: String,
    session_id: String,
    expires_at: Option<DateTime<Utc>>,
}

#[utoipa::path(
    post,
    path = "/session/refresh",
    operation_id = "refresh_session",
    tag = "session",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A new session token for the same session; the presented one stops working", body = RefreshResponse),
        (status = 401, description = "The session token is missing, invalid, replaced, or its session has ended", body = crate::error::ErrorBody),
        (status = 503, description = "The database or the password hasher is busy or unreachable, or this server cannot sign now; see `Retry-After`", body = crate::error::ErrorBody),
    ),
)]
pub async fn refresh(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let live = extract::live_session(&req, &state).await?;
    let refreshed = state
        .sessions
        .refresh(&live, &extract::origin(&req, &state))
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(RefreshResponse {
            token: refreshed.token,
            session_id: refreshed.session.id.to_string(),
            expires_at: refreshed.session.expires_at,
        }))
}
