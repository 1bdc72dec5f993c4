//! The [`Store`](super::Store) methods that both backends run alike,
//! written once: [`impl_store!`] writes a backend's `impl Store` from its
//! own dialect methods and these. The statements are plain SQL with `$n`
//! placeholders (SQLite reads them too); ids and timestamps are bound in
//! the backend's stored form (`Self::id`, `Self::at` of its
//! [`Dialect`](super::portable::Dialect)), and the names the methods use
//! (`UserRow`, `OAuthClientRow`, `Id`, `At`, `lock_feed`, `revoke_sessions_of`,
//! `on_unique_username`, …) are the invoking backend's.
//!
//! A method whose SQL the dialects say differently stays in its backend,
//! in plain sight.

/// `impl_store! { Backend { dialect methods } }`: the backend's
/// `impl Store`, with the shared methods added to its own.
macro_rules! impl_store {
    ($backend:ident { $($dialect:tt)* }) => {
        #[async_trait::async_trait]
        impl Store for $backend {
            $($dialect)*

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
                                       password_hash, is_active, created_at, updated_at)
                    values ($1, $2, $3, $4, $5, $6, true, $7, $7)
                    returning id, username, email, password_hash, is_active, created_at, updated_at
                    "#,
                )
                .bind(Self::id(Uuid::new_v4()))
                .bind(user.username)
                .bind(username_key(user.username))
                .bind(username_skeleton(user.username))
                .bind(user.email)
                .bind(user.password_hash)
                .bind(Self::at(now))
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
                    .bind(Self::id(id))
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(User::try_from).transpose()?)
            }

            async fn delete_user(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<bool> {
                let mut tx = self.pool.begin().await?;
                lock_feed(&mut tx).await?;
                let done = sqlx::query(sql::DELETE_USER)
                    .bind(Self::id(id))
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                sqlx::query("insert into revocations (kind, subject, at) values ('user_disabled', $1, $2)")
                    .bind(id.to_string())
                    .bind(Self::at(now))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn sessions_of_user(&self, user_id: Uuid) -> StoreResult<Vec<Session>> {
                let rows: Vec<SessionRow> = sqlx::query_as(sql::SESSIONS_OF_USER)
                    .bind(Self::id(user_id))
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
                // The feed lock before the user's row, as in `set_active`; on
                // SQLite the first write takes the database's write lock.
                lock_feed(&mut tx).await?;
                let done =
                    sqlx::query("update users set password_hash = $2, updated_at = $3 where id = $1")
                        .bind(Self::id(user_id))
                        .bind(password_hash)
                        .bind(Self::at(now))
                        .execute(&mut *tx)
                        .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::UserNotFound);
                }
                let revoked = revoke_sessions_of(&mut tx, user_id, keep, now).await?;
                tx.commit().await?;
                Ok(revoked)
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
                // order deadlocks against a deletion. (On SQLite, the first write
                // takes the database's one write lock.)
                lock_feed(&mut tx).await?;
                let done = sqlx::query("update users set is_active = $2, updated_at = $3 where id = $1")
                    .bind(Self::id(user_id))
                    .bind(active)
                    .bind(Self::at(now))
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
                    .bind(Self::at(now))
                    .execute(&mut *tx)
                    .await?;
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
                .bind(Self::id(user_id))
                .bind(current)
                .bind(upgraded)
                .bind(Self::at(now))
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn grants(&self, user_id: Uuid) -> StoreResult<Vec<Grant>> {
                let rows: Vec<(String, String)> = sqlx::query_as(sql::GRANTS)
                    .bind(Self::id(user_id))
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
                .bind(Self::id(session.id))
                .bind(Self::id(session.user_id))
                .bind(session.client_id)
                .bind(session.ip)
                .bind(session.user_agent)
                .bind(session.kid)
                .bind(Self::at(now))
                .bind(session.expires_at.map(Self::at))
                .bind(session.token_id)
                .fetch_one(&self.pool)
                .await
                .map_err(on_missing_user)?;
                Ok(row.try_into()?)
            }

            async fn find_session(&self, id: Uuid) -> StoreResult<Option<(Session, User)>> {
                let row: Option<SessionUserRow> = sqlx::query_as(sql::FIND_SESSION)
                    .bind(Self::id(id))
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
                    .bind(Self::id(id))
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

            async fn revocations(
                &self,
                after: i64,
                since: DateTime<Utc>,
            ) -> StoreResult<(Vec<Revocation>, i64)> {
                let latest: i64 = sqlx::query_scalar(sql::LATEST_REVOCATION)
                    .fetch_one(&self.pool)
                    .await?;
                let rows: Vec<(i64, String, String, At)> = sqlx::query_as(sql::REVOCATIONS)
                    .bind(after)
                    .bind(latest)
                    .bind(Self::at(since))
                    .fetch_all(&self.pool)
                    .await?;
                let entries = rows
                    .into_iter()
                    .map(|(seq, kind, subject, at)| {
                        Ok(Revocation::from_row((seq, kind, subject, at.read()?)))
                    })
                    .collect::<anyhow::Result<_>>()?;
                Ok((entries, latest))
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
                .bind(Self::id(id))
                .bind(current)
                .bind(new_token_id)
                .bind(kid)
                .bind(Self::at(now))
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn count_live_sessions_by_kid(
                &self,
                now: DateTime<Utc>,
            ) -> StoreResult<Vec<(String, i64)>> {
                let counts = sqlx::query_as(sql::COUNT_LIVE_SESSIONS_BY_KID)
                    .bind(Self::at(now))
                    .fetch_all(&self.pool)
                    .await?;
                Ok(counts)
            }

            async fn live_sessions_signed_by(
                &self,
                kid: &str,
                now: DateTime<Utc>,
            ) -> StoreResult<Vec<Uuid>> {
                let ids: Vec<Id> = sqlx::query_scalar(sql::LIVE_SESSIONS_SIGNED_BY)
                    .bind(kid)
                    .bind(Self::at(now))
                    .fetch_all(&self.pool)
                    .await?;
                Ok(ids
                    .into_iter()
                    .map(Stored::read)
                    .collect::<anyhow::Result<_>>()?)
            }

            async fn create_oauth_client(&self, client: &OAuthClient) -> StoreResult<()> {
                Portable::<Self>::insert_client(&self.pool, client)
                    .await
                    .map_err(|error| match &error {
                        // The id is the table's only unique key.
                        sqlx::Error::Database(db) if db.is_unique_violation() => {
                            StoreError::ClientIdTaken
                        }
                        _ => error.into(),
                    })?;
                Ok(())
            }

            async fn oauth_clients(&self) -> StoreResult<Vec<OAuthClient>> {
                let rows: Vec<OAuthClientRow> = sqlx::query_as(concat!(
                    "select ",
                    oauth_client_columns!(),
                    " from oauth_clients order by id"
                ))
                .fetch_all(&self.pool)
                .await?;
                let mut clients: Vec<OAuthClient> = read_all(rows)?;
                // Byte order: Postgres would sort by its collation.
                clients.sort_by(|a, b| a.id.cmp(&b.id));
                Ok(clients)
            }

            async fn find_oauth_client(&self, id: &str) -> StoreResult<Option<OAuthClient>> {
                let row: Option<OAuthClientRow> = sqlx::query_as(concat!(
                    "select ",
                    oauth_client_columns!(),
                    " from oauth_clients where id = $1"
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(OAuthClient::try_from).transpose()?)
            }

            async fn set_oauth_client_secret(
                &self,
                id: &str,
                secret_hash: &str,
                now: DateTime<Utc>,
            ) -> StoreResult<bool> {
                let done = sqlx::query(
                    "update oauth_clients set secret_hash = $2, updated_at = $3 \
                     where id = $1 and secret_hash is not null",
                )
                .bind(id)
                .bind(secret_hash)
                .bind(Self::at(now))
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn set_oauth_client_active(
                &self,
                id: &str,
                active: bool,
                now: DateTime<Utc>,
            ) -> StoreResult<bool> {
                let done =
                    sqlx::query("update oauth_clients set is_active = $2, updated_at = $3 where id = $1")
                        .bind(id)
                        .bind(active)
                        .bind(Self::at(now))
                        .execute(&self.pool)
                        .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_oauth_client(&self, id: &str) -> StoreResult<bool> {
                // Its codes and refresh tokens go with it (they name it
                // without a foreign key).
                let mut tx = self.pool.begin().await?;
                let done = sqlx::query("delete from oauth_clients where id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                for statement in [
                    "delete from oauth_codes where client_id = $1",
                    "delete from oauth_refresh_tokens where client_id = $1",
                    "delete from oauth_refresh_families where client_id = $1",
                ] {
                    sqlx::query(statement).bind(id).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(done.rows_affected() == 1)
            }

            async fn create_authorization_code(
                &self,
                code: NewAuthorizationCode<'_>,
                now: DateTime<Utc>,
            ) -> StoreResult<()> {
                sqlx::query(
                    "insert into oauth_codes (code_hash, client_id, session_id, redirect_uri, \
                     scope, nonce, code_challenge, created_at, expires_at) \
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(code.code_hash)
                .bind(code.client_id)
                .bind(Self::id(code.session_id))
                .bind(code.redirect_uri)
                .bind(code.scope)
                .bind(code.nonce)
                .bind(code.code_challenge)
                .bind(Self::at(now))
                .bind(Self::at(code.expires_at))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn redeem_authorization_code(
                &self,
                code_hash: &str,
                exchange: CodeExchange<'_>,
                audience: &str,
                now: DateTime<Utc>,
            ) -> StoreResult<Redemption> {
                if let Some((code, context)) =
                    self.redeem_first(code_hash, exchange, audience, now).await?
                {
                    return Ok(Redemption::First {
                        code,
                        context: Box::new(context),
                    });
                }
                // Presented again: marked, and the first use's family named.
                let earlier: Option<CodeRow> = sqlx::query_as(concat!(
                    "update oauth_codes set replayed_at = coalesce(replayed_at, $2) \
                     where code_hash = $1 returning ",
                    code_columns!()
                ))
                .bind(code_hash)
                .bind(Self::at(now))
                .fetch_optional(&self.pool)
                .await?;
                Ok(match earlier {
                    Some(row) => Redemption::Replayed(row.read()?.0),
                    None => Redemption::Unknown,
                })
            }

            async fn find_refresh_family(
                &self,
                family_id: Uuid,
            ) -> StoreResult<Option<RefreshFamily>> {
                let row: Option<FamilyRow> = sqlx::query_as(concat!(
                    "select ",
                    family_columns!(),
                    " from oauth_refresh_families where family_id = $1"
                ))
                .bind(Self::id(family_id))
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(RefreshFamily::try_from).transpose()?)
            }

            async fn legacy_refresh_family(&self, token_hash: &str) -> StoreResult<Option<Uuid>> {
                let family: Option<Id> = sqlx::query_scalar(
                    "select family_id from oauth_refresh_tokens where token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
                Ok(family.map(|id| id.read()).transpose()?)
            }

            async fn revoke_refresh_family(
                &self,
                family_id: Uuid,
                now: DateTime<Utc>,
            ) -> StoreResult<bool> {
                let done = sqlx::query(
                    "update oauth_refresh_families set revoked_at = $2 \
                     where family_id = $1 and revoked_at is null",
                )
                .bind(Self::id(family_id))
                .bind(Self::at(now))
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn export(&self) -> StoreResult<Dump> {
                Portable::<Self>::export(&self.pool).await
            }

            async fn import(&self, dump: &Dump) -> StoreResult<()> {
                Portable::<Self>::import(&self.pool, dump).await
            }
        }
    };
}

pub(super) use impl_store;
