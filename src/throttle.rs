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
use crate::store::{Store, StoreResult, username_key};

/// The counters that guard one login attempt.
pub struct Keys {
    pub user_ip: String,
    pub ip: String,
    pub account: String,
}

impl Keys {
    pub fn new(username: &str, ip: &str) -> Self {
        let name = username_key(username);
        Self {
            user_ip: format!("user:{name}|ip:{ip}"),
            ip: format!("ip:{ip}"),
            account: format!("account:{name}"),
        }
    }

    /// The prefix of every per-user counter of this user name.
    fn user_prefix(&self) -> &str {
        let end = self
            .user_ip
            .find("|ip:")
            .map_or(self.user_ip.len(), |i| i + 1);
        &self.user_ip[..end]
    }
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

/// When the attempt may be made, if not now.
pub async fn blocked_until(
    store: &dyn Store,
    settings: &ThrottleSettings,
    keys: &Keys,
    now: DateTime<Utc>,
) -> StoreResult<Option<DateTime<Utc>>> {
    if !settings.enabled {
        return Ok(None);
    }
    let mut watched = vec![keys.user_ip.clone(), keys.ip.clone()];
    if settings.lockout_after.is_some() {
        watched.push(keys.account.clone());
    }
    let until = store.throttled_until(&watched).await?;
    Ok(until.filter(|until| *until > now))
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

/// A success forgets the user name's failures (not the address's).
pub async fn record_success(
    store: &dyn Store,
    settings: &ThrottleSettings,
    keys: &Keys,
) -> StoreResult<()> {
    if !settings.enabled {
        return Ok(());
    }
    store.clear_login_failures(keys.user_prefix()).await?;
    if settings.lockout_after.is_some() {
        store.clear_login_failures(&keys.account).await?;
    }
    Ok(())
}

/// Lifts every throttle and lockout of a user name (`tessera user unlock`).
pub async fn unlock(store: &dyn Store, username: &str) -> StoreResult<()> {
    let keys = Keys::new(username, "");
    store.clear_login_failures(keys.user_prefix()).await?;
    store.clear_login_failures(&keys.account).await
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

    #[test]
    fn keys_fold_the_user_name_and_name_the_user_prefix() {
        let keys = Keys::new("Alice", "192.0.2.1");
        assert_eq!(keys.user_ip, "user:alice|ip:192.0.2.1");
        assert_eq!(keys.user_prefix(), "user:alice|");
        assert_eq!(keys.ip, "ip:192.0.2.1");
        assert_eq!(keys.account, "account:alice");
    }
}
