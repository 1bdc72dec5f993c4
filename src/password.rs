//! Password hashing with argon2id on dedicated threads, off the async
//! executor, with bounded concurrency and a bounded queue so a login storm cannot take all memory
//! or starve the other endpoints: past the bound, callers are told at once
//! that the service is busy.
//!
//! Never log a password or a hash.

use std::sync::mpsc::TrySendError;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use argon2::password_hash::Output;
use argon2::password_hash::{PasswordHash, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::oneshot;

use crate::configuration::HashingSettings;
use crate::domain::Password;

/// argon2id parameters. The default, 19 MiB, two passes, one lane, is
/// OWASP's first recommendation (about 16 ms a verify on one core here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub struct HashParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl HashParams {
    /// The parameters `[hashing]` sets.
    pub fn from_settings(hashing: &HashingSettings) -> Self {
        Self {
            memory_kib: hashing.memory_kib,
            iterations: hashing.iterations,
            parallelism: hashing.parallelism,
        }
    }
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

/// Hashes a password into a PHC string, with memory of its own. For test
/// fixtures and tools: the service and the command line hash through a
/// [`PasswordHasherPool`], whose threads reuse their memory. CPU-heavy:
/// never call it on the executor.
pub fn hash(password: &Password, params: HashParams) -> anyhow::Result<String> {
    hash_with_memory(password, params, &mut Vec::new())
}

/// Hashes a password into a PHC string reusing `memory` for argon2's
/// blocks, as [`verify_with_memory`] does.
fn hash_with_memory(
    password: &Password,
    params: HashParams,
    memory: &mut Vec<Block>,
) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| anyhow::anyhow!("no randomness for a salt"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let argon2 = params.argon2()?;
    let blocks = argon2.params().block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut salt_bytes = [0u8; 16];
    let salt_bytes = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2
        .hash_password_into_with_memory(
            password.expose().as_bytes(),
            salt_bytes,
            &mut output,
            &mut memory[..blocks],
        )
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: argon2
            .params()
            .try_into()
            .map_err(|e| anyhow::anyhow!("hash parameters: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&output).map_err(|e| anyhow::anyhow!("hash output: {e}"))?),
    };
    Ok(phc.to_string())
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

/// Verifies `password` against `phc` reusing `memory` for argon2's blocks,
/// so a worker thread allocates its 19 MiB once, not once per login.
fn verify_with_memory(
    password: &Password,
    phc: &str,
    memory: &mut Vec<Block>,
) -> anyhow::Result<bool> {
    let parsed = PasswordHash::new(phc).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
    let algorithm =
        Algorithm::try_from(parsed.algorithm).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|e| anyhow::anyhow!("stored hash: {e}"))?
        .unwrap_or_default();
    let params = Params::try_from(&parsed).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
    let expected = parsed.hash.context("stored hash has no output")?;
    let mut salt = [0u8; 64];
    let salt = parsed
        .salt
        .context("stored hash has no salt")?
        .decode_b64(&mut salt)
        .map_err(|e| anyhow::anyhow!("stored hash salt: {e}"))?;
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut output = [0u8; 64];
    let output = &mut output[..expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(
            password.expose().as_bytes(),
            salt,
            output,
            &mut memory[..blocks],
        )
        .map_err(|e| anyhow::anyhow!("verifying failed: {e}"))?;
    let computed = Output::new(output).map_err(|e| anyhow::anyhow!("verifying failed: {e}"))?;
    // `Output`'s equality is constant-time.
    Ok(computed == expected)
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every hashing slot is busy and the queue is full or the wait ran out.
    #[error("password hashing is at capacity")]
    Busy,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The result of a verification.
#[derive(Debug)]
pub struct Verified {
    pub matched: bool,
    /// A new hash with the configured parameters, when the password matched
    /// a hash made with others: store it.
    pub upgraded_hash: Option<String>,
}

enum Work {
    Verify {
        password: Password,
        phc: String,
        known: bool,
    },
    Hash {
        password: Password,
    },
}

enum Done {
    Verified(Verified),
    Hashed(String),
}

/// What the pool reports: jobs waiting, and how long each waited.
#[derive(Clone)]
pub struct HashMetrics {
    pub queue_depth: prometheus::IntGauge,
    pub wait: prometheus::Histogram,
}

impl HashMetrics {
    /// Metrics that nobody reads, for pools outside the server.
    pub fn unregistered() -> Self {
        Self {
            queue_depth: prometheus::IntGauge::new("unregistered_queue_depth", "-")
                .expect("valid metric"),
            wait: prometheus::Histogram::with_opts(prometheus::HistogramOpts::new(
                "unregistered_wait",
                "-",
            ))
            .expect("valid metric"),
        }
    }
}

struct Job {
    work: Work,
    queued_at: Instant,
    /// Past this, the job is dropped unstarted and the caller told "busy".
    deadline: Instant,
    reply: oneshot::Sender<Result<Done, HashError>>,
    span: tracing::Span,
}

/// Password hashing on `concurrency` dedicated threads (never the async
/// executor), with at most `queue` jobs waiting, each waiting at most
/// `timeout`. Past either bound the caller is told at once that the service
/// is busy. Each thread keeps its argon2 memory, so memory stays at
/// `concurrency` × the configured cost however many logins arrive.
#[derive(Clone)]
pub struct PasswordHasherPool {
    jobs: std::sync::mpsc::SyncSender<Job>,
    timeout: Duration,
    /// Verified against when the user does not exist, so that an unknown
    /// user costs the same time as a wrong password.
    dummy_hash: Arc<str>,
    queue_depth: prometheus::IntGauge,
}

impl PasswordHasherPool {
    pub fn new(
        params: HashParams,
        concurrency: usize,
        queue: usize,
        timeout: Duration,
        metrics: HashMetrics,
    ) -> anyhow::Result<Self> {
        let dummy = Password::parse("tessera-dummy-password".into()).expect("short password");
        let dummy_hash = hash(&dummy, params).context("hashing the dummy password")?;
        let (jobs, receiver) = std::sync::mpsc::sync_channel::<Job>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..concurrency.max(1) {
            let receiver = Arc::clone(&receiver);
            let metrics = metrics.clone();
            std::thread::Builder::new()
                .name(format!("tessera-hash-{n}"))
                .spawn(move || {
                    yield_to_requests();
                    work(&receiver, params, &metrics)
                })
                .context("starting a hashing thread")?;
        }
        Ok(Self {
            jobs,
            timeout,
            dummy_hash: dummy_hash.into(),
            queue_depth: metrics.queue_depth,
        })
    }

    async fn submit(&self, work: Work) -> Result<Done, HashError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            work,
            queued_at: Instant::now(),
            deadline: Instant::now() + self.timeout,
            reply,
            span: tracing::Span::current(),
        };
        self.queue_depth.inc();
        self.jobs
            .try_send(job)
            .inspect_err(|_| self.queue_depth.dec())
            .map_err(|e| match e {
                TrySendError::Full(_) => HashError::Busy,
                TrySendError::Disconnected(_) => {
                    HashError::Unexpected(anyhow::anyhow!("the hashing threads have stopped"))
                }
            })?;
        answer
            .await
            .map_err(|_| HashError::Unexpected(anyhow::anyhow!("a hashing thread stopped")))?
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
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.dummy_hash.to_string());
        match self
            .submit(Work::Verify {
                password,
                phc,
                known,
            })
            .await?
        {
            Done::Verified(verified) => Ok(verified),
            Done::Hashed(_) => Err(HashError::Unexpected(anyhow::anyhow!(
                "a hash for a verification"
            ))),
        }
    }

    /// A pool of one thread for the command line, which hashes one
    /// password at a time and may wait as long as that takes.
    pub fn for_command_line(params: HashParams) -> anyhow::Result<Self> {
        Self::new(
            params,
            1,
            1,
            Duration::from_secs(3600),
            HashMetrics::unregistered(),
        )
    }

    /// Hashes a new password with the configured parameters.
    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        match self.submit(Work::Hash { password }).await? {
            Done::Hashed(hash) => Ok(hash),
            Done::Verified(_) => Err(HashError::Unexpected(anyhow::anyhow!(
                "a verification for a hash"
            ))),
        }
    }
}

/// Lowers the calling hashing thread's priority (nice 10), so that under
/// load the scheduler runs request handling and the database first: a login
/// flood then slows logins, not token issuing. With spare CPU, hashing runs
/// as fast as before.
#[cfg(target_os = "linux")]
fn yield_to_requests() {
    // SAFETY: `setpriority` reads no memory of ours. On Linux, `PRIO_PROCESS`
    // with 0 names the calling thread alone.
    let failed = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) } != 0;
    if failed {
        tracing::warn!("Could not lower the priority of a hashing thread");
    }
}

#[cfg(not(target_os = "linux"))]
fn yield_to_requests() {}

/// A hashing thread: takes jobs until the pool is dropped.
fn work(
    receiver: &Mutex<std::sync::mpsc::Receiver<Job>>,
    params: HashParams,
    metrics: &HashMetrics,
) {
    let mut memory = Vec::new();
    loop {
        let job = {
            let Ok(receiver) = receiver.lock() else {
                return;
            };
            match receiver.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        metrics.queue_depth.dec();
        metrics.wait.observe(job.queued_at.elapsed().as_secs_f64());
        if job.reply.is_closed() {
            continue;
        }
        if Instant::now() > job.deadline {
            let _ = job.reply.send(Err(HashError::Busy));
            continue;
        }
        let _entered = job.span.enter();
        let result = match job.work {
            Work::Verify {
                password,
                phc,
                known,
            } => {
                // Always verify, so an unknown user costs what a known one does.
                verify_with_memory(&password, &phc, &mut memory).and_then(|matched| {
                    let matched = matched && known;
                    let upgraded_hash = if matched && params.differ_from(&phc) {
                        Some(hash_with_memory(&password, params, &mut memory)?)
                    } else {
                        None
                    };
                    Ok(Done::Verified(Verified {
                        matched,
                        upgraded_hash,
                    }))
                })
            }
            Work::Hash { password } => {
                hash_with_memory(&password, params, &mut memory).map(Done::Hashed)
            }
        };
        let _ = job.reply.send(result.map_err(HashError::Unexpected));
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
        let pool = PasswordHasherPool::new(
            HashParams::default(),
            1,
            1,
            Duration::from_secs(5),
            HashMetrics::unregistered(),
        )
        .unwrap();

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
        let pool = PasswordHasherPool::new(
            HashParams::default(),
            1,
            1,
            Duration::from_secs(5),
            HashMetrics::unregistered(),
        )
        .unwrap();
        let password = Password::parse("tessera-dummy-password".into()).unwrap();
        assert!(!pool.verify(password, None).await.unwrap().matched);
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_at_once() {
        let pool = PasswordHasherPool::new(
            HashParams::default(),
            1,
            1,
            Duration::from_secs(5),
            HashMetrics::unregistered(),
        )
        .unwrap();
        let verify = || pool.verify(Password::parse("x".into()).unwrap(), None);

        // Six at once against one thread and one queue place: at most two
        // (three, if the thread takes one from the queue meanwhile) get in.
        let started = std::time::Instant::now();
        let results = tokio::join!(verify(), verify(), verify(), verify(), verify(), verify());
        let results = [
            results.0, results.1, results.2, results.3, results.4, results.5,
        ];

        let busy = results
            .iter()
            .filter(|r| matches!(r, Err(HashError::Busy)))
            .count();
        let served = results
            .iter()
            .filter(|r| matches!(r, Ok(v) if !v.matched))
            .count();
        assert!(busy >= 3, "busy {busy}");
        assert_eq!(busy + served, 6);
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn hashing_with_reused_memory_makes_a_standard_phc_string() {
        let password = Password::parse("correct horse".into()).unwrap();
        let mut memory = Vec::new();
        let phc = hash_with_memory(&password, HashParams::default(), &mut memory).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert_eq!(memory.len(), 19_456, "the memory is kept for the next use");
        // Checked by the library's own verifier, not only by ours.
        assert!(verify(&password, &phc).unwrap());
        let again = hash_with_memory(&password, HashParams::default(), &mut memory).unwrap();
        assert_ne!(phc, again, "a fresh salt each time");
        let wrong = Password::parse("battery staple".into()).unwrap();
        assert!(!verify(&wrong, &again).unwrap());
    }

    #[test]
    fn verifying_with_reused_memory_agrees_with_the_reference() {
        let password = Password::parse("correct horse".into()).unwrap();
        let phc = hash(&password, HashParams::default()).unwrap();
        let mut memory = Vec::new();
        assert!(verify_with_memory(&password, &phc, &mut memory).unwrap());
        let wrong = Password::parse("battery staple".into()).unwrap();
        assert!(!verify_with_memory(&wrong, &phc, &mut memory).unwrap());
        assert!(verify_with_memory(&password, "not-a-hash", &mut memory).is_err());
    }
}
