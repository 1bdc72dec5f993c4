//! Online checks for services that do not verify tokens themselves:
//! `POST /introspect` (RFC 7662) and `GET /userinfo`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::extract;
use crate::error::ApiError;
use crate::state::AppState;
use crate::tokens::{self, AuthorizationClaims};

/// The scope a caller of `/introspect` must hold at audience `tessera`.
pub const INTROSPECT_SCOPE: &str = "tessera:introspect";

#[derive(Deserialize, utoipa::ToSchema)]
struct IntrospectRequest {
    token: String,
    #[serde(default)]
    #[expect(
        dead_code,
        reason = "RFC 7662 allows the hint; every token kind is tried anyway"
    )]
    token_type_hint: Option<String>,
}

/// `POST /introspect`, form field `token`: `{"active": true, …claims}` for a
/// token that verifies and whose session is live, else `{"active": false}`.
/// The caller authenticates with its own authorization token holding
/// `tessera:introspect`.
#[tracing::instrument(name = "introspect", skip_all, fields(caller = tracing::field::Empty))]
#[utoipa::path(
    post,
    path = "/introspect",
    tag = "tokens",
    request_body(description = "A form (RFC 7662) or JSON", content((IntrospectRequest = "application/x-www-form-urlencoded"), (IntrospectRequest = "application/json"))),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Whether the token is active, and its claims if so", body = crate::openapi::Introspection),
        (status = 400, description = "The request is malformed", body = crate::openapi::ErrorBody),
        (status = 401, description = "The caller's token is missing, invalid or its session has ended", body = crate::openapi::ErrorBody),
        (status = 403, description = "The caller's token lacks `tessera:introspect` at audience `tessera`", body = crate::openapi::ErrorBody),
        (status = 413, description = "The body is larger than 16 KiB", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database or the password hasher is busy or unreachable; see `Retry-After`", body = crate::openapi::ErrorBody),
    ),
)]
pub async fn introspect(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = extract::authorized_caller(&req, &state, INTROSPECT_SCOPE).await?;
    tracing::Span::current().record("caller", tracing::field::display(caller.user.id));
    let body = extract::body(&req, &state, payload).await?;
    let request: IntrospectRequest = extract::json_or_form(&req, &body)?;
    let answer = match introspected(&state, &request.token).await? {
        Some(mut claims) => {
            claims["active"] = json!(true);
            if let Some(scopes) = claims["scopes"].as_array() {
                let scope: Vec<&str> = scopes.iter().filter_map(Value::as_str).collect();
                claims["scope"] = json!(scope.join(" "));
            }
            if let Some(cid) = claims["cid"].as_str().filter(|c| !c.is_empty()) {
                claims["client_id"] = json!(cid);
            }
            claims["token_type"] = claims["token"].clone();
            claims
        }
        None => json!({"active": false}),
    };
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(answer))
}

/// The claims of `token` when it is active: a session or authorization token
/// of ours, unexpired, whose session is live and whose user is active.
async fn introspected(state: &AppState, token: &str) -> Result<Option<Value>, ApiError> {
    if let Ok(claims) = state
        .authorization_validation
        .verify(token, &state.keys.current(), None)
    {
        return Ok(match extract::live_authorization(state, &claims).await {
            Ok(()) => Some(serde_json::to_value(claims).map_err(anyhow::Error::from)?),
            Err(ApiError::InvalidToken(_)) => None,
            Err(other) => return Err(other),
        });
    }
    let Ok(claims) = state
        .session_validation
        .verify(token, &state.keys.current())
    else {
        return Ok(None);
    };
    let Ok(sid) = uuid::Uuid::parse_str(&claims.sid) else {
        return Ok(None);
    };
    let Some((session, user)) = state.store.find_session(sid).await? else {
        return Ok(None);
    };
    if extract::ensure_live(&claims, &session, &user).is_err() {
        return Ok(None);
    }
    let mut value = serde_json::to_value(&claims).map_err(anyhow::Error::from)?;
    value["username"] = json!(user.username);
    debug_assert_eq!(claims.token, tokens::SESSION);
    Ok(Some(value))
}

#[derive(Serialize, utoipa::ToSchema)]
struct UserInfo {
    sub: String,
    id: String,
    username: String,
    /// JupyterHub reads `name`.
    name: String,
    email: Option<String>,
    scopes: Vec<String>,
    aud: Vec<String>,
}

/// `GET /userinfo` with a Bearer authorization token of any audience: who
/// the token belongs to and what it allows.
#[utoipa::path(
    get,
    path = "/userinfo",
    tag = "tokens",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Who the authorization token belongs to and what it allows", body = UserInfo),
        (status = 401, description = "The authorization token is missing, invalid or its session has ended", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database or the password hasher is busy or unreachable; see `Retry-After`", body = crate::openapi::ErrorBody),
    ),
)]
pub async fn userinfo(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let token = extract::bearer_token(&req)?;
    let claims: AuthorizationClaims =
        state
            .authorization_validation
            .verify(token, &state.keys.current(), None)?;
    extract::live_authorization(&state, &claims).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(UserInfo {
            id: claims.sub.clone(),
            sub: claims.sub,
            name: claims.username.clone(),
            username: claims.username,
            email: claims.email,
            scopes: claims.scopes,
            aud: claims.aud,
        }))
}
