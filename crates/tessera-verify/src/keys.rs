//! The key cache: the issuer's public keys, parsed once, swapped atomically.
//!
//! Keys come from a JWKS (found through the issuer's discovery document, or
//! given) or from a directory of `{kid}.pem` files. Each key is parsed into an
//! aws-lc-rs public key when the set is loaded, and the set sits behind an
//! [`ArcSwap`]: verifying with a known `kid` is a lock-free load and never
//! waits on a fetch.
//!
//! Fetching is guarded three ways. A token with an unknown `kid` (a key
//! rotation) refetches, but only one fetch runs at a time and the others wait
//! for its result (single flight), and attempts are at least
//! `min_refetch_interval` apart, so that tokens with made-up kids cannot turn
//! a verifier into a load generator against the issuer. A set past its
//! `Cache-Control: max-age` is refreshed in the background while requests go
//! on with it. A failed fetch keeps the set we have: an unreachable issuer
//! stops rotation, not verification.
//!
//! A `kid` from a token is only ever a map key here, never a URL or a path.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Client, Url};
use serde::Deserialize;

use crate::error::{FetchError, InvalidKey, chain};
use crate::http;
use crate::jws::PublicKey;

/// A JWKS or discovery document larger than this is refused.
const DOCUMENT_LIMIT: usize = 1024 * 1024;
/// How long a JWKS is used when its response says nothing about caching.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
/// The longest a JWKS is used without asking again, whatever it says: keys
/// removed from the set should stop verifying within a day.
const LONGEST_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// Where the keys come from.
#[derive(Debug, Clone)]
pub(crate) enum KeySource {
    /// The `jwks_uri` of the issuer's discovery document at `metadata`.
    Discovery {
        metadata: Url,
        issuer: String,
    },
    Jwks(Url),
    /// `{kid}.pem` files; read again on an unknown kid, never on a timer.
    PemDir(PathBuf),
}

/// One loaded key set.
pub(crate) struct KeySet {
    /// A list rather than a map: an issuer publishes a handful of keys, and
    /// comparing a few short kids is cheaper than hashing one.
    keys: Vec<(String, PublicKey)>,
    /// When the set should be fetched again; `None`: only on an unknown kid.
    fresh_until: Option<Instant>,
    /// Bumped at each successful load, so that a request that waited for a
    /// fetch can tell that one happened.
    generation: u64,
}

impl KeySet {
    pub(crate) fn get(&self, kid: &str) -> Option<&PublicKey> {
        self.keys
            .iter()
            .find_map(|(known, key)| (known == kid).then_some(key))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn is_stale(&self, now: Instant) -> bool {
        self.fresh_until.is_some_and(|until| now >= until)
    }
}

/// What [`Verifier::health`](crate::Verifier::health) says about the keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeysHealth {
    /// The key ids in use, sorted.
    pub kids: Vec<String>,
    /// When the keys were last loaded successfully.
    pub last_success: Option<SystemTime>,
    /// When loading was last tried.
    pub last_attempt: Option<SystemTime>,
    /// Why the last attempt failed; `None` when it succeeded.
    pub last_error: Option<String>,
}

pub(crate) struct KeyCache {
    source: KeySource,
    client: Client,
    current: ArcSwap<KeySet>,
    /// Held for the whole of a fetch (single flight). Holds the JWKS URL once
    /// discovered, so discovery happens once.
    fetch: tokio::sync::Mutex<Option<Url>>,
    /// Set while a background refresh is queued or running.
    refreshing: AtomicBool,
    min_interval: Duration,
    /// `last_attempt` is in milliseconds since `epoch`, so that deciding
    /// whether a fetch is allowed takes no lock.
    epoch: Instant,
    last_attempt: AtomicU64,
    health: Mutex<KeysHealth>,
}

const NEVER: u64 = u64::MAX;

impl KeyCache {
    pub(crate) fn new(source: KeySource, client: Client, min_interval: Duration) -> Self {
        let jwks_url = match &source {
            KeySource::Jwks(url) => Some(url.clone()),
            KeySource::Discovery { .. } | KeySource::PemDir(_) => None,
        };
        Self {
            source,
            client,
            current: ArcSwap::from_pointee(KeySet {
                keys: Vec::new(),
                fresh_until: None,
                generation: 0,
            }),
            fetch: tokio::sync::Mutex::new(jwks_url),
            refreshing: AtomicBool::new(false),
            min_interval,
            epoch: Instant::now(),
            last_attempt: AtomicU64::new(NEVER),
            health: Mutex::new(KeysHealth::default()),
        }
    }

    /// Installs keys loaded before the cache existed (the PEM directory,
    /// read when the verifier is built so that a broken one fails then).
    pub(crate) fn install(&self, keys: HashMap<String, PublicKey>) {
        let mut health = self.health.lock().expect("health lock");
        health.kids = sorted_kids(&keys);
        health.last_success = Some(SystemTime::now());
        self.store(keys, None);
    }

    /// The set in use now.
    pub(crate) fn current(&self) -> Arc<KeySet> {
        self.current.load_full()
    }

    /// Fetches now, unless a fetch is running or one was tried within the
    /// minimum interval. For start-up.
    pub(crate) async fn prefetch(&self) {
        let mut jwks_url = self.fetch.lock().await;
        if self.may_attempt() {
            self.load(&mut jwks_url).await;
        }
    }

    /// The set to look `kid` up in after `seen` did not have it: the result
    /// of a fetch, ours or one that was running, or `seen`'s successor if the
    /// minimum interval forbids fetching.
    pub(crate) async fn refetch_for(&self, kid: &str, seen: &KeySet) -> Arc<KeySet> {
        let mut jwks_url = self.fetch.lock().await;
        let current = self.current();
        if current.generation != seen.generation || current.get(kid).is_some() {
            return current;
        }
        if !self.may_attempt() {
            tracing::debug!(
                kid,
                "Not refetching keys for an unknown kid: the last attempt was too recent"
            );
            return current;
        }
        tracing::info!(kid, "A token names an unknown kid; refetching the keys");
        self.load(&mut jwks_url).await;
        self.current()
    }

    /// Starts a background refresh when `set` is past its max-age. Requests
    /// go on with `set` meanwhile.
    pub(crate) fn refresh_if_stale(self: &Arc<Self>, set: &KeySet) {
        if !set.is_stale(Instant::now()) || !self.may_attempt() {
            return;
        }
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.refreshing.store(false, Ordering::Release);
            return;
        };
        let cache = Arc::clone(self);
        runtime.spawn(async move {
            {
                let mut jwks_url = cache.fetch.lock().await;
                if cache.current().is_stale(Instant::now()) && cache.may_attempt() {
                    cache.load(&mut jwks_url).await;
                }
            }
            cache.refreshing.store(false, Ordering::Release);
        });
    }

    pub(crate) fn health(&self) -> KeysHealth {
        self.health.lock().expect("health lock").clone()
    }

    fn may_attempt(&self) -> bool {
        let last = self.last_attempt.load(Ordering::Acquire);
        last == NEVER || self.millis_now().saturating_sub(last) >= millis(self.min_interval)
    }

    fn millis_now(&self) -> u64 {
        millis(self.epoch.elapsed())
    }

    /// One attempt; the caller holds the fetch lock. On failure the set in
    /// use stays.
    async fn load(&self, jwks_url: &mut Option<Url>) {
        self.last_attempt
            .store(self.millis_now(), Ordering::Release);
        let attempted = SystemTime::now();
        let result = match &self.source {
            KeySource::PemDir(dir) => {
                let dir = dir.clone();
                match tokio::task::spawn_blocking(move || read_pem_dir(&dir)).await {
                    Ok(result) => result.map(|keys| (keys, None)),
                    Err(join) => Err(FetchError::KeyDirectory(std::io::Error::other(join))),
                }
            }
            KeySource::Discovery { .. } | KeySource::Jwks(_) => {
                self.fetch_jwks(jwks_url).await.map(|(keys, max_age)| {
                    let max_age = max_age.unwrap_or(DEFAULT_MAX_AGE).min(LONGEST_MAX_AGE);
                    (keys, Some(Instant::now() + max_age))
                })
            }
        };
        let mut health = self.health.lock().expect("health lock");
        health.last_attempt = Some(attempted);
        match result {
            Ok((keys, fresh_until)) => {
                let kids = sorted_kids(&keys);
                tracing::info!(kids = ?kids, "Loaded the issuer's keys");
                self.store(keys, fresh_until);
                health.kids = kids;
                health.last_success = Some(attempted);
                health.last_error = None;
            }
            Err(error) => {
                let error = chain(&error);
                tracing::warn!(
                    error = %error,
                    "Could not load the issuer's keys; the keys loaded before, if any, stay in use"
                );
                health.last_error = Some(error);
            }
        }
    }

    fn store(&self, keys: HashMap<String, PublicKey>, fresh_until: Option<Instant>) {
        let generation = self.current.load().generation + 1;
        self.current.store(Arc::new(KeySet {
            keys: keys.into_iter().collect(),
            fresh_until,
            generation,
        }));
    }

    async fn fetch_jwks(
        &self,
        jwks_url: &mut Option<Url>,
    ) -> Result<(HashMap<String, PublicKey>, Option<Duration>), FetchError> {
        let url = match jwks_url {
            Some(url) => url.clone(),
            None => {
                let KeySource::Discovery { metadata, issuer } = &self.source else {
                    unreachable!("only discovery starts without a JWKS URL");
                };
                let url = discover(&self.client, metadata, issuer).await?;
                *jwks_url = Some(url.clone());
                url
            }
        };
        let fetched = match http::get(&self.client, &url, DOCUMENT_LIMIT).await {
            Ok(fetched) => fetched,
            Err(error) => {
                // The issuer may have moved its keys: discover again next time.
                if matches!(self.source, KeySource::Discovery { .. }) {
                    *jwks_url = None;
                }
                return Err(error);
            }
        };
        let keys = parse_jwks(&fetched.body).map_err(|source| FetchError::InvalidDocument {
            url: url.to_string(),
            source,
        })?;
        if keys.is_empty() {
            return Err(FetchError::NoUsableKey {
                url: url.to_string(),
            });
        }
        Ok((keys, fetched.max_age))
    }
}

fn sorted_kids(keys: &HashMap<String, PublicKey>) -> Vec<String> {
    let mut kids: Vec<String> = keys.keys().cloned().collect();
    kids.sort();
    kids
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(NEVER - 1)
}

/// The `jwks_uri` of the discovery document at `metadata`, which must name
/// `issuer` as its issuer (OpenID Connect Discovery §4.3): a document that
/// names another issuer is someone else's keys.
async fn discover(client: &Client, metadata: &Url, issuer: &str) -> Result<Url, FetchError> {
    #[derive(Deserialize)]
    struct Metadata {
        issuer: String,
        jwks_uri: String,
    }
    let fetched = http::get(client, metadata, DOCUMENT_LIMIT).await?;
    let document: Metadata =
        serde_json::from_slice(&fetched.body).map_err(|source| FetchError::InvalidDocument {
            url: metadata.to_string(),
            source,
        })?;
    if document.issuer.trim_end_matches('/') != issuer {
        return Err(FetchError::IssuerMismatch {
            expected: issuer.to_owned(),
            found: document.issuer,
        });
    }
    parse_http_url(&document.jwks_uri).ok_or(FetchError::InvalidJwksUri(document.jwks_uri))
}

/// An absolute http(s) URL.
pub(crate) fn parse_http_url(text: &str) -> Option<Url> {
    Url::parse(text)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
}

/// The RS256 signing keys of a JWKS, by kid. Keys of other types or uses,
/// and keys without a kid, are skipped one by one rather than failing the
/// set, so that an issuer may publish keys of kinds this crate does not use.
fn parse_jwks(body: &[u8]) -> Result<HashMap<String, PublicKey>, serde_json::Error> {
    #[derive(Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    /// The members of a JWK (RFC 7517 §4, RFC 7518 §6.3.1) that matter here.
    #[derive(Deserialize)]
    struct Jwk {
        kty: String,
        kid: Option<String>,
        #[serde(rename = "use")]
        usage: Option<String>,
        alg: Option<String>,
        n: Option<String>,
        e: Option<String>,
    }
    let document: Document = serde_json::from_slice(body)?;
    let mut keys = HashMap::with_capacity(document.keys.len());
    for value in document.keys {
        let jwk: Jwk = match serde_json::from_value(value) {
            Ok(jwk) => jwk,
            Err(error) => {
                tracing::debug!(error = %error, "Skipping a JWK that does not parse");
                continue;
            }
        };
        let Some(kid) = jwk.kid else {
            continue;
        };
        let signs = jwk.usage.as_deref().is_none_or(|usage| usage == "sig");
        let rs256 = jwk.alg.as_deref().is_none_or(|alg| alg == "RS256");
        if !(signs && rs256 && jwk.kty == "RSA") {
            tracing::debug!(kid, "Skipping a JWK that is not an RS256 signing key");
            continue;
        }
        let component =
            |value: Option<String>| value.and_then(|text| URL_SAFE_NO_PAD.decode(text).ok());
        let key = component(jwk.n)
            .zip(component(jwk.e))
            .and_then(|(n, e)| PublicKey::from_components(&n, &e));
        match key {
            Some(key) => {
                keys.insert(kid, key);
            }
            None => tracing::debug!(kid, "Skipping an RSA JWK whose n or e is invalid"),
        }
    }
    Ok(keys)
}

/// Every `{kid}.pem` of `dir`, each a public RSA key (`BEGIN PUBLIC KEY` or
/// `BEGIN RSA PUBLIC KEY`). Unlike a JWKS, a bad file fails the whole load:
/// the directory is the operator's own configuration.
pub(crate) fn read_pem_dir(dir: &Path) -> Result<HashMap<String, PublicKey>, FetchError> {
    let mut keys = HashMap::new();
    for entry in std::fs::read_dir(dir).map_err(FetchError::KeyDirectory)? {
        let path = entry.map_err(FetchError::KeyDirectory)?.path();
        if path.extension().is_none_or(|ext| ext != "pem") || !path.is_file() {
            continue;
        }
        let Some(kid) = path.file_stem().and_then(|stem| stem.to_str()) else {
            continue;
        };
        let pem = std::fs::read(&path).map_err(FetchError::KeyDirectory)?;
        let key = parse_public_pem(&pem).map_err(|source| FetchError::InvalidKeyFile {
            path: path.clone(),
            source,
        })?;
        keys.insert(kid.to_owned(), key);
    }
    Ok(keys)
}

fn parse_public_pem(text: &[u8]) -> Result<PublicKey, InvalidKey> {
    let pem = pem::parse(text).map_err(|_| InvalidKey("not a PEM document"))?;
    if !matches!(pem.tag(), "PUBLIC KEY" | "RSA PUBLIC KEY") {
        return Err(InvalidKey("not a public key"));
    }
    PublicKey::from_der(pem.contents()).ok_or(InvalidKey("not an RSA public key"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // A 512-bit modulus: the parser does not care about strength.
    const N: &str =
        "xKqOyMX9bbOpbXMs8nnJvhXKqNrKoA9TEEW1A7eVbk-0fjQ6sn7BKxXafqBn9eKsrNVJxi8nfPWtGV-f5GWJpQ";

    fn jwk(extra: serde_json::Value) -> serde_json::Value {
        let mut key = json!({"kty": "RSA", "n": N, "e": "AQAB"});
        key.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        key
    }

    #[test]
    fn only_rs256_signing_keys_with_a_kid_are_kept() {
        let body = json!({"keys": [
            jwk(json!({"kid": "a", "use": "sig", "alg": "RS256"})),
            jwk(json!({"kid": "b"})),
            jwk(json!({"kid": "enc", "use": "enc"})),
            jwk(json!({"kid": "ps", "alg": "PS256"})),
            jwk(json!({})),
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
            {"kty": "weird", "kid": "weird"},
        ]});
        let keys = parse_jwks(&serde_json::to_vec(&body).unwrap()).unwrap();
        let mut kids: Vec<_> = keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        assert_eq!(kids, ["a", "b"]);
    }

    #[test]
    fn a_document_without_keys_is_invalid() {
        assert!(parse_jwks(b"{}").is_err());
        assert!(parse_jwks(b"not json").is_err());
        assert!(parse_jwks(br#"{"keys": []}"#).unwrap().is_empty());
    }

    #[test]
    fn only_absolute_http_urls_are_accepted() {
        assert!(parse_http_url("https://sso.example.com/.well-known/jwks.json").is_some());
        assert!(parse_http_url("http://127.0.0.1:8080/jwks").is_some());
        assert!(parse_http_url("file:///etc/keys").is_none());
        assert!(parse_http_url("/.well-known/jwks.json").is_none());
    }

    #[test]
    fn a_pem_directory_with_a_file_that_is_not_a_key_fails_whole() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("broken.pem"), "not a key").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        assert!(matches!(
            read_pem_dir(dir.path()),
            Err(FetchError::InvalidKeyFile { .. })
        ));
        std::fs::remove_file(dir.path().join("broken.pem")).unwrap();
        assert!(read_pem_dir(dir.path()).unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_minimum_interval_spaces_attempts() {
        let dir = tempfile::tempdir().unwrap();
        let cache = KeyCache::new(
            KeySource::PemDir(dir.path().to_owned()),
            Client::new(),
            Duration::from_secs(60),
        );
        assert!(cache.may_attempt());
        cache.prefetch().await;
        assert!(!cache.may_attempt());
        let seen = cache.current();
        let after = cache.refetch_for("unknown", &seen).await;
        assert_eq!(after.generation, seen.generation);
        assert!(cache.health().last_error.is_none());
    }
}
