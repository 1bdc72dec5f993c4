//! The key store: RSA signing keys as PEM files in one directory.
//!
//! Each file holds one private key (PKCS#8, or PKCS#1 as older tools write
//! it); the file name without `.pem` is the key id (`kid`). The newest key
//! signs; every key in the directory is published and verifies. Keys are
//! parsed once, at load, into aws-lc-rs key pairs: signing never re-parses.
//!
//! Key material never reaches a log line or a `Debug` print. Key ids come
//! only from file names found here: a `kid` from a request is looked up in a
//! map, never used as a path.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use actix_web::web::Bytes;
use anyhow::{Context, bail};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDateTime, Utc};
use jsonwebtoken::DecodingKey;
use serde::Serialize;

/// One private key, parsed once, able to sign.
pub struct SigningKey {
    kid: String,
    pair: KeyPair,
    /// `base64url(header) + "."`, computed once: every token of this key has
    /// the same header.
    header_prefix: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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
    /// When the key was made: from the `kid` when it carries a timestamp,
    /// else the file's modification time.
    pub created: DateTime<Utc>,
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

/// Every key of the directory, loaded once.
pub struct KeySet {
    signing: SigningKey,
    published: Vec<PublicKey>,
    by_kid: HashMap<String, usize>,
    /// Pre-serialized JWKS bodies, shared by reference count.
    jwks: Bytes,
    jwks_by_kid: HashMap<String, Bytes>,
}

impl KeySet {
    /// Loads every key in `dir`; creates the directory and a first key when
    /// there is none.
    pub fn load_or_generate(dir: &Path) -> anyhow::Result<Self> {
        if !dir.exists() {
            create_key_dir(dir)?;
        }
        if key_files(dir)?.is_empty() {
            let kid = generate(dir)?;
            tracing::info!(kid = %kid, dir = %dir.display(), "Generated a first signing key");
        }
        Self::load(dir)
    }

    /// Loads every key in `dir`; fails when there is none or one is invalid.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let mut loaded = Vec::new();
        for path in key_files(dir)? {
            let kid = kid_of(&path)?;
            let pair =
                read_key(&path).with_context(|| format!("loading key {}", path.display()))?;
            let modified = fs::metadata(&path)
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            let created = timestamp_in_kid(&kid).unwrap_or_else(|| modified.into());
            loaded.push((created, modified, kid, pair));
        }
        if loaded.is_empty() {
            bail!("no signing key in {}", dir.display());
        }
        // Newest last: by the creation time in the kid (which survives
        // copying), then by modification time (for keys made within one
        // second), then by kid.
        loaded.sort_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
        let mut published = Vec::with_capacity(loaded.len());
        let mut signing = None;
        let count = loaded.len();
        for (index, (created, _, kid, pair)) in loaded.into_iter().enumerate() {
            published.push(public_key(&kid, &pair, created)?);
            if index + 1 == count {
                signing = Some(SigningKey::new(kid, pair)?);
            }
        }
        let signing = signing.expect("at least one key");
        let by_kid = published
            .iter()
            .enumerate()
            .map(|(i, key)| (key.kid.clone(), i))
            .collect();
        let jwks = serde_json::to_vec(&JwkSet {
            keys: published.iter().map(|k| &k.jwk).collect(),
        })?
        .into();
        let jwks_by_kid = published
            .iter()
            .map(|k| {
                Ok((
                    k.kid.clone(),
                    serde_json::to_vec(&JwkSet { keys: vec![&k.jwk] })?.into(),
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            signing,
            published,
            by_kid,
            jwks,
            jwks_by_kid,
        })
    }

    pub fn signing(&self) -> &SigningKey {
        &self.signing
    }

    pub fn published(&self) -> &[PublicKey] {
        &self.published
    }

    pub fn get(&self, kid: &str) -> Option<&PublicKey> {
        self.by_kid.get(kid).map(|&i| &self.published[i])
    }

    /// The JWKS document with every published key.
    pub fn jwks(&self) -> &Bytes {
        &self.jwks
    }

    /// A JWKS document with only `kid`.
    pub fn jwks_for(&self, kid: &str) -> Option<&Bytes> {
        self.jwks_by_kid.get(kid)
    }
}

fn public_key(kid: &str, pair: &KeyPair, created: DateTime<Utc>) -> anyhow::Result<PublicKey> {
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
        created,
    })
}

/// The `*.pem` files of `dir`, sorted by name.
fn key_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries =
        fs::read_dir(dir).with_context(|| format!("reading key directory {}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "pem") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The key id of a key file: its name without `.pem`, limited to characters
/// that are safe in a header, a URL and a file name.
fn kid_of(path: &Path) -> anyhow::Result<String> {
    let kid = path
        .file_stem()
        .and_then(|s| s.to_str())
        .context("key file name is not UTF-8")?;
    let safe = !kid.is_empty()
        && kid.len() <= 128
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !safe {
        bail!(
            "key file {} has a name that cannot be a kid (use letters, digits, '-', '_', '.')",
            path.display()
        );
    }
    Ok(kid.to_owned())
}

/// `tessera-20261122T101500Z` → 2026-11-22 10:15:00 UTC.
fn timestamp_in_kid(kid: &str) -> Option<DateTime<Utc>> {
    kid.split('-').find_map(|part| {
        NaiveDateTime::parse_from_str(part, "%Y%m%dT%H%M%SZ")
            .ok()
            .map(|t| t.and_utc())
    })
}

fn read_key(path: &Path) -> anyhow::Result<KeyPair> {
    let text = fs::read(path)?;
    let parsed = pem::parse(&text).context("not a PEM file")?;
    // The `rsa` crate is deliberately not used: its private-key operations
    // have an unfixed timing side channel (RUSTSEC-2023-0071).
    match parsed.tag() {
        "PRIVATE KEY" => KeyPair::from_pkcs8(parsed.contents())
            .map_err(|e| anyhow::anyhow!("not an RSA PKCS#8 key: {e}")),
        "RSA PRIVATE KEY" => KeyPair::from_der(parsed.contents())
            .map_err(|e| anyhow::anyhow!("not an RSA PKCS#1 key: {e}")),
        other => bail!("expected a PRIVATE KEY or RSA PRIVATE KEY block, found {other}"),
    }
}

fn create_key_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("creating key directory {}", dir.display()))
}

/// Generates a 2048-bit RSA key in `dir` (mode 0600) and returns its kid,
/// `tessera-YYYYMMDDTHHMMSSZ-xxxxxx`: the creation time, then six random hex
/// digits so that keys made in the same second on two machines differ.
/// CPU-heavy: not for the async executor.
pub fn generate(dir: &Path) -> anyhow::Result<String> {
    if !dir.exists() {
        create_key_dir(dir)?;
    }
    let pair = KeyPair::generate(KeySize::Rsa2048)
        .map_err(|_| anyhow::anyhow!("RSA key generation failed"))?;
    let der = pair
        .as_der()
        .map_err(|_| anyhow::anyhow!("encoding the new key"))?;
    let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec()));
    let stamp = Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    loop {
        let mut nonce = [0u8; 3];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| anyhow::anyhow!("no randomness"))?;
        let kid = format!(
            "tessera-{stamp}-{:02x}{:02x}{:02x}",
            nonce[0], nonce[1], nonce[2]
        );
        let path = dir.join(format!("{kid}.pem"));
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(&path) {
            Ok(mut file) => {
                file.write_all(pem.as_bytes())?;
                file.sync_all()?;
                return Ok(kid);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("writing {}", path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_key_is_generated_private_and_signs() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeySet::load_or_generate(dir.path()).unwrap();
        assert_eq!(keys.published().len(), 1);
        let kid = keys.signing().kid().to_owned();
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
        generate(dir.path()).unwrap();
        let second = generate(dir.path()).unwrap();
        let keys = KeySet::load(dir.path()).unwrap();
        assert_eq!(keys.published().len(), 2);
        assert_eq!(keys.signing().kid(), second);
        let jwks: serde_json::Value = serde_json::from_slice(keys.jwks()).unwrap();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn kids_come_only_from_safe_file_names() {
        assert!(kid_of(Path::new("/k/tessera-20261122T101500Z.pem")).is_ok());
        assert!(kid_of(Path::new("/k/with space.pem")).is_err());
        assert!(kid_of(Path::new("/k/quote\".pem")).is_err());
    }

    #[test]
    fn the_timestamp_in_a_kid_is_read() {
        let t = timestamp_in_kid("tessera-20261122T101500Z-0a1b2c").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-22T10:15:00+00:00");
        assert!(timestamp_in_kid("otherapp").is_none());
    }

    #[test]
    fn a_file_that_is_not_a_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("broken.pem"), "not pem").unwrap();
        assert!(KeySet::load(dir.path()).is_err());
    }
}
