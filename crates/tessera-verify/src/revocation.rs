//! Revocation awareness: a background poll of Tessera's revocation feed, so
//! that logout, a disabled user or a revoked key reach this service within a
//! poll interval instead of at token expiry.
//!
//! The feed is `GET {issuer}/revocations?since=CURSOR`, answering
//! `{"cursor", "reset", "entries": [{"kind", "id", "at"}]}`. Without `since`,
//! or with `reset`, the entries are the whole current state; otherwise they
//! are changes, applied in order. The state sits behind an [`ArcSwap`] so
//! that checking a token takes no lock. When the feed cannot be reached the
//! last state stays in force and [`RevocationHealth`] says so: failing closed
//! would turn an issuer outage into an outage of every service.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use reqwest::{Client, Url};
use serde::Deserialize;

use crate::claims::Claims;
use crate::error::{FetchError, VerifyError, chain};
use crate::http;

/// A feed page larger than this is refused. The full state holds only the
/// revocations of the last token lifetime, so this is generous.
const FEED_LIMIT: usize = 16 * 1024 * 1024;

/// One page of the feed.
#[derive(Debug, Deserialize)]
pub(crate) struct FeedPage {
    pub cursor: String,
    #[serde(default)]
    pub reset: bool,
    pub entries: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Entry {
    pub kind: EntryKind,
    pub id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum EntryKind {
    SessionRevoked,
    UserDisabled,
    UserEnabled,
    KeyRevoked,
    /// A kind added to the feed after this crate was written: ignored, so
    /// that the server can grow the feed without breaking verifiers.
    #[serde(other)]
    Unknown,
}

/// What is revoked now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RevocationState {
    sessions: HashSet<String>,
    users: HashSet<String>,
    keys: HashSet<String>,
}

impl RevocationState {
    /// The state after `page`, which answered a request with `since`
    /// (`None`: the first request, whose page is the whole state).
    pub(crate) fn apply(&self, page: &FeedPage, since: Option<&str>) -> Self {
        let mut next = if since.is_none() || page.reset {
            Self::default()
        } else {
            self.clone()
        };
        for entry in &page.entries {
            let id = entry.id.clone();
            match entry.kind {
                EntryKind::SessionRevoked => {
                    next.sessions.insert(id);
                }
                EntryKind::UserDisabled => {
                    next.users.insert(id);
                }
                EntryKind::UserEnabled => {
                    next.users.remove(&id);
                }
                EntryKind::KeyRevoked => {
                    next.keys.insert(id);
                }
                EntryKind::Unknown => {}
            }
        }
        next
    }

    /// Whether tokens signed by `kid` are refused.
    pub(crate) fn is_key_revoked(&self, kid: &str) -> bool {
        self.keys.contains(kid)
    }

    /// Refuses claims of a revoked session or a disabled user.
    pub(crate) fn check(&self, claims: &Claims) -> Result<(), VerifyError> {
        if self.sessions.contains(&claims.sid) {
            return Err(VerifyError::SessionRevoked);
        }
        if self.users.contains(&claims.sub) {
            return Err(VerifyError::UserDisabled);
        }
        Ok(())
    }
}

/// What [`Verifier::health`](crate::Verifier::health) says about the feed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RevocationHealth {
    /// How often the feed is polled.
    pub poll_interval: Duration,
    /// When the feed last answered; the state is as of then.
    pub last_success: Option<SystemTime>,
    /// When the feed was last asked.
    pub last_attempt: Option<SystemTime>,
    /// Why the last poll failed; `None` when it succeeded.
    pub last_error: Option<String>,
    pub revoked_sessions: usize,
    pub disabled_users: usize,
    pub revoked_keys: usize,
}

/// The feed's state, shared by the verifier (reading) and the poller.
pub(crate) struct Revocations {
    url: Url,
    client: Client,
    state: ArcSwap<RevocationState>,
    health: Mutex<RevocationHealth>,
}

impl Revocations {
    pub(crate) fn new(url: Url, client: Client, poll_interval: Duration) -> Self {
        Self {
            url,
            client,
            state: ArcSwap::from_pointee(RevocationState::default()),
            health: Mutex::new(RevocationHealth {
                poll_interval,
                ..RevocationHealth::default()
            }),
        }
    }

    pub(crate) fn state(&self) -> arc_swap::Guard<Arc<RevocationState>> {
        self.state.load()
    }

    pub(crate) fn health(&self) -> RevocationHealth {
        self.health.lock().expect("health lock").clone()
    }

    /// Polls once; returns the cursor to ask from next (the old one when the
    /// poll failed).
    pub(crate) async fn poll(&self, cursor: Option<String>) -> Option<String> {
        let attempted = SystemTime::now();
        let result = self.fetch(cursor.as_deref()).await;
        let mut health = self.health.lock().expect("health lock");
        health.last_attempt = Some(attempted);
        match result {
            Ok(page) => {
                if page.reset || cursor.is_none() || !page.entries.is_empty() {
                    let next = self.state.load().apply(&page, cursor.as_deref());
                    health.revoked_sessions = next.sessions.len();
                    health.disabled_users = next.users.len();
                    health.revoked_keys = next.keys.len();
                    self.state.store(Arc::new(next));
                }
                if health.last_error.is_some() {
                    tracing::info!("The revocation feed answers again");
                }
                health.last_success = Some(attempted);
                health.last_error = None;
                Some(page.cursor)
            }
            Err(error) => {
                let error = chain(&error);
                // Once per outage at warn, then quieter: a feed that stays
                // down would otherwise log every interval.
                if health.last_error.is_none() {
                    tracing::warn!(
                        error = %error,
                        "Could not poll the revocation feed; keeping the last known revocations"
                    );
                } else {
                    tracing::debug!(error = %error, "The revocation feed is still unreachable");
                }
                health.last_error = Some(error);
                cursor
            }
        }
    }

    async fn fetch(&self, since: Option<&str>) -> Result<FeedPage, FetchError> {
        let mut url = self.url.clone();
        if let Some(since) = since {
            url.query_pairs_mut().append_pair("since", since);
        }
        let fetched = http::get(&self.client, &url, FEED_LIMIT).await?;
        serde_json::from_slice(&fetched.body).map_err(|source| FetchError::InvalidDocument {
            url: self.url.to_string(),
            source,
        })
    }

    /// Polls every `interval` until the task is aborted (when the verifier is
    /// dropped), starting from `cursor`.
    pub(crate) async fn run(self: Arc<Self>, mut cursor: Option<String>, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        // After a slow poll, wait a whole interval rather than catching up.
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            cursor = self.poll(cursor).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn page(reset: bool, entries: &[(&str, &str)]) -> FeedPage {
        serde_json::from_value(json!({
            "cursor": "c",
            "reset": reset,
            "entries": entries
                .iter()
                .map(|(kind, id)| json!({"kind": kind, "id": id, "at": "2026-11-25T10:00:00Z"}))
                .collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    fn claims(sid: &str, sub: &str) -> Claims {
        serde_json::from_value(json!({
            "iss": "i", "sub": sub, "aud": "notebooks", "iat": 0, "exp": 1,
            "token": "auth", "sid": sid,
        }))
        .unwrap()
    }

    fn state(entries: &[(&str, &str)]) -> RevocationState {
        RevocationState::default().apply(&page(false, entries), None)
    }

    #[test]
    fn the_first_page_is_the_whole_state() {
        let state = state(&[
            ("session_revoked", "s1"),
            ("user_disabled", "u1"),
            ("key_revoked", "k1"),
        ]);
        assert_eq!(
            state.check(&claims("s1", "u2")),
            Err(VerifyError::SessionRevoked)
        );
        assert_eq!(
            state.check(&claims("s2", "u1")),
            Err(VerifyError::UserDisabled)
        );
        assert!(state.is_key_revoked("k1"));
        assert_eq!(state.check(&claims("s2", "u2")), Ok(()));
        assert!(!state.is_key_revoked("k2"));
    }

    #[test]
    fn later_pages_are_applied_in_order() {
        let before = state(&[("session_revoked", "s1"), ("user_disabled", "u1")]);
        let after = before.apply(
            &page(
                false,
                &[
                    ("session_revoked", "s2"),
                    ("user_enabled", "u1"),
                    ("user_disabled", "u2"),
                    ("user_enabled", "u2"),
                    ("user_disabled", "u2"),
                ],
            ),
            Some("cursor-1"),
        );
        assert_eq!(
            after.check(&claims("s1", "x")),
            Err(VerifyError::SessionRevoked)
        );
        assert_eq!(
            after.check(&claims("s2", "x")),
            Err(VerifyError::SessionRevoked)
        );
        assert_eq!(after.check(&claims("s3", "u1")), Ok(()));
        assert_eq!(
            after.check(&claims("s3", "u2")),
            Err(VerifyError::UserDisabled)
        );
    }

    #[test]
    fn a_reset_page_replaces_the_state() {
        let before = state(&[("session_revoked", "s1"), ("key_revoked", "k1")]);
        let after = before.apply(&page(true, &[("session_revoked", "s2")]), Some("cursor-1"));
        assert_eq!(after.check(&claims("s1", "x")), Ok(()));
        assert!(!after.is_key_revoked("k1"));
        assert_eq!(
            after.check(&claims("s2", "x")),
            Err(VerifyError::SessionRevoked)
        );
    }

    #[test]
    fn a_page_without_since_replaces_the_state_even_without_reset() {
        let before = state(&[("session_revoked", "s1")]);
        let after = before.apply(&page(false, &[]), None);
        assert_eq!(after, RevocationState::default());
    }

    #[test]
    fn an_empty_page_changes_nothing() {
        let before = state(&[("session_revoked", "s1")]);
        assert_eq!(before.apply(&page(false, &[]), Some("cursor-1")), before);
    }

    #[test]
    fn unknown_entry_kinds_are_ignored() {
        let state = state(&[("client_revoked", "c1"), ("session_revoked", "s1")]);
        assert_eq!(
            state.check(&claims("s1", "x")),
            Err(VerifyError::SessionRevoked)
        );
        assert_eq!(state.check(&claims("c1", "c1")), Ok(()));
    }

    #[test]
    fn a_page_without_a_cursor_or_entries_does_not_parse() {
        assert!(serde_json::from_value::<FeedPage>(json!({"entries": []})).is_err());
        assert!(serde_json::from_value::<FeedPage>(json!({"cursor": "c"})).is_err());
        let page: FeedPage = serde_json::from_value(json!({"cursor": "c", "entries": []})).unwrap();
        assert!(!page.reset);
    }

    #[tokio::test]
    async fn an_unreachable_feed_keeps_the_last_state_and_says_so_in_health() {
        // Port 1 on loopback: nothing listens there, so the connection is
        // refused at once.
        let url = Url::parse("http://127.0.0.1:1/revocations").unwrap();
        let revocations = Revocations::new(url, Client::new(), Duration::from_secs(5));
        let known = state(&[("session_revoked", "s1")]);
        revocations.state.store(Arc::new(known.clone()));

        let cursor = revocations.poll(Some("cursor-1".into())).await;

        assert_eq!(cursor.as_deref(), Some("cursor-1"));
        assert_eq!(**revocations.state(), known);
        let health = revocations.health();
        assert!(health.last_error.is_some());
        assert!(health.last_attempt.is_some());
        assert!(health.last_success.is_none());
    }
}
