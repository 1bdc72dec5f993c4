//! Login throttling: after a few failures, each further attempt must wait,
//! twice as long each time, up to a ceiling. Waiting is answered at once with
//! 429 and `Retry-After`, before any password is hashed, so a throttled
//! attacker costs a database read, never a hashing slot or a held worker.
//!
//! Two counters guard every login: one for the user name from that address
//! (a guesser of one account) and one for the address (a sprayer of many).
//! A success clears the user name's counters. No counter locks an account
//! for good, so nobody can lock a user out, unless the operator asks for a
//! hard lockout.

use chrono::{DateTime, Duration, Utc};

use crate::configuration::ThrottleSettings;
use crate::store::{Store, StoreResult, ThrottleKeys, username_key};

/// The counters that guard one login attempt.
pub struct Keys {
    pub user_ip: String,
    pub ip: String,
    pub account: String,
    /// `user:{name}|`, where `{name}` has `%` and `|` percent-encoded, so
    /// that the user name ends at the first `|`. Every per-address counter
    /// of the user name is in `[user_prefix, user_until)` in byte order:
    /// `user_until` is `user:{name}}`, and `}` is the character after `|`.
    user_prefix: String,
    user_until: String,
}

impl Keys {
    pub fn new(username: &str, ip: &str) -> Self {
        let name = username_key(username);
        let escaped = name.replace('%', "%25").replace('|', "%7C");
        let user_prefix = format!("user:{escaped}|");
        Self {
            user_ip: format!("{user_prefix}ip:{ip}"),
            ip: format!("ip:{ip}"),
            account: format!("account:{name}"),
            user_prefix,
            user_until: format!("user:{escaped}}}"),
        }
    }

    fn for_store<'a>(&'a self, watched: &'a [String]) -> ThrottleKeys<'a> {
        ThrottleKeys {
            watched,
            user_from: &self.user_prefix,
            user_until: &self.user_until,
            account: &self.account,
        }
    }
}

/// What the counters say before an attempt.
#[derive(Debug, Default)]
pub struct Check {
    /// When the attempt may be made, if not now.
    pub blocked_until: Option<DateTime<Utc>>,
    /// Whether a success has counters to clear.
    user_has_counters: bool,
}

/// How long to wait after `failures` failures when `free` are allowed.
pub fn delay(settings: &ThrottleSettings, failures: i64, free: u32) -> Option<Duration> {
    let over = failures - i64::from(free);
    if over <= 0 {
        return None;
    }
    let doublings = u32::try_from(over - 1).unwrap_or(u32::MAX).min(32);
    let secs = settings
        .base_delay
        .saturating_mul(1u64 << doublings)
        .min(settings.max_delay);
    Some(Duration::seconds(
        i64::try_from(secs).unwrap_or(i64::MAX / 1000),
    ))
}

/// Looks the attempt's counters up, in one query.
pub async fn check(
    store: &dyn Store,
    settings: &ThrottleSettings,
    keys: &Keys,
    now: DateTime<Utc>,
) -> StoreResult<Check> {
    if !settings.enabled {
        return Ok(Check::default());
    }
    let mut watched = vec![keys.user_ip.clone(), keys.ip.clone()];
    if settings.lockout_after.is_some() {
        watched.push(keys.account.clone());
    }
    let state = store.throttle_state(&keys.for_store(&watched)).await?;
    Ok(Check {
        blocked_until: state.blocked_until.filter(|until| *until > now),
        user_has_counters: state.user_has_counters,
    })
}

/// Counts a failure on every counter and blocks those past their allowance.
pub async fn record_failure(
    store: &dyn Store,
    settings: &ThrottleSettings,
    keys: &Keys,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    if !settings.enabled {
        return Ok(());
    }
    let window_start =
        now - Duration::seconds(i64::try_from(settings.window).unwrap_or(i64::MAX / 1000));
    for (key, free) in [
        (&keys.user_ip, settings.user_free_attempts),
        (&keys.ip, settings.ip_free_attempts),
    ] {
        let failures = store.record_login_failure(key, now, window_start).await?;
        if let Some(wait) = delay(settings, failures, free) {
            store.block_logins(key, now + wait).await?;
        }
    }
    if let Some(limit) = settings.lockout_after {
        // Consecutive failures: the window does not apply to a lockout.
        let failures = store
            .record_login_failure(&keys.account, now, DateTime::<Utc>::UNIX_EPOCH)
            .await?;
        if failures >= i64::from(limit) {
            // "For good", in a form every database stores.
            let for_good = now + Duration::days(100 * 365);
            store.block_logins(&keys.account, for_good).await?;
        }
    }
    Ok(())
}

/// A success forgets the user name's failures (not the address's), when
/// `check` found any: most logins have none, and cost no write here. A
/// failure recorded while this attempt's password was being hashed stays.
pub async fn record_success(
    store: &dyn Store,
    settings: &ThrottleSettings,
    keys: &Keys,
    check: &Check,
) -> StoreResult<()> {
    if !settings.enabled || !check.user_has_counters {
        return Ok(());
    }
    store.clear_login_failures(&keys.for_store(&[])).await
}

/// Lifts every throttle and lockout of a user name (`tessera user unlock`).
pub async fn unlock(store: &dyn Store, username: &str) -> StoreResult<()> {
    store
        .clear_login_failures(&Keys::new(username, "").for_store(&[]))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_start_after_the_free_attempts_and_double_up_to_the_ceiling() {
        let settings = ThrottleSettings::default();
        let secs = |failures| delay(&settings, failures, 5).map(|d| d.num_seconds());
        assert_eq!(secs(5), None);
        assert_eq!(secs(6), Some(1));
        assert_eq!(secs(7), Some(2));
        assert_eq!(secs(8), Some(4));
        assert_eq!(secs(15), Some(512));
        assert_eq!(secs(16), Some(900));
        assert_eq!(secs(1_000_000), Some(900));
    }

    fn within_range(keys: &Keys, key: &str) -> bool {
        let store = keys.for_store(&[]);
        key >= store.user_from && key < store.user_until
    }

    #[test]
    fn keys_fold_the_user_name_and_range_over_the_user_name() {
        let keys = Keys::new("Alice", "192.0.2.1");
        assert_eq!(keys.user_ip, "user:alice|ip:192.0.2.1");
        let store = keys.for_store(&[]);
        assert_eq!(
            (store.user_from, store.user_until),
            ("user:alice|", "user:alice}")
        );
        let within = |key: &str| within_range(&keys, key);
        assert!(within("user:alice|ip:192.0.2.1"));
        assert!(within("user:alice|ip:2001:db8::1"));
        assert!(!within("user:alice2|ip:192.0.2.1"));
        assert!(!within("user:alic|ip:192.0.2.1"));
        assert!(!within("user:alice"));
        assert_eq!(keys.ip, "ip:192.0.2.1");
        assert_eq!(keys.account, "account:alice");

        // A `|` in a user name cannot make it look like another's prefix.
        let piped = Keys::new("a|ip:x", "192.0.2.1");
        assert_eq!(piped.user_ip, "user:a%7Cip:x|ip:192.0.2.1");
        assert!(!within_range(&Keys::new("a", "192.0.2.1"), &piped.user_ip));
    }
}
