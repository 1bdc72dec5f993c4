//! The store of users, grants and sessions, behind one trait so that each
//! database backend is a file of its own and routes never name a database.
//! What the backends share is written once (`rows.rs`, `sql.rs`,
//! `shared.rs`, `portable.rs`); each backend file holds its dialect.
//!
//! Timestamps are UTC; ids are UUIDs. The store never reads a clock: every
//! time it writes or compares with comes from the caller, as `now`.
//!
//! User names are unique by their key (NFKC, lower case) and by their
//! confusable skeleton (Unicode TR39), both kept in columns with a unique
//! index, so that two replicas cannot race two look-alike names in. SQL cannot compute either: users stored before
//! the skeleton existed get theirs, and today's key, from the backend's
//! `fold_usernames` when it migrates, before anything is served. A user
//! whose folded name an older user already holds keeps the key it had and
//! no skeleton, and keeps logging in by its exact name. Nothing here logs a
//! password hash.

mod portable;
mod postgres;
mod rows;
mod shared;
mod sql;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::configuration::DatabaseKind;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub email: Option<String>,
    pub password_hash: String,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("is_active", &self.is_active)
            .finish_non_exhaustive()
    }
}

/// A registered OAuth 2.0 / OpenID Connect client.
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthClient {
    pub id: String,
    /// SHA-256 of the secret, hex; `None` for a public client.
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// The audience of its access tokens.
    pub audience: String,
    /// The scopes it may ask for at that audience.
    pub scopes: Vec<String>,
    pub grant_types: Vec<String>,
    /// The grant a user must hold to use it: audience and scope.
    pub required_grant: Option<(String, String)>,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("id", &self.id)
            .field("confidential", &self.secret_hash.is_some())
            .field("redirect_uris", &self.redirect_uris)
            .field("audience", &self.audience)
            .field("grant_types", &self.grant_types)
            .field("is_active", &self.is_active)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub audience: String,
    pub scope: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: Uuid,
    pub user_id: Uuid,
    pub client_id: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub kid: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The `jti` of the session's current token: set at login, replaced by
    /// a refresh. `None` for sessions older than it, whose every token is
    /// accepted until their first refresh.
    pub token_id: Option<String>,
}

impl Session {
    /// Neither revoked nor past its expiry.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }
}

pub struct NewUser<'a> {
    pub username: &'a str,
    pub email: Option<&'a str>,
    pub password_hash: &'a str,
}

pub struct NewSession<'a> {
    /// Chosen by the caller, so the token can be signed before the session
    /// is stored: the insert is the commit point of a login.
    pub id: Uuid,
    pub user_id: Uuid,
    pub client_id: &'a str,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub kid: &'a str,
    pub expires_at: Option<DateTime<Utc>>,
    /// The `jti` of the session's token: only the current token of a
    /// session is accepted, and a refresh replaces it.
    pub token_id: &'a str,
}

/// An entry of the revocation feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub seq: i64,
    /// `session_revoked`, `user_disabled` or `user_enabled`.
    pub kind: String,
    /// The session id or user id.
    pub subject: String,
    pub at: DateTime<Utc>,
}

impl Revocation {
    fn from_row((seq, kind, subject, at): (i64, String, String, DateTime<Utc>)) -> Self {
        Self {
            seq,
            kind,
            subject,
            at,
        }
    }
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    /// e.g. `login`, `authorize`, `logout`, `user.disabled`, `grant.added`.
    pub event: String,
    /// `success`, or why it failed (`wrong_password`, `unknown_user`, …).
    pub outcome: String,
    pub username: Option<String>,
    pub user_id: Option<Uuid>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// Free text: the audience, the scopes, the session id.
    pub detail: String,
}

/// A grant with its user, as exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserGrant {
    pub user_id: Uuid,
    pub audience: String,
    pub scope: String,
    pub created_at: DateTime<Utc>,
}

/// Everything a store holds, for moving an installation between backends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dump {
    pub users: Vec<User>,
    pub grants: Vec<UserGrant>,
    pub sessions: Vec<Session>,
    pub clients: Vec<OAuthClient>,
}

/// An authorization code to store: what its one exchange must match.
pub struct NewAuthorizationCode<'a> {
    /// SHA-256 of the code, hex.
    pub code_hash: &'a str,
    pub client_id: &'a str,
    pub session_id: Uuid,
    pub redirect_uri: &'a str,
    /// The granted scopes, space-separated.
    pub scope: &'a str,
    pub nonce: Option<&'a str>,
    /// The PKCE `S256` challenge, when the client sent one.
    pub code_challenge: Option<&'a str>,
    pub expires_at: DateTime<Utc>,
}

/// A stored authorization code.
#[derive(Debug, Clone)]
pub struct AuthorizationCode {
    pub client_id: String,
    pub session_id: Uuid,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub expires_at: DateTime<Utc>,
    /// The refresh-token family its exchange started.
    pub family_id: Option<Uuid>,
}

/// What redeeming a code found.
#[derive(Debug)]
pub enum Redemption {
    /// This is the code's one use. With the code's session, its user and
    /// their scopes at the audience, read by the same round trip.
    First {
        code: AuthorizationCode,
        context: Box<AuthorizationContext>,
    },
    /// The code was used before: a replay.
    Replayed(AuthorizationCode),
    Unknown,
}

/// What a code's exchange records with it: the refresh-token family it
/// starts, and that family's first token when the client may refresh.
#[derive(Clone, Copy)]
pub struct CodeExchange<'a> {
    pub family_id: Uuid,
    /// SHA-256 of the family's first token, hex.
    pub refresh_token_hash: Option<&'a str>,
}

/// A refresh-token family: every token rotated from one code exchange, of
/// which only the current one is accepted.
#[derive(Debug, Clone)]
pub struct RefreshFamily {
    pub family_id: Uuid,
    /// SHA-256 of the current token, hex.
    pub token_hash: String,
    pub client_id: String,
    pub session_id: Uuid,
    pub scope: String,
    pub created_at: DateTime<Utc>,
    pub rotated_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// SHA-256 of the tokens the last [`SPENT_KEPT`] rotations spent,
    /// newest first.
    pub spent: Vec<String>,
}

/// How many spent tokens a refresh-token family remembers: one presented
/// again within that many rotations is known for reuse.
pub const SPENT_KEPT: usize = 16;

/// A refresh token presented for rotation, and the one to replace it.
pub struct RefreshRotation<'a> {
    pub family_id: Uuid,
    /// SHA-256 of the presented token, hex.
    pub presented_hash: &'a str,
    /// SHA-256 of its replacement, hex.
    pub new_hash: &'a str,
    pub client_id: &'a str,
    /// The audience whose scopes the context carries.
    pub audience: &'a str,
}

/// What rotating a refresh token found.
#[derive(Debug)]
pub enum Rotation {
    /// It was the family's current token, of the client, unrevoked: its
    /// replacement is now current. With the family's session, its user and
    /// their scopes at the audience, read by the same round trip.
    Rotated {
        family: RefreshFamily,
        context: Box<AuthorizationContext>,
    },
    /// The family exists, but the token is not its current one, is
    /// another client's, or the family is revoked.
    Stale(RefreshFamily),
    Unknown,
}

/// A session with its user and the user's scopes at one audience: all that
/// issuing an authorization token needs, in one round trip.
#[derive(Debug, Clone)]
pub struct AuthorizationContext {
    pub session: Session,
    pub user: User,
    pub scopes: Vec<String>,
}

/// What [`Store::session_grant`] found.
#[derive(Debug, Clone)]
pub struct SessionGrant {
    pub session: Session,
    pub user: User,
    /// Whether the user holds the scope now.
    pub granted: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a user with that name, or a name that looks like it, already exists")]
    UsernameTaken,
    #[error("no such user")]
    UserNotFound,
    #[error("a client with that id already exists")]
    ClientIdTaken,
    #[error("the database is unavailable")]
    Unavailable,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            // The database is down or out of reach: say so, do not fail as
            // if something were broken.
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => {
                tracing::warn!(error = %error, "The database is unavailable");
                Self::Unavailable
            }
            // A connection cut mid-handshake reads as a protocol error.
            sqlx::Error::Protocol(_) => {
                tracing::error!(error = %error, "The database connection broke");
                Self::Unavailable
            }
            // Two transactions waited on each other, or the database was
            // too busy to take the write: nothing was done, and a retry
            // can succeed.
            sqlx::Error::Database(ref db)
                if db
                    .code()
                    .is_some_and(|code| TRANSIENT_DATABASE_ERRORS.contains(&code.as_ref())) =>
            {
                tracing::warn!(error = %error, "The database refused a transaction for now");
                Self::Unavailable
            }
            other => Self::Unexpected(other.into()),
        }
    }
}

/// Database error codes that say "not now", not "wrong": Postgres'
/// deadlock_detected, serialization_failure and lock_not_available (a
/// `lock_timeout` ran out), SQLite's SQLITE_BUSY and SQLITE_LOCKED (with
/// their extended codes).
const TRANSIENT_DATABASE_ERRORS: &[&str] =
    &["40P01", "40001", "55P03", "5", "6", "261", "262", "517"];

/// `UserNotFound` for a foreign key violation: a row that names a user
/// (a grant, a session) arrived after the user was deleted.
fn on_missing_user(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::UserNotFound,
        _ => error.into(),
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies pending migrations, then folds the user names stored before
    /// the current key and skeleton.
    async fn migrate(&self) -> anyhow::Result<()>;
    /// Whether the database answers.
    async fn ping(&self) -> StoreResult<()>;
    /// Connections in the pool: (open, idle).
    fn pool_status(&self) -> (u32, usize);

    async fn count_users(&self) -> StoreResult<i64>;
    async fn create_user(&self, user: NewUser<'_>, now: DateTime<Utc>) -> StoreResult<User>;
    /// Finds a user by name: the user of exactly that name, else the one
    /// whose key it folds to ([`username_key`]), so `ＡＤＭＩＮ` finds
    /// `admin`.
    async fn find_user_by_name(&self, username: &str) -> StoreResult<Option<User>>;
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    /// Users in name order, `limit` of them after skipping `offset`.
    async fn list_users_page(&self, offset: i64, limit: i64) -> StoreResult<Vec<User>>;
    async fn find_user_by_id(&self, id: Uuid) -> StoreResult<Option<User>>;
    /// Deletes a user with their grants and sessions, and records it in the
    /// revocation feed (as `user_disabled`) so verifiers refuse their
    /// outstanding tokens; returns whether there was such a user.
    async fn delete_user(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<bool>;
    /// Every session of a user, newest first.
    async fn sessions_of_user(&self, user_id: Uuid) -> StoreResult<Vec<Session>>;
    /// Revokes every live session of a user ("log out everywhere"), each
    /// recorded in the revocation feed; returns the sessions revoked.
    async fn revoke_user_sessions(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Uuid>>;
    /// Replaces a user's password and, in the same transaction, revokes
    /// every live session of theirs but `keep` (the session making the
    /// change, if any), each recorded in the revocation feed: whoever knew
    /// the old password is logged out. Returns the sessions revoked.
    async fn set_password_hash(
        &self,
        user_id: Uuid,
        password_hash: &str,
        keep: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Uuid>>;
    /// Replaces `current`, the hash a login has just verified, with the same
    /// password hashed under new parameters; sessions stay. Returns whether
    /// it did: not when the password was changed in the meantime, which
    /// must not be undone.
    async fn upgrade_password_hash(
        &self,
        user_id: Uuid,
        current: &str,
        upgraded: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Enables or disables a user, recording it in the revocation feed.
    /// Disabling also revokes every live session of theirs, in the same
    /// transaction, so that enabling the user again revives none; returns
    /// the sessions revoked.
    async fn set_active(
        &self,
        user_id: Uuid,
        active: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Uuid>>;

    /// Adds grants; existing ones are kept as they are. `UserNotFound` when
    /// the user is gone.
    async fn add_grants(
        &self,
        user_id: Uuid,
        audience: &str,
        scopes: &[String],
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Removes grants; returns how many there were.
    async fn remove_grants(
        &self,
        user_id: Uuid,
        audience: &str,
        scopes: &[String],
    ) -> StoreResult<u64>;
    async fn grants(&self, user_id: Uuid) -> StoreResult<Vec<Grant>>;

    /// `UserNotFound` when the user is gone.
    async fn create_session(
        &self,
        session: NewSession<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<Session>;
    async fn find_session(&self, id: Uuid) -> StoreResult<Option<(Session, User)>>;
    /// The session, its user and whether the user holds `scope` at
    /// `audience` now, in one query (the grant by its primary key); records
    /// nothing. For checking a caller's authority on every call.
    async fn session_grant(
        &self,
        id: Uuid,
        audience: &str,
        scope: &str,
    ) -> StoreResult<Option<SessionGrant>>;
    /// The session, its user and the user's scopes at `audience`; records
    /// the use at most once a minute.
    async fn authorization_context(
        &self,
        id: Uuid,
        audience: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<AuthorizationContext>>;
    /// Revokes a live session and records it in the revocation feed;
    /// returns whether one was revoked.
    async fn revoke_session(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<bool>;
    /// Feed entries after sequence number `after` and newer than `since`,
    /// oldest first, up to and with the latest sequence number in the feed:
    /// a client that asks again from it misses nothing. Entries are
    /// numbered in commit order.
    async fn revocations(
        &self,
        after: i64,
        since: DateTime<Utc>,
    ) -> StoreResult<(Vec<Revocation>, i64)>;

    /// Counts a login attempt, before its password is checked, as a
    /// failure on every counter, in one transaction: unless a counter blocks
    /// attempts at `now`, in which case nothing is counted and the first such
    /// counter is named. A counter whose last failure is before its
    /// `window_start` starts over. After counting, `block(index, failures)`
    /// says until when counter `index` blocks further attempts, if it does.
    /// Reservations of one counter are serialized: each sees the counts and
    /// blocks of those before it, on every replica.
    async fn reserve_login_attempt(
        &self,
        counters: &[ThrottleCounter<'_>],
        now: DateTime<Utc>,
        block: &(dyn Fn(usize, i64) -> Option<DateTime<Utc>> + Send + Sync),
    ) -> StoreResult<Reservation>;
    /// Takes one counted attempt back from `key` (never below zero), and
    /// lifts its block when `unblock`, as when the attempt taken back is
    /// the one that set it.
    async fn release_login_attempt(&self, key: &str, unblock: bool) -> StoreResult<()>;
    /// Forgets every counter of the user name of `keys`: the account's,
    /// then the per-address ones, each statement holding one kind of row
    /// (reservations take the account's first), so that it never waits on a
    /// reservation in a circle.
    async fn clear_login_failures(&self, keys: &ThrottleKeys<'_>) -> StoreResult<()>;

    async fn append_audit(&self, entries: &[AuditEntry]) -> StoreResult<()>;
    /// The latest `limit` audit entries, oldest first.
    async fn audit_tail(&self, limit: i64) -> StoreResult<Vec<AuditEntry>>;

    /// Makes `new_token_id` the session's current token, signed by `kid`,
    /// if the session is live and `current` is still its token (or it has
    /// none recorded); returns whether it did. Of two refreshes with one
    /// token, one wins.
    async fn replace_session_token(
        &self,
        id: Uuid,
        current: &str,
        new_token_id: &str,
        kid: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// How many sessions live at `now` (neither revoked nor expired) each
    /// key signed, by kid.
    async fn count_live_sessions_by_kid(
        &self,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<(String, i64)>>;
    /// The live sessions whose token `kid` signed.
    async fn live_sessions_signed_by(
        &self,
        kid: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Uuid>>;
    /// Revokes every live session whose token `kid` signed; returns how many.
    async fn revoke_sessions_signed_by(&self, kid: &str, now: DateTime<Utc>) -> StoreResult<u64>;

    /// `ClientIdTaken` when the id is registered already.
    async fn create_oauth_client(&self, client: &OAuthClient) -> StoreResult<()>;
    /// Every registered client, by id (byte order, on both backends).
    async fn oauth_clients(&self) -> StoreResult<Vec<OAuthClient>>;
    async fn find_oauth_client(&self, id: &str) -> StoreResult<Option<OAuthClient>>;
    /// Replaces a confidential client's secret hash; false when no such
    /// client.
    async fn set_oauth_client_secret(
        &self,
        id: &str,
        secret_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// False when no such client.
    async fn set_oauth_client_active(
        &self,
        id: &str,
        active: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// False when no such client.
    async fn delete_oauth_client(&self, id: &str) -> StoreResult<bool>;

    async fn create_authorization_code(
        &self,
        code: NewAuthorizationCode<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Marks the code used if this is its first use, and starts the
    /// refresh-token family of its exchange with it, in one step: a replay
    /// that comes meanwhile finds the family there to revoke. A replay marks
    /// the code replayed.
    async fn redeem_authorization_code(
        &self,
        code_hash: &str,
        exchange: CodeExchange<'_>,
        audience: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Redemption>;
    /// Replaces the family's current token with `new_hash` if the presented
    /// one is current, `client_id`'s and unrevoked, and remembers it as
    /// spent, in one step: of two rotations with one token, one wins.
    async fn rotate_refresh_token(
        &self,
        rotation: RefreshRotation<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<Rotation>;
    async fn find_refresh_family(&self, family_id: Uuid) -> StoreResult<Option<RefreshFamily>>;
    /// The family of a token of the 43-character form, which names none.
    async fn legacy_refresh_family(&self, token_hash: &str) -> StoreResult<Option<Uuid>>;
    /// Revokes the family; whether it was live.
    async fn revoke_refresh_family(&self, family_id: Uuid, now: DateTime<Utc>)
    -> StoreResult<bool>;

    /// Everything, ids, hashes and times included.
    async fn export(&self) -> StoreResult<Dump>;
    /// Adds everything of `dump`, in one transaction: all or nothing.
    async fn import(&self, dump: &Dump) -> StoreResult<()>;
}

/// A user name's throttle counters, as keys.
pub struct ThrottleKeys<'a> {
    /// The keys from `user_from` up to, not including, `user_until` in byte
    /// order (an index range, never a scan of the table), and `account`.
    pub user_from: &'a str,
    pub user_until: &'a str,
    pub account: &'a str,
}

/// One counter a login attempt is counted on.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleCounter<'a> {
    pub key: &'a str,
    /// Failures before this are forgotten: the count starts over.
    pub window_start: DateTime<Utc>,
}

/// What [`Store::reserve_login_attempt`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The attempt is counted on every counter.
    Reserved,
    /// Counter `index` blocks attempts until `until`; nothing was counted.
    Blocked { index: usize, until: DateTime<Utc> },
}

/// The form of a user name that is unique, the same on every backend:
/// [`crate::domain::username_key`].
pub fn username_key(username: &str) -> String {
    crate::domain::username_key(username)
}

/// What the store keeps unique besides the key, so that no two users' names
/// look alike: [`crate::domain::username_skeleton`].
pub fn username_skeleton(username: &str) -> String {
    crate::domain::username_skeleton(username)
}

/// The key of user names stored before keys were NFKC-folded: plain
/// lower case. Imports write it, so that a dump from any version loads, and
/// the backends' `fold_usernames` bring it to today's form.
fn legacy_username_key(username: &str) -> String {
    username.to_lowercase()
}

/// Connects to the database named by `url`.
pub async fn connect(url: &SecretString, max_connections: u32) -> anyhow::Result<Arc<dyn Store>> {
    let url = url.expose_secret();
    match DatabaseKind::of(url) {
        Some(DatabaseKind::Postgres) => Ok(Arc::new(
            PostgresStore::connect(url, max_connections).await?,
        )),
        Some(DatabaseKind::Sqlite) => {
            Ok(Arc::new(SqliteStore::connect(url, max_connections).await?))
        }
        None => anyhow::bail!("unsupported database URL (expected sqlite:// or postgres://)"),
    }
}
