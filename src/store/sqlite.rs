//! The SQLite backend: the default, so that Tessera runs on a bare machine.
//!
//! One file in WAL mode with a busy timeout, foreign keys on. Ids are stored
//! as hyphenated UUID text and timestamps as fixed-width RFC 3339 UTC text
//! (see the migration), converted here at the edge of each query.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{FromRow, SqlitePool};
use uuid::Uuid;

use super::portable::{Dialect, Portable};
use super::rows::{
    self, SPENT_TEXT_LEN, Stored, code_columns, family_columns, oauth_client_columns, read_all,
    records_use, session_user_columns,
};
use super::shared::impl_store;
use super::sql;
use super::{
    AuditEntry, AuthorizationCode, AuthorizationContext, CodeExchange, Dump, Grant,
    NewAuthorizationCode, NewSession, NewUser, OAuthClient, Redemption, RefreshFamily,
    RefreshRotation, Reservation, Revocation, Rotation, Session, SessionGrant, Store, StoreError,
    StoreResult, ThrottleCounter, ThrottleKeys, User, on_missing_user, username_key,
    username_skeleton,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// The code's first use: marks it used and starts its refresh-token
    /// family in one transaction (of concurrent exchanges, exactly one sets
    /// `used_at`), then reads its session, the user and their scopes at
    /// `audience`.
    async fn redeem_first(
        &self,
        code_hash: &str,
        exchange: CodeExchange<'_>,
        audience: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(AuthorizationCode, AuthorizationContext)>> {
        let mut tx = self.pool.begin().await?;
        let row: Option<CodeRow> = sqlx::query_as(concat!(
            "update oauth_codes set used_at = ?2, family_id = ?3 \
             where code_hash = ?1 and used_at is null returning ",
            code_columns!()
        ))
        .bind(code_hash)
        .bind(ts(now))
        .bind(exchange.family_id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        if let Some(token_hash) = exchange.refresh_token_hash {
            sqlx::query(
                "insert into oauth_refresh_families (family_id, token_hash, client_id, \
                 session_id, scope, created_at, rotated_at) \
                 select family_id, ?2, client_id, session_id, scope, ?3, ?3 \
                 from oauth_codes where code_hash = ?1",
            )
            .bind(code_hash)
            .bind(token_hash)
            .bind(ts(now))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        let (code, _) = row.read()?;
        // The session row outlives the code (a foreign key).
        let context = self
            .authorization_context(code.session_id, audience, now)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the code's session is missing"))?;
        Ok(Some((code, context)))
    }

    /// Opens (creating if missing) the database file named by `url`,
    /// e.g. `sqlite://tessera.db`.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .context("invalid SQLite URL")?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        // A relative path is the working directory's: say which file it is,
        // and say it loudly when it is not there yet, since a typo in the
        // URL would otherwise start over on an empty database unnoticed.
        let path = std::path::absolute(options.get_filename())
            .unwrap_or_else(|_| options.get_filename().to_path_buf());
        if !in_memory {
            if path.exists() {
                tracing::info!("using the SQLite database at {}", path.display());
            } else {
                tracing::warn!("creating new SQLite database at {}", path.display());
            }
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(2))
            .connect_with(options)
            .await
            .with_context(|| format!("opening the SQLite database at {}", path.display()))?;
        Ok(Self { pool })
    }
}

/// A timestamp in the stored form.
fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_ts(text: &str) -> anyhow::Result<DateTime<Utc>> {
    Ok(DateTime::parse_from_rfc3339(text)
        .with_context(|| format!("stored timestamp {text:?}"))?
        .with_timezone(&Utc))
}

fn parse_opt_ts(text: Option<String>) -> anyhow::Result<Option<DateTime<Utc>>> {
    text.as_deref().map(parse_ts).transpose()
}

fn parse_id(text: &str) -> anyhow::Result<Uuid> {
    Uuid::parse_str(text).with_context(|| format!("stored id {text:?}"))
}

impl Stored<Uuid> for String {
    fn read(self) -> anyhow::Result<Uuid> {
        parse_id(&self)
    }
}

impl Stored<DateTime<Utc>> for String {
    fn read(self) -> anyhow::Result<DateTime<Utc>> {
        parse_ts(&self)
    }
}

/// How ids and timestamps are stored: as text (RFC 3339 times, in
/// microseconds, which sort as they compare).
type Id = String;
type At = String;
type UserRow = rows::UserRow<String, String>;
type SessionRow = rows::SessionRow<String, String>;
type SessionUserRow = rows::SessionUserRow<String, String>;
type OAuthClientRow = rows::OAuthClientRow<String>;
type AuditRow = rows::AuditRow<String, String>;
type CodeRow = rows::CodeRow<String, String>;
type FamilyRow = rows::FamilyRow<String, String>;

fn on_unique_username(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(db)
            if db.is_unique_violation()
                && (db.message().contains("users.username_key")
                    || db.message().contains("users.username_skeleton")) =>
        {
            StoreError::UsernameTaken
        }
        _ => error.into(),
    }
}

impl Dialect for SqliteStore {
    type Db = sqlx::Sqlite;
    type Id = String;
    type At = String;

    fn id(id: Uuid) -> String {
        id.to_string()
    }

    fn at(at: DateTime<Utc>) -> String {
        ts(at)
    }

    fn on_unique_username(error: sqlx::Error) -> StoreError {
        on_unique_username(error)
    }
}

/// The revocation feed needs no lock of its own: a SQLite writer holds the
/// database's write lock until it commits. (Postgres takes an advisory
/// lock here; the shared methods call both alike.)
async fn lock_feed(_: &mut sqlx::Transaction<'_, sqlx::Sqlite>) -> sqlx::Result<()> {
    Ok(())
}

/// Revokes every live session of a user but `keep`, each recorded in the
/// feed, within the caller's transaction.
async fn revoke_sessions_of(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    user_id: Uuid,
    keep: Option<Uuid>,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<Uuid>> {
    let now = ts(now);
    let revoked: Vec<String> = sqlx::query_scalar(
        r#"
        update sessions set revoked_at = ?2
        where user_id = ?1 and revoked_at is null and id is not ?3
        returning id
        "#,
    )
    .bind(user_id.to_string())
    .bind(&now)
    .bind(keep.map(|id| id.to_string()))
    .fetch_all(&mut **tx)
    .await?;
    for id in &revoked {
        sqlx::query(
            "insert into revocations (kind, subject, at) values ('session_revoked', ?1, ?2)",
        )
        .bind(id)
        .bind(&now)
        .execute(&mut **tx)
        .await?;
    }
    revoked.iter().map(|id| parse_id(id)).collect()
}

// This backend's `impl Store`: its dialect methods here, the shared ones
// in `shared.rs`.
impl_store! { SqliteStore {
    async fn migrate(&self) -> anyhow::Result<()> {
        MIGRATOR.run(&self.pool).await.context("migrating SQLite")?;
        Portable::<Self>::fold_usernames(&self.pool)
            .await
            .map_err(anyhow::Error::new)
            .context("folding user names")
    }

    async fn add_grants(
        &self,
        user_id: Uuid,
        audience: &str,
        scopes: &[String],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let now = ts(now);
        let mut tx = self.pool.begin().await?;
        for scope in scopes {
            sqlx::query(
                r#"
                insert into grants (user_id, audience, scope, created_at)
                values (?1, ?2, ?3, ?4)
                on conflict do nothing
                "#,
            )
            .bind(user_id.to_string())
            .bind(audience)
            .bind(scope)
            .bind(&now)
            .execute(&mut *tx)
            .await
            .map_err(on_missing_user)?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn remove_grants(
        &self,
        user_id: Uuid,
        audience: &str,
        scopes: &[String],
    ) -> StoreResult<u64> {
        let mut removed = 0;
        let mut tx = self.pool.begin().await?;
        for scope in scopes {
            let done = sqlx::query(
                "delete from grants where user_id = ?1 and audience = ?2 and scope = ?3",
            )
            .bind(user_id.to_string())
            .bind(audience)
            .bind(scope)
            .execute(&mut *tx)
            .await?;
            removed += done.rows_affected();
        }
        tx.commit().await?;
        Ok(removed)
    }

    async fn authorization_context(
        &self,
        id: Uuid,
        audience: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<AuthorizationContext>> {
        #[derive(FromRow)]
        struct Row {
            #[sqlx(flatten)]
            joined: SessionUserRow,
            // Scopes hold no whitespace, so a space separates them.
            scopes: Option<String>,
        }
        let row: Option<Row> = sqlx::query_as(concat!(
            "select ",
            session_user_columns!(),
            r#",
                   (select group_concat(scope, ' ') from
                       (select g.scope from grants g
                        where g.user_id = s.user_id and g.audience = ?2
                        order by g.scope)) as scopes
            from sessions s join users u on u.id = s.user_id
            where s.id = ?1
            "#
        ))
        .bind(id.to_string())
        .bind(audience)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let (session, user) = row.joined.split()?;
        // Record the use at most once a minute, so the hot path rarely writes.
        if records_use(&session, now) {
            sqlx::query(
                "update sessions set last_used_at = ?2 where id = ?1 and revoked_at is null",
            )
            .bind(id.to_string())
            .bind(ts(now))
            .execute(&self.pool)
            .await?;
        }
        let scopes = row
            .scopes
            .map(|s| s.split(' ').map(str::to_owned).collect())
            .unwrap_or_default();
        Ok(Some(AuthorizationContext {
            session,
            user,
            scopes,
        }))
    }

    async fn rotate_refresh_token(
        &self,
        rotation: RefreshRotation<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<Rotation> {
        // One statement: SQLite's write lock serializes rotations.
        let row: Option<FamilyRow> = sqlx::query_as(concat!(
            "update oauth_refresh_families set token_hash = ?3, rotated_at = ?5, \
             spent = substr(?2 || ' ' || spent, 1, ?6) \
             where family_id = ?1 and token_hash = ?2 and client_id = ?4 \
             and revoked_at is null returning ",
            family_columns!()
        ))
        .bind(rotation.family_id.to_string())
        .bind(rotation.presented_hash)
        .bind(rotation.new_hash)
        .bind(rotation.client_id)
        .bind(ts(now))
        .bind(SPENT_TEXT_LEN)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(match self.find_refresh_family(rotation.family_id).await? {
                Some(family) => Rotation::Stale(family),
                None => Rotation::Unknown,
            });
        };
        let family = RefreshFamily::try_from(row)?;
        // The session row outlives the family (a foreign key), so the
        // context is there.
        let context = self
            .authorization_context(family.session_id, rotation.audience, now)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the family's session is missing"))?;
        Ok(Rotation::Rotated {
            family,
            context: Box::new(context),
        })
    }

    async fn revoke_session(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<bool> {
        let now = ts(now);
        // The revocation and its feed entry in one transaction.
        let mut tx = self.pool.begin().await?;
        let done =
            sqlx::query("update sessions set revoked_at = ?2 where id = ?1 and revoked_at is null")
                .bind(id.to_string())
                .bind(&now)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(
            "insert into revocations (kind, subject, at) values ('session_revoked', ?1, ?2)",
        )
        .bind(id.to_string())
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn reserve_login_attempt(
        &self,
        counters: &[ThrottleCounter<'_>],
        now: DateTime<Utc>,
        block: &(dyn Fn(usize, i64) -> Option<DateTime<Utc>> + Send + Sync),
    ) -> StoreResult<Reservation> {
        // The first statement writes, so the transaction holds the
        // database's write lock from its start to its commit: reservations
        // are serialized, each seeing the counts and blocks of those before.
        let mut tx = self.pool.begin().await?;
        for (index, counter) in counters.iter().enumerate() {
            // Timestamps are stored in one fixed-width UTC form, so text
            // order is time order. A blocked counter is left as it is: no
            // row returns.
            let failures: Option<i64> = sqlx::query_scalar(sql::COUNT_LOGIN_FAILURE)
                .bind(counter.key)
                .bind(ts(now))
                .bind(ts(counter.window_start))
                .fetch_optional(&mut *tx)
                .await?;
            let Some(failures) = failures else {
                let until: Option<String> = sqlx::query_scalar(sql::BLOCKED_UNTIL)
                    .bind(counter.key)
                    .fetch_optional(&mut *tx)
                    .await?
                    .flatten();
                // Dropping the transaction rolls back what was counted.
                return Ok(Reservation::Blocked {
                    index,
                    until: parse_opt_ts(until)?.unwrap_or(now),
                });
            };
            if let Some(until) = block(index, failures) {
                sqlx::query(sql::SET_BLOCKED_UNTIL)
                    .bind(counter.key)
                    .bind(ts(until))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(Reservation::Reserved)
    }

    async fn release_login_attempt(&self, key: &str, unblock: bool) -> StoreResult<()> {
        sqlx::query(
            r#"
            update login_throttle set
                failures = max(failures - 1, 0),
                blocked_until = case when ?2 then null else blocked_until end
            where key = ?1
            "#,
        )
        .bind(key)
        .bind(unblock)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn append_audit(&self, entries: &[AuditEntry]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for e in entries {
            sqlx::query(
                r#"
                insert into audit_log (at, event, outcome, username, user_id, ip, user_agent, detail)
                values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                "#,
            )
            .bind(ts(e.at))
            .bind(&e.event)
            .bind(&e.outcome)
            .bind(&e.username)
            .bind(e.user_id.map(|id| id.to_string()))
            .bind(&e.ip)
            .bind(&e.user_agent)
            .bind(&e.detail)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn revoke_sessions_signed_by(&self, kid: &str, now: DateTime<Utc>) -> StoreResult<u64> {
        let now = ts(now);
        // The revocations and their feed entries in one transaction.
        let mut tx = self.pool.begin().await?;
        let revoked: Vec<String> = sqlx::query_scalar(
            r#"
            update sessions set revoked_at = ?2
            where kid = ?1 and revoked_at is null and (expires_at is null or expires_at > ?2)
            returning id
            "#,
        )
        .bind(kid)
        .bind(&now)
        .fetch_all(&mut *tx)
        .await?;
        for id in &revoked {
            sqlx::query(
                "insert into revocations (kind, subject, at) values ('session_revoked', ?1, ?2)",
            )
            .bind(id)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(u64::try_from(revoked.len()).unwrap_or(u64::MAX))
    }
}}
