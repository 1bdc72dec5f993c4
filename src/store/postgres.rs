//! The Postgres backend: production's store.

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Executor, FromRow, PgPool};
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

use super::portable::{Dialect, Portable};
use super::rows::{self, LAST_USE_PRECISION, read_all, records_use, session_user_columns};
use super::sql;
use super::{
    AuditEntry, AuthorizationContext, Dump, Grant, NewSession, NewUser, Reservation, Revocation,
    Session, SessionGrant, Store, StoreError, StoreResult, ThrottleCounter, ThrottleKeys, User,
    on_missing_user, username_key, username_skeleton,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PostgresStore {
    pool: PgPool,
    /// The audit writer's own connection, which commits without waiting for
    /// the WAL to reach the disk (`synchronous_commit = off`): audit entries
    /// already wait in memory before they are written, so a crash may lose
    /// the latest either way, and each wait would cost a flush.
    audit: PgPool,
}

impl PostgresStore {
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let options = PgConnectOptions::from_str(url).context("invalid Postgres URL")?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(2))
            .connect_with(options.clone())
            .await
            .context("connecting to Postgres")?;
        // A `SET` after connecting rather than a startup option, which
        // connection poolers such as PgBouncer refuse.
        let audit = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(2))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("set synchronous_commit = off").await?;
                    Ok(())
                })
            })
            .connect_lazy_with(options);
        Ok(Self { pool, audit })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

type UserRow = rows::UserRow<Uuid, DateTime<Utc>>;
type SessionRow = rows::SessionRow<Uuid, DateTime<Utc>>;
type SessionUserRow = rows::SessionUserRow<Uuid, DateTime<Utc>>;
type AuditRow = rows::AuditRow<Uuid, DateTime<Utc>>;

fn on_unique_username(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(db)
            if matches!(
                db.constraint(),
                Some("users_username_key" | "users_username_skeleton_key")
            ) =>
        {
            StoreError::UsernameTaken
        }
        _ => error.into(),
    }
}

impl Dialect for PostgresStore {
    type Db = sqlx::Postgres;
    type Id = Uuid;
    type At = DateTime<Utc>;

    fn id(id: Uuid) -> Uuid {
        id
    }

    fn at(at: DateTime<Utc>) -> DateTime<Utc> {
        at
    }

    fn on_unique_username(error: sqlx::Error) -> StoreError {
        on_unique_username(error)
    }
}

/// Serializes writers of the revocation feed until their transaction ends,
/// so sequence numbers are taken in commit order and a reader that saw
/// number N has seen every number below it. Revocations are rare; the
/// wait is nothing.
async fn lock_feed(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>) -> sqlx::Result<()> {
    const REVOCATION_FEED_LOCK: i64 = 0x7e55_e7a0;
    sqlx::query("select pg_advisory_xact_lock($1)")
        .bind(REVOCATION_FEED_LOCK)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Revokes every live session of a user but `keep`, each recorded in the
/// feed; the caller holds the feed lock.
async fn revoke_sessions_of(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    user_id: Uuid,
    keep: Option<Uuid>,
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<Uuid>> {
    let revoked: Vec<Uuid> = sqlx::query_scalar(
        r#"
        update sessions set revoked_at = $3
        where user_id = $1 and revoked_at is null and id is distinct from $2::uuid
        returning id
        "#,
    )
    .bind(user_id)
    .bind(keep)
    .bind(now)
    .fetch_all(&mut **tx)
    .await?;
    let subjects: Vec<String> = revoked.iter().map(Uuid::to_string).collect();
    sqlx::query(
        "insert into revocations (kind, subject, at) select 'session_revoked', s, $2 from unnest($1::text[]) as s",
    )
    .bind(&subjects)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(revoked)
}

#[async_trait]
impl Store for PostgresStore {
    async fn migrate(&self) -> anyhow::Result<()> {
        MIGRATOR
            .run(&self.pool)
            .await
            .context("migrating Postgres")?;
        Portable::<Self>::fold_usernames(&self.pool)
            .await
            .map_err(anyhow::Error::new)
            .context("folding user names")
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
    }

    fn pool_status(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    async fn count_users(&self) -> StoreResult<i64> {
        let count: i64 = sqlx::query_scalar(sql::COUNT_USERS)
            .fetch_one(&self.pool)
            .await?;
        Ok(count)
    }

    #[tracing::instrument(skip_all, fields(username = %user.username))]
    async fn create_user(&self, user: NewUser<'_>, now: DateTime<Utc>) -> StoreResult<User> {
        let row: UserRow = sqlx::query_as(
            r#"
            insert into users (id, username, username_key, username_skeleton, email,
                               password_hash, created_at, updated_at)
            values ($1, $2, $3, $4, $5, $6, $7, $7)
            returning id, username, email, password_hash, is_active, created_at, updated_at
            "#,
        )
        .bind(Uuid::new_v4())
        .bind(user.username)
        .bind(username_key(user.username))
        .bind(username_skeleton(user.username))
        .bind(user.email)
        .bind(user.password_hash)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(on_unique_username)?;
        Ok(row.try_into()?)
    }

    async fn find_user_by_name(&self, username: &str) -> StoreResult<Option<User>> {
        let row: Option<UserRow> = sqlx::query_as(sql::FIND_USER_BY_NAME)
            .bind(username)
            .bind(username_key(username))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(User::try_from).transpose()?)
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        let rows: Vec<UserRow> = sqlx::query_as(sql::LIST_USERS)
            .fetch_all(&self.pool)
            .await?;
        Ok(read_all(rows)?)
    }

    async fn list_users_page(&self, offset: i64, limit: i64) -> StoreResult<Vec<User>> {
        let rows: Vec<UserRow> = sqlx::query_as(sql::LIST_USERS_PAGE)
            .bind(offset)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(read_all(rows)?)
    }

    async fn find_user_by_id(&self, id: Uuid) -> StoreResult<Option<User>> {
        let row: Option<UserRow> = sqlx::query_as(sql::FIND_USER_BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(User::try_from).transpose()?)
    }

    async fn delete_user(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        lock_feed(&mut tx).await?;
        let done = sqlx::query(sql::DELETE_USER)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("insert into revocations (kind, subject, at) values ('user_disabled', $1, $2)")
            .bind(id.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn sessions_of_user(&self, user_id: Uuid) -> StoreResult<Vec<Session>> {
        let rows: Vec<SessionRow> = sqlx::query_as(sql::SESSIONS_OF_USER)
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(read_all(rows)?)
    }

    async fn revoke_user_sessions(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Uuid>> {
        let mut tx = self.pool.begin().await?;
        lock_feed(&mut tx).await?;
        let revoked = revoke_sessions_of(&mut tx, user_id, None, now).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    async fn set_password_hash(
        &self,
        user_id: Uuid,
        password_hash: &str,
        keep: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Uuid>> {
        let mut tx = self.pool.begin().await?;
        // The feed lock before the user's row, as in `set_active`.
        lock_feed(&mut tx).await?;
        let done =
            sqlx::query("update users set password_hash = $2, updated_at = $3 where id = $1")
                .bind(user_id)
                .bind(password_hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UserNotFound);
        }
        let revoked = revoke_sessions_of(&mut tx, user_id, keep, now).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    async fn upgrade_password_hash(
        &self,
        user_id: Uuid,
        current: &str,
        upgraded: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            r#"
            update users set password_hash = $3, updated_at = $4
            where id = $1 and password_hash = $2
            "#,
        )
        .bind(user_id)
        .bind(current)
        .bind(upgraded)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_active(
        &self,
        user_id: Uuid,
        active: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Uuid>> {
        let mut tx = self.pool.begin().await?;
        // The feed lock before the user's row, as every writer of the feed
        // takes them (`delete_user` locks the feed, then the row): the other
        // order deadlocks against a deletion.
        lock_feed(&mut tx).await?;
        let done = sqlx::query("update users set is_active = $2, updated_at = $3 where id = $1")
            .bind(user_id)
            .bind(active)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UserNotFound);
        }
        let revoked = if active {
            Vec::new()
        } else {
            revoke_sessions_of(&mut tx, user_id, None, now).await?
        };
        sqlx::query("insert into revocations (kind, subject, at) values ($1, $2, $3)")
            .bind(if active {
                "user_enabled"
            } else {
                "user_disabled"
            })
            .bind(user_id.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(revoked)
    }

    async fn add_grants(
        &self,
        user_id: Uuid,
        audience: &str,
        scopes: &[String],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            r#"
            insert into grants (user_id, audience, scope, created_at)
            select $1, $2, scope, $4 from unnest($3::text[]) as scope
            on conflict do nothing
            "#,
        )
        .bind(user_id)
        .bind(audience)
        .bind(scopes)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(on_missing_user)?;
        Ok(())
    }

    async fn remove_grants(
        &self,
        user_id: Uuid,
        audience: &str,
        scopes: &[String],
    ) -> StoreResult<u64> {
        let done = sqlx::query(
            "delete from grants where user_id = $1 and audience = $2 and scope = any($3)",
        )
        .bind(user_id)
        .bind(audience)
        .bind(scopes)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn grants(&self, user_id: Uuid) -> StoreResult<Vec<Grant>> {
        let rows: Vec<(String, String)> = sqlx::query_as(sql::GRANTS)
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(audience, scope)| Grant { audience, scope })
            .collect())
    }

    #[tracing::instrument(skip_all, fields(user_id = %session.user_id))]
    async fn create_session(
        &self,
        session: NewSession<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<Session> {
        let row: SessionRow = sqlx::query_as(
            r#"
            insert into sessions (id, user_id, client_id, ip, user_agent, kid, created_at,
                                  last_used_at, expires_at, token_id)
            values ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9)
            returning id, user_id, client_id, ip, user_agent, kid, created_at,
                      last_used_at, expires_at, revoked_at, token_id
            "#,
        )
        .bind(session.id)
        .bind(session.user_id)
        .bind(session.client_id)
        .bind(session.ip)
        .bind(session.user_agent)
        .bind(session.kid)
        .bind(now)
        .bind(session.expires_at)
        .bind(session.token_id)
        .fetch_one(&self.pool)
        .await
        .map_err(on_missing_user)?;
        Ok(row.try_into()?)
    }

    async fn find_session(&self, id: Uuid) -> StoreResult<Option<(Session, User)>> {
        let row: Option<SessionUserRow> = sqlx::query_as(sql::FIND_SESSION)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(SessionUserRow::split).transpose()?)
    }

    async fn session_grant(
        &self,
        id: Uuid,
        audience: &str,
        scope: &str,
    ) -> StoreResult<Option<SessionGrant>> {
        #[derive(FromRow)]
        struct Row {
            #[sqlx(flatten)]
            joined: SessionUserRow,
            granted: bool,
        }
        let row: Option<Row> = sqlx::query_as(sql::SESSION_GRANT)
            .bind(id)
            .bind(audience)
            .bind(scope)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let (session, user) = row.joined.split()?;
        Ok(Some(SessionGrant {
            session,
            user,
            granted: row.granted,
        }))
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
            scopes: Vec<String>,
        }
        // One round trip: the session, its user and their scopes, read only.
        let row: Option<Row> = sqlx::query_as(concat!(
            "select ",
            session_user_columns!(),
            r#",
                   array(select g.scope from grants g
                         where g.user_id = s.user_id and g.audience = $2
                         order by g.scope) as scopes
            from sessions s join users u on u.id = s.user_id
            where s.id = $1
            "#
        ))
        .bind(id)
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
                r#"
                update sessions set last_used_at = $2
                where id = $1 and revoked_at is null and last_used_at < $3
                "#,
            )
            .bind(id)
            .bind(now)
            .bind(now - LAST_USE_PRECISION)
            .execute(&self.pool)
            .await?;
        }
        Ok(Some(AuthorizationContext {
            session,
            user,
            scopes: row.scopes,
        }))
    }

    async fn revoke_session(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<bool> {
        // The revocation and its feed entry in one statement: both or neither.
        let mut tx = self.pool.begin().await?;
        lock_feed(&mut tx).await?;
        let done = sqlx::query(
            r#"
            with revoked as (
                update sessions set revoked_at = $2
                where id = $1 and revoked_at is null
                returning id
            )
            insert into revocations (kind, subject, at)
            select 'session_revoked', id::text, $2 from revoked
            "#,
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn revocations(
        &self,
        after: i64,
        since: DateTime<Utc>,
    ) -> StoreResult<(Vec<Revocation>, i64)> {
        let latest: i64 = sqlx::query_scalar(sql::LATEST_REVOCATION)
            .fetch_one(&self.pool)
            .await?;
        let rows: Vec<(i64, String, String, DateTime<Utc>)> = sqlx::query_as(sql::REVOCATIONS)
            .bind(after)
            .bind(latest)
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        Ok((rows.into_iter().map(Revocation::from_row).collect(), latest))
    }

    async fn reserve_login_attempt(
        &self,
        counters: &[ThrottleCounter<'_>],
        now: DateTime<Utc>,
        block: &(dyn Fn(usize, i64) -> Option<DateTime<Utc>> + Send + Sync),
    ) -> StoreResult<Reservation> {
        let mut tx = self.pool.begin().await?;
        for (index, counter) in counters.iter().enumerate() {
            // The upsert locks the counter's row until the commit, so a
            // concurrent reservation waits and then sees this one's count
            // and block. A blocked counter is left as it is: no row returns.
            let failures: Option<i32> = sqlx::query_scalar(sql::COUNT_LOGIN_FAILURE)
                .bind(counter.key)
                .bind(now)
                .bind(counter.window_start)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(failures) = failures else {
                // The refused upsert still locked the row: it is there.
                let until: Option<DateTime<Utc>> = sqlx::query_scalar(sql::BLOCKED_UNTIL)
                    .bind(counter.key)
                    .fetch_optional(&mut *tx)
                    .await?
                    .flatten();
                // Dropping the transaction rolls back what was counted.
                return Ok(Reservation::Blocked {
                    index,
                    until: until.unwrap_or(now),
                });
            };
            if let Some(until) = block(index, i64::from(failures)) {
                sqlx::query(sql::SET_BLOCKED_UNTIL)
                    .bind(counter.key)
                    .bind(until)
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
                failures = greatest(failures - 1, 0),
                blocked_until = case when $2 then null else blocked_until end
            where key = $1
            "#,
        )
        .bind(key)
        .bind(unblock)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn clear_login_failures(&self, keys: &ThrottleKeys<'_>) -> StoreResult<()> {
        sqlx::query(sql::CLEAR_LOGIN_FAILURES)
            .bind(keys.account)
            .execute(&self.pool)
            .await?;
        sqlx::query(sql::CLEAR_LOGIN_FAILURES_IN_RANGE)
            .bind(keys.user_from)
            .bind(keys.user_until)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn append_audit(&self, entries: &[AuditEntry]) -> StoreResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        // One statement for any batch size, so that it is prepared once per
        // connection: the columns go as arrays and `unnest` zips them.
        let mut at = Vec::with_capacity(entries.len());
        let mut event = Vec::with_capacity(entries.len());
        let mut outcome = Vec::with_capacity(entries.len());
        let mut username = Vec::with_capacity(entries.len());
        let mut user_id = Vec::with_capacity(entries.len());
        let mut ip = Vec::with_capacity(entries.len());
        let mut user_agent = Vec::with_capacity(entries.len());
        let mut detail = Vec::with_capacity(entries.len());
        for e in entries {
            at.push(e.at);
            event.push(e.event.as_str());
            outcome.push(e.outcome.as_str());
            username.push(e.username.as_deref());
            user_id.push(e.user_id);
            ip.push(e.ip.as_deref());
            user_agent.push(e.user_agent.as_deref());
            detail.push(e.detail.as_str());
        }
        sqlx::query(
            r#"
            insert into audit_log (at, event, outcome, username, user_id, ip, user_agent, detail)
            select * from unnest(
                $1::timestamptz[], $2::text[], $3::text[], $4::text[],
                $5::uuid[], $6::text[], $7::text[], $8::text[]
            )
            "#,
        )
        .bind(at)
        .bind(event)
        .bind(outcome)
        .bind(username)
        .bind(user_id)
        .bind(ip)
        .bind(user_agent)
        .bind(detail)
        .execute(&self.audit)
        .await?;
        Ok(())
    }

    async fn audit_tail(&self, limit: i64) -> StoreResult<Vec<AuditEntry>> {
        let mut rows: Vec<AuditRow> = sqlx::query_as(sql::AUDIT_TAIL)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.reverse();
        Ok(read_all(rows)?)
    }

    async fn replace_session_token(
        &self,
        id: Uuid,
        current: &str,
        new_token_id: &str,
        kid: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            r#"
            update sessions set token_id = $3, kid = $4
            where id = $1 and revoked_at is null
              and (expires_at is null or expires_at > $5)
              and (token_id = $2 or token_id is null)
            "#,
        )
        .bind(id)
        .bind(current)
        .bind(new_token_id)
        .bind(kid)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn count_live_sessions_by_kid(
        &self,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<(String, i64)>> {
        let counts = sqlx::query_as(sql::COUNT_LIVE_SESSIONS_BY_KID)
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        Ok(counts)
    }

    async fn live_sessions_signed_by(
        &self,
        kid: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Uuid>> {
        let ids = sqlx::query_scalar(sql::LIVE_SESSIONS_SIGNED_BY)
            .bind(kid)
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        Ok(ids)
    }

    async fn revoke_sessions_signed_by(&self, kid: &str, now: DateTime<Utc>) -> StoreResult<u64> {
        // The revocations and their feed entries in one statement.
        let mut tx = self.pool.begin().await?;
        lock_feed(&mut tx).await?;
        let done = sqlx::query(
            r#"
            with revoked as (
                update sessions set revoked_at = $2
                where kid = $1 and revoked_at is null
                  and (expires_at is null or expires_at > $2)
                returning id
            )
            insert into revocations (kind, subject, at)
            select 'session_revoked', id::text, $2 from revoked
            "#,
        )
        .bind(kid)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn export(&self) -> StoreResult<Dump> {
        Portable::<Self>::export(&self.pool).await
    }

    async fn import(&self, dump: &Dump) -> StoreResult<()> {
        Portable::<Self>::import(&self.pool, dump).await
    }
}
