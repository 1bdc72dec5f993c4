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

/// argon2id parameters: 19 MiB, two passes, one lane (OWASP's first
/// recommendation; about 16 ms a verify on one core).
pub fn argon2() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into a PHC string. CPU-heavy: call from a blocking
/// thread or the command line, never on the executor.
pub fn hash(password: &Password) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| anyhow::anyhow!("no randomness for a salt"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let hash = argon2()
        .hash_password(password.expose().as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `phc`. A malformed stored hash
/// is an error, not a mismatch.
pub fn verify(password: &Password, phc: &str) -> anyhow::Result<bool> {
    let parsed = PasswordHash::new(phc).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
    match argon2().verify_password(password.expose().as_bytes(), &parsed) {
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
}

impl PasswordHasherPool {
    pub fn new(concurrency: usize, queue: usize, timeout: Duration) -> anyhow::Result<Self> {
        let dummy = Password::parse("tessera-dummy-password".into()).expect("short password");
        let dummy_hash = hash(&dummy).context("hashing the dummy password")?;
        Ok(Self {
            slots: Arc::new(Semaphore::new(concurrency)),
            waiting: Arc::new(AtomicUsize::new(0)),
            queue,
            timeout,
            dummy_hash: dummy_hash.into(),
        })
    }

    /// Verifies `password` against `phc`, or against a dummy hash when there
    /// is no user, so both cases take the same time. Returns whether it
    /// matched (always `false` without a user).
    #[tracing::instrument(name = "verify password", skip_all)]
    pub async fn verify(&self, password: Password, phc: Option<String>) -> Result<bool, HashError> {
        let _permit = self.acquire().await?;
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.dummy_hash.to_string());
        let matched = spawn_blocking_with_tracing(move || verify(&password, &phc))
            .await
            .context("password verification panicked")??;
        Ok(known && matched)
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
        let phc = hash(&password).unwrap();
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
    async fn an_unknown_user_never_matches() {
        let pool = PasswordHasherPool::new(1, 1, Duration::from_secs(5)).unwrap();
        let password = Password::parse("tessera-dummy-password".into()).unwrap();
        assert!(!pool.verify(password, None).await.unwrap());
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_at_once() {
        let pool = PasswordHasherPool::new(1, 0, Duration::from_secs(5)).unwrap();
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
