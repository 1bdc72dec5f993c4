//! `POST /session` (log in), `GET /session`, `DELETE /session` (log out).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::extract;
use crate::audit::{self, AuditEntryExt};
use crate::browser::Browser;
use crate::domain::{Password, Username};
use crate::error::ApiError;
use crate::sessions::{self, LoginAttempt};
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    password: String,
    #[serde(default)]
    client_id: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct LoginResponse {
    token: String,
    session_id: String,
    expires_at: Option<DateTime<Utc>>,
}

/// A login's `client_id`: empty, or a registered client's id (it becomes
/// the `cid` of the session's tokens, so it may not be made up).
fn registered_client_id(browser: &Browser, value: Option<String>) -> Result<String, ApiError> {
    match value.as_deref().unwrap_or_default() {
        "" => Ok(String::new()),
        id => browser
            .clients
            .get(id)
            .map(|client| client.id.clone())
            .ok_or_else(|| ApiError::InvalidRequest("client_id: not a registered client".into())),
    }
}

#[utoipa::path(
    post,
    path = "/session",
    operation_id = "log_in",
    tag = "session",
    request_body(description = "JSON or a form", content((LoginRequest = "application/json"), (LoginRequest = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "Logged in: a session token", body = LoginResponse),
        (status = 400, description = "The request is malformed", body = crate::openapi::ErrorBody),
        (status = 401, description = "Unknown user, wrong password or disabled user", body = crate::openapi::ErrorBody),
        (status = 413, description = "The body is larger than 16 KiB", body = crate::openapi::ErrorBody),
        (status = 429, description = "Too many failed logins; see `Retry-After`", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database or the password hasher is busy or unreachable, or this server cannot sign now; see `Retry-After`", body = crate::openapi::ErrorBody),
    ),
)]
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    browser: web::Data<Browser>,
) -> Result<HttpResponse, ApiError> {
    let body = extract::body(&req, &state, payload).await?;
    let login: LoginRequest = extract::json_or_form(&req, &body)?;
    let attempt = LoginAttempt {
        username: Username::parse(&login.username)?,
        password: Password::parse(login.password)?,
        client_id: registered_client_id(&browser, login.client_id)?,
        ip: extract::client_ip(&req, &state),
        user_agent: extract::user_agent(&req),
    };
    let logged_in = sessions::log_in(&state, attempt).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(LoginResponse {
            token: logged_in.token,
            session_id: logged_in.session.id.to_string(),
            expires_at: logged_in.session.expires_at,
        }))
}

#[derive(Serialize, utoipa::ToSchema)]
struct SessionInfo {
    session_id: String,
    user_id: String,
    username: String,
    email: Option<String>,
    client_id: String,
    kid: String,
    created_at: DateTime<Utc>,
    last_used_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
}

#[tracing::instrument(name = "show session", skip_all)]
#[utoipa::path(
    get,
    path = "/session",
    operation_id = "show_session",
    tag = "session",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The session behind the session token", body = SessionInfo),
        (status = 401, description = "The session token is missing, invalid, replaced, or its session has ended", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database or the password hasher is busy or unreachable; see `Retry-After`", body = crate::openapi::ErrorBody),
    ),
)]
pub async fn show(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (_, session, user) = extract::live_session(&req, &state).await?;
    Ok(HttpResponse::Ok().json(SessionInfo {
        session_id: session.id.to_string(),
        user_id: user.id.to_string(),
        username: user.username,
        email: user.email,
        client_id: session.client_id,
        kid: session.kid,
        created_at: session.created_at,
        last_used_at: session.last_used_at,
        expires_at: session.expires_at,
    }))
}

#[tracing::instrument(name = "log out", skip_all, fields(session_id = tracing::field::Empty))]
#[utoipa::path(
    delete,
    path = "/session",
    operation_id = "log_out",
    tag = "session",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out: the session is revoked"),
        (status = 401, description = "The session token is missing, invalid, replaced, or its session has ended", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database or the password hasher is busy or unreachable; see `Retry-After`", body = crate::openapi::ErrorBody),
    ),
)]
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (_, session, user) = extract::live_session(&req, &state).await?;
    let sid = session.id;
    tracing::Span::current().record("session_id", tracing::field::display(sid));
    if !state.store.revoke_session(sid, chrono::Utc::now()).await? {
        return Err(ApiError::InvalidToken("the session has ended".into()));
    }
    tracing::info!("Session revoked");
    state
        .audit
        .record(
            audit::entry("logout", "success")
                .user(&user.username, Some(user.id))
                .client(
                    extract::client_ip(&req, &state).as_deref(),
                    extract::user_agent(&req).as_deref(),
                )
                .detail(format!("session {sid}")),
        )
        .await;
    Ok(HttpResponse::NoContent().finish())
}
