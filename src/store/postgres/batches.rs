//! The token endpoint's writes, many in one statement: refresh-token
//! rotations and code redemptions. Each is a durable write of one row;
//! under load, one statement and one commit for all those waiting cost the
//! database far less than one each. A write waits only while the statement
//! before it runs: alone, it goes at once.
//!
//! Concurrent writes of one row (a family rotated twice, a code redeemed
//! twice) land in one statement or in two in turn; either way only one of
//! them changes it (`UPDATE … FROM` updates a row once, whichever input
//! rows match it), and the others find it changed, as they would one by
//! one.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgPool};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::SessionUserRow;
use crate::store::rows::{SPENT_TEXT_LEN, session_user_columns};
use crate::store::{StoreError, StoreResult};

/// Writes in one statement at most.
const BATCH: usize = 64;
/// Writes waiting for a statement; past this, a write waits for room.
const QUEUE: usize = 1024;

/// A write that can share its statement with others of its kind.
pub(super) trait Batched: Sized + Send + Sync + 'static {
    /// What the statement returns for a write that changed its row.
    type Row: Send + 'static;
    /// What tells the writes of a batch, and their rows, apart.
    type Key: Eq + Hash + Send;
    fn key(&self) -> Self::Key;
    fn row_key(row: &Self::Row) -> Self::Key;
    /// The statement for the whole batch: a row for each write that did
    /// its change.
    fn write_all(
        pool: &PgPool,
        batch: &[Self],
    ) -> impl Future<Output = Result<Vec<Self::Row>, sqlx::Error>> + Send;
}

type Answer<T> = oneshot::Sender<StoreResult<Option<<T as Batched>::Row>>>;

/// The handle writes are sent through; its writer stops when the last
/// handle is dropped.
pub(super) struct Batcher<T: Batched> {
    sender: mpsc::Sender<(T, Answer<T>)>,
}

impl<T: Batched> Batcher<T> {
    pub fn start(pool: PgPool) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(write_in_batches(pool, receiver));
        Self { sender }
    }

    /// Does `write` with those waiting: its row, or `None` when it changed
    /// nothing.
    pub async fn write(&self, write: T) -> StoreResult<Option<T::Row>> {
        let (answer, answered) = oneshot::channel();
        let stopped = || StoreError::Unexpected(anyhow::anyhow!("the batch writer stopped"));
        self.sender
            .send((write, answer))
            .await
            .map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

async fn write_in_batches<T: Batched>(pool: PgPool, mut receiver: mpsc::Receiver<(T, Answer<T>)>) {
    let mut waiting = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut waiting, BATCH).await > 0 {
        // A write whose request has gone (its client hung up while it
        // waited) is not done: its token stays as it was, so that the
        // client's retry with it is no reuse.
        let (batch, answers): (Vec<T>, Vec<Answer<T>>) = waiting
            .drain(..)
            .filter(|(_, answer)| !answer.is_closed())
            .unzip();
        if batch.is_empty() {
            continue;
        }
        match T::write_all(&pool, &batch).await {
            Ok(rows) => answer(&batch, answers, rows),
            // The statement waited on rows that another waited on in turn
            // (another replica's batch, a client's deletion, a user's
            // deletion reaching their codes): Postgres undid it. One at a
            // time, each write takes a single row and rarely meets one
            // again; one that does gets the error.
            Err(error) if is_deadlock(&error) && batch.len() > 1 => {
                tracing::warn!(
                    writes = batch.len(),
                    "A batch of token writes deadlocked; writing them one at a time"
                );
                for (write, answer) in batch.chunks(1).zip(answers) {
                    match T::write_all(&pool, write).await {
                        Ok(mut rows) => {
                            let _ = answer.send(Ok(rows.pop()));
                        }
                        Err(error) => {
                            let _ = answer.send(Err(error.into()));
                        }
                    }
                }
            }
            Err(error) => {
                let error = StoreError::from(error);
                for answer in answers {
                    let _ = answer.send(Err(copy_of(&error)));
                }
            }
        }
    }
}

/// Gives each write of `batch` its row, or `None`.
fn answer<T: Batched>(batch: &[T], answers: Vec<Answer<T>>, rows: Vec<T::Row>) {
    let mut rows: HashMap<T::Key, T::Row> = rows
        .into_iter()
        .map(|row| (T::row_key(&row), row))
        .collect();
    for (write, answer) in batch.iter().zip(answers) {
        let _ = answer.send(Ok(rows.remove(&write.key())));
    }
}

fn is_deadlock(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("40P01"))
}

/// The batch's error for each of its writes.
fn copy_of(error: &StoreError) -> StoreError {
    match error {
        StoreError::Unavailable => StoreError::Unavailable,
        other => StoreError::Unexpected(anyhow::anyhow!("{other:#}")),
    }
}

/// One column of a batch, for `unnest`.
fn column<T, V>(batch: &[T], value: impl Fn(&T) -> V) -> Vec<V> {
    batch.iter().map(value).collect()
}

/// A refresh-token rotation: the family's current token presented, and
/// its replacement.
pub(super) struct Rotation {
    pub family_id: Uuid,
    pub presented_hash: String,
    pub new_hash: String,
    pub client_id: String,
    pub audience: String,
    pub now: DateTime<Utc>,
}

/// A rotated family, with the session, user and scopes of the context.
#[derive(FromRow)]
pub(super) struct Rotated {
    /// The replacement's hash: the rotation's key.
    new_hash: String,
    pub family_id: Uuid,
    pub f_client_id: String,
    pub f_scope: String,
    pub f_created_at: DateTime<Utc>,
    pub f_spent: String,
    #[sqlx(flatten)]
    pub joined: SessionUserRow,
    pub scopes: Vec<String>,
}

impl Batched for Rotation {
    type Row = Rotated;
    type Key = String;

    fn key(&self) -> String {
        self.new_hash.clone()
    }

    fn row_key(row: &Rotated) -> String {
        row.new_hash.clone()
    }

    /// Each family whose current token was presented gets its replacement,
    /// and its record of spent tokens the presented one; with it come the
    /// session, its user and their scopes at the audience. The update
    /// changes no indexed column.
    async fn write_all(pool: &PgPool, batch: &[Self]) -> Result<Vec<Rotated>, sqlx::Error> {
        sqlx::query_as(concat!(
            r#"
            with asked as (
                select * from unnest($1::uuid[], $2::text[], $3::text[], $4::text[],
                                     $5::text[], $6::timestamptz[])
                    as a(family_id, presented_hash, new_hash, client_id, audience, at)
            ),
            rotated as (
                update oauth_refresh_families f
                set token_hash = a.new_hash, rotated_at = a.at,
                    spent = substr(a.presented_hash || ' ' || f.spent, 1, $7)
                from asked a
                where f.family_id = a.family_id and f.token_hash = a.presented_hash
                  and f.client_id = a.client_id and f.revoked_at is null
                returning f.family_id, f.client_id, f.session_id, f.scope, f.created_at,
                          f.spent, a.new_hash, a.audience
            )
            select r.new_hash, r.family_id, r.client_id as f_client_id, r.scope as f_scope,
                   r.created_at as f_created_at, r.spent as f_spent,
            "#,
            session_user_columns!(),
            ", ",
            audience_scopes!("r.audience"),
            r#"
            from rotated r join sessions s on s.id = r.session_id
                 join users u on u.id = s.user_id
            "#
        ))
        .bind(column(batch, |r| r.family_id))
        .bind(column(batch, |r| r.presented_hash.clone()))
        .bind(column(batch, |r| r.new_hash.clone()))
        .bind(column(batch, |r| r.client_id.clone()))
        .bind(column(batch, |r| r.audience.clone()))
        .bind(column(batch, |r| r.now))
        .bind(SPENT_TEXT_LEN)
        .fetch_all(pool)
        .await
    }
}

/// A code's first use, which starts its refresh-token family when it
/// brings a refresh token.
pub(super) struct Redemption {
    pub code_hash: String,
    pub family_id: Uuid,
    pub refresh_token_hash: Option<String>,
    pub audience: String,
    pub now: DateTime<Utc>,
}

/// A redeemed code, with the session, user and scopes of the context.
#[derive(FromRow)]
pub(super) struct Redeemed {
    /// The family the redemption starts, new for each: its key (two
    /// redemptions of one code have the same code, not the same family).
    family_id: Uuid,
    pub c_client_id: String,
    pub c_redirect_uri: String,
    pub c_scope: String,
    pub c_nonce: Option<String>,
    pub c_code_challenge: Option<String>,
    pub c_expires_at: DateTime<Utc>,
    #[sqlx(flatten)]
    pub joined: SessionUserRow,
    pub scopes: Vec<String>,
}

impl Batched for Redemption {
    type Row = Redeemed;
    type Key = Uuid;

    fn key(&self) -> Uuid {
        self.family_id
    }

    fn row_key(row: &Redeemed) -> Uuid {
        row.family_id
    }

    /// Each unused code is marked used and starts its family, and brings
    /// its session, the user and their scopes at the audience. Of
    /// concurrent redemptions of one code exactly one sets `used_at`; a
    /// replay in a later statement waits for the code's row until this one
    /// commits, and then finds the family to revoke.
    async fn write_all(pool: &PgPool, batch: &[Self]) -> Result<Vec<Redeemed>, sqlx::Error> {
        sqlx::query_as(concat!(
            r#"
            with asked as (
                select * from unnest($1::text[], $2::uuid[], $3::text[], $4::text[],
                                     $5::timestamptz[])
                    as a(code_hash, family_id, refresh_token_hash, audience, at)
            ),
            redeemed as (
                update oauth_codes c set used_at = a.at, family_id = a.family_id
                from asked a
                where c.code_hash = a.code_hash and c.used_at is null
                returning c.client_id, c.session_id, c.redirect_uri, c.scope,
                          c.nonce, c.code_challenge, c.expires_at, a.family_id,
                          a.refresh_token_hash, a.audience, a.at
            ),
            family as (
                insert into oauth_refresh_families
                    (family_id, token_hash, client_id, session_id, scope, created_at, rotated_at)
                select family_id, refresh_token_hash, client_id, session_id, scope, at, at
                from redeemed where refresh_token_hash is not null
            )
            select r.family_id, r.client_id as c_client_id, r.redirect_uri as c_redirect_uri,
                   r.scope as c_scope, r.nonce as c_nonce,
                   r.code_challenge as c_code_challenge, r.expires_at as c_expires_at,
            "#,
            session_user_columns!(),
            ", ",
            audience_scopes!("r.audience"),
            r#"
            from redeemed r join sessions s on s.id = r.session_id
                 join users u on u.id = s.user_id
            "#
        ))
        .bind(column(batch, |r| r.code_hash.clone()))
        .bind(column(batch, |r| r.family_id))
        .bind(column(batch, |r| r.refresh_token_hash.clone()))
        .bind(column(batch, |r| r.audience.clone()))
        .bind(column(batch, |r| r.now))
        .fetch_all(pool)
        .await
    }
}
