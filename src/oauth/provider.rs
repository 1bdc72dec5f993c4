//! The OpenID Connect provider: the authorization endpoint's checks and
//! codes, the token endpoint's four grants, ID tokens, refresh tokens and
//! their revocation. It stands on the session service: a code or refresh
//! token is bound to a Tessera session and ends with it, and every access
//! token is issued by [`Sessions`], with the claims of every other
//! authorization token.
//!
//! Codes and refresh tokens are 256 random bits; only their SHA-256 is
//! stored. Never log a code, a token, a verifier or a secret here.

use std::sync::Arc;

use aws_lc_rs::{constant_time, digest, rand};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::clients::{
    self, AUTHORIZATION_CODE, CLIENT_CREDENTIALS, ClientCache, REFRESH_TOKEN, TOKEN_EXCHANGE,
};
use super::error::{Code, OAuthError};
use crate::audit::{self, AuditEntryExt, AuditLog};
use crate::domain::Audience;
use crate::keys::KeyStore;
use crate::metrics::Metrics;
use crate::sessions::{
    AuthorizationRequest, Authorized, LiveSession, Origin, SessionError, Sessions,
};
use crate::store::{
    AuthorizationCode, AuthorizationContext, CodeExchange, NewAuthorizationCode, OAuthClient,
    Redemption, RefreshFamily, RefreshRotation, Rotation, Store, User,
};
use crate::throttle;
use crate::tokens::{self, AuthorizationClaims, IdTokenClaims};

/// How long an authorization code may be exchanged after it was issued
/// (RFC 6749 §4.1.2 recommends at most ten minutes; one is plenty).
pub const CODE_LIFETIME: TimeDelta = TimeDelta::seconds(60);
/// How long an ID token is valid: it is checked once, at sign-in.
const ID_TOKEN_LIFETIME: TimeDelta = TimeDelta::minutes(5);

/// The OpenID Connect scopes: they ask for claims, not for access at the
/// client's audience, and never reach an access token's `scopes`.
pub const OPENID_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// RFC 8693 §3: the token types Tessera exchanges and issues.
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The longest `state`, `nonce` or `login_hint` accepted, in bytes.
const MAX_PARAMETER_BYTES: usize = 2048;

/// The parameters of an authorization request (RFC 6749 §4.1.1, OpenID
/// Connect Core §3.1.2.1), as sent.
#[derive(Debug, Default, Clone, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct AuthorizationParams {
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub response_type: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
    pub response_mode: Option<String>,
    pub request: Option<String>,
    pub request_uri: Option<String>,
}

/// An authorization request that passed every check.
#[derive(Debug)]
pub struct ValidRequest {
    pub client: OAuthClient,
    pub redirect_uri: String,
    pub state: Option<String>,
    /// The OpenID Connect scopes asked for, in [`OPENID_SCOPES`] order.
    pub openid_scopes: Vec<String>,
    /// The scopes asked for at the client's audience.
    pub audience_scopes: Vec<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt_none: bool,
    pub prompt_login: bool,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
}

/// Why an authorization request is refused.
#[derive(Debug)]
pub enum Refused {
    /// The client or the redirect URI is unknown or not allowed: an error
    /// page, never a redirect (RFC 6749 §4.1.2.1, RFC 9700 §4.11.2). The
    /// reason is for the log.
    NoRedirect(&'static str),
    /// An error to send back to the client's redirect URI.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: OAuthError,
    },
}

/// What the authorization endpoint does next.
pub enum Next {
    /// Show the login form; after it, the request is made again.
    SignIn,
    /// Send the browser back with this code.
    Code(String),
}

/// How a client authenticated at the token endpoint (RFC 6749 §2.3.1).
#[derive(Default)]
pub struct ClientAuth {
    /// From `Authorization: Basic`, already form-decoded.
    pub basic: Option<(String, String)>,
    /// The body's `client_id` and `client_secret`.
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// The parameters of a token request (RFC 6749 §4.1.3, §4.4.2, §6;
/// RFC 8693 §2.1).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct TokenParams {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    pub subject_token: Option<String>,
    pub subject_token_type: Option<String>,
    pub requested_token_type: Option<String>,
    pub audience: Option<String>,
    pub resource: Option<String>,
    pub actor_token: Option<String>,
}

/// A successful token response (RFC 6749 §5.1, RFC 8693 §2.2.1).
#[derive(Debug, serde::Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
}

/// What an `id_token_hint` names, once its signature checks out.
pub struct Hint {
    pub client_id: String,
    pub sid: String,
}

/// The provider's own parts; the session service is passed to each call.
pub struct Provider {
    store: Arc<dyn Store>,
    keys: KeyStore,
    audit: AuditLog,
    metrics: Metrics,
    clients: ClientCache,
}

fn invalid(code: Code, description: &'static str) -> OAuthError {
    OAuthError::new(code, description)
}

impl Provider {
    pub fn new(
        store: Arc<dyn Store>,
        keys: KeyStore,
        audit: AuditLog,
        metrics: Metrics,
        clients: ClientCache,
    ) -> Self {
        Self {
            store,
            keys,
            audit,
            metrics,
            clients,
        }
    }

    /// The clients this provider keeps, for the registry to forget what it
    /// changes.
    pub fn client_cache(&self) -> &ClientCache {
        &self.clients
    }

    /// An active client, kept or read.
    async fn active_client(&self, id: &str) -> Result<Option<OAuthClient>, OAuthError> {
        match self.clients.get(id) {
            Some(client) => Ok(Some(client)),
            None => self.read_client(id).await,
        }
    }

    /// An active client as the database has it now.
    async fn read_client(&self, id: &str) -> Result<Option<OAuthClient>, OAuthError> {
        if !clients::is_client_id(id) {
            return Ok(None);
        }
        let since = self.clients.before_read();
        let client = self.store.find_oauth_client(id).await?;
        self.clients.put(id, client.as_ref(), since);
        Ok(client.filter(|client| client.is_active))
    }

    // --- The authorization endpoint ------------------------------------

    /// Checks an authorization request: first the client and the redirect
    /// URI (failures never redirect), then everything else (failures go
    /// back to the redirect URI).
    pub async fn check_request(
        &self,
        params: &AuthorizationParams,
    ) -> Result<ValidRequest, Refused> {
        let client_id = params
            .client_id
            .as_deref()
            .ok_or(Refused::NoRedirect("no client_id"))?;
        let client = self
            .active_client(client_id)
            .await
            .map_err(|_| Refused::NoRedirect("the client could not be read"))?
            .ok_or(Refused::NoRedirect("unknown or disabled client_id"))?;
        let redirect_uri = params
            .redirect_uri
            .as_deref()
            .ok_or(Refused::NoRedirect("no redirect_uri"))?;
        if !redirect_uri_is_registered(&client, redirect_uri) {
            return Err(Refused::NoRedirect(
                "redirect_uri is not registered for the client",
            ));
        }
        let state = params.state.clone();
        let back = |error: OAuthError| Refused::Redirect {
            redirect_uri: redirect_uri.to_owned(),
            state: state.clone(),
            error,
        };
        self.check_rest(params, &client)
            .map_err(back)
            .map(|checked| ValidRequest {
                client,
                redirect_uri: redirect_uri.to_owned(),
                state: params.state.clone(),
                ..checked
            })
    }

    /// The checks after the client's: what a [`ValidRequest`] holds
    /// besides the client, redirect URI and state.
    fn check_rest(
        &self,
        params: &AuthorizationParams,
        client: &OAuthClient,
    ) -> Result<ValidRequest, OAuthError> {
        use Code::*;
        if params.request.is_some() {
            return Err(invalid(
                RequestNotSupported,
                "request objects are not supported",
            ));
        }
        if params.request_uri.is_some() {
            return Err(invalid(
                RequestUriNotSupported,
                "request_uri is not supported",
            ));
        }
        match params.response_type.as_deref() {
            Some("code") => {}
            None => return Err(invalid(InvalidRequest, "response_type is required")),
            // No implicit or hybrid flow (RFC 9700 §2.1.2).
            Some(_) => {
                return Err(invalid(
                    UnsupportedResponseType,
                    "only response_type=code is supported",
                ));
            }
        }
        if params
            .response_mode
            .as_deref()
            .is_some_and(|m| m != "query")
        {
            return Err(invalid(
                InvalidRequest,
                "only response_mode=query is supported",
            ));
        }
        if !client.grant_types.iter().any(|g| g == AUTHORIZATION_CODE) {
            return Err(invalid(
                UnauthorizedClient,
                "the client may not use the authorization code grant",
            ));
        }
        for (value, name) in [
            (&params.state, "state"),
            (&params.nonce, "nonce"),
            (&params.login_hint, "login_hint"),
        ] {
            if value
                .as_ref()
                .is_some_and(|v| v.len() > MAX_PARAMETER_BYTES)
            {
                return Err(OAuthError::new(
                    InvalidRequest,
                    format!("{name} is longer than {MAX_PARAMETER_BYTES} bytes"),
                ));
            }
        }
        let (openid_scopes, audience_scopes) =
            split_scopes(params.scope.as_deref().unwrap_or(""), client)?;
        // PKCE (RFC 7636; OAuth 2.1 §4.1.1): S256 only, and required of a
        // public client. A confidential client may go without unless it
        // sends a challenge, which is then always checked.
        let code_challenge = match (
            params.code_challenge.as_deref(),
            params.code_challenge_method.as_deref(),
        ) {
            (None, None) if client.secret_hash.is_none() => {
                return Err(invalid(
                    InvalidRequest,
                    "a public client must send a PKCE code_challenge (S256)",
                ));
            }
            (None, None) => None,
            (None, Some(_)) => {
                return Err(invalid(
                    InvalidRequest,
                    "code_challenge_method without code_challenge",
                ));
            }
            (Some(challenge), Some("S256")) if is_s256_challenge(challenge) => {
                Some(challenge.to_owned())
            }
            (Some(_), Some("S256")) => {
                return Err(invalid(
                    InvalidRequest,
                    "code_challenge must be 43 base64url characters",
                ));
            }
            // A missing method means `plain` (RFC 7636 §4.3), refused.
            (Some(_), _) => {
                return Err(invalid(
                    InvalidRequest,
                    "code_challenge_method must be S256",
                ));
            }
        };
        let prompts: Vec<&str> = params
            .prompt
            .as_deref()
            .map(|p| p.split(' ').filter(|p| !p.is_empty()).collect())
            .unwrap_or_default();
        if prompts
            .iter()
            .any(|p| !matches!(*p, "none" | "login" | "consent" | "select_account"))
        {
            return Err(invalid(InvalidRequest, "unknown prompt value"));
        }
        let prompt_none = prompts.contains(&"none");
        // Core §3.1.2.1: `none` with any other value is an error.
        if prompt_none && prompts.len() > 1 {
            return Err(invalid(
                InvalidRequest,
                "prompt=none cannot be combined with other values",
            ));
        }
        let max_age = match params.max_age.as_deref() {
            None => None,
            Some(raw) => Some(raw.parse::<u32>().map(i64::from).map_err(|_| {
                invalid(InvalidRequest, "max_age must be a whole number of seconds")
            })?),
        };
        Ok(ValidRequest {
            client: client.clone(),
            redirect_uri: String::new(),
            state: None,
            openid_scopes,
            audience_scopes,
            nonce: params.nonce.clone(),
            code_challenge,
            prompt_none,
            prompt_login: prompts.contains(&"login"),
            max_age,
            login_hint: params.login_hint.clone(),
        })
    }

    /// What to do for a valid request, given the browser's live session.
    pub async fn authorize(
        &self,
        sessions: &Sessions,
        request: &ValidRequest,
        live: Option<&LiveSession>,
    ) -> Result<Next, OAuthError> {
        let now = sessions.now();
        let fresh_enough = |live: &LiveSession| {
            !request.prompt_login
                && request.max_age.is_none_or(|max_age| {
                    now - live.session.created_at <= TimeDelta::seconds(max_age)
                })
        };
        let live = match live {
            Some(live) if fresh_enough(live) => live,
            // Core §3.1.2.6: the user would have to sign in.
            _ if request.prompt_none => {
                return Err(invalid(Code::LoginRequired, "the user is not signed in"));
            }
            _ => return Ok(Next::SignIn),
        };
        self.ensure_admitted(&request.client, &live.user, None)
            .await?;
        let code = random_token()?;
        let scope = joined(&request.openid_scopes, &request.audience_scopes);
        self.store
            .create_authorization_code(
                NewAuthorizationCode {
                    code_hash: &hex_sha256(&code),
                    client_id: &request.client.id,
                    session_id: live.session.id,
                    redirect_uri: &request.redirect_uri,
                    scope: &scope,
                    nonce: request.nonce.as_deref(),
                    code_challenge: request.code_challenge.as_deref(),
                    expires_at: now + CODE_LIFETIME,
                },
                now,
            )
            .await?;
        tracing::info!(client_id = %request.client.id, "Authorization code issued");
        Ok(Next::Code(code))
    }

    /// Refuses a user who lacks the client's required grant
    /// (`access_denied`). `held` is the user's scopes at the client's
    /// audience when already read.
    async fn ensure_admitted(
        &self,
        client: &OAuthClient,
        user: &User,
        held: Option<&[String]>,
    ) -> Result<(), OAuthError> {
        let Some((audience, scope)) = &client.required_grant else {
            return Ok(());
        };
        let admitted = match held {
            Some(held) if *audience == client.audience => held.iter().any(|s| s == scope),
            _ => self
                .store
                .grants(user.id)
                .await?
                .iter()
                .any(|g| g.audience == *audience && g.scope == *scope),
        };
        if admitted {
            Ok(())
        } else {
            Err(invalid(
                Code::AccessDenied,
                "the user has no access to this application",
            ))
        }
    }

    // --- The token endpoint --------------------------------------------

    /// Authenticates the client (RFC 6749 §2.3.1, §3.2.1): a confidential
    /// client by its secret, in the `Authorization` header or the body,
    /// not both; a public client by its id alone. A failure is counted
    /// like a failed login, and too many answer `Throttled`. A right secret
    /// is never refused: 256 random bits cannot be guessed at any rate, and
    /// checking the counters on success would cost every request a read.
    pub async fn authenticate(
        &self,
        sessions: &Sessions,
        auth: &ClientAuth,
        origin: &Origin,
    ) -> Result<OAuthClient, OAuthError> {
        let (id, secret) = match (&auth.basic, &auth.client_id, &auth.client_secret) {
            (Some(_), _, Some(_)) => {
                return Err(invalid(
                    Code::InvalidRequest,
                    "use one client authentication method, not two",
                ));
            }
            // mozilla-django-oidc sends `client_id` in the body as well.
            (Some((id, _)), Some(body_id), None) if body_id != id => {
                return Err(invalid(
                    Code::InvalidRequest,
                    "client_id differs from the authenticated client",
                ));
            }
            // A public client may send Basic with an empty secret.
            (Some((id, secret)), _, None) => {
                (id.as_str(), Some(secret.as_str()).filter(|s| !s.is_empty()))
            }
            (None, Some(id), secret) => (id.as_str(), secret.as_deref()),
            (None, None, _) => {
                return Err(invalid(
                    Code::InvalidClient,
                    "client authentication is required",
                ));
            }
        };
        let authenticated = |client: Option<&OAuthClient>| match (client, secret) {
            (Some(client), Some(secret)) => clients::secret_matches(client, secret),
            (Some(client), None) => client.secret_hash.is_none(),
            (None, _) => false,
        };
        // A kept client vouches only for a success: a refusal is decided by
        // the database, so that a secret rotated on another replica works
        // at once.
        let client = match self.clients.get(id) {
            Some(kept) if authenticated(Some(&kept)) => Some(kept),
            _ => self.read_client(id).await?,
        };
        let authenticated = authenticated(client.as_ref());
        match client {
            Some(client) if authenticated => Ok(client),
            _ => Err(self.client_auth_failed(sessions, id, origin).await),
        }
    }

    async fn client_auth_failed(
        &self,
        sessions: &Sessions,
        id: &str,
        origin: &Origin,
    ) -> OAuthError {
        let now = sessions.now();
        // An id no client can have counts on one shared counter, so that
        // made-up ids add no rows.
        let counted = if clients::is_client_id(id) {
            id
        } else {
            "(malformed)"
        };
        let keys = throttle::Keys::for_client(counted, origin.ip.as_deref().unwrap_or("unknown"));
        let throttled =
            match throttle::reserve(self.store.as_ref(), &sessions.policy().throttle, &keys, now)
                .await
            {
                // Counted as the failure it is.
                Ok(Ok(_attempt)) => None,
                Ok(Err(throttle::Refusal::Throttled { until })) => {
                    let wait_ms = (until - now).num_milliseconds();
                    Some(u64::try_from((wait_ms + 999) / 1000).unwrap_or(1).max(1))
                }
                Ok(Err(throttle::Refusal::Locked)) => Some(3600),
                Err(error) => return error.into(),
            };
        tracing::info!(client_id = %printable(id), "Client authentication failed");
        self.audit
            .record(
                audit::entry("client.authentication", "failure", now)
                    .client(origin.ip.as_deref(), origin.user_agent.as_deref())
                    .detail(format!("client {}", printable(id))),
            )
            .await;
        match throttled {
            Some(retry_after) => {
                self.metrics
                    .throttled
                    .with_label_values(&["client_authentication"])
                    .inc();
                OAuthError::Throttled { retry_after }
            }
            None => invalid(Code::InvalidClient, "client authentication failed"),
        }
    }

    /// The token endpoint: one grant for an authenticated client.
    pub async fn token(
        &self,
        sessions: &Sessions,
        client: &OAuthClient,
        params: TokenParams,
    ) -> Result<TokenResponse, OAuthError> {
        let grant_type = params
            .grant_type
            .clone()
            .ok_or_else(|| invalid(Code::InvalidRequest, "grant_type is required"))?;
        let grant = grant_type.as_str();
        if ![
            AUTHORIZATION_CODE,
            REFRESH_TOKEN,
            CLIENT_CREDENTIALS,
            TOKEN_EXCHANGE,
        ]
        .contains(&grant)
        {
            return Err(invalid(
                Code::UnsupportedGrantType,
                "the grant type is not supported",
            ));
        }
        if !client.grant_types.iter().any(|g| g == grant) {
            return Err(invalid(
                Code::UnauthorizedClient,
                "the client may not use this grant type",
            ));
        }
        let response = match grant {
            AUTHORIZATION_CODE => self.exchange_code(sessions, client, params).await,
            REFRESH_TOKEN => self.refresh(sessions, client, params).await,
            CLIENT_CREDENTIALS => self.client_credentials(sessions, client, params).await,
            _ => self.exchange_token(sessions, client, params).await,
        };
        if let Err(OAuthError::Protocol { code, .. }) = &response {
            tracing::info!(client_id = %client.id, grant, error = code.as_str(), "Token request refused");
        }
        response
    }

    /// `authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.6).
    async fn exchange_code(
        &self,
        sessions: &Sessions,
        client: &OAuthClient,
        params: TokenParams,
    ) -> Result<TokenResponse, OAuthError> {
        let code = params
            .code
            .as_deref()
            .ok_or_else(|| invalid(Code::InvalidRequest, "code is required"))?;
        let redirect_uri = params
            .redirect_uri
            .as_deref()
            .ok_or_else(|| invalid(Code::InvalidRequest, "redirect_uri is required"))?;
        let now = sessions.now();
        let family = Uuid::new_v4();
        let bad = || invalid(Code::InvalidGrant, "the code is invalid, expired or used");
        let audience = client_audience(client)?;
        sessions.ensure_audience_allowed(&audience)?;
        // The refresh token is made first, so that its family starts with
        // the code's redemption, in the same step.
        let refresh_token = if client.grant_types.iter().any(|g| g == REFRESH_TOKEN) {
            Some(refresh_token_of(family)?)
        } else {
            None
        };
        let refresh_hash = refresh_token.as_deref().map(hex_sha256);
        let exchange = CodeExchange {
            family_id: family,
            refresh_token_hash: refresh_hash.as_deref(),
        };
        let (code, context) = match self
            .store
            .redeem_authorization_code(&hex_sha256(code), exchange, audience.as_str(), now)
            .await?
        {
            Redemption::First { code, context } => (code, context),
            Redemption::Replayed(code) => {
                // RFC 6749 §4.1.2: a code used twice revokes what it
                // issued (the refresh tokens; access tokens expire soon).
                if let Some(family) = code.family_id {
                    self.revoke_family(family, client, code.session_id, "oauth.code_replayed", now)
                        .await?;
                }
                return Err(bad());
            }
            Redemption::Unknown => return Err(bad()),
        };
        let issued = match check_exchange(&code, client, redirect_uri, &params, now) {
            Ok(()) => {
                self.issue_exchange(sessions, client, &audience, &code, &context, now)
                    .await
            }
            Err(refused) => Err(refused),
        };
        match issued {
            Ok(mut response) => {
                if refresh_token.is_some() {
                    self.count_refresh_token();
                }
                response.refresh_token = refresh_token;
                Ok(response)
            }
            Err(error) => {
                // The code is spent; the family it started, whose token
                // nobody was given, goes with it.
                if refresh_token.is_some() {
                    self.store.revoke_refresh_family(family, now).await?;
                }
                Err(error)
            }
        }
    }

    /// The tokens of a code exchange whose checks passed: an access token
    /// and, for `openid`, an ID token.
    async fn issue_exchange(
        &self,
        sessions: &Sessions,
        client: &OAuthClient,
        audience: &Audience,
        code: &AuthorizationCode,
        context: &AuthorizationContext,
        now: DateTime<Utc>,
    ) -> Result<TokenResponse, OAuthError> {
        sessions.ensure_context_live(context)?;
        let (openid, asked) = scope_parts(&code.scope);
        let scopes = audience_scopes_for(client, &asked, &context.scopes);
        let access = sessions
            .issue_for_client(context, audience, scopes, &client.id, openid.clone())
            .await?;
        let id_token = if openid.iter().any(|s| s == "openid") {
            Some(self.id_token(sessions, client, context, code.nonce.clone(), &access.token)?)
        } else {
            None
        };
        self.record_grant(now, client, "authorization_code", context, &access)
            .await;
        Ok(TokenResponse {
            access_token: access.token,
            token_type: "Bearer",
            expires_in: access.lifetime,
            scope: access.scope.unwrap_or_default(),
            refresh_token: None,
            id_token,
            issued_token_type: None,
        })
    }

    /// Revokes a refresh-token family after a replayed code or a reused
    /// token (`event`), and records it.
    async fn revoke_family(
        &self,
        family: Uuid,
        client: &OAuthClient,
        session: Uuid,
        event: &str,
        now: DateTime<Utc>,
    ) -> Result<(), OAuthError> {
        let revoked = self.store.revoke_refresh_family(family, now).await?;
        tracing::warn!(client_id = %client.id, revoked, event, "A grant was used twice; its refresh tokens are revoked");
        self.audit
            .record(
                audit::entry(event, "failure", now)
                    .detail(format!("client {} session {session}", client.id)),
            )
            .await;
        Ok(())
    }

    fn count_refresh_token(&self) {
        self.metrics
            .tokens_issued
            .with_label_values(&["refresh"])
            .inc();
    }

    /// The family a presented refresh token names, or, for a token of the
    /// 43-character form, the one stored with its hash.
    async fn family_of(&self, presented: &str) -> Result<Option<Uuid>, OAuthError> {
        if let Some(family) = named_family(presented) {
            return Ok(Some(family));
        }
        if presented.len() != LEGACY_REFRESH_TOKEN_LEN {
            return Ok(None);
        }
        Ok(self
            .store
            .legacy_refresh_family(&hex_sha256(presented))
            .await?)
    }

    /// The family of a presented refresh token, whether or not it is the
    /// family's current one.
    async fn refresh_family(&self, presented: &str) -> Result<Option<RefreshFamily>, OAuthError> {
        let Some(family) = self.family_of(presented).await? else {
            return Ok(None);
        };
        Ok(self.store.find_refresh_family(family).await?)
    }

    fn id_token(
        &self,
        sessions: &Sessions,
        client: &OAuthClient,
        context: &AuthorizationContext,
        nonce: Option<String>,
        access_token: &str,
    ) -> Result<String, OAuthError> {
        let now = sessions.now();
        let user = &context.user;
        let claims = IdTokenClaims {
            iss: sessions.policy().issuer.clone(),
            sub: user.id.to_string(),
            aud: client.id.clone(),
            exp: (now + ID_TOKEN_LIFETIME).timestamp(),
            iat: now.timestamp(),
            auth_time: context.session.created_at.timestamp(),
            nonce,
            sid: context.session.id.to_string(),
            at_hash: tokens::at_hash(access_token),
            preferred_username: user.username.clone(),
            name: user.username.clone(),
            // An address the operator set: as verified as the account.
            email_verified: user.email.as_ref().map(|_| true),
            email: user.email.clone(),
        };
        let keys = self.keys.current();
        let token = keys.signing().map_err(SessionError::from)?.sign(&claims)?;
        self.metrics.tokens_issued.with_label_values(&["id"]).inc();
        Ok(token)
    }

    /// `refresh_token` (RFC 6749 §6), rotated on every use (OAuth 2.1
    /// §4.3.1, RFC 9700 §4.14.2): the presented token is spent, a new one
    /// of the same family is issued, and a spent token presented again
    /// revokes the whole family.
    async fn refresh(
        &self,
        sessions: &Sessions,
        client: &OAuthClient,
        params: TokenParams,
    ) -> Result<TokenResponse, OAuthError> {
        let presented = params
            .refresh_token
            .as_deref()
            .ok_or_else(|| invalid(Code::InvalidRequest, "refresh_token is required"))?;
        let now = sessions.now();
        let bad = || {
            invalid(
                Code::InvalidGrant,
                "the refresh token is invalid or revoked",
            )
        };
        let audience = client_audience(client)?;
        sessions.ensure_audience_allowed(&audience)?;
        let Some(family_id) = self.family_of(presented).await? else {
            return Err(bad());
        };
        let presented_hash = hex_sha256(presented);
        // A scope asked for is checked before the token is spent: a client
        // asking for too much keeps its token.
        if let Some(raw) = params.scope.as_deref()
            && let Some(family) = self.store.find_refresh_family(family_id).await?
            && family.client_id == client.id
            && family.token_hash == presented_hash
        {
            narrowed_scope(client, &family.scope, raw)?;
        }
        let replacement = refresh_token_of(family_id)?;
        let rotation = RefreshRotation {
            family_id,
            presented_hash: &presented_hash,
            new_hash: &hex_sha256(&replacement),
            client_id: &client.id,
            audience: audience.as_str(),
        };
        let (family, context) = match self.store.rotate_refresh_token(rotation, now).await? {
            Rotation::Rotated { family, context } => (family, context),
            Rotation::Stale(family) if family.client_id == client.id => {
                // A token the family had before: reuse of a rotated token,
                // which revokes the family. A token that only names the
                // family was never issued, and changes nothing.
                if family.revoked_at.is_none() && family_issued(&family, presented, &presented_hash)
                {
                    self.revoke_family(
                        family.family_id,
                        client,
                        family.session_id,
                        "oauth.refresh_reused",
                        now,
                    )
                    .await?;
                }
                return Err(bad());
            }
            Rotation::Stale(_) | Rotation::Unknown => return Err(bad()),
        };
        sessions.ensure_context_live(&context)?;
        let (openid, asked) = match params.scope.as_deref() {
            None => scope_parts(&family.scope),
            Some(raw) => narrowed_scope(client, &family.scope, raw)?,
        };
        self.ensure_admitted(client, &context.user, Some(&context.scopes))
            .await
            .map_err(|_| invalid(Code::InvalidGrant, "the user no longer has access"))?;
        let scopes = audience_scopes_for(client, &asked, &context.scopes);
        let access = sessions
            .issue_for_client(&context, &audience, scopes, &client.id, openid)
            .await?;
        self.count_refresh_token();
        self.record_grant(now, client, "refresh_token", &context, &access)
            .await;
        Ok(TokenResponse {
            access_token: access.token,
            token_type: "Bearer",
            expires_in: access.lifetime,
            scope: access.scope.unwrap_or_default(),
            refresh_token: Some(replacement),
            id_token: None,
            issued_token_type: None,
        })
    }

    /// `client_credentials` (RFC 6749 §4.4): a token for the client itself,
    /// with its own scopes at its audience. It names no user and no
    /// session: `sub`, `cid` and `client_id` are the client's id (RFC 9068
    /// §2.2), `sid` and `uid` are empty.
    async fn client_credentials(
        &self,
        sessions: &Sessions,
        client: &OAuthClient,
        params: TokenParams,
    ) -> Result<TokenResponse, OAuthError> {
        let (openid, asked) = split_scopes(params.scope.as_deref().unwrap_or(""), client)?;
        if !openid.is_empty() {
            return Err(invalid(
                Code::InvalidScope,
                "OpenID Connect scopes need a user; this grant has none",
            ));
        }
        // No user narrows this grant: the client gets what it was
        // registered with, never more (a client with none gets none).
        if asked.iter().any(|s| !client.scopes.contains(s)) {
            return Err(invalid(
                Code::InvalidScope,
                "the client may not ask for one of the scopes",
            ));
        }
        let scopes = if asked.is_empty() {
            client.scopes.clone()
        } else {
            asked
        };
        let now = sessions.now();
        let policy = sessions.policy();
        let lifetime = policy.authorization_lifetime;
        let scope = scopes.join(" ");
        let claims = AuthorizationClaims {
            iss: policy.issuer.clone(),
            sub: client.id.clone(),
            aud: vec![client.audience.clone()],
            iat: now.timestamp(),
            nbf: now.timestamp(),
            exp: (now + lifetime).timestamp(),
            jti: tokens::new_jti(),
            token: tokens::AUTHORIZATION.into(),
            sid: String::new(),
            cid: client.id.clone(),
            uid: String::new(),
            email: None,
            username: client.id.clone(),
            scopes,
            client_id: Some(client.id.clone()),
            scope: Some(scope.clone()),
            extra: Default::default(),
        };
        let keys = self.keys.current();
        let token = keys.signing().map_err(SessionError::from)?.sign(&claims)?;
        self.metrics
            .tokens_issued
            .with_label_values(&["client"])
            .inc();
        self.audit
            .record(
                audit::entry("oauth.client_credentials", "success", now)
                    .detail(format!("client {} scopes [{scope}]", client.id)),
            )
            .await;
        Ok(TokenResponse {
            access_token: token,
            token_type: "Bearer",
            expires_in: u64::try_from(lifetime.num_seconds()).unwrap_or(0),
            scope,
            refresh_token: None,
            id_token: None,
            issued_token_type: None,
        })
    }

    /// RFC 8693 token exchange: a Tessera session token (`subject_token`,
    /// type `jwt`) for an access token at `audience` (or `resource`), with
    /// the user's scopes there: what `POST /authorize` issues.
    async fn exchange_token(
        &self,
        sessions: &Sessions,
        client: &OAuthClient,
        params: TokenParams,
    ) -> Result<TokenResponse, OAuthError> {
        let subject = params
            .subject_token
            .as_deref()
            .ok_or_else(|| invalid(Code::InvalidRequest, "subject_token is required"))?;
        match params.subject_token_type.as_deref() {
            Some(JWT_TOKEN_TYPE) => {}
            None => {
                return Err(invalid(
                    Code::InvalidRequest,
                    "subject_token_type is required",
                ));
            }
            Some(_) => {
                return Err(invalid(
                    Code::InvalidRequest,
                    "subject_token_type must be urn:ietf:params:oauth:token-type:jwt (a Tessera session token)",
                ));
            }
        }
        if params.actor_token.is_some() {
            return Err(invalid(
                Code::InvalidRequest,
                "delegation (actor_token) is not supported",
            ));
        }
        if params
            .requested_token_type
            .as_deref()
            .is_some_and(|t| t != ACCESS_TOKEN_TYPE && t != JWT_TOKEN_TYPE)
        {
            return Err(invalid(
                Code::InvalidRequest,
                "only access tokens are issued",
            ));
        }
        let target = match (params.audience.as_deref(), params.resource.as_deref()) {
            (Some(a), Some(r)) if a != r => {
                return Err(invalid(
                    Code::InvalidTarget,
                    "audience and resource name different targets",
                ));
            }
            (Some(target), _) | (None, Some(target)) => target,
            (None, None) => client.audience.as_str(),
        };
        let audience = Audience::parse(target)
            .map_err(|_| invalid(Code::InvalidTarget, "the target is not a valid audience"))?;
        let scopes = match params.scope.as_deref() {
            None => None,
            Some(raw) => Some(
                parse_scope_tokens(raw)?
                    .into_iter()
                    .map(|s| crate::domain::Scope::parse(&s))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| invalid(Code::InvalidScope, "a scope is malformed"))?,
            ),
        };
        let verified = sessions.verify(subject).map_err(|_| {
            invalid(
                Code::InvalidGrant,
                "the subject token is not a valid Tessera session token",
            )
        })?;
        let access = sessions
            .authorize(
                &verified,
                AuthorizationRequest {
                    audience: Some(audience),
                    scopes,
                    client_id: Some(client.id.clone()),
                    oauth_scopes: Some(Vec::new()),
                },
            )
            .await?;
        Ok(TokenResponse {
            access_token: access.token,
            token_type: "Bearer",
            expires_in: access.lifetime,
            scope: access.scope.unwrap_or_default(),
            refresh_token: None,
            id_token: None,
            issued_token_type: Some(ACCESS_TOKEN_TYPE),
        })
    }

    /// The one audit entry of a grant to a user's client: what was issued,
    /// to whom, for which session.
    async fn record_grant(
        &self,
        now: DateTime<Utc>,
        client: &OAuthClient,
        grant: &str,
        context: &AuthorizationContext,
        access: &Authorized,
    ) {
        let user = &context.user;
        self.audit
            .record(
                audit::entry("oauth.token", "success", now)
                    .user(&user.username, Some(user.id))
                    .detail(format!(
                        "client {} grant {grant} audience {} scope [{}] session {}",
                        client.id,
                        client.audience,
                        access.scope.as_deref().unwrap_or_default(),
                        context.session.id
                    )),
            )
            .await;
    }

    // --- Revocation (RFC 7009) and introspection -----------------------

    /// Revokes a refresh token of `client` and its family. An unknown or
    /// foreign token changes nothing and is no error (RFC 7009 §2.2); an
    /// access token cannot be revoked alone (`unsupported_token_type`): it
    /// expires within minutes, and ending its session ends it.
    pub async fn revoke(
        &self,
        sessions: &Sessions,
        client: &OAuthClient,
        token: &str,
    ) -> Result<(), OAuthError> {
        let now = sessions.now();
        if let Some(found) = self.refresh_family(token).await? {
            if found.client_id == client.id && family_issued(&found, token, &hex_sha256(token)) {
                self.store
                    .revoke_refresh_family(found.family_id, now)
                    .await?;
                tracing::info!(client_id = %client.id, "Refresh token revoked");
            }
            return Ok(());
        }
        if sessions.check_authorization(token, None).await.is_ok() {
            return Err(invalid(
                Code::UnsupportedTokenType,
                "access tokens expire on their own; revoke the refresh token or end the session",
            ));
        }
        Ok(())
    }

    /// A refresh token's introspection (RFC 7662 §2.2) when it is active:
    /// neither used nor revoked, and its session live.
    pub async fn introspect_refresh(
        &self,
        sessions: &Sessions,
        token: &str,
    ) -> Result<Option<serde_json::Value>, OAuthError> {
        if token.contains('.') {
            return Ok(None);
        }
        let Some(found) = self.refresh_family(token).await? else {
            return Ok(None);
        };
        if found.token_hash != hex_sha256(token) || found.revoked_at.is_some() {
            return Ok(None);
        }
        // As the database has it now: a token of a client disabled on any
        // replica is inactive at once.
        let Some(client) = self.read_client(&found.client_id).await? else {
            return Ok(None);
        };
        let audience = client_audience(&client)?;
        let context = match sessions.live_context(found.session_id, &audience).await {
            Ok(context) => context,
            Err(SessionError::NotLive(_)) => return Ok(None),
            Err(other) => return Err(other.into()),
        };
        Ok(Some(serde_json::json!({
            "active": true,
            "token": "refresh_token",
            "client_id": found.client_id,
            "scope": found.scope,
            "sub": context.user.id.to_string(),
            "username": context.user.username,
            "sid": context.session.id.to_string(),
            "iss": sessions.policy().issuer,
            "iat": found.rotated_at.timestamp(),
        })))
    }

    /// The client and session an `id_token_hint` names, if it is an ID
    /// token Tessera signed (expired or not: RP-Initiated Logout §2).
    pub fn hint(&self, sessions: &Sessions, hint: &str) -> Option<Hint> {
        let claims =
            tokens::verify_id_token_hint(hint, &self.keys.current(), &sessions.policy().issuer)
                .ok()?;
        Some(Hint {
            client_id: claims.aud,
            sid: claims.sid,
        })
    }

    /// A registered, active client as the database has it now, for
    /// introspection and the logout endpoint: a token of a client disabled
    /// on any replica is inactive at once.
    pub async fn client(&self, id: &str) -> Result<Option<OAuthClient>, OAuthError> {
        self.read_client(id).await
    }
}

/// RFC 6749 §3.1.2.3 and RFC 9700 §2.1: the redirect URI is one of the
/// client's, compared as a simple string. For a public (native) client a
/// loopback `http` URI matches with any port (RFC 8252 §7.3), since the
/// app's port is chosen when it runs.
pub fn redirect_uri_is_registered(client: &OAuthClient, uri: &str) -> bool {
    let native = client.secret_hash.is_none();
    client.redirect_uris.iter().any(|registered| {
        registered == uri
            || (native
                && without_loopback_port(registered).is_some()
                && without_loopback_port(registered) == without_loopback_port(uri))
    })
}

/// A loopback `http` URI as a string with its port removed; `None` for
/// any other URI. Only the port goes: the rest is compared as sent.
fn without_loopback_port(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("http://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = match authority.rfind(':') {
        Some(colon) if !authority[colon..].contains(']') => {
            let port = &authority[colon + 1..];
            if !port.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            &authority[..colon]
        }
        _ => authority,
    };
    let ip: std::net::IpAddr = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .parse()
        .ok()?;
    ip.is_loopback().then(|| format!("http://{host}{tail}"))
}

/// RFC 6749 §3.3: space-separated tokens of `%x21 / %x23-5B / %x5D-7E`.
fn parse_scope_tokens(raw: &str) -> Result<Vec<String>, OAuthError> {
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    let mut tokens = Vec::new();
    for token in raw.split(' ') {
        let valid = !token.is_empty()
            && token.len() <= 200
            && token
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if !valid {
            return Err(invalid(Code::InvalidScope, "the scope is malformed"));
        }
        if !tokens.iter().any(|t| t == token) {
            tokens.push(token.to_owned());
        }
    }
    Ok(tokens)
}

/// The OpenID Connect scopes and the audience scopes of a request,
/// refusing a scope the client may not ask for (`invalid_scope`). A client
/// registered with no scopes may ask for any at its audience.
fn split_scopes(raw: &str, client: &OAuthClient) -> Result<(Vec<String>, Vec<String>), OAuthError> {
    let (openid, audience) = partition(parse_scope_tokens(raw)?);
    if !client.scopes.is_empty()
        && let Some(_) = audience.iter().find(|s| !client.scopes.contains(s))
    {
        return Err(invalid(
            Code::InvalidScope,
            "the client may not ask for one of the scopes",
        ));
    }
    Ok((openid, audience))
}

fn partition(tokens: Vec<String>) -> (Vec<String>, Vec<String>) {
    let mut openid: Vec<String> = OPENID_SCOPES
        .iter()
        .filter(|s| tokens.iter().any(|t| t == *s))
        .map(|s| (*s).to_owned())
        .collect();
    openid.dedup();
    let audience = tokens
        .into_iter()
        .filter(|t| !OPENID_SCOPES.contains(&t.as_str()))
        .collect();
    (openid, audience)
}

/// A stored scope string, split as [`partition`] does.
fn scope_parts(scope: &str) -> (Vec<String>, Vec<String>) {
    partition(
        scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

fn joined(openid: &[String], audience: &[String]) -> String {
    openid
        .iter()
        .chain(audience)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The audience scopes an access token carries: those asked for (else the
/// client's, else all), of those the user holds now.
fn audience_scopes_for(client: &OAuthClient, asked: &[String], held: &[String]) -> Vec<String> {
    let wanted: &[String] = if !asked.is_empty() {
        asked
    } else {
        &client.scopes
    };
    let mut scopes: Vec<String> = held
        .iter()
        .filter(|s| wanted.is_empty() || wanted.contains(s))
        .cloned()
        .collect();
    scopes.sort();
    scopes.dedup();
    scopes
}

fn client_audience(client: &OAuthClient) -> Result<Audience, OAuthError> {
    Audience::parse(&client.audience)
        .map_err(|e| OAuthError::from(anyhow::anyhow!("stored audience: {e}")))
}

/// RFC 7636 §4.2: 43 characters of base64url, the SHA-256 of a verifier.
fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// RFC 7636 §4.1 and §4.6: the verifier is 43 to 128 unreserved characters
/// whose SHA-256, in base64url, is the challenge. Compared in constant
/// time.
fn pkce_matches(challenge: &str, verifier: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !well_formed {
        return false;
    }
    let computed = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
    constant_time::verify_slices_are_equal(computed.as_bytes(), challenge.as_bytes()).is_ok()
}

/// A fresh code or refresh token: 256 random bits, base64url.
/// The OpenID Connect and audience scopes a refresh asks for in `raw`,
/// within those first granted (`granted`, space-separated). RFC 6749 §6: a
/// narrower scope may be asked for, never a wider; the new refresh token
/// keeps the old one's scope.
fn narrowed_scope(
    client: &OAuthClient,
    granted: &str,
    raw: &str,
) -> Result<(Vec<String>, Vec<String>), OAuthError> {
    let (openid, granted) = scope_parts(granted);
    let (o, a) = split_scopes(raw, client)?;
    // Without audience scopes asked for at first, the client's own were
    // granted (all, for a client with none).
    let wider = |s: &String| {
        if granted.is_empty() {
            !client.scopes.is_empty() && !client.scopes.contains(s)
        } else {
            !granted.contains(s)
        }
    };
    if o.iter().any(|s| !openid.contains(s)) || a.iter().any(wider) {
        return Err(invalid(
            Code::InvalidScope,
            "the scope is wider than the one first granted",
        ));
    }
    Ok((o, a))
}

/// What a redeemed code must match (RFC 6749 §4.1.3, RFC 7636 §4.6): its
/// client, its lifetime, its redirect URI and its PKCE challenge.
fn check_exchange(
    code: &AuthorizationCode,
    client: &OAuthClient,
    redirect_uri: &str,
    params: &TokenParams,
    now: DateTime<Utc>,
) -> Result<(), OAuthError> {
    if code.client_id != client.id || code.expires_at <= now {
        return Err(invalid(
            Code::InvalidGrant,
            "the code is invalid, expired or used",
        ));
    }
    if code.redirect_uri != redirect_uri {
        return Err(invalid(
            Code::InvalidGrant,
            "redirect_uri differs from the authorization request's",
        ));
    }
    match (&code.code_challenge, params.code_verifier.as_deref()) {
        (Some(challenge), Some(verifier)) if pkce_matches(challenge, verifier) => Ok(()),
        (Some(_), Some(_)) => Err(invalid(
            Code::InvalidGrant,
            "the code_verifier does not match",
        )),
        (Some(_), None) => Err(invalid(Code::InvalidGrant, "code_verifier is required")),
        // OAuth 2.1 §4.1.3: a verifier for a code issued without a
        // challenge is refused.
        (None, Some(_)) => Err(invalid(
            Code::InvalidGrant,
            "the authorization request had no code_challenge",
        )),
        (None, None) => Ok(()),
    }
}

/// Whether `token` (hashed: `hash`) was one of the family's: its current
/// token, one of its last rotations spent, or one of the 43-character form,
/// which only a token issued in that form finds (by its hash).
fn family_issued(family: &RefreshFamily, token: &str, hash: &str) -> bool {
    named_family(token).is_none()
        || family.token_hash == hash
        || family.spent.iter().any(|h| h == hash)
}

/// A refresh token names its family: 32 hex digits of the family id, then
/// 256 random bits (43 base64url characters). Tokens of the 43-character
/// form, the random part alone, name none: their family is stored with
/// their hash.
fn refresh_token_of(family: Uuid) -> Result<String, OAuthError> {
    Ok(format!("{}{}", family.simple(), random_token()?))
}

const LEGACY_REFRESH_TOKEN_LEN: usize = 43;

/// The family a refresh token names, if it is of the current form.
fn named_family(token: &str) -> Option<Uuid> {
    let (family, random) = token.split_at_checked(32)?;
    if random.len() != LEGACY_REFRESH_TOKEN_LEN
        || !family
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    Uuid::try_parse(family).ok()
}

/// A fresh code or refresh token: 256 random bits, base64url.
fn random_token() -> Result<String, OAuthError> {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes).map_err(|_| anyhow::anyhow!("the system's random source failed"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn hex_sha256(value: &str) -> String {
    clients::hex_sha256(value.as_bytes())
}

/// A client id as sent, safe for a log line: at most 64 printable
/// characters.
fn printable(id: &str) -> String {
    id.chars().filter(|c| !c.is_control()).take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_token_of_the_current_form_names_a_family() {
        let family = Uuid::new_v4();
        let token = refresh_token_of(family).unwrap();
        assert_eq!(token.len(), 75);
        assert_eq!(named_family(&token), Some(family));
        let random = "A".repeat(43);
        for other in [
            random.clone(),
            format!("{}{}", family.simple().to_string().to_uppercase(), random),
            format!("{}{}", family.simple(), &random[1..]),
            format!("{}{}A", family.simple(), random),
            format!("{}{}", "g".repeat(32), random),
            "é".repeat(40),
            format!("{}{}", "é".repeat(16), random),
            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln".to_owned(),
            String::new(),
        ] {
            assert_eq!(named_family(&other), None, "{other}");
        }
    }

    #[test]
    fn pkce_s256_matches_the_rfc_7636_example() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(is_s256_challenge(challenge));
        assert!(pkce_matches(challenge, verifier));
        assert!(!pkce_matches(challenge, &verifier.replace('d', "e")));
        assert!(!pkce_matches(challenge, "short"));
        assert!(!pkce_matches(challenge, challenge));
    }

    #[test]
    fn scopes_follow_rfc_6749_syntax() {
        assert_eq!(
            parse_scope_tokens("openid email read").unwrap(),
            ["openid", "email", "read"]
        );
        for bad in ["openid  email", " openid", "a\"b", "a\\b", "é", "a\tb"] {
            assert!(parse_scope_tokens(bad).is_err(), "{bad:?}");
        }
        let (openid, audience) = partition(parse_scope_tokens("read openid profile").unwrap());
        assert_eq!(openid, ["openid", "profile"]);
        assert_eq!(audience, ["read"]);
    }

    #[test]
    fn loopback_redirects_match_with_any_port_and_nothing_else_does() {
        let client = OAuthClient {
            id: "app".into(),
            secret_hash: None,
            redirect_uris: vec![
                "http://127.0.0.1:8000/cb".into(),
                "https://app.example.com/cb".into(),
            ],
            post_logout_redirect_uris: Vec::new(),
            audience: "tessera".into(),
            scopes: Vec::new(),
            grant_types: Vec::new(),
            required_grant: None,
            is_active: true,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        let ok = |uri| redirect_uri_is_registered(&client, uri);
        assert!(ok("http://127.0.0.1:8000/cb"));
        assert!(ok("http://127.0.0.1:51234/cb"));
        assert!(ok("http://127.0.0.1/cb"));
        assert!(ok("https://app.example.com/cb"));
        assert!(!ok("http://127.0.0.1:8000/cb/"));
        assert!(!ok("http://127.0.0.1:8000/cb?x=1"));
        assert!(!ok("http://127.0.0.2:8000/cb"));
        assert!(!ok("https://app.example.com/cb/"));
        assert!(!ok("https://app.example.com:8443/cb"));
        assert!(!ok("https://app.example.com/cb?x=1"));
    }
}
