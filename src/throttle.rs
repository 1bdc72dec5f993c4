//! Login throttling: after a few failures, each further attempt must wait,
//! twice as long each time, up to a ceiling. Waiting is answered at once with
//! 429 and `Retry-After`, before any password is hashed, so a throttled
//! attacker costs a database write, never a hashing slot or a held worker.
//!
//! Two counters guard every login: one for the user name from that address
//! (a guesser of one account) and one for the address (a sprayer of many).
//! No counter locks an account for good, so nobody can lock a user out,
//! unless the operator asks for a hard lockout.
//!
//! An attempt is counted before its password is hashed, as if it were going
//! to fail (`reserve`), and settled afterwards: a success clears the user
//! name's counters and gives the address its attempt back; a failure stays
//! counted. Reservations of one counter are serialized by the database, so
//! concurrent guesses, from one replica or many, see each other: however
//! many arrive at once, no more are hashed than the counters allow.

use chrono::{DateTime, TimeDelta, Utc};

use crate::configuration::{ThrottleSettings, time_delta};
use crate::store::{Reservation, Store, StoreResult, ThrottleCounter, ThrottleKeys, username_key};

/// "For good", in a form every database stores.
const FOR_GOOD: TimeDelta = TimeDelta::days(100 * 365);

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

    /// The counters of an OAuth client's authentication: its own, apart
    /// from every user's (a user name has no space, these keys do), and
    /// the address's, which logins share.
    pub fn for_client(client_id: &str, ip: &str) -> Self {
        let escaped = client_id.replace('%', "%25").replace('|', "%7C");
        let user_prefix = format!("user: client {escaped}|");
        Self {
            user_ip: format!("{user_prefix}ip:{ip}"),
            ip: format!("ip:{ip}"),
            account: format!("account: client {escaped}"),
            user_prefix,
            user_until: format!("user: client {escaped}}}"),
        }
    }

    fn user_counters(&self) -> ThrottleKeys<'_> {
        ThrottleKeys {
            user_from: &self.user_prefix,
            user_until: &self.user_until,
            account: &self.account,
        }
    }
}

/// Why an attempt may not be made now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Too many recent failures: the attempt may be made at `until`.
    Throttled { until: DateTime<Utc> },
    /// The hard lockout: until `tessera user unlock`.
    Locked,
}

/// An attempt counted in advance as a failure; settle it with
/// [`settle_success`] or [`release`], or leave it counted as the failure it
/// was.
#[must_use = "a reserved attempt is settled once its password is checked"]
#[derive(Debug)]
pub struct Attempt {
    counted: bool,
    /// The counters this attempt's own count made block.
    blocked: Vec<Counter>,
}

/// How long to wait after `failures` failures when `free` are allowed.
pub fn delay(settings: &ThrottleSettings, failures: i64, free: u32) -> Option<TimeDelta> {
    let over = failures - i64::from(free);
    if over <= 0 {
        return None;
    }
    let doublings = u32::try_from(over - 1).unwrap_or(u32::MAX).min(32);
    let wait = settings
        .base_delay
        .saturating_mul(1u32 << doublings.min(31))
        .min(settings.max_delay);
    Some(time_delta(wait))
}

/// Which counter a reservation counts on, in the order they are taken:
/// the order of their keys (`account:` < `ip:` < `user:`), the same for
/// every attempt and every other statement on the counters, so that
/// concurrent ones never wait on each other in a circle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counter {
    Account,
    Ip,
    UserIp,
}

impl Counter {
    fn key(self, keys: &Keys) -> &str {
        match self {
            Self::Account => &keys.account,
            Self::Ip => &keys.ip,
            Self::UserIp => &keys.user_ip,
        }
    }
}

/// Counts the attempt on every counter, unless one of them blocks it.
pub async fn reserve(
    store: &dyn Store,
    settings: &ThrottleSettings,
    keys: &Keys,
    now: DateTime<Utc>,
) -> StoreResult<Result<Attempt, Refusal>> {
    if !settings.enabled {
        return Ok(Ok(Attempt {
            counted: false,
            blocked: Vec::new(),
        }));
    }
    let window_start = now - time_delta(settings.window);
    let mut order = Vec::with_capacity(3);
    let mut counters = Vec::with_capacity(3);
    if settings.lockout_after.is_some() {
        // Consecutive failures: the window does not apply to a lockout.
        order.push(Counter::Account);
        counters.push(ThrottleCounter {
            key: &keys.account,
            window_start: DateTime::<Utc>::UNIX_EPOCH,
        });
    }
    for (counter, key) in [(Counter::Ip, &keys.ip), (Counter::UserIp, &keys.user_ip)] {
        order.push(counter);
        counters.push(ThrottleCounter { key, window_start });
    }
    let blocked = std::sync::Mutex::new(Vec::new());
    let block = |index: usize, failures: i64| {
        let until = match order[index] {
            Counter::Account => settings
                .lockout_after
                .filter(|limit| failures >= i64::from(*limit))
                .map(|_| now + FOR_GOOD),
            Counter::UserIp => {
                delay(settings, failures, settings.user_free_attempts).map(|d| now + d)
            }
            Counter::Ip => delay(settings, failures, settings.ip_free_attempts).map(|d| now + d),
        };
        if until.is_some() {
            blocked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(order[index]);
        }
        until
    };
    let reservation = store.reserve_login_attempt(&counters, now, &block).await?;
    let blocked = blocked
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Ok(match reservation {
        Reservation::Reserved => Ok(Attempt {
            counted: true,
            blocked,
        }),
        Reservation::Blocked { index, until } => Err(match order[index] {
            Counter::Account => Refusal::Locked,
            Counter::UserIp | Counter::Ip => Refusal::Throttled { until },
        }),
    })
}

/// A success forgets the user name's failures (not the address's), and
/// gives the address back the attempt counted for it. A failure recorded
/// meanwhile by another attempt of the same user name is forgotten too: the
/// password was right.
pub async fn settle_success(store: &dyn Store, keys: &Keys, attempt: Attempt) -> StoreResult<()> {
    if !attempt.counted {
        return Ok(());
    }
    store.clear_login_failures(&keys.user_counters()).await?;
    let unblock = attempt.blocked.contains(&Counter::Ip);
    store.release_login_attempt(&keys.ip, unblock).await
}

/// Takes back an attempt whose password was never checked (the hashing
/// pool was full, say): it counts as nothing, and a block its count set is
/// lifted.
pub async fn release(store: &dyn Store, keys: &Keys, attempt: Attempt) -> StoreResult<()> {
    if !attempt.counted {
        return Ok(());
    }
    for counter in [Counter::Account, Counter::Ip, Counter::UserIp] {
        let unblock = attempt.blocked.contains(&counter);
        store
            .release_login_attempt(counter.key(keys), unblock)
            .await?;
    }
    Ok(())
}

/// Lifts every throttle and lockout of a user name (`tessera user unlock`).
pub async fn unlock(store: &dyn Store, username: &str) -> StoreResult<()> {
    store
        .clear_login_failures(&Keys::new(username, "").user_counters())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_start_after_the_free_attempts_and_double_up_to_the_ceiling() {
        let settings = ThrottleSettings::default();
        let secs = |failures| delay(&settings, failures, 5).map(|d| d.num_seconds());
        let huge = ThrottleSettings {
            max_delay: std::time::Duration::from_secs(10 * 365 * 86_400),
            ..ThrottleSettings::default()
        };
        assert_eq!(
            delay(&huge, i64::MAX, 0).map(|d| d.num_days()),
            Some(3650),
            "capped, never overflowing"
        );
        assert_eq!(secs(5), None);
        assert_eq!(secs(6), Some(1));
        assert_eq!(secs(7), Some(2));
        assert_eq!(secs(8), Some(4));
        assert_eq!(secs(15), Some(512));
        assert_eq!(secs(16), Some(900));
        assert_eq!(secs(1_000_000), Some(900));
    }

    fn within_range(keys: &Keys, key: &str) -> bool {
        let store = keys.user_counters();
        key >= store.user_from && key < store.user_until
    }

    #[test]
    fn keys_fold_the_user_name_and_range_over_the_user_name() {
        let keys = Keys::new("Alice", "192.0.2.1");
        assert_eq!(keys.user_ip, "user:alice|ip:192.0.2.1");
        let store = keys.user_counters();
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
