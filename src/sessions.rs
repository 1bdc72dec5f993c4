//! Logging in and issuing tokens: the logic behind `POST /session` and
//! `POST /authorize`, shared by every way in (the JSON API, the hosted login
//! page) so that each gets the same checks, timing and records.
//!
//! Never log a password or a token here.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::audit::{self, AuditEntryExt};
use crate::configuration::{UserAttribute, time_delta};
use crate::domain::{Audience, Password, Scope, Username};
use crate::error::ApiError;
use crate::routes::ensure_live;
use crate::state::AppState;
use crate::store::{NewSession, Session, StoreError, User};
use crate::throttle;
use crate::tokens::{self, AuthorizationClaims, SessionClaims};

/// Credentials offered at a login, with where they came from.
pub struct LoginAttempt {
    pub username: Username,
    pub password: Password,
    pub client_id: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A new session and its token.
pub struct LoggedIn {
    pub token: String,
    pub session: Session,
    pub user: User,
}

/// Checks the credentials and creates a session. Unknown users are
/// verified against a dummy hash, so every failure costs the same time and
/// answers the same `InvalidCredentials`.
#[tracing::instrument(
    name = "log in",
    skip_all,
    fields(username = %attempt.username, session_id = tracing::field::Empty)
)]
pub async fn log_in(state: &AppState, attempt: LoginAttempt) -> Result<LoggedIn, ApiError> {
    let store = state.store.as_ref();
    let throttle_settings = &state.settings.throttle;
    let now = Utc::now();
    let username = attempt.username.as_str();
    let ip = attempt.ip.as_deref();
    let user_agent = attempt.user_agent.as_deref();
    let record = |outcome: &str, user_id| {
        audit::entry("login", outcome)
            .user(username, user_id)
            .client(ip, user_agent)
    };

    // A server that cannot sign says so before it looks at the password:
    // refusing only correct passwords would tell which ones are. It counts
    // no attempt either.
    state.keys.current().signing()?;
    // The attempt is counted before any hashing, so that concurrent
    // guesses cannot all pass a check made before the first is recorded.
    let keys = throttle::Keys::new(username, ip.unwrap_or("unknown"));
    let attempt_counted = match throttle::reserve(store, throttle_settings, &keys, now).await? {
        Ok(attempt) => attempt,
        Err(refusal) => {
            state.metrics.throttled.with_label_values(&["login"]).inc();
            return Err(match refusal {
                throttle::Refusal::Throttled { until } => {
                    // Whole seconds, rounded up.
                    let wait_ms = (until - now).num_milliseconds();
                    let retry_after = u64::try_from((wait_ms + 999) / 1000).unwrap_or(1).max(1);
                    tracing::info!(retry_after, "Login throttled");
                    state.metrics.logins.with_label_values(&["throttled"]).inc();
                    state.audit.record(record("throttled", None)).await;
                    ApiError::TooManyRequests { retry_after }
                }
                throttle::Refusal::Locked => {
                    tracing::info!("Login refused: the account is locked");
                    state.metrics.logins.with_label_values(&["locked"]).inc();
                    state.audit.record(record("locked", None)).await;
                    ApiError::AccountLocked
                }
            });
        }
    };

    let user = match store.find_user_by_name(username).await {
        Ok(user) => user,
        Err(error) => {
            throttle::release(store, &keys, attempt_counted).await?;
            return Err(error.into());
        }
    };
    let verified = match state
        .hasher
        .verify(
            attempt.password,
            user.as_ref().map(|u| u.password_hash.clone()),
        )
        .await
    {
        Ok(verified) => verified,
        Err(error) => {
            // Never checked: the attempt counts as nothing.
            throttle::release(store, &keys, attempt_counted).await?;
            if matches!(error, crate::password::HashError::Busy) {
                state
                    .metrics
                    .throttled
                    .with_label_values(&["hash_capacity"])
                    .inc();
            }
            return Err(error.into());
        }
    };
    let refusal = match &user {
        None => Some("unknown_user"),
        Some(_) if !verified.matched => Some("wrong_password"),
        Some(user) if !user.is_active => Some("disabled"),
        Some(_) => None,
    };
    let user = match (user, refusal) {
        (Some(user), None) => user,
        (user, refusal) => {
            // The reason goes to the audit log only: public outputs (the
            // answer, its timing, the metrics) are the same for every one.
            let reason = refusal.unwrap_or("unknown_user");
            tracing::info!(reason, "Login refused");
            state
                .metrics
                .logins
                .with_label_values(&["invalid_credentials"])
                .inc();
            // The attempt was counted as a failure when it was reserved.
            drop(attempt_counted);
            state.audit.record(record(reason, user.map(|u| u.id))).await;
            return Err(ApiError::InvalidCredentials);
        }
    };
    throttle::settle_success(store, &keys, attempt_counted).await?;
    if let Some(upgraded) = verified.upgraded_hash {
        // The same password under new parameters: no reason to end sessions,
        // and a password changed since it was verified stays changed.
        if store
            .upgrade_password_hash(user.id, &user.password_hash, &upgraded, chrono::Utc::now())
            .await?
        {
            tracing::info!("Password hash upgraded to the configured parameters");
        }
    }

    let keys = state.keys.current();
    let signing = keys.signing()?;
    let expires_at = state
        .settings
        .tokens
        .session_lifetime
        .map(|lifetime| now + time_delta(lifetime));
    // Sign first and store last: a login that fails half-way leaves no
    // session behind, and a stored session always had its token handed out.
    let session_id = uuid::Uuid::new_v4();
    // Only the current token of a session is accepted (see
    // `POST /session/refresh`): the session records this one's id.
    let token_id = tokens::new_jti();
    tracing::Span::current().record("session_id", tracing::field::display(session_id));
    let claims = SessionClaims {
        iss: state.issuer.clone(),
        sub: user.id.to_string(),
        aud: state.session_audience.clone(),
        iat: now.timestamp(),
        exp: expires_at.map(|at| at.timestamp()),
        jti: token_id.clone(),
        token: tokens::SESSION.into(),
        sid: session_id.to_string(),
        cid: attempt.client_id.clone(),
        uid: user.id.to_string(),
        email: user.email.clone(),
    };
    let token = signing.sign(&claims)?;
    let session = state
        .store
        .create_session(
            NewSession {
                id: session_id,
                user_id: user.id,
                client_id: &attempt.client_id,
                ip: attempt.ip.as_deref(),
                user_agent: attempt.user_agent.as_deref(),
                kid: signing.kid(),
                expires_at,
                token_id: &token_id,
            },
            chrono::Utc::now(),
        )
        .await
        .map_err(deleted_meanwhile)?;
    tracing::info!("Session created");
    state.metrics.logins.with_label_values(&["success"]).inc();
    state
        .metrics
        .tokens_issued
        .with_label_values(&["session"])
        .inc();
    state
        .audit
        .record(record("success", Some(user.id)).detail(format!("session {}", session.id)))
        .await;
    Ok(LoggedIn {
        token,
        session,
        user,
    })
}

/// A user deleted while logging in: the login fails as for an unknown user,
/// telling nothing more.
fn deleted_meanwhile(error: StoreError) -> ApiError {
    match error {
        StoreError::UserNotFound => ApiError::InvalidCredentials,
        other => other.into(),
    }
}

/// What an authorization is asked for: an audience (the default when
/// absent) and optionally a subset of the user's scopes there.
#[derive(Default)]
pub struct AuthorizationRequest {
    pub audience: Option<Audience>,
    pub scopes: Option<Vec<Scope>>,
    /// The registered client the token is issued for (its `cid`); the
    /// session's own client when absent.
    pub client_id: Option<String>,
}

/// An issued authorization token.
pub struct Authorized {
    pub token: String,
    pub lifetime: u64,
    pub expires_at: DateTime<Utc>,
}

/// Issues an authorization token for the session of the verified
/// `session_claims`: 403 for an audience that is not allowed or a scope the
/// user does not hold there; 401 when the session is not live.
#[tracing::instrument(name = "authorize", skip_all, fields(session_id = %session_claims.sid))]
pub async fn authorize(
    state: &AppState,
    session_claims: &SessionClaims,
    sid: uuid::Uuid,
    request: AuthorizationRequest,
) -> Result<Authorized, ApiError> {
    let tokens_settings = &state.settings.tokens;
    let audience = match request.audience {
        Some(audience) => audience,
        None => Audience::parse(&tokens_settings.default_audience)?,
    };
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

    let context = state
        .store
        .authorization_context(sid, audience.as_str(), chrono::Utc::now())
        .await?
        .ok_or_else(|| ApiError::InvalidToken("the session does not exist".into()))?;
    ensure_live(session_claims, &context.session, &context.user)?;

    let scopes = match request.scopes {
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
    let lifetime = tokens_settings.authorization_lifetime.as_secs();
    let expires_at = now + time_delta(tokens_settings.authorization_lifetime);
    let claims = AuthorizationClaims {
        iss: state.issuer.clone(),
        sub: user.id.to_string(),
        aud: vec![audience.as_str().to_owned()],
        iat: now.timestamp(),
        nbf: now.timestamp(),
        exp: expires_at.timestamp(),
        jti: tokens::new_jti(),
        token: tokens::AUTHORIZATION.into(),
        sid: session_claims.sid.clone(),
        cid: request
            .client_id
            .unwrap_or_else(|| context.session.client_id.clone()),
        uid: user.id.to_string(),
        email: user.email.clone(),
        username: user.username.clone(),
        scopes,
        extra: extra_claims(&tokens_settings.extra_claims, user),
    };
    let token = state.keys.current().signing()?.sign(&claims)?;
    state
        .metrics
        .tokens_issued
        .with_label_values(&["auth"])
        .inc();
    state
        .audit
        .record(
            audit::entry("authorize", "success")
                .user(&user.username, Some(user.id))
                .detail(format!(
                    "audience {} scopes [{}] session {}",
                    audience.as_str(),
                    claims.scopes.join(" "),
                    claims.sid
                )),
        )
        .await;
    Ok(Authorized {
        token,
        lifetime,
        expires_at,
    })
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
