//! The session service: logging in, issuing tokens, refreshing and logging
//! out, and checking that a session is live. Every way in (the JSON API,
//! the hosted login page, the admin API's authentication) calls these
//! operations and nothing below them, so that each gets the same checks,
//! timing, metrics and audit records.
//!
//! [`Sessions`] is built once at start-up and owns what the operations need:
//! the store, the keys, the password hasher, the audit log, the clock and
//! the [`Policy`] read from the settings. It answers its own
//! [`SessionError`], never an HTTP type.
//!
//! Never log a password or a token here.

mod error;
mod policy;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use error::SessionError;
pub use policy::Policy;

use crate::audit::{self, AuditEntryExt, AuditLog};
use crate::clock::Clock;
use crate::configuration::UserAttribute;
use crate::domain::{Audience, Password, Scope, Username};
use crate::keys::KeyStore;
use crate::metrics::Metrics;
use crate::password::{HashError, PasswordHasherPool};
use crate::store::{AuthorizationContext, NewSession, Session, Store, StoreError, User};
use crate::throttle;
use crate::tokens::{
    self, AuthorizationClaims, AuthorizationValidation, SessionClaims, SessionValidation,
};

/// The audience of Tessera's own API (introspection, administration).
pub const TESSERA_AUDIENCE: &str = "tessera";

/// Where a request came from, for the throttle and the audit log.
#[derive(Debug, Default, Clone)]
pub struct Origin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Credentials offered at a login, with where they came from.
pub struct LoginAttempt {
    pub username: Username,
    pub password: Password,
    /// The registered client the session is for (its `cid`); empty for none.
    pub client_id: String,
    pub origin: Origin,
}

/// A session token that verified, with the session it names; nothing read
/// from the store yet.
pub struct VerifiedSession {
    pub claims: SessionClaims,
    pub sid: Uuid,
}

/// A live session: its token's claims, and the session and user as the
/// store has them now.
pub struct LiveSession {
    pub claims: SessionClaims,
    pub session: Session,
    pub user: User,
}

/// A new session and its token: what the next step needs, so that a login
/// page hands over without verifying the token or reading the store again.
pub struct LoggedIn {
    pub token: String,
    pub live: LiveSession,
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
    /// For the token endpoint: the OpenID Connect scopes granted besides
    /// the audience's. The token then names its client in `client_id` and
    /// all its scopes in `scope` (RFC 9068 §2.2).
    pub oauth_scopes: Option<Vec<String>>,
}

/// An issued authorization token.
pub struct Authorized {
    pub token: String,
    /// For the token endpoint: every scope it carries, space-separated
    /// (the OpenID Connect scopes asked for, then the audience's).
    pub scope: Option<String>,
    /// Its lifetime in seconds.
    pub lifetime: u64,
    pub expires_at: DateTime<Utc>,
}

/// A session's new token.
pub struct Refreshed {
    pub token: String,
    pub session: Session,
}

/// A caller of Tessera's own API, as the store has it now.
pub struct Caller {
    pub session: Session,
    pub user: User,
}

pub struct Sessions {
    store: Arc<dyn Store>,
    keys: KeyStore,
    hasher: PasswordHasherPool,
    audit: AuditLog,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    policy: Policy,
    session_validation: SessionValidation,
    authorization_validation: AuthorizationValidation,
}

/// What [`Sessions`] is built from.
pub struct Parts {
    pub store: Arc<dyn Store>,
    pub keys: KeyStore,
    pub hasher: PasswordHasherPool,
    pub audit: AuditLog,
    pub clock: Arc<dyn Clock>,
    pub metrics: Metrics,
    pub policy: Policy,
}

impl Sessions {
    pub fn new(parts: Parts) -> Self {
        let Parts {
            store,
            keys,
            hasher,
            audit,
            clock,
            metrics,
            policy,
        } = parts;
        let leeway = policy.leeway;
        Self {
            session_validation: SessionValidation::new(
                &policy.issuer,
                &policy.session_audience,
                leeway,
            ),
            authorization_validation: AuthorizationValidation::new(&policy.issuer, leeway),
            store,
            keys,
            hasher,
            audit,
            clock,
            metrics,
            policy,
        }
    }

    /// The time by the service's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The oldest moment a revocation can still matter at: every
    /// authorization token issued before it has expired, leeway included.
    pub fn revocation_horizon(&self) -> DateTime<Utc> {
        self.now() - (self.policy.authorization_lifetime + self.policy.leeway)
    }

    /// Checks the credentials and creates a session. Unknown users are
    /// verified against a dummy hash, so every failure costs the same time
    /// and answers the same `InvalidCredentials`.
    #[tracing::instrument(
        name = "log in",
        skip_all,
        fields(username = %attempt.username, session_id = tracing::field::Empty)
    )]
    pub async fn log_in(&self, attempt: LoginAttempt) -> Result<LoggedIn, SessionError> {
        let store = self.store.as_ref();
        let now = self.now();
        let username = attempt.username.as_str();
        let origin = &attempt.origin;
        let record = |outcome: &str, user_id| {
            audit::entry("login", outcome, now)
                .user(username, user_id)
                .client(origin.ip.as_deref(), origin.user_agent.as_deref())
        };

        // A server that cannot sign says so before it looks at the password:
        // refusing only correct passwords would tell which ones are. It
        // counts no attempt either.
        self.keys.current().signing()?;
        // The attempt is counted before any hashing, so that concurrent
        // guesses cannot all pass a check made before the first is recorded.
        let keys = throttle::Keys::new(username, origin.ip.as_deref().unwrap_or("unknown"));
        let attempt_counted = match throttle::reserve(store, &self.policy.throttle, &keys, now)
            .await?
        {
            Ok(attempt) => attempt,
            Err(refusal) => {
                self.metrics.throttled.with_label_values(&["login"]).inc();
                return Err(match refusal {
                    throttle::Refusal::Throttled { until } => {
                        // Whole seconds, rounded up.
                        let wait_ms = (until - now).num_milliseconds();
                        let retry_after = u64::try_from((wait_ms + 999) / 1000).unwrap_or(1).max(1);
                        tracing::info!(retry_after, "Login throttled");
                        self.metrics.logins.with_label_values(&["throttled"]).inc();
                        self.audit.record(record("throttled", None)).await;
                        SessionError::Throttled { retry_after }
                    }
                    throttle::Refusal::Locked => {
                        tracing::info!("Login refused: the account is locked");
                        self.metrics.logins.with_label_values(&["locked"]).inc();
                        self.audit.record(record("locked", None)).await;
                        SessionError::Locked
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
        let verified = match self
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
                if matches!(error, HashError::Busy) {
                    self.metrics
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
                self.metrics
                    .logins
                    .with_label_values(&["invalid_credentials"])
                    .inc();
                // The attempt was counted as a failure when it was reserved.
                drop(attempt_counted);
                self.audit.record(record(reason, user.map(|u| u.id))).await;
                return Err(SessionError::InvalidCredentials);
            }
        };
        throttle::settle_success(store, &keys, attempt_counted).await?;
        if let Some(upgraded) = verified.upgraded_hash {
            // The same password under new parameters: no reason to end
            // sessions, and a password changed since it was verified stays
            // changed.
            if store
                .upgrade_password_hash(user.id, &user.password_hash, &upgraded, now)
                .await?
            {
                tracing::info!("Password hash upgraded to the configured parameters");
            }
        }

        let keys = self.keys.current();
        let signing = keys.signing()?;
        let expires_at = self.policy.session_lifetime.map(|lifetime| now + lifetime);
        // Sign first and store last: a login that fails half-way leaves no
        // session behind, and a stored session always had its token handed
        // out.
        let session_id = Uuid::new_v4();
        // Only the current token of a session is accepted (see `refresh`):
        // the session records this one's id.
        let token_id = tokens::new_jti();
        tracing::Span::current().record("session_id", tracing::field::display(session_id));
        let claims = self.session_claims(
            &user,
            session_id,
            &attempt.client_id,
            now,
            expires_at,
            token_id.clone(),
        );
        let token = signing.sign(&claims)?;
        let session = store
            .create_session(
                NewSession {
                    id: session_id,
                    user_id: user.id,
                    client_id: &attempt.client_id,
                    ip: origin.ip.as_deref(),
                    user_agent: origin.user_agent.as_deref(),
                    kid: signing.kid(),
                    expires_at,
                    token_id: &token_id,
                },
                now,
            )
            .await
            .map_err(|error| match error {
                // A user deleted while logging in: the login fails as for
                // an unknown user, telling nothing more.
                StoreError::UserNotFound => SessionError::InvalidCredentials,
                other => other.into(),
            })?;
        tracing::info!("Session created");
        self.metrics.logins.with_label_values(&["success"]).inc();
        self.metrics
            .tokens_issued
            .with_label_values(&["session"])
            .inc();
        self.audit
            .record(record("success", Some(user.id)).detail(format!("session {}", session.id)))
            .await;
        Ok(LoggedIn {
            token,
            live: LiveSession {
                claims,
                session,
                user,
            },
        })
    }

    fn session_claims(
        &self,
        user: &User,
        session_id: Uuid,
        client_id: &str,
        now: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
        token_id: String,
    ) -> SessionClaims {
        SessionClaims {
            iss: self.policy.issuer.clone(),
            sub: user.id.to_string(),
            aud: self.policy.session_audience.clone(),
            iat: now.timestamp(),
            exp: expires_at.map(|at| at.timestamp()),
            jti: token_id,
            token: tokens::SESSION.into(),
            sid: session_id.to_string(),
            cid: client_id.to_owned(),
            uid: user.id.to_string(),
            email: user.email.clone(),
        }
    }

    /// Verifies a session token's signature and claims; the session itself
    /// is not read.
    pub fn verify(&self, token: &str) -> Result<VerifiedSession, SessionError> {
        let claims = self
            .session_validation
            .verify(token, &self.keys.current(), self.now())?;
        let sid = Uuid::parse_str(&claims.sid)
            .map_err(|_| SessionError::NotLive("the token names no valid session"))?;
        Ok(VerifiedSession { claims, sid })
    }

    /// The live session of a session token: refused when the token does not
    /// verify, or its session is unknown, ended, of a disabled user, or no
    /// longer this token's.
    pub async fn check(&self, token: &str) -> Result<LiveSession, SessionError> {
        let VerifiedSession { claims, sid } = self.verify(token)?;
        let (session, user) = self
            .store
            .find_session(sid)
            .await?
            .ok_or(SessionError::NotLive("the session does not exist"))?;
        self.ensure_live(&claims, &session, &user)?;
        Ok(LiveSession {
            claims,
            session,
            user,
        })
    }

    /// Refuses a session that is revoked, expired, of a disabled user, or
    /// not the token's, and a token that a refresh has replaced.
    fn ensure_live(
        &self,
        claims: &SessionClaims,
        session: &Session,
        user: &User,
    ) -> Result<(), SessionError> {
        if session
            .token_id
            .as_deref()
            .is_some_and(|current| current != claims.jti)
        {
            return Err(SessionError::NotLive(
                "the session token has been replaced by a newer one",
            ));
        }
        self.ensure_owner_live(&claims.sub, session, user)
    }

    fn ensure_owner_live(
        &self,
        sub: &str,
        session: &Session,
        user: &User,
    ) -> Result<(), SessionError> {
        if !session.is_live(self.now()) {
            return Err(SessionError::NotLive("the session has ended"));
        }
        if !user.is_active {
            return Err(SessionError::NotLive("the user is disabled"));
        }
        if sub != user.id.to_string() {
            return Err(SessionError::NotLive(
                "the token does not match its session",
            ));
        }
        Ok(())
    }

    /// Issues an authorization token for a verified session token, reading
    /// the session, its user and their scopes at the audience in one query.
    #[tracing::instrument(name = "authorize", skip_all, fields(session_id = %verified.sid))]
    pub async fn authorize(
        &self,
        verified: &VerifiedSession,
        request: AuthorizationRequest,
    ) -> Result<Authorized, SessionError> {
        let audience = self.audience(request.audience.as_ref())?;
        let context = self
            .store
            .authorization_context(verified.sid, audience.as_str(), self.now())
            .await?
            .ok_or(SessionError::NotLive("the session does not exist"))?;
        self.ensure_live(&verified.claims, &context.session, &context.user)?;
        self.issue(
            &verified.claims.sid,
            &context.session,
            &context.user,
            audience,
            context.scopes,
            request,
        )
        .await
    }

    /// Issues an authorization token for a session just checked or created:
    /// only the user's grants are read.
    #[tracing::instrument(name = "authorize", skip_all, fields(session_id = %live.session.id))]
    pub async fn authorize_live(
        &self,
        live: &LiveSession,
        request: AuthorizationRequest,
    ) -> Result<Authorized, SessionError> {
        let audience = self.audience(request.audience.as_ref())?;
        let held = self
            .store
            .grants(live.user.id)
            .await?
            .into_iter()
            .filter(|grant| grant.audience == audience.as_str())
            .map(|grant| grant.scope)
            .collect();
        self.issue(
            &live.claims.sid,
            &live.session,
            &live.user,
            audience,
            held,
            request,
        )
        .await
    }

    /// The live session `sid`, its user and their scopes at `audience`, in
    /// one read: `NotLive` when the session has ended or its user is
    /// disabled. For grants bound to a session (authorization codes,
    /// refresh tokens), which end with it.
    pub async fn live_context(
        &self,
        sid: Uuid,
        audience: &Audience,
    ) -> Result<AuthorizationContext, SessionError> {
        let audience = self.audience(Some(audience))?;
        let context = self
            .store
            .authorization_context(sid, audience.as_str(), self.now())
            .await?
            .ok_or(SessionError::NotLive("the session does not exist"))?;
        self.ensure_context_live(&context)?;
        Ok(context)
    }

    /// `NotLive` when the context's session has ended or its user is
    /// disabled: for a context the store read along with a grant bound to
    /// the session.
    pub fn ensure_context_live(&self, context: &AuthorizationContext) -> Result<(), SessionError> {
        self.ensure_owner_live(
            &context.user.id.to_string(),
            &context.session,
            &context.user,
        )
    }

    /// Issues the access token of an OAuth client for a live session read
    /// by [`Self::live_context`]: exactly `scopes` at `audience` (the caller
    /// has narrowed them to what the user holds), plus the OpenID Connect
    /// scopes `oauth_scopes` in `scope`.
    pub async fn issue_for_client(
        &self,
        context: &AuthorizationContext,
        audience: &Audience,
        scopes: Vec<String>,
        client_id: &str,
        oauth_scopes: Vec<String>,
    ) -> Result<Authorized, SessionError> {
        let audience = self.audience(Some(audience))?;
        self.issue(
            &context.session.id.to_string(),
            &context.session,
            &context.user,
            audience,
            scopes,
            AuthorizationRequest {
                audience: None,
                scopes: None,
                client_id: Some(client_id.to_owned()),
                oauth_scopes: Some(oauth_scopes),
            },
        )
        .await
    }

    /// `AudienceNotAllowed` unless tokens for `audience` are issued here.
    pub fn ensure_audience_allowed(&self, audience: &Audience) -> Result<(), SessionError> {
        self.audience(Some(audience)).map(|_| ())
    }

    /// The audience asked for, or the default; refused unless allowed.
    fn audience(&self, asked: Option<&Audience>) -> Result<Audience, SessionError> {
        let audience = asked.unwrap_or(&self.policy.default_audience);
        if !self.policy.allows(audience) {
            return Err(SessionError::AudienceNotAllowed(
                audience.as_str().to_owned(),
            ));
        }
        Ok(audience.clone())
    }

    async fn issue(
        &self,
        sid: &str,
        session: &Session,
        user: &User,
        audience: Audience,
        held: Vec<String>,
        request: AuthorizationRequest,
    ) -> Result<Authorized, SessionError> {
        let scopes = match request.scopes {
            None => held,
            Some(mut requested) => {
                requested.sort();
                requested.dedup();
                if let Some(missing) = requested
                    .iter()
                    .find(|s| !held.iter().any(|h| h == s.as_str()))
                {
                    return Err(SessionError::ScopeNotGranted(missing.as_str().to_owned()));
                }
                requested.into_iter().map(Scope::into_string).collect()
            }
        };

        let now = self.now();
        let lifetime = self.policy.authorization_lifetime;
        let expires_at = now + lifetime;
        let claims = AuthorizationClaims {
            iss: self.policy.issuer.clone(),
            sub: user.id.to_string(),
            aud: vec![audience.as_str().to_owned()],
            iat: now.timestamp(),
            nbf: now.timestamp(),
            exp: expires_at.timestamp(),
            jti: tokens::new_jti(),
            token: tokens::AUTHORIZATION.into(),
            sid: sid.to_owned(),
            cid: request
                .client_id
                .unwrap_or_else(|| session.client_id.clone()),
            uid: user.id.to_string(),
            email: user.email.clone(),
            username: user.username.clone(),
            scopes,
            client_id: None,
            scope: None,
            extra: extra_claims(&self.policy.extra_claims, user),
        };
        let mut claims = claims;
        // Only a token endpoint's token names its client and all its
        // scopes; `/authorize` builds neither.
        if let Some(oauth_scopes) = &request.oauth_scopes {
            let scope = oauth_scopes
                .iter()
                .chain(&claims.scopes)
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(" ");
            claims.client_id = Some(claims.cid.clone());
            claims.scope = Some(scope);
        }
        let token = self.keys.current().signing()?.sign(&claims)?;
        self.metrics
            .tokens_issued
            .with_label_values(&["auth"])
            .inc();
        // The token endpoint records its grant itself, in one entry.
        if request.oauth_scopes.is_none() {
            self.audit
                .record(
                    audit::entry("authorize", "success", now)
                        .user(&user.username, Some(user.id))
                        .detail(format!(
                            "audience {} scopes [{}] session {}",
                            audience.as_str(),
                            claims.scopes.join(" "),
                            claims.sid
                        )),
                )
                .await;
        }
        Ok(Authorized {
            token,
            scope: claims.scope,
            lifetime: u64::try_from(lifetime.num_seconds()).unwrap_or(0),
            expires_at,
        })
    }

    /// A new session token for the same session, signed with the active
    /// key. The presented token stops working, and the session no longer
    /// depends on the key that signed it.
    #[tracing::instrument(
        name = "refresh session",
        skip_all,
        fields(session_id = %live.session.id, kid = tracing::field::Empty)
    )]
    pub async fn refresh(
        &self,
        live: &LiveSession,
        origin: &Origin,
    ) -> Result<Refreshed, SessionError> {
        let LiveSession {
            claims: presented,
            session,
            user,
        } = live;
        let keys = self.keys.current();
        let signing = keys.signing()?;
        tracing::Span::current().record("kid", signing.kid());
        let token_id = tokens::new_jti();
        let now = self.now();
        let claims = self.session_claims(
            user,
            session.id,
            &session.client_id,
            now,
            session.expires_at,
            token_id.clone(),
        );
        // Signed before it is recorded: a failure leaves the old token
        // working.
        let token = signing.sign(&claims)?;
        let replaced = self
            .store
            .replace_session_token(session.id, &presented.jti, &token_id, signing.kid(), now)
            .await?;
        if !replaced {
            // Another refresh with the same token won, or the session just
            // ended.
            return Err(SessionError::NotLive(
                "the session token has been replaced by a newer one",
            ));
        }
        tracing::info!("Session token refreshed");
        self.audit
            .record(
                audit::entry("refresh", "success", now)
                    .user(&user.username, Some(user.id))
                    .client(origin.ip.as_deref(), origin.user_agent.as_deref())
                    .detail(format!("session {} key {}", session.id, signing.kid())),
            )
            .await;
        Ok(Refreshed {
            token,
            session: session.clone(),
        })
    }

    /// Ends a live session: refused when it has ended meanwhile.
    #[tracing::instrument(name = "log out", skip_all, fields(session_id = %live.session.id))]
    pub async fn log_out(&self, live: &LiveSession, origin: &Origin) -> Result<(), SessionError> {
        if !self
            .store
            .revoke_session(live.session.id, self.now())
            .await?
        {
            return Err(SessionError::NotLive("the session has ended"));
        }
        tracing::info!("Session revoked");
        self.record_logout(&live.user, live.session.id, origin)
            .await;
        Ok(())
    }

    /// Ends the session of a session token that verifies, whatever state
    /// the session is in (the browser's logout: it clears its cookies
    /// either way). Returns whether a live session ended.
    #[tracing::instrument(name = "log out", skip_all, fields(session_id = tracing::field::Empty))]
    pub async fn log_out_token(&self, token: &str, origin: &Origin) -> Result<bool, SessionError> {
        let Ok(verified) = self.verify(token) else {
            return Ok(false);
        };
        tracing::Span::current().record("session_id", tracing::field::display(verified.sid));
        let found = self.store.find_session(verified.sid).await?;
        if !self.store.revoke_session(verified.sid, self.now()).await? {
            return Ok(false);
        }
        tracing::info!("Session revoked");
        if let Some((_, user)) = found {
            self.record_logout(&user, verified.sid, origin).await;
        }
        Ok(true)
    }

    async fn record_logout(&self, user: &User, sid: Uuid, origin: &Origin) {
        self.audit
            .record(
                audit::entry("logout", "success", self.now())
                    .user(&user.username, Some(user.id))
                    .client(origin.ip.as_deref(), origin.user_agent.as_deref())
                    .detail(format!("session {sid}")),
            )
            .await;
    }

    /// Verifies an authorization token, for `audience` when given (else for
    /// any audience), and checks that its session is live and its user
    /// active.
    pub async fn check_authorization(
        &self,
        token: &str,
        audience: Option<&str>,
    ) -> Result<AuthorizationClaims, SessionError> {
        let claims = self.verify_authorization(token, audience)?;
        let (session, user) = self
            .store
            .find_session(token_session(&claims)?)
            .await?
            .ok_or(SessionError::NotLive("the session does not exist"))?;
        self.ensure_owner_live(&claims.sub, &session, &user)?;
        Ok(claims)
    }

    /// As [`Self::check_authorization`], with the user's current scopes at
    /// the token's (first) audience, in one read: what `/userinfo` answers.
    pub async fn check_authorization_context(
        &self,
        token: &str,
    ) -> Result<(AuthorizationClaims, AuthorizationContext), SessionError> {
        let claims = self.verify_authorization(token, None)?;
        let audience = claims
            .aud
            .first()
            .ok_or(SessionError::NotLive("the token names no audience"))?;
        let context = self
            .store
            .authorization_context(token_session(&claims)?, audience, self.now())
            .await?
            .ok_or(SessionError::NotLive("the session does not exist"))?;
        self.ensure_owner_live(&claims.sub, &context.session, &context.user)?;
        Ok((claims, context))
    }

    /// Verifies an authorization token's signature and claims; nothing is
    /// read.
    pub fn verify_authorization(
        &self,
        token: &str,
        audience: Option<&str>,
    ) -> Result<AuthorizationClaims, SessionError> {
        Ok(self.authorization_validation.verify(
            token,
            &self.keys.current(),
            audience,
            self.now(),
        )?)
    }

    /// The caller of Tessera's own API behind an authorization token
    /// (audience `tessera`): refused unless the token verifies, its session
    /// is live and its user active; `ScopeRequired` unless the token carries
    /// `scope` and the user holds it now. Both, checked on every call: a
    /// grant removed takes effect at the next call, not when the token
    /// expires, and a token narrowed at issue never gains what it left out.
    pub async fn caller(&self, token: &str, scope: &str) -> Result<Caller, SessionError> {
        let claims = self.verify_authorization(token, Some(TESSERA_AUDIENCE))?;
        let found = self
            .store
            .session_grant(token_session(&claims)?, TESSERA_AUDIENCE, scope)
            .await?
            .ok_or(SessionError::NotLive("the session does not exist"))?;
        self.ensure_owner_live(&claims.sub, &found.session, &found.user)?;
        if !found.granted || !claims.scopes.iter().any(|held| held == scope) {
            return Err(SessionError::ScopeRequired(scope.to_owned()));
        }
        Ok(Caller {
            session: found.session,
            user: found.user,
        })
    }
}

fn token_session(claims: &AuthorizationClaims) -> Result<Uuid, SessionError> {
    Uuid::parse_str(&claims.sid)
        .map_err(|_| SessionError::NotLive("the token names no valid session"))
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
