//! Refresh-token rotations, many in one statement. Every refresh is a
//! durable write of one row; under load, one statement and one commit for
//! all the rotations waiting cost the database far less than one each. A
//! rotation waits only while the statement before it runs: alone, it goes
//! at once.
//!
//! Concurrent rotations of one family land in one statement or in two in
//! turn; either way only the one presenting the family's current token
//! rotates it (`UPDATE … FROM` updates a row once, whichever input rows
//! match it), and the others find the token spent, as they would one by
//! one.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgPool};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::SessionUserRow;
use crate::store::rows::{SPENT_TEXT_LEN, session_user_columns};
use crate::store::{RefreshRotation, StoreError, StoreResult};

/// Rotations in one statement at most.
const BATCH: usize = 64;
/// Rotations waiting for a statement; past this, a rotation waits for room.
const QUEUE: usize = 1024;

/// A rotated family, with the session, user and scopes of the context.
#[derive(FromRow)]
pub(super) struct Rotated {
    /// The replacement's hash: what tells the rotations of a batch apart.
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

/// One rotation waiting for its statement.
struct Pending {
    family_id: Uuid,
    presented_hash: String,
    new_hash: String,
    client_id: String,
    audience: String,
    now: DateTime<Utc>,
    answer: oneshot::Sender<StoreResult<Option<Rotated>>>,
}

/// The handle rotations are sent through; the writer stops when the last
/// handle is dropped.
pub(super) struct Rotations {
    sender: mpsc::Sender<Pending>,
}

impl Rotations {
    pub fn start(pool: PgPool) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(rotate_in_batches(pool, receiver));
        Self { sender }
    }

    /// Rotates the family if `rotation` presents its current token: the
    /// rotated family, or `None` when nothing matched.
    pub async fn rotate(
        &self,
        rotation: &RefreshRotation<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Rotated>> {
        let (answer, answered) = oneshot::channel();
        let pending = Pending {
            family_id: rotation.family_id,
            presented_hash: rotation.presented_hash.to_owned(),
            new_hash: rotation.new_hash.to_owned(),
            client_id: rotation.client_id.to_owned(),
            audience: rotation.audience.to_owned(),
            now,
            answer,
        };
        let stopped = || StoreError::Unexpected(anyhow::anyhow!("the rotation writer stopped"));
        self.sender.send(pending).await.map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

async fn rotate_in_batches(pool: PgPool, mut receiver: mpsc::Receiver<Pending>) {
    let mut waiting = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut waiting, BATCH).await > 0 {
        let batch: Vec<Pending> = std::mem::take(&mut waiting);
        match rotate_all(&pool, &batch).await {
            Ok(rotated) => answer(batch, rotated),
            // Two statements waited on each other's rows (a batch and a
            // logout revoking several families, say): nothing was done.
            // One at a time, no statement can deadlock this one.
            Err(error) if is_deadlock(&error) && batch.len() > 1 => {
                tracing::warn!(
                    rotations = batch.len(),
                    "A batch of refresh-token rotations deadlocked; rotating them one at a time"
                );
                for pending in batch {
                    let result = rotate_all(&pool, std::slice::from_ref(&pending)).await;
                    match result {
                        Ok(rotated) => answer(vec![pending], rotated),
                        Err(error) => {
                            let _ = pending.answer.send(Err(error.into()));
                        }
                    }
                }
            }
            Err(error) => {
                let error = StoreError::from(error);
                for pending in batch {
                    let _ = pending.answer.send(Err(copy_of(&error)));
                }
            }
        }
    }
}

/// Gives each rotation of `batch` its row, or `None`.
fn answer(batch: Vec<Pending>, rotated: Vec<Rotated>) {
    let mut rotated: std::collections::HashMap<String, Rotated> = rotated
        .into_iter()
        .map(|row| (row.new_hash.clone(), row))
        .collect();
    for pending in batch {
        let _ = pending.answer.send(Ok(rotated.remove(&pending.new_hash)));
    }
}

/// One statement for the whole batch: each family whose current token was
/// presented gets its replacement, and its record of spent tokens the
/// presented one; with it come the session, its user and their scopes at
/// the audience. The update changes no indexed column.
async fn rotate_all(pool: &PgPool, batch: &[Pending]) -> Result<Vec<Rotated>, sqlx::Error> {
    let column = |f: fn(&Pending) -> String| batch.iter().map(f).collect::<Vec<_>>();
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
    .bind(batch.iter().map(|p| p.family_id).collect::<Vec<_>>())
    .bind(column(|p| p.presented_hash.clone()))
    .bind(column(|p| p.new_hash.clone()))
    .bind(column(|p| p.client_id.clone()))
    .bind(column(|p| p.audience.clone()))
    .bind(batch.iter().map(|p| p.now).collect::<Vec<_>>())
    .bind(SPENT_TEXT_LEN)
    .fetch_all(pool)
    .await
}

fn is_deadlock(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("40P01"))
}

/// The batch's error for each of its rotations.
fn copy_of(error: &StoreError) -> StoreError {
    match error {
        StoreError::Unavailable => StoreError::Unavailable,
        other => StoreError::Unexpected(anyhow::anyhow!("{other:#}")),
    }
}
