//! Key states, derived from times alone.
//!
//! A key's activation time is the `YYYYMMDDTHHMMSSZ` part of its name
//! (Tessera names keys `tessera-{activation}-{suffix}`), so it survives
//! copying the directory anywhere. A file whose name carries no time (a
//! hand-made `otherapp.pem`) is taken as published when it was last
//! modified, and activates one publication lead later: dropped into a running
//! directory, it is published before it signs like any other key.
//!
//! Ordered by activation, the last key whose activation has passed is
//! active; the keys before it are retired, each at the activation of the key
//! after it; the keys after it are published and pending. When no key has
//! activated yet (a fresh directory holding only a pending key), the first
//! one signs: signing with a published key beats refusing every login.
//!
//! Every `*.pem` file with a usable name counts, whether or not this replica
//! can read it: replicas sharing a directory must agree on which key is
//! active, and one that cannot read a file still sees its name. A key never
//! signs past its retirement; when the active key cannot be loaded, nothing
//! signs ([`super::SigningUnavailable`]).

use std::fmt;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};

use crate::configuration::{Settings, time_delta};

/// The format of the time in a key's name.
pub(super) const STAMP: &str = "%Y%m%dT%H%M%SZ";

/// The timing rules of the key lifecycle, from the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    /// How long a new key is published before it signs:
    /// `keys.jwks_max_age` + `keys.publish_lead`.
    pub publish_for: TimeDelta,
    /// How long after its retirement a key's authorization tokens may still
    /// be presented: `tokens.authorization_lifetime` + `tokens.leeway`.
    pub grace: TimeDelta,
    /// The period of automatic rotation, if any (`keys.rotate_every`).
    pub rotate_every: Option<TimeDelta>,
}

impl Lifecycle {
    pub fn from_settings(settings: &Settings) -> Self {
        let keys = &settings.keys;
        let tokens = &settings.tokens;
        Self {
            publish_for: time_delta(keys.jwks_max_age + keys.publish_lead),
            grace: time_delta(tokens.authorization_lifetime + tokens.leeway),
            rotate_every: keys.rotate_every.map(time_delta),
        }
    }

    /// When a key activates: the time in its name, else one publication lead
    /// after the file was last modified.
    pub fn activation_of(&self, kid: &str, modified: DateTime<Utc>) -> DateTime<Utc> {
        timestamp_in_kid(kid).unwrap_or(modified + self.publish_for)
    }

    /// The activation time a key made at `now` needs: one publication lead
    /// later, rounded up to the second a key name can carry.
    pub fn activation_for_new_key(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        ceil_to_second(now + self.publish_for)
    }
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self::from_settings(&Settings::default())
    }
}

/// Where a key is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// In the JWKS, not signing yet.
    Published,
    /// Signs every new token.
    Active,
    /// No longer signs; still published and verifying until pruned.
    Retired,
    /// Unpublished and refused (a `{kid}.revoked` file).
    Revoked,
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Published => "published",
            Self::Active => "active",
            Self::Retired => "retired",
            Self::Revoked => "revoked",
        })
    }
}

/// One key's state and times, as `tessera keys list` shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStatus {
    pub kid: String,
    pub state: KeyState,
    /// Whether this replica holds the key. One it could not load still has
    /// its place in the lifecycle; when that place is `Active`, nothing is
    /// signed.
    pub loaded: bool,
    /// The file's modification time.
    pub created: Option<DateTime<Utc>>,
    pub activates: Option<DateTime<Utc>>,
    /// When it stops (or stopped) signing: the next key's activation.
    pub retires: Option<DateTime<Utc>>,
    /// Until when its authorization tokens may still be valid: retirement
    /// plus the authorization lifetime and leeway. Past it, and with no live
    /// session signed by it, `tessera keys prune` deletes it.
    pub verifies_until: Option<DateTime<Utc>>,
}

impl KeyStatus {
    /// Retired long enough that no authorization token of its can be valid.
    pub fn is_past_retirement(&self, now: DateTime<Utc>) -> bool {
        self.state == KeyState::Retired && self.verifies_until.is_some_and(|until| until <= now)
    }
}

/// `tessera-20261122T101500Z-0a1b2c` → 2026-11-22 10:15:00 UTC: the first
/// `-`-separated part of the name that is such a time.
pub fn timestamp_in_kid(kid: &str) -> Option<DateTime<Utc>> {
    kid.split('-').find_map(|part| {
        NaiveDateTime::parse_from_str(part, STAMP)
            .ok()
            .map(|t| t.and_utc())
    })
}

/// The first multiple of `every` since the Unix epoch strictly after `now`:
/// every replica computes the same rotation slots.
pub fn next_boundary(now: DateTime<Utc>, every: TimeDelta) -> DateTime<Utc> {
    let period = every.num_seconds().max(1);
    let slot = now.timestamp().div_euclid(period) + 1;
    DateTime::from_timestamp(slot.saturating_mul(period), 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn ceil_to_second(at: DateTime<Utc>) -> DateTime<Utc> {
    let whole = DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at);
    if whole < at {
        whole + TimeDelta::seconds(1)
    } else {
        whole
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn the_time_in_a_kid_is_its_activation() {
        let lifecycle = Lifecycle::default();
        let modified = at("2030-01-01T00:00:00Z");
        assert_eq!(
            lifecycle.activation_of("tessera-20261122T101500Z-0a1b2c", modified),
            at("2026-11-22T10:15:00Z")
        );
        assert!(timestamp_in_kid("otherapp").is_none());
    }

    #[test]
    fn a_kid_without_a_time_activates_one_lead_after_its_modification() {
        let lifecycle = Lifecycle::default();
        let modified = at("2030-01-01T00:00:00Z");
        assert_eq!(
            lifecycle.activation_of("otherapp", modified),
            at("2030-01-01T01:05:00Z")
        );
    }

    #[test]
    fn a_new_key_activates_a_whole_lead_later_rounded_up_to_the_second() {
        let lifecycle = Lifecycle::default();
        let now = at("2030-01-01T00:00:00.250Z");
        assert_eq!(
            lifecycle.activation_for_new_key(now),
            at("2030-01-01T01:05:01Z")
        );
    }

    #[test]
    fn rotation_slots_are_the_same_for_every_replica() {
        let day = TimeDelta::days(1);
        assert_eq!(
            next_boundary(at("2030-01-01T13:00:00Z"), day),
            at("2030-01-02T00:00:00Z")
        );
        // On a boundary, the next one.
        assert_eq!(
            next_boundary(at("2030-01-02T00:00:00Z"), day),
            at("2030-01-03T00:00:00Z")
        );
    }
}
