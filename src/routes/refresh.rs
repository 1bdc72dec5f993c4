//! `POST /session/refresh`: a new session token for the same session,
//! signed with the active key. The presented token stops working, and the
//! session no longer depends on the key that signed it, so that key can be
//! pruned once retired.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::extract;
use crate::audit::{self, AuditEntryExt};
use crate::error::ApiError;
use crate::state::AppState;
use crate::tokens::{self, SessionClaims};

#[derive(Serialize, utoipa::ToSchema)]
struct RefreshResponse {
    token: String,
    session_id: String,
    expires_at: Option<DateTime<Utc>>,
}

#[tracing::instrument(
    name = "refresh session",
    skip_all,
    fields(session_id = tracing::field::Empty, kid = tracing::field::Empty)
)]
#[utoipa::path(
    post,
    path = "/session/refresh",
    operation_id = "refresh_session",
    tag = "session",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A new session token for the same session; the presented one stops working", body = RefreshResponse),
        (status = 401, description = "The session token is missing, invalid, replaced, or its session has ended", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database or the password hasher is busy or unreachable, or this server cannot sign now; see `Retry-After`", body = crate::openapi::ErrorBody),
    ),
)]
pub async fn refresh(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (presented, session, user) = extract::live_session(&req, &state).await?;
    let sid = session.id;
    tracing::Span::current().record("session_id", tracing::field::display(sid));

    let keys = state.keys.current();
    let signing = keys.signing()?;
    tracing::Span::current().record("kid", signing.kid());
    let token_id = tokens::new_jti();
    let claims = SessionClaims {
        iss: state.issuer.clone(),
        sub: user.id.to_string(),
        aud: state.session_audience.clone(),
        iat: Utc::now().timestamp(),
        exp: session.expires_at.map(|at| at.timestamp()),
        jti: token_id.clone(),
        token: tokens::SESSION.into(),
        sid: session.id.to_string(),
        cid: session.client_id.clone(),
        uid: user.id.to_string(),
        email: user.email.clone(),
    };
    // Signed before it is recorded: a failure leaves the old token working.
    let token = signing.sign(&claims)?;
    let replaced = state
        .store
        .replace_session_token(
            sid,
            &presented.jti,
            &token_id,
            signing.kid(),
            chrono::Utc::now(),
        )
        .await?;
    if !replaced {
        // Another refresh with the same token won, or the session just ended.
        return Err(ApiError::InvalidToken(
            "the session token has been replaced by a newer one".into(),
        ));
    }
    tracing::info!("Session token refreshed");
    state
        .audit
        .record(
            audit::entry("refresh", "success")
                .user(&user.username, Some(user.id))
                .client(
                    extract::client_ip(&req, &state).as_deref(),
                    extract::user_agent(&req).as_deref(),
                )
                .detail(format!("session {sid} key {}", signing.kid())),
        )
        .await;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(RefreshResponse {
            token,
            session_id: session.id.to_string(),
            expires_at: session.expires_at,
        }))
}
