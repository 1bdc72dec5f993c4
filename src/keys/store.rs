//! The running service's keys: the current [`KeySet`], swapped whole when
//! a rescan of the directory finds a change, and automatic rotation.
//!
//! Readers never wait: a request loads the current set with one atomic
//! operation and keeps it for as long as it needs. Only a rescan that finds
//! a change builds a new set (and serializes its JWKS); an unchanged
//! directory costs a read of its files and nothing more.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};

use super::directory;
use super::directory::KeyProblem;
use super::lifecycle::{Lifecycle, next_boundary};
use super::set::{self, KeySet, SigningUnavailable};
use crate::clock::Clock;
use crate::telemetry::spawn_blocking_with_tracing;

/// The key set the service signs and verifies with, kept in step with the
/// key directory. Cheap to clone: clones share one set.
#[derive(Clone)]
pub struct KeyStore {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    lifecycle: Lifecycle,
    clock: Arc<dyn Clock>,
    current: ArcSwap<KeySet>,
    /// One rescan at a time, so that changes are logged once.
    rescanning: Mutex<()>,
}

impl KeyStore {
    /// Reads the key directory, creating it and a first key (active at
    /// once) when it holds no key file and `generate` is set. Fails, saying
    /// what to do, when no key at all can be loaded. When some can but not
    /// the one whose turn it is to sign, it starts all the same, verifying
    /// and not signing, so that it answers not ready and recovers at the
    /// rescan that loads the key. Blocking: reads files and may generate a
    /// key.
    pub fn open(
        dir: &Path,
        lifecycle: Lifecycle,
        clock: Arc<dyn Clock>,
        generate: bool,
    ) -> anyhow::Result<Self> {
        if !dir.exists() {
            if !generate {
                anyhow::bail!(
                    "the key directory {} does not exist. Create it and a key with \
                     `tessera keys rotate --now`, or set keys.generate = true \
                     (TESSERA_KEYS__GENERATE=true) to let Tessera create them",
                    dir.display()
                );
            }
            directory::create_key_dir(dir)?;
        }
        let mut scan = directory::scan(dir)?;
        // Only a directory with nothing in the way gets a first key: a key
        // file that cannot be used is the operator's to fix, not to replace.
        let needs_first_key = |scan: &directory::Scan| {
            scan.problems.is_empty()
                && scan
                    .files
                    .iter()
                    .all(|file| scan.revoked.contains_key(&file.kid))
        };
        if generate && needs_first_key(&scan) {
            let kid = directory::create_key(dir, clock.now())?;
            tracing::info!(kid = %kid, dir = %dir.display(), "Generated a first signing key");
            scan = directory::scan(dir)?;
        }
        let revoked = scan.revoked.clone();
        let built = set::build(scan, None, &lifecycle);
        if built.entries.is_empty() {
            anyhow::bail!(
                "{}. Add a key with `tessera keys rotate --now`{}",
                set::no_usable_key(dir, &built.problems),
                if generate {
                    ", or fix or remove the files above"
                } else {
                    ", or set keys.generate = true (TESSERA_KEYS__GENERATE=true) to let Tessera create one"
                }
            );
        }
        for problem in &built.problems {
            log_problem(problem);
        }
        let keys = KeySet::new(built, revoked, lifecycle, clock.clone()).context("loading keys")?;
        if let Err(unavailable) = keys.signing() {
            log_unavailable(&unavailable);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                lifecycle,
                clock,
                current: ArcSwap::from_pointee(keys),
                rescanning: Mutex::new(()),
            }),
        })
    }

    /// The key set as of the last rescan.
    pub fn current(&self) -> Arc<KeySet> {
        self.inner.current.load_full()
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// Reads the directory again and swaps in a new key set if anything
    /// changed; returns whether it did. Never loses the last good keys: a
    /// file that breaks keeps its last good copy, and a directory with no
    /// usable key keeps the whole current set. Blocking.
    pub fn rescan_blocking(&self) -> bool {
        let _one_at_a_time = self
            .inner
            .rescanning
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = self.current();
        let dir = &self.inner.dir;
        let next = match directory::scan(dir) {
            Err(error) => current.with_problems(vec![KeyProblem::new(
                dir,
                format!("the key directory cannot be read ({error:#}); still using the keys loaded before"),
            )]),
            Ok(scan) => {
                let revoked = scan.revoked.clone();
                let mut built = set::build(scan, Some(&current), &self.inner.lifecycle);
                if built.entries.is_empty() {
                    built.problems.push(KeyProblem::new(
                        dir,
                        "no usable key is left; still using the keys loaded before",
                    ));
                    current.with_problems(built.problems)
                } else {
                    match KeySet::new(
                        built,
                        revoked,
                        self.inner.lifecycle,
                        self.inner.clock.clone(),
                    ) {
                        Ok(keys) => keys,
                        Err(error) => {
                            tracing::error!(error = ?error, "Could not build the new key set");
                            return false;
                        }
                    }
                }
            }
        };
        if next.same_as(&current) {
            return false;
        }
        log_changes(&current, &next);
        self.inner.current.store(Arc::new(next));
        true
    }

    /// [`KeyStore::rescan_blocking`] on a blocking thread.
    pub async fn rescan(&self) -> bool {
        let store = self.clone();
        spawn_blocking_with_tracing(move || store.rescan_blocking())
            .await
            .unwrap_or(false)
    }

    /// With automatic rotation on, creates the key of the next rotation slot
    /// unless it exists; returns its kid when this call created it.
    ///
    /// Slots are multiples of `keys.rotate_every` since the Unix epoch, and a
    /// slot's key is named by its activation time only, so replicas sharing
    /// the directory compute the same name and only the first creates it.
    /// The key of the next slot is created as soon as the previous one
    /// activates, which publishes it a whole period ahead; if the next slot
    /// is less than a publication lead away (a service started late in a
    /// period), the slot after it is created instead. Blocking: generates a
    /// key.
    pub fn rotate_if_due_blocking(&self) -> anyhow::Result<Option<String>> {
        if self.due_slot(self.now()).is_none() {
            return Ok(None);
        }
        let pair = directory::generate_pair()?;
        // Generating took a while: choose the slot with the time it is now.
        let Some(slot) = self.due_slot(self.now()) else {
            return Ok(None);
        };
        let kid = directory::slot_kid(slot);
        if directory::write_key(&self.inner.dir, &kid, &pair)? {
            tracing::info!(kid = %kid, activates = %slot.to_rfc3339(), "Created the key of the next rotation");
            Ok(Some(kid))
        } else {
            Ok(None)
        }
    }

    /// The activation time of the slot whose key should be created now.
    fn due_slot(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let every = self.inner.lifecycle.rotate_every?;
        let dir = &self.inner.dir;
        let next = next_boundary(now, every);
        if directory::is_taken(dir, &directory::slot_kid(next)) {
            return None;
        }
        let slot = if next - now >= self.inner.lifecycle.publish_for {
            next
        } else {
            next + every
        };
        (!directory::is_taken(dir, &directory::slot_kid(slot))).then_some(slot)
    }

    /// [`KeyStore::rotate_if_due_blocking`] on a blocking thread.
    pub async fn rotate_if_due(&self) -> anyhow::Result<Option<String>> {
        let store = self.clone();
        spawn_blocking_with_tracing(move || store.rotate_if_due_blocking())
            .await
            .context("automatic rotation panicked")?
    }

    /// Every `every`, starting one interval from now: creates the next key
    /// when automatic rotation is due, then rescans the directory. Runs until
    /// the task is dropped.
    pub async fn maintain(self, every: Duration) {
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let signer = |keys: &KeySet| {
            keys.signing()
                .map(|key| key.kid().to_owned())
                .map_err(|unavailable| unavailable.kid)
        };
        let mut signing = signer(&self.current());
        loop {
            ticker.tick().await;
            if let Err(error) = self.rotate_if_due().await {
                tracing::error!(error = ?error, "Automatic key rotation failed; retrying at the next rescan");
            }
            self.rescan().await;
            let keys = self.current();
            let now_signing = signer(&keys);
            if now_signing == signing {
                continue;
            }
            match (&now_signing, &signing) {
                (Ok(kid), Ok(previous)) => {
                    tracing::info!(kid = %kid, previous = %previous, "A new key signs");
                }
                (Ok(kid), Err(_)) => {
                    tracing::info!(kid = %kid, "The signing key is loaded: signing again");
                }
                (Err(_), _) => {
                    if let Err(unavailable) = keys.signing() {
                        log_unavailable(&unavailable);
                    }
                }
            }
            signing = now_signing;
        }
    }
}

fn log_unavailable(unavailable: &SigningUnavailable) {
    tracing::error!(
        kid = %unavailable.kid,
        "The key that signs now, {}, is not loaded: nothing is signed and the service \
         answers not ready until a rescan loads it",
        unavailable.kid
    );
}

fn log_problem(problem: &KeyProblem) {
    tracing::warn!(
        file = %problem.file.display(),
        reason = %problem.reason,
        kept_last_good = problem.kept,
        "Skipped a key file: {problem}"
    );
}

/// Logs what a rescan changed: keys added, removed and revoked, problems
/// that appeared or went away. Each is logged once, not at every rescan.
fn log_changes(before: &KeySet, after: &KeySet) {
    let kids =
        |set: &KeySet| -> Vec<String> { set.published().iter().map(|k| k.kid.clone()).collect() };
    let (old, new) = (kids(before), kids(after));
    for kid in new.iter().filter(|kid| !old.contains(kid)) {
        tracing::info!(kid = %kid, "Published a new key");
    }
    for kid in old.iter().filter(|kid| !new.contains(kid)) {
        if after.is_revoked(kid) {
            tracing::warn!(kid = %kid, "Revoked a key: unpublished, its tokens refused");
        } else {
            tracing::info!(kid = %kid, "Removed a key");
        }
    }
    for problem in after.problems() {
        if !before.problems().contains(problem) {
            log_problem(problem);
        }
    }
    for problem in before.problems() {
        if !after.problems().contains(problem) {
            tracing::info!(file = %problem.file.display(), "A key file problem went away");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Write;
    use std::sync::Mutex;

    use chrono::TimeDelta;

    use super::*;
    use crate::clock::{ManualClock, SystemClock};

    /// Log output, captured for one synchronous call.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged<T>(f: impl FnOnce() -> T) -> (T, String) {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let result = tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        (result, text)
    }

    fn open(dir: &Path) -> KeyStore {
        KeyStore::open(dir, Lifecycle::default(), Arc::new(SystemClock), true).unwrap()
    }

    #[cfg(unix)]
    fn chmod(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_corrupt_file_and_a_world_readable_key_are_skipped_with_a_clear_log_line() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let signing = store.current().signing().unwrap().kid().to_owned();
        let corrupt = dir.path().join("corrupt.pem");
        fs::write(&corrupt, "-----BEGIN PRIVATE KEY-----\nnot base64\n").unwrap();
        chmod(&corrupt, 0o600);
        // Pending: it stops the signing only once it is active.
        let loose = directory::create_key(dir.path(), Utc::now() + TimeDelta::hours(1)).unwrap();
        chmod(&dir.path().join(format!("{loose}.pem")), 0o644);

        let (changed, log) = logged(|| store.rescan_blocking());

        assert!(changed);
        assert!(
            log.contains("Skipped a key file") && log.contains("corrupt.pem: not a PEM file"),
            "{log}"
        );
        assert!(
            log.contains(&format!(
                "{loose}.pem: a private key open to group or others (mode 0644); run chmod 600 on it; skipped"
            )),
            "{log}"
        );
        let keys = store.current();
        assert_eq!(keys.signing().unwrap().kid(), signing);
        assert!(keys.get(&loose).is_none());
        assert_eq!(keys.problems().len(), 2);
        // Logged once, not at every rescan.
        let (changed, log) = logged(|| store.rescan_blocking());
        assert!(!changed);
        assert!(!log.contains("Skipped"), "{log}");
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_that_breaks_keeps_its_last_good_copy() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let kid = store.current().signing().unwrap().kid().to_owned();
        let path = dir.path().join(format!("{kid}.pem"));

        fs::write(&path, "garbage").unwrap();
        store.rescan_blocking();

        let keys = store.current();
        assert_eq!(keys.signing().unwrap().kid(), kid);
        assert!(keys.problems()[0].kept);
        assert!(
            keys.problems()[0]
                .to_string()
                .contains("still using the copy loaded before")
        );
    }

    #[test]
    fn a_server_started_while_the_active_key_cannot_be_loaded_signs_once_it_can() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        directory::create_key(dir.path(), now - TimeDelta::days(1)).unwrap();
        let active = directory::create_key(dir.path(), now - TimeDelta::hours(1)).unwrap();
        let path = dir.path().join(format!("{active}.pem"));
        let good = fs::read(&path).unwrap();
        fs::write(&path, "garbage").unwrap();

        let (store, log) = logged(|| open(dir.path()));

        let unavailable = store.current().signing().unwrap_err();
        assert_eq!(unavailable.kid, active);
        assert!(
            log.contains(&format!("The key that signs now, {active}, is not loaded")),
            "{log}"
        );
        fs::write(&path, good).unwrap();
        assert!(store.rescan_blocking());
        assert_eq!(store.current().signing().unwrap().kid(), active);
    }

    #[test]
    fn an_emptied_directory_keeps_the_keys_loaded_before() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let kid = store.current().signing().unwrap().kid().to_owned();

        fs::remove_file(dir.path().join(format!("{kid}.pem"))).unwrap();
        assert!(store.rescan_blocking());

        assert_eq!(store.current().signing().unwrap().kid(), kid);
        assert!(
            store.current().problems()[0]
                .reason
                .contains("no usable key is left")
        );
    }

    #[test]
    fn added_and_removed_keys_are_picked_up_and_an_unchanged_directory_keeps_its_set() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let first = store.current();
        assert!(!store.rescan_blocking());
        assert!(Arc::ptr_eq(&first, &store.current()));

        let added = directory::generate(dir.path()).unwrap();
        assert!(store.rescan_blocking());
        assert_eq!(store.current().signing().unwrap().kid(), added);

        fs::remove_file(dir.path().join(format!("{added}.pem"))).unwrap();
        assert!(store.rescan_blocking());
        assert_eq!(store.current().published().len(), 1);
    }

    #[test]
    fn without_a_key_and_without_generation_start_up_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();

        let error = KeyStore::open(
            dir.path(),
            Lifecycle::default(),
            Arc::new(SystemClock),
            false,
        )
        .err()
        .unwrap()
        .to_string();

        assert!(error.contains("no signing key"), "{error}");
        assert!(error.contains("tessera keys rotate --now"), "{error}");
        assert!(error.contains("keys.generate = true"), "{error}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn automatic_rotation_creates_one_key_per_slot_a_whole_lead_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let start = DateTime::parse_from_rfc3339("2030-01-01T00:00:10Z")
            .unwrap()
            .to_utc();
        let clock = Arc::new(ManualClock::new(start));
        let lifecycle = Lifecycle {
            publish_for: TimeDelta::seconds(20),
            grace: TimeDelta::seconds(5),
            rotate_every: Some(TimeDelta::seconds(60)),
        };
        let store = KeyStore::open(dir.path(), lifecycle, clock.clone(), true).unwrap();

        let created = store.rotate_if_due_blocking().unwrap().unwrap();
        assert_eq!(created, "tessera-20300101T000100Z-auto");
        assert_eq!(store.rotate_if_due_blocking().unwrap(), None);
        store.rescan_blocking();
        assert_ne!(store.current().signing().unwrap().kid(), created);

        clock.set(start + TimeDelta::seconds(50));
        assert_eq!(store.current().signing().unwrap().kid(), created);
        let next = store.rotate_if_due_blocking().unwrap().unwrap();
        assert_eq!(next, "tessera-20300101T000200Z-auto");

        // Started late in a period: the slot after the next.
        clock.set(start + TimeDelta::seconds(105));
        fs::remove_file(dir.path().join(format!("{next}.pem"))).unwrap();
        let late = store.rotate_if_due_blocking().unwrap().unwrap();
        assert_eq!(late, "tessera-20300101T000300Z-auto");
    }
}
