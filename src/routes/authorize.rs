//! `POST /authorize`: a session token in, a short-lived authorization token
//! out, carrying the user's scopes at the requested audience.

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::extract;
use crate::configuration::UserAttribute;
use crate::domain::{Audience, Scope};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::User;
use crate::tokens::{self, AuthorizationClaims};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AuthorizeRequest {
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

#[tracing::instrument(
    name = "authorize",
    skip_all,
    fields(session_id = tracing::field::Empty, audience = tracing::field::Empty)
)]
pub async fn authorize(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (claims, sid) = extract::session_claims(&req, &state)?;
    tracing::Span::current().record("session_id", tracing::field::display(sid));
    let body = extract::body(&req, payload).await?;
    let request: AuthorizeRequest = if body.iter().all(u8::is_ascii_whitespace) {
        AuthorizeRequest::default()
    } else {
        extract::json(&body)?
    };

    let tokens_settings = &state.settings.tokens;
    let audience = match request.audience {
        Some(audience) => Audience::parse(&audience)?,
        None => Audience::parse(&tokens_settings.default_audience)?,
    };
    tracing::Span::current().record("audience", audience.as_str());
    if !tokens_settings
        .allowed_audiences
        .iter()
        .any(|allowed| allowed == audience.as_str())
    {
        return Err(ApiError::Forbidden(format!(
            "tokens for audience {:?} are not issued here",
            audience.as_str()
        )));
    }
    let requested = request
        .scopes
        .map(|scopes| {
            scopes
                .iter()
                .map(|s| Scope::parse(s))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;

    let context = state
        .store
        .authorization_context(sid, audience.as_str())
        .await?
        .ok_or_else(|| ApiError::InvalidToken("the session does not exist".into()))?;
    extract::ensure_live(&claims, &context.session, &context.user)?;

    let scopes = match requested {
        None => context.scopes,
        Some(mut requested) => {
            requested.sort();
            requested.dedup();
            if let Some(missing) = requested
                .iter()
                .find(|s| !context.scopes.iter().any(|held| held == s.as_str()))
            {
                return Err(ApiError::Forbidden(format!(
                    "the scope {:?} is not granted for this audience",
                    missing.as_str()
                )));
            }
            requested.into_iter().map(Scope::into_string).collect()
        }
    };

    let user = &context.user;
    let now = Utc::now();
    let lifetime = tokens_settings.authorization_lifetime;
    let expires_at = now + Duration::seconds(i64::try_from(lifetime).unwrap_or(i64::MAX / 1000));
    let claims = AuthorizationClaims {
        iss: state.issuer.clone(),
        sub: user.id.to_string(),
        aud: vec![audience.as_str().to_owned()],
        iat: now.timestamp(),
        nbf: now.timestamp(),
        exp: expires_at.timestamp(),
        jti: tokens::new_jti(),
        token: tokens::AUTHORIZATION.into(),
        sid: claims.sid,
        cid: context.session.client_id.clone(),
        uid: user.id.to_string(),
        email: user.email.clone(),
        username: user.username.clone(),
        scopes,
        extra: extra_claims(&tokens_settings.extra_claims, user),
    };
    let token = state.keys.signing().sign(&claims)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(AuthorizeResponse {
            token,
            token_type: "Bearer",
            expires_in: lifetime,
            expires_at,
        }))
}

fn extra_claims(
    configured: &BTreeMap<String, UserAttribute>,
    user: &User,
) -> BTreeMap<String, serde_json::Value> {
    configured
        .iter()
        .map(|(claim, attribute)| {
            let value = match attribute {
                UserAttribute::Username => user.username.clone().into(),
                UserAttribute::Email => user.email.clone().into(),
                UserAttribute::Id => user.id.to_string().into(),
            };
            (claim.clone(), value)
        })
        .collect()
}
