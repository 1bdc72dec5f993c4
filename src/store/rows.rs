//! Rows as both backends read them, and the rules both apply to them.
//!
//! A row is generic over how its backend stores ids and timestamps
//! (Postgres' `uuid` and `timestamptz`, SQLite's text): [`Stored`] reads
//! such a value into its domain type, and each backend names its own
//! row types. Nothing here knows a dialect.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::FromRow;
use uuid::Uuid;

use super::{AuditEntry, AuthorizationCode, OAuthClient, RefreshFamily, Session, User, UserGrant};

/// A value as a backend stores it, read into the domain type `T`.
pub(super) trait Stored<T> {
    fn read(self) -> anyhow::Result<T>;
}

impl Stored<Uuid> for Uuid {
    fn read(self) -> anyhow::Result<Uuid> {
        Ok(self)
    }
}

impl Stored<DateTime<Utc>> for DateTime<Utc> {
    fn read(self) -> anyhow::Result<DateTime<Utc>> {
        Ok(self)
    }
}

impl<S: Stored<T>, T> Stored<Option<T>> for Option<S> {
    fn read(self) -> anyhow::Result<Option<T>> {
        self.map(S::read).transpose()
    }
}

/// Reads every row of `rows`, failing on the first that does not read.
pub(super) fn read_all<R: TryInto<T, Error = anyhow::Error>, T>(
    rows: Vec<R>,
) -> anyhow::Result<Vec<T>> {
    rows.into_iter().map(R::try_into).collect()
}

/// The columns of a [`UserRow`], for `concat!` into static queries.
macro_rules! user_columns {
    () => {
        "id, username, email, password_hash, is_active, created_at, updated_at"
    };
}
pub(super) use user_columns;

/// The columns of a [`SessionRow`], for `concat!` into static queries.
macro_rules! session_columns {
    () => {
        "id, user_id, client_id, ip, user_agent, kid, created_at, \
         last_used_at, expires_at, revoked_at, token_id"
    };
}
pub(super) use session_columns;

/// The columns of a [`SessionUserRow`] (sessions `s` joined with users `u`),
/// for `concat!` into static queries.
macro_rules! session_user_columns {
    () => {
        r#"
        s.id, s.user_id, s.client_id, s.ip, s.user_agent, s.kid, s.created_at,
        s.last_used_at, s.expires_at, s.revoked_at, s.token_id,
        u.username as u_username, u.email as u_email, u.password_hash as u_password_hash,
        u.is_active as u_is_active, u.created_at as u_created_at, u.updated_at as u_updated_at
        "#
    };
}
pub(super) use session_user_columns;

#[derive(FromRow)]
pub(super) struct UserRow<Id, At> {
    id: Id,
    username: String,
    email: Option<String>,
    password_hash: String,
    is_active: bool,
    created_at: At,
    updated_at: At,
}

impl<Id: Stored<Uuid>, At: Stored<DateTime<Utc>>> TryFrom<UserRow<Id, At>> for User {
    type Error = anyhow::Error;
    fn try_from(r: UserRow<Id, At>) -> anyhow::Result<Self> {
        Ok(User {
            id: r.id.read()?,
            username: r.username,
            email: r.email,
            password_hash: r.password_hash,
            is_active: r.is_active,
            created_at: r.created_at.read()?,
            updated_at: r.updated_at.read()?,
        })
    }
}

/// The columns of an [`OAuthClientRow`], for `concat!` into static queries.
macro_rules! oauth_client_columns {
    () => {
        "id, secret_hash, redirect_uris, post_logout_redirect_uris, audience, scopes, \
         grant_types, required_grant_audience, required_grant_scope, is_active, \
         created_at, updated_at"
    };
}
pub(super) use oauth_client_columns;

/// A client, its lists as JSON arrays (both dialects store them alike).
#[derive(FromRow)]
pub(super) struct OAuthClientRow<At> {
    id: String,
    secret_hash: Option<String>,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    audience: String,
    scopes: String,
    grant_types: String,
    required_grant_audience: Option<String>,
    required_grant_scope: Option<String>,
    is_active: bool,
    created_at: At,
    updated_at: At,
}

/// A stored list of strings.
pub(super) fn json_list(list: &[String]) -> String {
    serde_json::Value::from(list).to_string()
}

fn read_list(column: &str, text: &str) -> anyhow::Result<Vec<String>> {
    serde_json::from_str(text).with_context(|| format!("stored {column} {text:?}"))
}

impl<At: Stored<DateTime<Utc>>> TryFrom<OAuthClientRow<At>> for OAuthClient {
    type Error = anyhow::Error;
    fn try_from(r: OAuthClientRow<At>) -> anyhow::Result<Self> {
        Ok(OAuthClient {
            redirect_uris: read_list("redirect_uris", &r.redirect_uris)?,
            post_logout_redirect_uris: read_list(
                "post_logout_redirect_uris",
                &r.post_logout_redirect_uris,
            )?,
            scopes: read_list("scopes", &r.scopes)?,
            grant_types: read_list("grant_types", &r.grant_types)?,
            required_grant: r.required_grant_audience.zip(r.required_grant_scope),
            id: r.id,
            secret_hash: r.secret_hash,
            audience: r.audience,
            is_active: r.is_active,
            created_at: r.created_at.read()?,
            updated_at: r.updated_at.read()?,
        })
    }
}

#[derive(FromRow)]
pub(super) struct SessionRow<Id, At> {
    id: Id,
    user_id: Id,
    client_id: String,
    ip: Option<String>,
    user_agent: Option<String>,
    kid: String,
    created_at: At,
    last_used_at: At,
    expires_at: Option<At>,
    revoked_at: Option<At>,
    token_id: Option<String>,
}

impl<Id: Stored<Uuid>, At: Stored<DateTime<Utc>>> TryFrom<SessionRow<Id, At>> for Session {
    type Error = anyhow::Error;
    fn try_from(r: SessionRow<Id, At>) -> anyhow::Result<Self> {
        Ok(Session {
            id: r.id.read()?,
            user_id: r.user_id.read()?,
            client_id: r.client_id,
            ip: r.ip,
            user_agent: r.user_agent,
            kid: r.kid,
            created_at: r.created_at.read()?,
            last_used_at: r.last_used_at.read()?,
            expires_at: r.expires_at.read()?,
            revoked_at: r.revoked_at.read()?,
            token_id: r.token_id,
        })
    }
}

/// A session joined with its user, columns of the user prefixed `u_`.
#[derive(FromRow)]
pub(super) struct SessionUserRow<Id, At> {
    #[sqlx(flatten)]
    session: SessionRow<Id, At>,
    u_username: String,
    u_email: Option<String>,
    u_password_hash: String,
    u_is_active: bool,
    u_created_at: At,
    u_updated_at: At,
}

impl<Id: Stored<Uuid>, At: Stored<DateTime<Utc>>> SessionUserRow<Id, At> {
    pub(super) fn split(self) -> anyhow::Result<(Session, User)> {
        let session: Session = self.session.try_into()?;
        let user = User {
            id: session.user_id,
            username: self.u_username,
            email: self.u_email,
            password_hash: self.u_password_hash,
            is_active: self.u_is_active,
            created_at: self.u_created_at.read()?,
            updated_at: self.u_updated_at.read()?,
        };
        Ok((session, user))
    }
}

#[derive(FromRow)]
pub(super) struct GrantRow<Id, At> {
    user_id: Id,
    audience: String,
    scope: String,
    created_at: At,
}

impl<Id: Stored<Uuid>, At: Stored<DateTime<Utc>>> TryFrom<GrantRow<Id, At>> for UserGrant {
    type Error = anyhow::Error;
    fn try_from(r: GrantRow<Id, At>) -> anyhow::Result<Self> {
        Ok(UserGrant {
            user_id: r.user_id.read()?,
            audience: r.audience,
            scope: r.scope,
            created_at: r.created_at.read()?,
        })
    }
}

#[derive(FromRow)]
pub(super) struct AuditRow<Id, At> {
    at: At,
    event: String,
    outcome: String,
    username: Option<String>,
    user_id: Option<Id>,
    ip: Option<String>,
    user_agent: Option<String>,
    detail: String,
}

impl<Id: Stored<Uuid>, At: Stored<DateTime<Utc>>> TryFrom<AuditRow<Id, At>> for AuditEntry {
    type Error = anyhow::Error;
    fn try_from(r: AuditRow<Id, At>) -> anyhow::Result<Self> {
        Ok(AuditEntry {
            at: r.at.read()?,
            event: r.event,
            outcome: r.outcome,
            username: r.username,
            user_id: r.user_id.read()?,
            ip: r.ip,
            user_agent: r.user_agent,
            detail: r.detail,
        })
    }
}

/// How long a session's recorded last use may lag behind: the hot path of
/// authorization writes at most once in this time.
pub(super) const LAST_USE_PRECISION: chrono::Duration = chrono::Duration::seconds(60);

/// Whether an authorization at `now` records the use of `session`: a live
/// session whose last use is older than [`LAST_USE_PRECISION`].
pub(super) fn records_use(session: &Session, now: DateTime<Utc>) -> bool {
    session.revoked_at.is_none() && now - session.last_used_at > LAST_USE_PRECISION
}

/// The columns of a [`CodeRow`], for `concat!` into static queries.
macro_rules! code_columns {
    () => {
        "client_id, session_id, redirect_uri, scope, nonce, code_challenge, expires_at, \
         used_at, family_id"
    };
}
pub(super) use code_columns;

#[derive(FromRow)]
pub(super) struct CodeRow<Id, At> {
    client_id: String,
    session_id: Id,
    redirect_uri: String,
    scope: String,
    nonce: Option<String>,
    code_challenge: Option<String>,
    expires_at: At,
    used_at: Option<At>,
    family_id: Option<Id>,
}

impl<Id: Stored<Uuid>, At: Stored<DateTime<Utc>>> CodeRow<Id, At> {
    /// The code, and whether it had been used.
    pub(super) fn read(self) -> anyhow::Result<(AuthorizationCode, bool)> {
        let used = self.used_at.is_some();
        Ok((
            AuthorizationCode {
                client_id: self.client_id,
                session_id: self.session_id.read()?,
                redirect_uri: self.redirect_uri,
                scope: self.scope,
                nonce: self.nonce,
                code_challenge: self.code_challenge,
                expires_at: self.expires_at.read()?,
                family_id: self.family_id.read()?,
            },
            used,
        ))
    }
}

/// The length of a family's `spent` column: [`super::SPENT_KEPT`] hex
/// SHA-256 hashes and the spaces between them.
pub(super) const SPENT_TEXT_LEN: i32 = (super::SPENT_KEPT * 65 - 1) as i32;

/// The columns of a [`FamilyRow`], for `concat!` into static queries.
macro_rules! family_columns {
    () => {
        "family_id, token_hash, client_id, session_id, scope, created_at, rotated_at, revoked_at, \
         spent"
    };
}
pub(super) use family_columns;

#[derive(FromRow)]
pub(super) struct FamilyRow<Id, At> {
    family_id: Id,
    token_hash: String,
    client_id: String,
    session_id: Id,
    scope: String,
    created_at: At,
    rotated_at: At,
    revoked_at: Option<At>,
    spent: String,
}

impl<Id: Stored<Uuid>, At: Stored<DateTime<Utc>>> TryFrom<FamilyRow<Id, At>> for RefreshFamily {
    type Error = anyhow::Error;
    fn try_from(r: FamilyRow<Id, At>) -> anyhow::Result<Self> {
        Ok(RefreshFamily {
            family_id: r.family_id.read()?,
            token_hash: r.token_hash,
            client_id: r.client_id,
            session_id: r.session_id.read()?,
            scope: r.scope,
            created_at: r.created_at.read()?,
            rotated_at: r.rotated_at.read()?,
            revoked_at: r.revoked_at.read()?,
            spent: r.spent.split_whitespace().map(str::to_owned).collect(),
        })
    }
}
