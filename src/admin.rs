//! Administration: the one implementation behind the `tessera user …`
//! commands and the admin API. Every change is written to the audit log,
//! naming who made it, before it is reported done.

use uuid::Uuid;

use crate::audit::{self, AuditEntryExt};
use crate::clock::{Clock, SystemClock};
use crate::domain::{Audience, Email, Scope, Username};
use crate::store::{Grant, Store, StoreError, User};
use crate::throttle;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no user named {0}")]
    UnknownUser(String),
    #[error("a user named {0}, or a name that looks like it, already exists")]
    UsernameTaken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The error of an operation on `user`: a user deleted since they were
/// looked up is an unknown user, as if the deletion had come first.
fn on(user: &User) -> impl FnOnce(StoreError) -> AdminError + '_ {
    move |error| match error {
        StoreError::UserNotFound => AdminError::UnknownUser(user.username.clone()),
        other => other.into(),
    }
}

/// Administration on behalf of `actor` (`cli`, or the admin's user name).
pub struct Admin<'a> {
    store: &'a dyn Store,
    actor: String,
    /// The actor's user id and the session of the request, when the actor
    /// is a user of ours.
    session: Option<(Uuid, Uuid)>,
    /// The time of the audit entries.
    clock: &'a dyn Clock,
}

impl<'a> Admin<'a> {
    /// Administration on the system clock.
    pub fn new(store: &'a dyn Store, actor: impl Into<String>) -> Self {
        Self {
            store,
            actor: actor.into(),
            session: None,
            clock: &SystemClock,
        }
    }

    /// The same, on `clock`.
    pub fn with_clock(mut self, clock: &'a dyn Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The actor is the user `user_id`, acting in session `session_id`.
    pub fn in_session(mut self, user_id: Uuid, session_id: Uuid) -> Self {
        self.session = Some((user_id, session_id));
        self
    }

    async fn record(&self, event: &str, user: &User, detail: String) -> Result<(), AdminError> {
        let entry = audit::entry(event, "success", self.clock.now())
            .user(&user.username, Some(user.id))
            .detail(format!(
                "by {}{}{detail}",
                self.actor,
                if detail.is_empty() { "" } else { ": " }
            ));
        self.store.append_audit(&[entry]).await?;
        Ok(())
    }

    pub async fn find_user(&self, name: &Username) -> Result<User, AdminError> {
        self.store
            .find_user_by_name(name.as_str())
            .await?
            .ok_or_else(|| AdminError::UnknownUser(name.to_string()))
    }

    pub async fn list_users(&self) -> Result<Vec<User>, AdminError> {
        Ok(self.store.list_users().await?)
    }

    pub async fn grants(&self, user: &User) -> Result<Vec<Grant>, AdminError> {
        Ok(self.store.grants(user.id).await?)
    }

    /// Creates a user; `password_hash` is a PHC string made by the caller.
    pub async fn create_user(
        &self,
        name: &Username,
        email: Option<&Email>,
        password_hash: &str,
    ) -> Result<User, AdminError> {
        let user = self
            .store
            .create_user(
                crate::store::NewUser {
                    username: name.as_str(),
                    email: email.map(Email::as_str),
                    password_hash,
                },
                self.clock.now(),
            )
            .await
            .map_err(|e| match e {
                StoreError::UsernameTaken => AdminError::UsernameTaken(name.to_string()),
                other => other.into(),
            })?;
        self.record("user.created", &user, String::new()).await?;
        Ok(user)
    }

    /// Replaces the password and ends the user's sessions, all of them
    /// but the one making the change when users change their own; returns
    /// the sessions revoked.
    pub async fn set_password_hash(
        &self,
        user: &User,
        password_hash: &str,
    ) -> Result<Vec<Uuid>, AdminError> {
        let keep = self
            .session
            .filter(|(actor, _)| *actor == user.id)
            .map(|(_, session)| session);
        let revoked = self
            .store
            .set_password_hash(user.id, password_hash, keep, self.clock.now())
            .await
            .map_err(on(user))?;
        self.record(
            "user.password_changed",
            user,
            format!("{} sessions revoked", revoked.len()),
        )
        .await?;
        Ok(revoked)
    }

    /// Disabling stops logins and authorizations at once, ends every
    /// session of the user for good, and reaches verifiers through the
    /// revocation feed. Returns the sessions revoked.
    pub async fn set_active(&self, user: &User, active: bool) -> Result<Vec<Uuid>, AdminError> {
        let revoked = self
            .store
            .set_active(user.id, active, self.clock.now())
            .await
            .map_err(on(user))?;
        if active {
            self.record("user.enabled", user, String::new()).await?;
        } else {
            let detail = format!("{} sessions revoked", revoked.len());
            self.record("user.disabled", user, detail).await?;
        }
        Ok(revoked)
    }

    pub async fn add_grants(
        &self,
        user: &User,
        audience: &Audience,
        scopes: &[Scope],
    ) -> Result<(), AdminError> {
        let scopes: Vec<String> = scopes.iter().map(|s| s.as_str().to_owned()).collect();
        self.store
            .add_grants(user.id, audience.as_str(), &scopes, self.clock.now())
            .await
            .map_err(on(user))?;
        self.record(
            "grant.added",
            user,
            format!("{} [{}]", audience.as_str(), scopes.join(" ")),
        )
        .await
    }

    /// Returns how many of the grants there were.
    pub async fn remove_grants(
        &self,
        user: &User,
        audience: &Audience,
        scopes: &[Scope],
    ) -> Result<u64, AdminError> {
        let scopes: Vec<String> = scopes.iter().map(|s| s.as_str().to_owned()).collect();
        let removed = self
            .store
            .remove_grants(user.id, audience.as_str(), &scopes)
            .await?;
        self.record(
            "grant.removed",
            user,
            format!("{} [{}]", audience.as_str(), scopes.join(" ")),
        )
        .await?;
        Ok(removed)
    }

    /// Lifts login throttles and a hard lockout.
    pub async fn unlock(&self, user: &User) -> Result<(), AdminError> {
        throttle::unlock(self.store, &user.username).await?;
        self.record("user.unlocked", user, String::new()).await
    }

    pub async fn list_users_page(&self, offset: i64, limit: i64) -> Result<Vec<User>, AdminError> {
        Ok(self.store.list_users_page(offset, limit).await?)
    }

    /// Deletes a user, their grants and sessions; verifiers learn of it
    /// through the revocation feed.
    pub async fn delete_user(&self, user: &User) -> Result<(), AdminError> {
        if !self.store.delete_user(user.id, self.clock.now()).await? {
            return Err(AdminError::UnknownUser(user.username.clone()));
        }
        self.record("user.deleted", user, String::new()).await
    }

    pub async fn sessions(&self, user: &User) -> Result<Vec<crate::store::Session>, AdminError> {
        Ok(self.store.sessions_of_user(user.id).await?)
    }

    /// Logs a user out everywhere; returns the sessions revoked.
    pub async fn revoke_all_sessions(&self, user: &User) -> Result<Vec<Uuid>, AdminError> {
        let revoked = self
            .store
            .revoke_user_sessions(user.id, self.clock.now())
            .await?;
        self.record(
            "session.revoked_all",
            user,
            format!("{} sessions", revoked.len()),
        )
        .await?;
        Ok(revoked)
    }

    /// Revokes one session of `user`; returns whether it was live.
    pub async fn revoke_session(&self, user: &User, session_id: Uuid) -> Result<bool, AdminError> {
        let owned = self
            .store
            .find_session(session_id)
            .await?
            .is_some_and(|(session, _)| session.user_id == user.id);
        if !owned {
            return Ok(false);
        }
        let revoked = self
            .store
            .revoke_session(session_id, self.clock.now())
            .await?;
        if revoked {
            self.record("session.revoked", user, format!("session {session_id}"))
                .await?;
        }
        Ok(revoked)
    }
}
