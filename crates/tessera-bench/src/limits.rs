//! The raw limits the endpoints are held against, measured on this machine
//! in the same run: RS256 signs and verifies with the key parsed once
//! (aws-lc-rs directly), and argon2id verifies with the server's parameters,
//! on one thread and on one thread a core with every core busy.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{
    self, KeyPair as _, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256,
    RsaPublicKeyComponents,
};
use serde::Serialize;
use tessera::password::HashParams;

/// Operations a second.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Rate {
    pub threads: usize,
    pub per_second: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Limits {
    /// RS256 signatures with a parsed `RsaKeyPair`.
    pub sign_one_core: Rate,
    pub sign_all_cores: Rate,
    /// RS256 verifications with a `ParsedPublicKey` (the key parsed once).
    pub verify_one_core: Rate,
    pub verify_all_cores: Rate,
    /// RS256 verifications through `RsaPublicKeyComponents`, which builds
    /// the key for every call (what jsonwebtoken does with a JWK's n and e).
    pub verify_components_one_core: Rate,
    /// argon2id verifications with the server's parameters, each thread
    /// reusing its memory as the server's hashing threads do.
    pub argon2_one_core: Rate,
    pub argon2_all_cores: Rate,
    pub argon2_params: String,
}

/// A JWS signing input the size of an authorization token's.
fn signing_input() -> Vec<u8> {
    let mut input = b"eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6InRlc3NlcmEtMjAyNjExMjVUMDAwMDAwWi0wMDAwMDAifQ.".to_vec();
    input.resize(620, b'A');
    input
}

pub fn measure(cores: usize, duration: Duration) -> anyhow::Result<Limits> {
    let pair = Arc::new(
        KeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| anyhow::anyhow!("generating an RSA key"))?,
    );
    let input = Arc::new(signing_input());
    let sign = {
        let (pair, input) = (pair.clone(), input.clone());
        move || {
            let (pair, input) = (pair.clone(), input.clone());
            let rng = SystemRandom::new();
            let mut signature = vec![0u8; pair.public_modulus_len()];
            move || {
                pair.sign(&RSA_PKCS1_SHA256, &rng, &input, &mut signature)
                    .expect("signing");
            }
        }
    };
    let rng = SystemRandom::new();
    let mut signature = vec![0u8; pair.public_modulus_len()];
    pair.sign(&RSA_PKCS1_SHA256, &rng, &input, &mut signature)
        .map_err(|_| anyhow::anyhow!("signing"))?;
    let signature = Arc::new(signature);
    let spki = pair
        .public_key()
        .as_der()
        .map_err(|_| anyhow::anyhow!("encoding the public key"))?;
    let parsed = Arc::new(
        ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, spki.as_ref())
            .map_err(|e| anyhow::anyhow!("parsing the public key: {e}"))?,
    );
    let verify = {
        let (parsed, input, signature) = (parsed.clone(), input.clone(), signature.clone());
        move || {
            let (parsed, input, signature) = (parsed.clone(), input.clone(), signature.clone());
            move || parsed.verify_sig(&input, &signature).expect("verifying")
        }
    };
    let n = pair
        .public_key()
        .modulus()
        .big_endian_without_leading_zero()
        .to_vec();
    let e = pair
        .public_key()
        .exponent()
        .big_endian_without_leading_zero()
        .to_vec();
    let components = Arc::new(RsaPublicKeyComponents { n, e });
    let verify_components = {
        let (components, input, signature) = (components.clone(), input.clone(), signature.clone());
        move || {
            let (components, input, signature) =
                (components.clone(), input.clone(), signature.clone());
            move || {
                components
                    .verify(&signature::RSA_PKCS1_2048_8192_SHA256, &input, &signature)
                    .expect("verifying")
            }
        }
    };

    let params = HashParams::default();
    let argon2_params = Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        None,
    )
    .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
    let argon2_verify = {
        let argon2_params = argon2_params.clone();
        move || {
            let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon2_params.clone());
            let mut memory = vec![Block::default(); argon2_params.block_count()];
            let salt = [7u8; 16];
            let mut output = [0u8; 32];
            move || {
                argon2
                    .hash_password_into_with_memory(
                        b"correct horse battery",
                        &salt,
                        &mut output,
                        &mut memory,
                    )
                    .expect("argon2");
            }
        }
    };
    // argon2 runs at tens a second a core: give it time for enough samples.
    let slow = duration.max(Duration::from_secs(3));

    Ok(Limits {
        sign_one_core: run(1, duration, &sign)?,
        sign_all_cores: run(cores, duration, &sign)?,
        verify_one_core: run(1, duration, &verify)?,
        verify_all_cores: run(cores, duration, &verify)?,
        verify_components_one_core: run(1, duration, &verify_components)?,
        argon2_one_core: run(1, slow, &argon2_verify)?,
        argon2_all_cores: run(cores, slow, &argon2_verify)?,
        argon2_params: format!(
            "argon2id m={} t={} p={}",
            params.memory_kib, params.iterations, params.parallelism
        ),
    })
}

/// Runs `threads` threads, each repeating the operation `make` builds for
/// it, for `duration` after a short warm-up; counts the operations.
fn run<M, O>(threads: usize, duration: Duration, make: &M) -> anyhow::Result<Rate>
where
    M: Fn() -> O,
    O: FnMut() + Send + 'static,
{
    let counting = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let handles = (0..threads)
        .map(|_| {
            let mut op = make();
            let (counting, stop, count) = (counting.clone(), stop.clone(), count.clone());
            std::thread::Builder::new()
                .name("bench-limit".into())
                .spawn(move || {
                    let mut mine = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        op();
                        if counting.load(Ordering::Relaxed) {
                            mine += 1;
                        }
                    }
                    count.fetch_add(mine, Ordering::Relaxed);
                })
                .context("starting a measuring thread")
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    std::thread::sleep(Duration::from_millis(300));
    counting.store(true, Ordering::Relaxed);
    let started = Instant::now();
    std::thread::sleep(duration);
    counting.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for handle in handles {
        handle
            .join()
            .map_err(|_| anyhow::anyhow!("a measuring thread panicked"))?;
    }
    Ok(Rate {
        threads,
        per_second: count.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64(),
    })
}
