//! Password hashing with argon2id, off the async executor, with bounded
//! concurrency and a bounded queue so a login storm cannot take all memory
//! or starve the other endpoints: past the bound, callers are told at once
//! that the service is busy.
//!
//! Never log a password or a hash.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::domain::Password;
use crate::telemetry::spawn_blocking_with_tracing;

/// argon2id parameters. The default, 19 MiB, two passes, one lane, is
/// OWASP's first recommendation (about 16 ms a verify on one core here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub struct HashParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for HashParams {
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl HashParams {
    fn argon2(self) -> anyhow::Result<Argon2<'static>> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| anyhow::anyhow!("invalid argon2 parameters: {e}"))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    /// Whether a stored PHC string was made with other parameters (or
    /// another algorithm), and so should be re-hashed at the next login.
    pub fn differ_from(self, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return true;
        };
        let Ok(stored) = Params::try_from(&parsed) else {
            return true;
        };
        parsed.algorithm.as_str() != "argon2id"
            || parsed.version != Some(0x13)
            || stored.m_cost() != self.memory_kib
            || stored.t_cost() != self.iterations
            || stored.p_cost() != self.parallelism
    }
}

/// Hashes a password into a PHC string. CPU-heavy: call from a blocking
/// thread or the command line, never on the executor.
pub fn hash(password: &Password, params: HashParams) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| anyhow::anyhow!("no randomness for a salt"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let hash = params
        .argon2()?
        .hash_password(password.expose().as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `phc`, with the parameters the
/// string names. A malformed stored hash is an error, not a mismatch.
pub fn verify(password: &Password, phc: &str) -> anyhow::Result<bool> {
    let parsed = PasswordHash::new(phc).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
    match Argon2::default().verify_password(password.expose().as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(e) => Err(anyhow::anyhow!("verifying failed: {e}")),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every hashing slot is busy and the queue is full or the wait ran out.
    #[error("password hashing is at capacity")]
    Busy,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Runs password verifications on blocking threads, at most `concurrency`
/// at once and at most `queue` waiting, each waiting at most `timeout`.
#[derive(Clone)]
pub struct PasswordHasherPool {
    slots: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    queue: usize,
    timeout: Duration,
    /// Verified against when the user does not exist, so that an unknown
    /// user costs the same time as a wrong password.
    dummy_hash: Arc<str>,
    params: HashParams,
}

/// The result of a verification.
#[derive(Debug)]
pub struct Verified {
    pub matched: bool,
    /// A new hash with the configured parameters, when the password matched
    /// a hash made with others: store it.
    pub upgraded_hash: Option<String>,
}

impl PasswordHasherPool {
    pub fn new(
        params: HashParams,
        concurrency: usize,
        queue: usize,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let dummy = Password::parse("tessera-dummy-password".into()).expect("short password");
        let dummy_hash = hash(&dummy, params).context("hashing the dummy password")?;
        Ok(Self {
            slots: Arc::new(Semaphore::new(concurrency)),
            waiting: Arc::new(AtomicUsize::new(0)),
            queue,
            timeout,
            dummy_hash: dummy_hash.into(),
            params,
        })
    }

    /// Verifies `password` against `phc`, or against a dummy hash when there
    /// is no user, so both cases take the same time (never a match without
    /// a user). A match against a hash of other parameters is re-hashed.
    #[tracing::instrument(name = "verify password", skip_all)]
    pub async fn verify(
        &self,
        password: Password,
        phc: Option<String>,
    ) -> Result<Verified, HashError> {
        let _permit = self.acquire().await?;
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.dummy_hash.to_string());
        let params = self.params;
        let verified = spawn_blocking_with_tracing(move || -> anyhow::Result<Verified> {
            let matched = known && verify(&password, &phc)?;
            let upgraded_hash = if matched && params.differ_from(&phc) {
                Some(hash(&password, params)?)
            } else {
                None
            };
            Ok(Verified {
                matched,
                upgraded_hash,
            })
        })
        .await
        .context("password verification panicked")??;
        Ok(verified)
    }

    /// Hashes a new password with the configured parameters.
    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        let _permit = self.acquire().await?;
        let params = self.params;
        Ok(spawn_blocking_with_tracing(move || hash(&password, params))
            .await
            .context("password hashing panicked")??)
    }

    async fn acquire(&self) -> Result<tokio::sync::SemaphorePermit<'_>, HashError> {
        if let Ok(permit) = self.slots.try_acquire() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(HashError::Busy);
        }
        let result = tokio::time::timeout(self.timeout, self.slots.acquire()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        match result {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) | Err(_) => Err(HashError::Busy),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let password = Password::parse("correct horse".into()).unwrap();
        let phc = hash(&password, HashParams::default()).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify(&password, &phc).unwrap());
        let other = Password::parse("battery staple".into()).unwrap();
        assert!(!verify(&other, &phc).unwrap());
    }

    #[test]
    fn a_malformed_stored_hash_is_an_error() {
        let password = Password::parse("x".into()).unwrap();
        assert!(verify(&password, "not-a-hash").is_err());
    }

    #[tokio::test]
    async fn a_hash_of_other_parameters_is_upgraded_at_a_match() {
        let old = HashParams {
            memory_kib: 8_192,
            iterations: 1,
            parallelism: 1,
        };
        let password = Password::parse("correct horse".into()).unwrap();
        let old_hash = hash(&password, old).unwrap();
        assert!(HashParams::default().differ_from(&old_hash));
        let pool =
            PasswordHasherPool::new(HashParams::default(), 1, 1, Duration::from_secs(5)).unwrap();

        let verified = pool.verify(password, Some(old_hash.clone())).await.unwrap();

        assert!(verified.matched);
        let new_hash = verified.upgraded_hash.expect("an upgraded hash");
        assert!(!HashParams::default().differ_from(&new_hash));
        let password = Password::parse("correct horse".into()).unwrap();
        assert!(verify(&password, &new_hash).unwrap());
        let wrong = Password::parse("wrong".into()).unwrap();
        let refused = pool.verify(wrong, Some(old_hash)).await.unwrap();
        assert!(!refused.matched && refused.upgraded_hash.is_none());
    }

    #[tokio::test]
    async fn an_unknown_user_never_matches() {
        let pool =
            PasswordHasherPool::new(HashParams::default(), 1, 1, Duration::from_secs(5)).unwrap();
        let password = Password::parse("tessera-dummy-password".into()).unwrap();
        assert!(!pool.verify(password, None).await.unwrap().matched);
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_at_once() {
        let pool =
            PasswordHasherPool::new(HashParams::default(), 1, 0, Duration::from_secs(5)).unwrap();
        let held = pool.slots.clone().acquire_owned().await.unwrap();
        let password = Password::parse("x".into()).unwrap();
        let started = std::time::Instant::now();
        assert!(matches!(
            pool.verify(password, None).await,
            Err(HashError::Busy)
        ));
        assert!(started.elapsed() < Duration::from_secs(1));
        drop(held);
    }
}
