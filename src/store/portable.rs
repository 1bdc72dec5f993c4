//! What both backends run alike, written once over sqlx's generic API: the
//! folding of user names at each migration, and the export and import of
//! a whole installation. A backend says how it writes ids and timestamps
//! ([`Dialect`]); the statements are the same text on both.
//!
//! Only bulk, rarely run work belongs here; the queries of requests are in
//! `shared.rs` (those both dialects say alike) and in their backend.

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, FromRow, IntoArguments, Pool, Type};
use uuid::Uuid;

use super::rows::{
    GrantRow, OAuthClientRow, SessionRow, Stored, UserRow, json_list, oauth_client_columns,
    read_all, session_columns, user_columns,
};
use super::{
    Dump, OAuthClient, StoreError, StoreResult, legacy_username_key, username_key,
    username_skeleton,
};

/// How a backend stores what SQL does not say alike: ids and timestamps.
pub(super) trait Dialect {
    type Db: Database;
    /// An id as stored.
    type Id: Stored<Uuid> + for<'q> Encode<'q, Self::Db> + Type<Self::Db> + Send + Unpin;
    /// A timestamp as stored.
    type At: Stored<DateTime<Utc>> + for<'q> Encode<'q, Self::Db> + Type<Self::Db> + Send + Unpin;

    fn id(id: Uuid) -> Self::Id;
    fn at(at: DateTime<Utc>) -> Self::At;
    /// `UsernameTaken` for a violation of the unique user name key or
    /// skeleton.
    fn on_unique_username(error: sqlx::Error) -> StoreError;
}

/// The statements of this module for the backend `D`.
pub(super) struct Portable<D>(PhantomData<D>);

impl<D: Dialect> Portable<D>
where
    for<'c> &'c mut <D::Db as Database>::Connection: Executor<'c, Database = D::Db>,
    <D::Db as Database>::Arguments: IntoArguments<D::Db>,
    for<'q> String: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> bool: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> Option<String>: Encode<'q, D::Db>,
    for<'q> Option<D::At>: Encode<'q, D::Db>,
    usize: ColumnIndex<<D::Db as Database>::Row>,
    for<'r> D::Id: Decode<'r, D::Db>,
    for<'r> String: Decode<'r, D::Db>,
    for<'r> UserRow<D::Id, D::At>: FromRow<'r, <D::Db as Database>::Row>,
    for<'r> GrantRow<D::Id, D::At>: FromRow<'r, <D::Db as Database>::Row>,
    for<'r> SessionRow<D::Id, D::At>: FromRow<'r, <D::Db as Database>::Row>,
    for<'r> OAuthClientRow<D::At>: FromRow<'r, <D::Db as Database>::Row>,
{
    /// Gives every user without a skeleton today's key and its skeleton,
    /// oldest first, unless an older user holds them: that user keeps its
    /// own, the younger keeps what it had. Runs at each migration; after
    /// the first, only such younger users are read again.
    pub(super) async fn fold_usernames(pool: &Pool<D::Db>) -> StoreResult<()> {
        let unfolded: Vec<(D::Id, String)> = sqlx::query_as(
            "select id, username from users where username_skeleton is null order by created_at, id",
        )
        .fetch_all(pool)
        .await?;
        for (id, username) in unfolded {
            let id: Uuid = id.read()?;
            for (column, update, value) in [
                (
                    "username_key",
                    "update users set username_key = $1 where id = $2",
                    username_key(&username),
                ),
                (
                    "username_skeleton",
                    "update users set username_skeleton = $1 where id = $2",
                    username_skeleton(&username),
                ),
            ] {
                let updated = sqlx::query(update)
                    .bind(value)
                    .bind(D::id(id))
                    .execute(pool)
                    .await
                    .map_err(D::on_unique_username);
                match updated {
                    Ok(_) => {}
                    Err(StoreError::UsernameTaken) => {
                        tracing::warn!(user_id = %id, column, "A user's folded name is an older user's: it keeps its own");
                    }
                    Err(other) => return Err(other),
                }
            }
        }
        Ok(())
    }

    /// Everything, ids, hashes and times included.
    pub(super) async fn export(pool: &Pool<D::Db>) -> StoreResult<Dump> {
        let users: Vec<UserRow<D::Id, D::At>> = sqlx::query_as(concat!(
            "select ",
            user_columns!(),
            " from users order by created_at, id"
        ))
        .fetch_all(pool)
        .await?;
        let grants: Vec<GrantRow<D::Id, D::At>> = sqlx::query_as(
            "select user_id, audience, scope, created_at from grants order by user_id, audience, scope",
        )
        .fetch_all(pool)
        .await?;
        let sessions: Vec<SessionRow<D::Id, D::At>> = sqlx::query_as(concat!(
            "select ",
            session_columns!(),
            " from sessions order by created_at, id"
        ))
        .fetch_all(pool)
        .await?;
        let clients: Vec<OAuthClientRow<D::At>> = sqlx::query_as(concat!(
            "select ",
            oauth_client_columns!(),
            " from oauth_clients order by id"
        ))
        .fetch_all(pool)
        .await?;
        Ok(Dump {
            users: read_all(users)?,
            grants: read_all(grants)?,
            sessions: read_all(sessions)?,
            clients: {
                // Byte order: Postgres would sort by its collation.
                let mut clients: Vec<OAuthClient> = read_all(clients)?;
                clients.sort_by(|a, b| a.id.cmp(&b.id));
                clients
            },
        })
    }

    /// Stores a new client, every field as given.
    pub(super) async fn insert_client<'c, E>(executor: E, client: &OAuthClient) -> sqlx::Result<()>
    where
        E: Executor<'c, Database = D::Db>,
    {
        let (audience, scope) = client.required_grant.clone().unzip();
        sqlx::query(concat!(
            "insert into oauth_clients (",
            oauth_client_columns!(),
            ") values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(client.id.clone())
        .bind(client.secret_hash.clone())
        .bind(json_list(&client.redirect_uris))
        .bind(json_list(&client.post_logout_redirect_uris))
        .bind(client.audience.clone())
        .bind(json_list(&client.scopes))
        .bind(json_list(&client.grant_types))
        .bind(audience)
        .bind(scope)
        .bind(client.is_active)
        .bind(D::at(client.created_at))
        .bind(D::at(client.updated_at))
        .execute(executor)
        .await?;
        Ok(())
    }

    /// Adds everything of `dump`, in one transaction: all or nothing. The
    /// names keep the key of the version that wrote the dump, which
    /// [`Self::fold_usernames`] brings to today's, as a migration does.
    pub(super) async fn import(pool: &Pool<D::Db>, dump: &Dump) -> StoreResult<()> {
        let mut tx = pool.begin().await?;
        for user in &dump.users {
            sqlx::query(
                r#"
                insert into users (id, username, username_key, email, password_hash, is_active,
                                   created_at, updated_at)
                values ($1, $2, $3, $4, $5, $6, $7, $8)
                "#,
            )
            .bind(D::id(user.id))
            .bind(&user.username)
            .bind(legacy_username_key(&user.username))
            .bind(&user.email)
            .bind(&user.password_hash)
            .bind(user.is_active)
            .bind(D::at(user.created_at))
            .bind(D::at(user.updated_at))
            .execute(&mut *tx)
            .await
            .map_err(D::on_unique_username)?;
        }
        for grant in &dump.grants {
            sqlx::query(
                "insert into grants (user_id, audience, scope, created_at) values ($1, $2, $3, $4)",
            )
            .bind(D::id(grant.user_id))
            .bind(&grant.audience)
            .bind(&grant.scope)
            .bind(D::at(grant.created_at))
            .execute(&mut *tx)
            .await?;
        }
        for s in &dump.sessions {
            sqlx::query(
                r#"
                insert into sessions (id, user_id, client_id, ip, user_agent, kid, created_at,
                                      last_used_at, expires_at, revoked_at, token_id)
                values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                "#,
            )
            .bind(D::id(s.id))
            .bind(D::id(s.user_id))
            .bind(&s.client_id)
            .bind(&s.ip)
            .bind(&s.user_agent)
            .bind(&s.kid)
            .bind(D::at(s.created_at))
            .bind(D::at(s.last_used_at))
            .bind(s.expires_at.map(D::at))
            .bind(s.revoked_at.map(D::at))
            .bind(&s.token_id)
            .execute(&mut *tx)
            .await?;
        }
        for client in &dump.clients {
            Self::insert_client(&mut *tx, client).await?;
        }
        tx.commit().await?;
        Self::fold_usernames(pool).await
    }
}
