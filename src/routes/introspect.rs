//! Online checks for services that do not verify tokens themselves:
//! `POST /introspect` (RFC 7662) and `GET /userinfo`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::extract;
use crate::error::ApiError;
use crate::sessions::SessionError;
use crate::state::AppState;
use crate::tokens;

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
        (status = 200, description = "Whether the token is active, and its claims if so", body = shapes::Introspection),
        (status = 400, description = "The request is malformed", body = crate::error::ErrorBody),
        (status = 401, description = "The caller's token is missing, invalid or its session has ended", body = crate::error::ErrorBody),
        (status = 403, description = "The caller's token lacks `tessera:introspect` at audience `tessera`", body = crate::error::ErrorBody),
        (status = 413, description = "The body is larger than 16 KiB", body = crate::error::ErrorBody),
        (status = 503, description = "The database or the password hasher is busy or unreachable; see `Retry-After`", body = crate::error::ErrorBody),
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
    let sessions = &state.sessions;
    // An OAuth refresh token is opaque: no JWT has no dot.
    if !token.contains('.') {
        return state
            .provider
            .introspect_refresh(sessions, token)
            .await
            .or_else(|error| match error {
                crate::oauth::error::OAuthError::Session(error) => Err(ApiError::from(error)),
                // Its client's audience no longer allowed, say: inactive.
                _ => Ok(None),
            });
    }
    match sessions.check_authorization(token, None).await {
        Ok(claims) => {
            return Ok(Some(
                serde_json::to_value(claims).map_err(anyhow::Error::from)?,
            ));
        }
        // A token of ours whose session is not live is inactive, unless it
        // is a client's own (client credentials), which names no session:
        // active while its client is.
        Err(SessionError::NotLive(_)) => return client_token(state, token).await,
        // Not an authorization token: perhaps a session token.
        Err(SessionError::Token(_)) => {}
        Err(other) => return Err(other.into()),
    }
    let live = match sessions.check(token).await {
        Ok(live) => live,
        Err(error) if error.is_not_live() => return Ok(None),
        Err(other) => return Err(other.into()),
    };
    let mut value = serde_json::to_value(&live.claims).map_err(anyhow::Error::from)?;
    value["username"] = json!(live.user.username);
    debug_assert_eq!(live.claims.token, tokens::SESSION);
    Ok(Some(value))
}

/// The claims of a client-credentials token whose client is registered and
/// active.
async fn client_token(state: &AppState, token: &str) -> Result<Option<Value>, ApiError> {
    let Ok(claims) = state.sessions.verify_authorization(token, None) else {
        return Ok(None);
    };
    let Some(client_id) = claims.client_id.as_deref() else {
        return Ok(None);
    };
    if !claims.sid.is_empty() || claims.sub != client_id {
        return Ok(None);
    }
    let active = state
        .provider
        .client(client_id)
        .await
        .map_err(|error| match error {
            crate::oauth::error::OAuthError::Session(error) => ApiError::from(error),
            other => ApiError::Unexpected(anyhow::anyhow!("{other}")),
        })?
        .is_some();
    Ok(active
        .then(|| serde_json::to_value(claims))
        .transpose()
        .map_err(anyhow::Error::from)?)
}

#[derive(Serialize, utoipa::ToSchema)]
struct UserInfo {
    sub: String,
    id: String,
    username: String,
    /// OpenID Connect Core §5.1; JupyterHub and Hue read it.
    preferred_username: String,
    /// JupyterHub reads `name`.
    name: String,
    email: Option<String>,
    /// Present with `email`: an address the operator set.
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
    /// The token's scopes.
    scopes: Vec<String>,
    /// The user's scopes at the token's audience now, for group mapping
    /// (oauthenticator's `allowed_groups`, Django's groups).
    groups: Vec<String>,
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
        (status = 401, description = "The authorization token is missing, invalid or its session has ended", body = crate::error::ErrorBody),
        (status = 503, description = "The database or the password hasher is busy or unreachable; see `Retry-After`", body = crate::error::ErrorBody),
    ),
)]
pub async fn userinfo(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    user_info(&req, &state).await
}

/// `POST /userinfo`: the same (OpenID Connect Core §5.3.1).
#[utoipa::path(
    post,
    path = "/userinfo",
    tag = "tokens",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Who the authorization token belongs to and what it allows", body = UserInfo),
        (status = 401, description = "The authorization token is missing, invalid or its session has ended", body = crate::error::ErrorBody),
        (status = 503, description = "The database is busy or unreachable; see `Retry-After`", body = crate::error::ErrorBody),
    ),
)]
pub async fn userinfo_post(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    user_info(&req, &state).await
}

async fn user_info(req: &HttpRequest, state: &AppState) -> Result<HttpResponse, ApiError> {
    let token = extract::bearer_token(req)?;
    let (claims, context) = state.sessions.check_authorization_context(token).await?;
    let user = context.user;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(UserInfo {
            id: claims.sub.clone(),
            sub: claims.sub,
            name: user.username.clone(),
            preferred_username: user.username.clone(),
            username: user.username,
            email_verified: user.email.as_ref().map(|_| true),
            email: user.email,
            scopes: claims.scopes,
            groups: context.scopes,
            aud: claims.aud,
        }))
}

/// The shapes of bodies built with `serde_json::json!` or serialized from
/// elsewhere, for the OpenAPI document; only described, never built.
mod shapes {
    #![expect(
        dead_code,
        reason = "these types only describe bodies; nothing builds them"
    )]

    use utoipa::ToSchema;

    /// `POST /introspect` (RFC 7662): `{"active": false}`, or `active: true`
    /// with the token's claims (`sub`, `aud`, `exp`, `scopes`, …) beside it.
    #[derive(ToSchema)]
    pub(crate) struct Introspection {
        active: bool,
        /// The scopes, space-separated (authorization tokens).
        scope: Option<String>,
        client_id: Option<String>,
        /// `session` or `authorization`.
        token_type: Option<String>,
    }
}
