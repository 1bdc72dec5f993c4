//! The Postgres backend: production's store.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Executor, FromRow, PgPool};
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

use super::portable::{Dialect, Portable};
use super::rows::{
    self, LAST_USE_PRECISION, Stored, code_columns, family_columns, oauth_client_columns, read_all,
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

/// The user's scopes at the audience `$audience` (a parameter such as
/// `$2`, or a column), sorted, as the column `scopes` of a query joining
/// the session `s`.
macro_rules! audience_scopes {
    ($audience:literal) => {
        concat!(
            "array(select g.scope from grants g where g.user_id = s.user_id and g.audience = ",
            $audience,
            " order by g.scope) as scopes"
        )
    };
}

mod batches;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PostgresStore {
    pool: PgPool,
    /// The audit writer's own connection, which commits without waiting for
    /// the WAL to reach the disk (`synchronous_commit = off`): audit entries
    /// already wait in memory before they are written, so a crash may lose
    /// the latest either way, and each wait would cost a flush.
    audit: PgPool,
    /// Refresh-token rotations and code redemptions, written in batches,
    /// each on a connection of its own.
    rotations: batches::Batcher<batches::Rotation>,
    redemptions: batches::Batcher<batches::Redemption>,
}

impl PostgresStore {
    /// The context a read of a session, its user and their scopes found,
    /// recording the session's use (at most once a minute, so the hot path
    /// rarely writes).
    async fn context_of(
        &self,
        joined: SessionUserRow,
        scopes: Vec<String>,
        now: DateTime<Utc>,
    ) -> StoreResult<AuthorizationContext> {
        let (session, user) = joined.split()?;
        if records_use(&session, now) {
            self.record_session_use(session.id, now).await?;
        }
        Ok(AuthorizationContext {
            session,
            user,
            scopes,
        })
    }

    /// The code's first use: marks it used and starts its refresh-token
    /// family, and reads its session, the user and their scopes at
    /// `audience`, in one statement. Of concurrent exchanges, exactly one
    /// sets `used_at`; a replay waits for the code's row until this commits.
    async fn redeem_first(
        &self,
        code_hash: &str,
        exchange: CodeExchange<'_>,
        audience: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(AuthorizationCode, AuthorizationContext)>> {
        let row = self
            .redemptions
            .write(batches::Redemption {
                code_hash: code_hash.to_owned(),
                family_id: exchange.family_id,
                refresh_token_hash: exchange.refresh_token_hash.map(str::to_owned),
                audience: audience.to_owned(),
                now,
            })
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let context = self.context_of(row.joined, row.scopes, now).await?;
        let code = AuthorizationCode {
            client_id: row.c_client_id,
            session_id: context.session.id,
            redirect_uri: row.c_redirect_uri,
            scope: row.c_scope,
            nonce: row.c_nonce,
            code_challenge: row.c_code_challenge,
            expires_at: row.c_expires_at,
            family_id: Some(exchange.family_id),
        };
        Ok(Some((code, context)))
    }

    /// Records a use of the live session `id`: at most once a minute, so
    /// the hot path rarely writes.
    async fn record_session_use(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query(
            "update sessions set last_used_at = $2 \
             where id = $1 and revoked_at is null and last_used_at < $3",
        )
        .bind(id)
        .bind(now)
        .bind(now - LAST_USE_PRECISION)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let options = PgConnectOptions::from_str(url).context("invalid Postgres URL")?;
        let server = server_of(&options);
        // One plain connection first: the pool retries a refused connection
        // until its timeout and then reports only that it timed out.
        match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
            }
            Ok(Err(error)) => {
                return Err(anyhow::anyhow!(connect_failure(&error)))
                    .with_context(|| format!("connecting to Postgres at {server}"));
            }
            Err(_) => anyhow::bail!(
                "connecting to Postgres at {server}: no answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            ),
        }
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(2))
            .connect_with(options.clone())
            .await
            .with_context(|| format!("connecting to Postgres at {server}"))?;
        let audit = side_pool(&options, 1, "set synchronous_commit = off");
        // A batch that waits on a row lock holds every write behind it:
        // it gives up after a while, and its writes fail for now (503).
        let writes = side_pool(&options, 2, "set lock_timeout = '2s'");
        Ok(Self {
            rotations: batches::Batcher::start(writes.clone()),
            redemptions: batches::Batcher::start(writes),
            pool,
            audit,
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// A small pool of its own, each connection with `setting` (a `SET`
/// after connecting rather than a startup option, which connection
/// poolers such as PgBouncer refuse).
fn side_pool(options: &PgConnectOptions, connections: u32, setting: &'static str) -> PgPool {
    PgPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(Duration::from_secs(2))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                conn.execute(setting).await?;
                Ok(())
            })
        })
        .connect_lazy_with(options.clone())
}

/// How long the first connection may take before start-up gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where `options` connect: `host:port`, or the socket directory, and the
/// database; never the user or password.
fn server_of(options: &PgConnectOptions) -> String {
    let place = match options.get_socket() {
        Some(socket) => format!("socket {} (port {})", socket.display(), options.get_port()),
        None => format!("{}:{}", options.get_host(), options.get_port()),
    };
    match options.get_database() {
        Some(database) => format!("{place}, database {database}"),
        None => place,
    }
}

/// Why a connection failed, in the words of the failure: "connection
/// refused", or the server's own message, without its source line.
fn connect_failure(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
            std::io::ErrorKind::TimedOut => "timed out".to_owned(),
            _ => io.to_string(),
        },
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    }
}

/// How ids and timestamps are stored: natively.
type Id = Uuid;
type At = DateTime<Utc>;
type UserRow = rows::UserRow<Uuid, DateTime<Utc>>;
type SessionRow = rows::SessionRow<Uuid, DateTime<Utc>>;
type SessionUserRow = rows::SessionUserRow<Uuid, DateTime<Utc>>;
type OAuthClientRow = rows::OAuthClientRow<DateTime<Utc>>;
type AuditRow = rows::AuditRow<Uuid, DateTime<Utc>>;
type CodeRow = rows::CodeRow<Uuid, DateTime<Utc>>;
type FamilyRow = rows::FamilyRow<Uuid, DateTime<Utc>>;

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

// This backend's `impl Store`: its dialect methods here, the shared ones
// in `shared.rs`.
impl_store! { PostgresStore {
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
            ", ",
            audience_scopes!("$2"),
            r#"
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
        Ok(Some(self.context_of(row.joined, row.scopes, now).await?))
    }

    async fn rotate_refresh_token(
        &self,
        rotation: RefreshRotation<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<Rotation> {
        let row = self
            .rotations
            .write(batches::Rotation {
                family_id: rotation.family_id,
                presented_hash: rotation.presented_hash.to_owned(),
                new_hash: rotation.new_hash.to_owned(),
                client_id: rotation.client_id.to_owned(),
                audience: rotation.audience.to_owned(),
                now,
            })
            .await?;
        let Some(row) = row else {
            return Ok(match self.find_refresh_family(rotation.family_id).await? {
                Some(family) => Rotation::Stale(family),
                None => Rotation::Unknown,
            });
        };
        let context = self.context_of(row.joined, row.scopes, now).await?;
        let family = RefreshFamily {
            family_id: row.family_id,
            token_hash: rotation.new_hash.to_owned(),
            client_id: row.f_client_id,
            session_id: context.session.id,
            scope: row.f_scope,
            created_at: row.f_created_at,
            rotated_at: now,
            revoked_at: None,
            spent: row.f_spent.split_whitespace().map(str::to_owned).collect(),
        };
        Ok(Rotation::Rotated {
            family,
            context: Box::new(context),
        })
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
}}
