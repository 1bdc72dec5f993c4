//! One read of the key directory, parsed: the keys that sign and verify,
//! the JWKS bodies serialized once, the revoked kids, and the files that
//! were skipped and why.
//!
//! A [`KeySet`] never changes; the running service swaps in a new one when
//! the directory changes. Which of its keys signs depends on the time, so it
//! asks its clock at each signature: a key activates on time without any
//! rescan.
//!
//! The lifecycle runs over every key file of the directory, also those this
//! replica cannot load: a file that cannot be read still has a name, and so
//! an activation time, and it still retires the key before it. When the key
//! the lifecycle says signs is one of them, the set refuses to sign
//! ([`SigningUnavailable`]) rather than fall back to a retired key, which
//! replicas that can read the file no longer publish alongside the same
//! keys. It keeps verifying with the keys it has.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use jsonwebtoken::DecodingKey;
use serde::Serialize;

use super::directory::{self, KeyProblem, Scan};
use super::lifecycle::{KeyState, KeyStatus, Lifecycle, timestamp_in_kid};
use crate::clock::{Clock, SystemClock};

/// One private key, parsed once, able to sign.
pub struct SigningKey {
    kid: String,
    pair: KeyPair,
    /// `base64url(header) + "."`, computed once: every token of this key has
    /// the same header.
    header_prefix: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    fn new(kid: String, pair: KeyPair) -> anyhow::Result<Self> {
        #[derive(Serialize)]
        struct Header<'a> {
            alg: &'static str,
            typ: &'static str,
            kid: &'a str,
        }
        let header = serde_json::to_vec(&Header {
            alg: "RS256",
            typ: "JWT",
            kid: &kid,
        })?;
        let header_prefix = format!("{}.", URL_SAFE_NO_PAD.encode(header));
        Ok(Self {
            kid,
            pair,
            header_prefix,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs `claims` as a compact RS256 JWS.
    pub fn sign<T: Serialize>(&self, claims: &T) -> anyhow::Result<String> {
        let payload = serde_json::to_vec(claims).context("serializing claims")?;
        let mut token = String::with_capacity(
            self.header_prefix.len()
                + payload.len() * 4 / 3
                + 8
                + self.pair.public_modulus_len() * 4 / 3,
        );
        token.push_str(&self.header_prefix);
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        let mut signature = vec![0u8; self.pair.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.pair
            .sign(&RSA_PKCS1_SHA256, &rng, token.as_bytes(), &mut signature)
            .map_err(|_| anyhow::anyhow!("RSA signing failed"))?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        Ok(token)
    }
}

/// A published key: what verifiers need, in every form they ask for.
pub struct PublicKey {
    pub kid: String,
    pub decoding: DecodingKey,
    pub jwk: Jwk,
    /// SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`).
    pub pem: String,
}

/// A JSON Web Key (RFC 7517) for an RS256 public key.
#[derive(Debug, Clone, Serialize)]
pub struct Jwk {
    pub kty: &'static str,
    pub kid: String,
    #[serde(rename = "use")]
    pub use_: &'static str,
    pub alg: &'static str,
    pub n: String,
    pub e: String,
}

#[derive(Serialize)]
struct JwkSet<'a> {
    keys: Vec<&'a Jwk>,
}

/// The key that signs now, by the lifecycle, is not loaded on this replica:
/// its file could not be read or parsed, and no earlier copy of it is at
/// hand. Signing with another key would sign past that key's retirement, so
/// nothing is signed until a rescan loads it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the signing key {kid} is not loaded on this server")]
pub struct SigningUnavailable {
    pub kid: String,
}

/// A key file of the lifecycle that this replica could not load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Unloaded {
    kid: String,
    modified: DateTime<Utc>,
    activates: DateTime<Utc>,
}

/// One place in the lifecycle: a loaded key, or one that could not be.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Slot {
    activates: DateTime<Utc>,
    modified: DateTime<Utc>,
    kid: String,
    /// Its index in `entries`; `None` when the key is not loaded.
    entry: Option<usize>,
}

/// A key parsed from its file: shared between successive key sets as long
/// as the file does not change.
pub(super) struct Parsed {
    signing: SigningKey,
    public: PublicKey,
}

/// A usable key of one directory read, with its times.
#[derive(Clone)]
pub(super) struct Entry {
    parsed: Arc<Parsed>,
    digest: Vec<u8>,
    modified: DateTime<Utc>,
    activates: DateTime<Utc>,
}

impl Entry {
    fn kid(&self) -> &str {
        &self.parsed.public.kid
    }

    fn same_as(&self, other: &Entry) -> bool {
        self.kid() == other.kid()
            && self.digest == other.digest
            && self.modified == other.modified
            && self.activates == other.activates
    }
}

/// What [`build`] made of one read of the directory.
pub(super) struct Built {
    pub entries: Vec<Entry>,
    /// Key files that take their place in the lifecycle but did not load.
    pub unloaded: Vec<Unloaded>,
    pub problems: Vec<KeyProblem>,
}

/// Parses what `scan` found into usable keys, reusing the parsed keys of
/// `previous` whose files did not change. A file that fails but loaded
/// before keeps its last good copy; one that never loaded is kept as
/// [`Unloaded`], so that it still takes its place in the lifecycle.
pub(super) fn build(scan: Scan, previous: Option<&KeySet>, lifecycle: &Lifecycle) -> Built {
    let mut problems = scan.problems;
    let mut entries = Vec::new();
    let mut unloaded = Vec::new();
    for file in scan.files {
        if scan.revoked.contains_key(&file.kid) {
            continue;
        }
        let last_good = previous.and_then(|set| set.entry(&file.kid));
        let parsed = file.contents.and_then(|(bytes, digest)| {
            match last_good.filter(|entry| entry.digest == digest) {
                Some(same) => Ok((same.parsed.clone(), digest)),
                None => parse(&file.kid, &bytes).map(|parsed| (Arc::new(parsed), digest)),
            }
        });
        match parsed {
            Ok((parsed, digest)) => entries.push(Entry {
                parsed,
                digest,
                modified: file.modified,
                activates: lifecycle.activation_of(&file.kid, file.modified),
            }),
            Err(reason) => {
                match last_good {
                    Some(entry) => entries.push(entry.clone()),
                    None => unloaded.push(Unloaded {
                        activates: lifecycle.activation_of(&file.kid, file.modified),
                        kid: file.kid,
                        modified: file.modified,
                    }),
                }
                problems.push(KeyProblem {
                    file: file.path,
                    reason,
                    kept: last_good.is_some(),
                });
            }
        }
    }
    Built {
        entries,
        unloaded,
        problems,
    }
}

fn parse(kid: &str, bytes: &[u8]) -> Result<Parsed, String> {
    let pair = read_key(bytes)?;
    let public = public_key(kid, &pair).map_err(|e| e.to_string())?;
    let signing = SigningKey::new(kid.to_owned(), pair).map_err(|e| e.to_string())?;
    Ok(Parsed { signing, public })
}

fn read_key(bytes: &[u8]) -> Result<KeyPair, String> {
    let parsed = pem::parse(bytes).map_err(|_| "not a PEM file".to_owned())?;
    // The `rsa` crate is deliberately not used: its private-key operations
    // have an unfixed timing side channel (RUSTSEC-2023-0071).
    match parsed.tag() {
        "PRIVATE KEY" => KeyPair::from_pkcs8(parsed.contents())
            .map_err(|e| format!("not an RSA PKCS#8 key: {e}")),
        "RSA PRIVATE KEY" => {
            KeyPair::from_der(parsed.contents()).map_err(|e| format!("not an RSA PKCS#1 key: {e}"))
        }
        other => Err(format!(
            "expected a PRIVATE KEY or RSA PRIVATE KEY block, found {other}"
        )),
    }
}

fn public_key(kid: &str, pair: &KeyPair) -> anyhow::Result<PublicKey> {
    let public = pair.public_key();
    let n = public.modulus().big_endian_without_leading_zero().to_vec();
    let e = public.exponent().big_endian_without_leading_zero().to_vec();
    let spki = public
        .as_der()
        .map_err(|_| anyhow::anyhow!("encoding the public key of {kid}"))?;
    let pem = pem::encode(&pem::Pem::new("PUBLIC KEY", spki.as_ref().to_vec()));
    Ok(PublicKey {
        kid: kid.to_owned(),
        decoding: DecodingKey::from_rsa_raw_components(&n, &e),
        jwk: Jwk {
            kty: "RSA",
            kid: kid.to_owned(),
            use_: "sig",
            alg: "RS256",
            n: URL_SAFE_NO_PAD.encode(&n),
            e: URL_SAFE_NO_PAD.encode(&e),
        },
        pem,
    })
}

/// Every usable key of the directory, ordered by activation.
pub struct KeySet {
    /// By activation, then modification time (keys made within one
    /// second), then kid: the same order on every replica.
    entries: Vec<Entry>,
    by_kid: HashMap<String, usize>,
    /// Every key file of the lifecycle, loaded or not, in the same order:
    /// the one whose turn it is signs.
    schedule: Vec<Slot>,
    revoked: BTreeMap<String, DateTime<Utc>>,
    problems: Vec<KeyProblem>,
    /// Pre-serialized JWKS bodies, shared by reference count.
    jwks: Bytes,
    jwks_by_kid: HashMap<String, Bytes>,
    lifecycle: Lifecycle,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field(
                "kids",
                &self.entries.iter().map(Entry::kid).collect::<Vec<_>>(),
            )
            .field(
                "unloaded",
                &self
                    .schedule
                    .iter()
                    .filter(|slot| slot.entry.is_none())
                    .map(|slot| &slot.kid)
                    .collect::<Vec<_>>(),
            )
            .field("revoked", &self.revoked.keys().collect::<Vec<_>>())
            .field("problems", &self.problems)
            .finish_non_exhaustive()
    }
}

impl KeySet {
    pub(super) fn new(
        built: Built,
        revoked: BTreeMap<String, DateTime<Utc>>,
        lifecycle: Lifecycle,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let Built {
            mut entries,
            unloaded,
            problems,
        } = built;
        if entries.is_empty() {
            bail!("no usable key");
        }
        entries.sort_by(|a, b| {
            (a.activates, a.modified, a.kid()).cmp(&(b.activates, b.modified, b.kid()))
        });
        let mut schedule: Vec<Slot> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| Slot {
                activates: e.activates,
                modified: e.modified,
                kid: e.kid().to_owned(),
                entry: Some(i),
            })
            .chain(unloaded.into_iter().map(|u| Slot {
                activates: u.activates,
                modified: u.modified,
                kid: u.kid,
                entry: None,
            }))
            .collect();
        schedule.sort_by(|a, b| {
            (a.activates, a.modified, &a.kid).cmp(&(b.activates, b.modified, &b.kid))
        });
        let by_kid = entries
            .iter()
            .enumerate()
            .map(|(i, entry)| (entry.kid().to_owned(), i))
            .collect();
        let jwks = serde_json::to_vec(&JwkSet {
            keys: entries.iter().map(|e| &e.parsed.public.jwk).collect(),
        })?
        .into();
        let jwks_by_kid = entries
            .iter()
            .map(|e| {
                let jwk = &e.parsed.public.jwk;
                Ok((
                    jwk.kid.clone(),
                    serde_json::to_vec(&JwkSet { keys: vec![jwk] })?.into(),
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            entries,
            by_kid,
            schedule,
            revoked,
            problems,
            jwks,
            jwks_by_kid,
            lifecycle,
            clock,
        })
    }

    /// The same keys with other problems: after a rescan that found nothing
    /// better than what is loaded.
    pub(super) fn with_problems(&self, problems: Vec<KeyProblem>) -> Self {
        Self {
            entries: self.entries.clone(),
            by_kid: self.by_kid.clone(),
            schedule: self.schedule.clone(),
            revoked: self.revoked.clone(),
            problems,
            jwks: self.jwks.clone(),
            jwks_by_kid: self.jwks_by_kid.clone(),
            lifecycle: self.lifecycle,
            clock: self.clock.clone(),
        }
    }

    /// Whether `other` holds the same files, revocations and problems.
    pub(super) fn same_as(&self, other: &KeySet) -> bool {
        self.entries.len() == other.entries.len()
            && self
                .entries
                .iter()
                .zip(&other.entries)
                .all(|(a, b)| a.same_as(b))
            && self.schedule == other.schedule
            && self.revoked == other.revoked
            && self.problems == other.problems
    }

    /// Loads every usable key in `dir` on the system clock with the default
    /// lifecycle; skips files that cannot be used; fails when none can.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        Self::load_with(dir, Lifecycle::default(), Arc::new(SystemClock))
    }

    pub fn load_with(
        dir: &Path,
        lifecycle: Lifecycle,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let scan = directory::scan(dir)?;
        let revoked = scan.revoked.clone();
        let built = build(scan, None, &lifecycle);
        if built.entries.is_empty() {
            bail!("{}", no_usable_key(dir, &built.problems));
        }
        Self::new(built, revoked, lifecycle, clock)
    }

    /// As [`KeySet::load`], creating the directory and a first key, active
    /// at once, when it holds no key file.
    pub fn load_or_generate(dir: &Path) -> anyhow::Result<Self> {
        if !dir.exists() {
            directory::create_key_dir(dir)?;
        }
        if directory::scan(dir)?.files.is_empty() {
            let kid = directory::generate(dir)?;
            tracing::info!(kid = %kid, dir = %dir.display(), "Generated a first signing key");
        }
        Self::load(dir)
    }

    fn entry(&self, kid: &str) -> Option<&Entry> {
        self.by_kid.get(kid).map(|&i| &self.entries[i])
    }

    /// The place in the schedule of the key that signs at `now`: the last
    /// whose activation has passed, else the first.
    fn signer_at(&self, now: DateTime<Utc>) -> usize {
        self.schedule
            .iter()
            .rposition(|slot| slot.activates <= now)
            .unwrap_or(0)
    }

    /// The key that signs now; refused when the lifecycle says a key signs
    /// that this replica could not load.
    pub fn signing(&self) -> Result<&SigningKey, SigningUnavailable> {
        self.signing_at(self.clock.now())
    }

    pub fn signing_at(&self, now: DateTime<Utc>) -> Result<&SigningKey, SigningUnavailable> {
        let slot = &self.schedule[self.signer_at(now)];
        match slot.entry {
            Some(i) => Ok(&self.entries[i].parsed.signing),
            None => Err(SigningUnavailable {
                kid: slot.kid.clone(),
            }),
        }
    }

    /// The kid of the key that signs now, loaded or not.
    pub fn signing_kid(&self) -> &str {
        &self.schedule[self.signer_at(self.clock.now())].kid
    }

    /// Every published key, in activation order.
    pub fn published(&self) -> Vec<&PublicKey> {
        self.entries.iter().map(|e| &e.parsed.public).collect()
    }

    /// A published key: one that verifies.
    pub fn get(&self, kid: &str) -> Option<&PublicKey> {
        self.entry(kid).map(|e| &e.parsed.public)
    }

    /// The JWKS document with every published key.
    pub fn jwks(&self) -> &Bytes {
        &self.jwks
    }

    /// A JWKS document with only `kid`.
    pub fn jwks_for(&self, kid: &str) -> Option<&Bytes> {
        self.jwks_by_kid.get(kid)
    }

    /// Revoked kids and when they were revoked: no token of theirs is
    /// accepted, and revocation feeds list them.
    pub fn revoked(&self) -> &BTreeMap<String, DateTime<Utc>> {
        &self.revoked
    }

    pub fn is_revoked(&self, kid: &str) -> bool {
        self.revoked.contains_key(kid)
    }

    /// Files of the directory that are not used, and why.
    pub fn problems(&self) -> &[KeyProblem] {
        &self.problems
    }

    pub fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    /// Every key's state at `now`, in activation order, then the revoked.
    /// Keys that did not load are listed too (`loaded: false`): they take
    /// their place in the lifecycle all the same.
    pub fn statuses(&self, now: DateTime<Utc>) -> Vec<KeyStatus> {
        let signer = self.signer_at(now);
        let mut statuses: Vec<KeyStatus> = self
            .schedule
            .iter()
            .enumerate()
            .map(|(i, slot)| {
                let state = if i == signer {
                    KeyState::Active
                } else if slot.activates > now {
                    KeyState::Published
                } else {
                    KeyState::Retired
                };
                let retires = self.schedule.get(i + 1).map(|next| next.activates);
                KeyStatus {
                    kid: slot.kid.clone(),
                    state,
                    loaded: slot.entry.is_some(),
                    created: Some(slot.modified),
                    activates: Some(slot.activates),
                    retires,
                    verifies_until: retires.map(|at| at + self.lifecycle.grace),
                }
            })
            .collect();
        statuses.extend(self.revoked.keys().map(|kid| KeyStatus {
            kid: kid.clone(),
            state: KeyState::Revoked,
            loaded: false,
            created: None,
            activates: timestamp_in_kid(kid),
            retires: None,
            verifies_until: None,
        }));
        statuses
    }
}

/// Why there is no key to sign with, and what to do about it.
pub(super) fn no_usable_key(dir: &Path, problems: &[KeyProblem]) -> String {
    if problems.is_empty() {
        format!("no signing key in {}", dir.display())
    } else {
        let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
        format!(
            "no usable signing key in {}: {}",
            dir.display(),
            listed.join("; ")
        )
    }
}

/// Writes the public key of every published key as `{kid}.pem` in `out`
/// (djangorestframework-sso's "otherapp" looks keys up by file name = kid),
/// and removes the files of revoked keys from an earlier export. Returns
/// the kids written.
pub fn export_public(keys: &KeySet, keys_dir: &Path, out: &Path) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let same = |a: &Path, b: &Path| match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same(keys_dir, out) {
        bail!("refusing to export public keys into the private key directory");
    }
    let mut written = Vec::new();
    for key in keys.published() {
        let target = out.join(format!("{}.pem", key.kid));
        let temporary = out.join(format!(".{}.pem.tmp", key.kid));
        std::fs::write(&temporary, key.pem.as_bytes())
            .and_then(|()| std::fs::rename(&temporary, &target))
            .with_context(|| format!("writing {}", target.display()))?;
        written.push(key.kid.clone());
    }
    for kid in keys.revoked().keys() {
        let stale = out.join(format!("{kid}.pem"));
        if stale.is_file() {
            std::fs::remove_file(&stale)
                .with_context(|| format!("removing {}", stale.display()))?;
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use chrono::TimeDelta;

    use super::*;
    use crate::clock::ManualClock;
    use crate::keys::directory::create_key;

    #[test]
    fn a_first_key_is_generated_private_and_signs() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeySet::load_or_generate(dir.path()).unwrap();
        assert_eq!(keys.published().len(), 1);
        let kid = keys.signing().unwrap().kid().to_owned();
        assert!(kid.starts_with("tessera-"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(format!("{kid}.pem")))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let token = keys
            .signing()
            .unwrap()
            .sign(&serde_json::json!({"sub": "x"}))
            .unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(kid.as_str()));
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.required_spec_claims.clear();
        validation.validate_aud = false;
        let decoded = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &keys.get(&kid).unwrap().decoding,
            &validation,
        )
        .unwrap();
        assert_eq!(decoded.claims["sub"], "x");
    }

    #[test]
    fn the_newest_key_signs_and_all_are_published() {
        let dir = tempfile::tempdir().unwrap();
        directory::generate(dir.path()).unwrap();
        let second = directory::generate(dir.path()).unwrap();
        let keys = KeySet::load(dir.path()).unwrap();
        assert_eq!(keys.published().len(), 2);
        assert_eq!(keys.signing().unwrap().kid(), second);
        let jwks: serde_json::Value = serde_json::from_slice(keys.jwks()).unwrap();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn a_pending_key_is_published_but_signs_only_from_its_activation() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let old = create_key(dir.path(), now - TimeDelta::days(1)).unwrap();
        let new = create_key(dir.path(), now + TimeDelta::hours(1)).unwrap();
        let clock = Arc::new(ManualClock::new(now));
        let keys = KeySet::load_with(dir.path(), Lifecycle::default(), clock.clone()).unwrap();

        assert!(keys.get(&new).is_some() && keys.jwks_for(&new).is_some());
        assert_eq!(keys.signing().unwrap().kid(), old);
        clock.advance(TimeDelta::hours(1));
        assert_eq!(keys.signing().unwrap().kid(), new);

        let states: Vec<_> = keys
            .statuses(clock.now())
            .into_iter()
            .map(|s| (s.kid, s.state))
            .collect();
        assert_eq!(states, [(old, KeyState::Retired), (new, KeyState::Active)]);
    }

    #[test]
    fn when_no_key_has_activated_yet_the_first_signs() {
        let dir = tempfile::tempdir().unwrap();
        let later = Utc::now() + TimeDelta::hours(1);
        let first = create_key(dir.path(), later).unwrap();
        create_key(dir.path(), later + TimeDelta::hours(1)).unwrap();

        let keys = KeySet::load(dir.path()).unwrap();

        assert_eq!(keys.signing().unwrap().kid(), first);
    }

    #[test]
    fn a_retired_key_verifies_until_its_tokens_have_expired() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let old = create_key(dir.path(), now - TimeDelta::days(2)).unwrap();
        create_key(dir.path(), now - TimeDelta::days(1)).unwrap();
        let keys = KeySet::load(dir.path()).unwrap();

        let status = keys.statuses(now).remove(0);

        assert_eq!(status.kid, old);
        assert_eq!(status.state, KeyState::Retired);
        let retired = status.retires.unwrap();
        assert_eq!(
            status.verifies_until.unwrap(),
            retired + Lifecycle::default().grace
        );
        assert!(!status.is_past_retirement(retired));
        assert!(status.is_past_retirement(now));
    }

    #[test]
    fn an_active_key_that_cannot_be_loaded_retires_the_key_before_and_signs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let old = create_key(dir.path(), now - TimeDelta::days(1)).unwrap();
        let active = create_key(dir.path(), now - TimeDelta::hours(1)).unwrap();
        let pending = create_key(dir.path(), now + TimeDelta::hours(1)).unwrap();
        fs::write(dir.path().join(format!("{active}.pem")), "garbage").unwrap();
        let clock = Arc::new(ManualClock::new(now));

        let keys = KeySet::load_with(dir.path(), Lifecycle::default(), clock.clone()).unwrap();

        assert_eq!(
            keys.signing().unwrap_err(),
            SigningUnavailable {
                kid: active.clone()
            }
        );
        assert_eq!(keys.signing_kid(), active);
        assert!(keys.get(&old).is_some() && keys.get(&active).is_none());
        let states: Vec<_> = keys
            .statuses(now)
            .into_iter()
            .map(|s| (s.kid, s.state, s.loaded))
            .collect();
        assert_eq!(
            states,
            [
                (old, KeyState::Retired, true),
                (active.clone(), KeyState::Active, false),
                (pending.clone(), KeyState::Published, true),
            ]
        );
        // Its successor signs on time all the same.
        clock.advance(TimeDelta::hours(2));
        assert_eq!(keys.signing().unwrap().kid(), pending);
    }

    #[test]
    fn when_no_key_has_activated_yet_and_the_first_cannot_be_loaded_nothing_signs() {
        let dir = tempfile::tempdir().unwrap();
        let later = Utc::now() + TimeDelta::hours(1);
        let first = create_key(dir.path(), later).unwrap();
        create_key(dir.path(), later + TimeDelta::hours(1)).unwrap();
        fs::write(dir.path().join(format!("{first}.pem")), "garbage").unwrap();

        let keys = KeySet::load(dir.path()).unwrap();

        assert_eq!(keys.signing().unwrap_err().kid, first);
    }

    #[test]
    fn a_revoked_key_is_neither_published_nor_signing() {
        let dir = tempfile::tempdir().unwrap();
        let kept = directory::generate(dir.path()).unwrap();
        let revoked = directory::generate(dir.path()).unwrap();
        directory::revoke(dir.path(), &revoked, Utc::now()).unwrap();

        let keys = KeySet::load(dir.path()).unwrap();

        assert_eq!(keys.signing().unwrap().kid(), kept);
        assert!(keys.get(&revoked).is_none());
        assert!(keys.is_revoked(&revoked));
        assert!(!String::from_utf8_lossy(keys.jwks()).contains(&revoked));
    }

    #[test]
    fn a_file_that_is_not_a_key_is_skipped_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let kid = directory::generate(dir.path()).unwrap();
        fs::write(dir.path().join("broken.pem"), "not pem").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(
                dir.path().join("broken.pem"),
                fs::Permissions::from_mode(0o600),
            )
            .unwrap();
        }

        let keys = KeySet::load(dir.path()).unwrap();

        assert_eq!(keys.signing().unwrap().kid(), kid);
        assert_eq!(keys.published().len(), 1);
        let problem = keys.problems()[0].to_string();
        assert!(
            problem.contains("broken.pem: not a PEM file; skipped"),
            "{problem}"
        );
    }

    #[test]
    fn a_directory_without_a_usable_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let error = KeySet::load(dir.path()).unwrap_err().to_string();
        assert!(error.contains("no signing key"), "{error}");
        fs::write(dir.path().join("broken.pem"), "not pem").unwrap();
        let error = KeySet::load(dir.path()).unwrap_err().to_string();
        assert!(error.contains("no usable signing key"), "{error}");
    }
}
