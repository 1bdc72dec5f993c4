//! `POST /session` (log in), `GET /session`, `DELETE /session` (log out).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::extract;
use crate::domain::{Password, Username};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::NewSession;
use crate::tokens::{self, SessionClaims};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    password: String,
    #[serde(default)]
    client_id: Option<String>,
}

#[derive(Serialize)]
struct LoginResponse {
    token: String,
    session_id: String,
    expires_at: Option<DateTime<Utc>>,
}

fn parse_client_id(value: Option<String>) -> Result<String, ApiError> {
    let value = value.unwrap_or_default();
    if value.len() > 200 || value.chars().any(char::is_control) {
        return Err(ApiError::InvalidRequest(
            "client_id: must be at most 200 printable bytes".into(),
        ));
    }
    Ok(value)
}

#[tracing::instrument(
    name = "log in",
    skip_all,
    fields(username = tracing::field::Empty, session_id = tracing::field::Empty)
)]
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = extract::body(&req, payload).await?;
    let login: LoginRequest = extract::json_or_form(&req, &body)?;
    let username = Username::parse(&login.username)?;
    tracing::Span::current().record("username", tracing::field::display(&username));
    let password = Password::parse(login.password)?;
    let client_id = parse_client_id(login.client_id)?;

    let user = state.store.find_user_by_name(username.as_str()).await?;
    // Unknown users are verified against a dummy hash, so every failure
    // costs the same time and answers the same.
    let matched = state
        .hasher
        .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
        .await?;
    let user = match user {
        Some(user) if matched && user.is_active => user,
        _ => {
            tracing::info!("Login refused");
            return Err(ApiError::InvalidCredentials);
        }
    };

    let keys = &state.keys;
    let signing = keys.signing();
    let now = Utc::now();
    let expires_at = state
        .settings
        .tokens
        .session_lifetime
        .map(|secs| now + Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1000)));
    let ip = req.peer_addr().map(|a| a.ip().to_string());
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|v| &v[..v.len().min(512)]);
    let session = state
        .store
        .create_session(NewSession {
            user_id: user.id,
            client_id: &client_id,
            ip: ip.as_deref(),
            user_agent,
            kid: signing.kid(),
            expires_at,
        })
        .await?;
    tracing::Span::current().record("session_id", tracing::field::display(session.id));

    let claims = SessionClaims {
        iss: state.issuer.clone(),
        sub: user.id.to_string(),
        aud: state.session_audience.clone(),
        iat: now.timestamp(),
        exp: expires_at.map(|at| at.timestamp()),
        jti: tokens::new_jti(),
        token: tokens::SESSION.into(),
        sid: session.id.to_string(),
        cid: client_id,
        uid: user.id.to_string(),
        email: user.email.clone(),
    };
    let token = signing.sign(&claims)?;
    tracing::info!("Session created");
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(LoginResponse {
            token,
            session_id: session.id.to_string(),
            expires_at,
        }))
}

#[derive(Serialize)]
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
pub async fn show(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (claims, sid) = extract::session_claims(&req, &state)?;
    let (session, user) = state
        .store
        .find_session(sid)
        .await?
        .ok_or_else(|| ApiError::InvalidToken("the session does not exist".into()))?;
    extract::ensure_live(&claims, &session, &user)?;
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
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (claims, sid) = extract::session_claims(&req, &state)?;
    tracing::Span::current().record("session_id", tracing::field::display(sid));
    let (session, user) = state
        .store
        .find_session(sid)
        .await?
        .ok_or_else(|| ApiError::InvalidToken("the session does not exist".into()))?;
    extract::ensure_live(&claims, &session, &user)?;
    if !state.store.revoke_session(sid).await? {
        return Err(ApiError::InvalidToken("the session has ended".into()));
    }
    tracing::info!("Session revoked");
    Ok(HttpResponse::NoContent().finish())
}
