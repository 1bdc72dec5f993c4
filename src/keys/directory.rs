//! Everything that touches the key directory: reading it, and creating,
//! revoking, deleting and exporting keys so that replicas sharing it, and
//! commands run beside them, never see a half-written file.
//!
//! New files are written under a temporary name (a leading dot: never read
//! as a key) and then hard-linked to their final name, which fails if that
//! name exists: two replicas creating the key of one rotation slot make one
//! file, not two.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, bail};
use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use chrono::{DateTime, Utc};

use super::lifecycle::{Lifecycle, STAMP};

/// Why a file of the key directory is not used. Its `Display` is the
/// sentence logged and shown by `/readyz`; it never holds key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyProblem {
    pub file: PathBuf,
    pub reason: String,
    /// The file had loaded before: its last good copy is still in use.
    pub kept: bool,
}

impl KeyProblem {
    pub(super) fn new(file: &Path, reason: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            reason: reason.into(),
            kept: false,
        }
    }
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let outcome = if self.kept {
            "still using the copy loaded before"
        } else {
            "skipped"
        };
        write!(f, "{}: {}; {outcome}", self.file.display(), self.reason)
    }
}

/// What one read of the directory found, before any key is parsed.
pub(super) struct Scan {
    /// Every `*.pem` file with a usable name, revoked ones included.
    pub files: Vec<ScannedFile>,
    /// `{kid}.revoked` markers: kid → when it was revoked.
    pub revoked: BTreeMap<String, DateTime<Utc>>,
    /// Files that cannot be keys whatever they hold (their names).
    pub problems: Vec<KeyProblem>,
}

pub(super) struct ScannedFile {
    pub kid: String,
    pub path: PathBuf,
    pub modified: DateTime<Utc>,
    /// The contents and their SHA-256, or why they cannot be used.
    pub contents: Result<(Vec<u8>, Vec<u8>), String>,
}

/// Reads the directory: names, times, permissions and contents.
pub(super) fn scan(dir: &Path) -> anyhow::Result<Scan> {
    let entries =
        fs::read_dir(dir).with_context(|| format!("reading key directory {}", dir.display()))?;
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("reading key directory {}", dir.display()))?
            .path();
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_none_or(|n| n.starts_with('.'));
        if !hidden {
            paths.push(path);
        }
    }
    paths.sort();
    let mut scan = Scan {
        files: Vec::new(),
        revoked: BTreeMap::new(),
        problems: Vec::new(),
    };
    for path in paths {
        let extension = path.extension().and_then(|e| e.to_str());
        if !matches!(extension, Some("pem" | "revoked")) || !path.is_file() {
            continue;
        }
        let kid = match kid_of(&path) {
            Ok(kid) => kid,
            Err(reason) => {
                scan.problems.push(KeyProblem::new(&path, reason));
                continue;
            }
        };
        let modified = fs::metadata(&path)
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH)
            .into();
        if extension == Some("revoked") {
            // The marker holds the time of revocation, which survives copying.
            let at = fs::read_to_string(&path)
                .ok()
                .and_then(|text| DateTime::parse_from_rfc3339(text.trim()).ok())
                .map_or(modified, |at| at.to_utc());
            scan.revoked.insert(kid, at);
            continue;
        }
        let contents = read_private(&path);
        scan.files.push(ScannedFile {
            kid,
            path,
            modified,
            contents,
        });
    }
    Ok(scan)
}

/// The contents of a private key file and their digest, unless others than
/// its owner may read or change it.
fn read_private(path: &Path) -> Result<(Vec<u8>, Vec<u8>), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)
            .map_err(|e| format!("cannot read its metadata: {e}"))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "a private key open to group or others (mode {:04o}); run chmod 600 on it",
                mode & 0o7777
            ));
        }
    }
    let bytes = fs::read(path).map_err(|e| format!("cannot be read: {e}"))?;
    let sum = digest::digest(&digest::SHA256, &bytes).as_ref().to_vec();
    Ok((bytes, sum))
}

/// The key id of a key file: its name without the extension, limited to
/// characters that are safe in a header, a URL and a file name.
pub(super) fn kid_of(path: &Path) -> Result<String, String> {
    let kid = path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| "its name is not UTF-8".to_owned())?;
    if !is_safe_kid(kid) {
        return Err(
            "its name cannot be a kid (use letters, digits, '-', '_', '.'; at most 128)".into(),
        );
    }
    Ok(kid.to_owned())
}

pub(super) fn is_safe_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= 128
        && !kid.starts_with('.')
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

pub(super) fn create_key_dir(dir: &Path) -> anyhow::Result<()> {
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

/// A new 2048-bit RSA key pair. CPU-heavy: not for the async executor.
pub(super) fn generate_pair() -> anyhow::Result<KeyPair> {
    KeyPair::generate(KeySize::Rsa2048).map_err(|_| anyhow::anyhow!("RSA key generation failed"))
}

/// Writes `pair` as `{kid}.pem` (mode 0600) unless that file exists: `true`
/// when this call created it.
pub(super) fn write_key(dir: &Path, kid: &str, pair: &KeyPair) -> anyhow::Result<bool> {
    let der = pair
        .as_der()
        .map_err(|_| anyhow::anyhow!("encoding the new key"))?;
    let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec()));
    write_new(dir, &format!("{kid}.pem"), pem.as_bytes(), 0o600)
}

/// Writes `name` in `dir` all at once, or not at all if it exists.
fn write_new(dir: &Path, name: &str, contents: &[u8], mode: u32) -> anyhow::Result<bool> {
    let target = dir.join(name);
    let temporary = dir.join(format!(".{name}.{}.tmp", random_hex(6)?));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let written = (|| {
        let mut file = options.open(&temporary)?;
        file.write_all(contents)?;
        file.sync_all()?;
        // `link` fails when the target exists: create-new, atomically.
        fs::hard_link(&temporary, &target)
    })();
    let _ = fs::remove_file(&temporary);
    match written {
        Ok(()) => {
            // Make the new name durable; not every platform can sync a directory.
            if let Ok(handle) = fs::File::open(dir) {
                let _ = handle.sync_all();
            }
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).with_context(|| format!("writing {}", target.display())),
    }
}

fn random_hex(bytes: usize) -> anyhow::Result<String> {
    let mut nonce = vec![0u8; bytes / 2];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| anyhow::anyhow!("no randomness"))?;
    Ok(nonce.iter().map(|b| format!("{b:02x}")).collect())
}

/// Creates a key that activates at `activates`, named
/// `tessera-{activation}-xxxxxx` (six random hex digits, so that keys made
/// for the same second on two machines differ), and returns its kid.
/// CPU-heavy: not for the async executor.
pub fn create_key(dir: &Path, activates: DateTime<Utc>) -> anyhow::Result<String> {
    if !dir.exists() {
        create_key_dir(dir)?;
    }
    let pair = generate_pair()?;
    loop {
        let kid = format!("tessera-{}-{}", activates.format(STAMP), random_hex(6)?);
        if !dir.join(format!("{kid}.revoked")).exists() && write_key(dir, &kid, &pair)? {
            return Ok(kid);
        }
    }
}

/// Creates the next key (`tessera keys rotate`): published from now on, it
/// signs one publication lead later. Returns its kid. CPU-heavy: not for the
/// async executor.
pub fn rotate(dir: &Path, lifecycle: &Lifecycle, now: DateTime<Utc>) -> anyhow::Result<String> {
    create_key(dir, lifecycle.activation_for_new_key(now))
}

/// Generates a key that signs at once (as `tessera keys rotate --now`) and
/// returns its kid. CPU-heavy: not for the async executor.
pub fn generate(dir: &Path) -> anyhow::Result<String> {
    create_key(dir, Utc::now())
}

/// The kid of the key of the rotation slot that activates at `at`: the same
/// on every replica, so that only one of them creates it.
pub(super) fn slot_kid(at: DateTime<Utc>) -> String {
    format!("tessera-{}-auto", at.format(STAMP))
}

/// Whether the key named `kid` exists or existed (a revocation marker).
pub(super) fn is_taken(dir: &Path, kid: &str) -> bool {
    dir.join(format!("{kid}.pem")).exists() || dir.join(format!("{kid}.revoked")).exists()
}

/// Marks `kid` revoked with a `{kid}.revoked` file holding the time; every
/// replica drops the key at its next rescan. `false` if it already was.
pub fn revoke(dir: &Path, kid: &str, now: DateTime<Utc>) -> anyhow::Result<bool> {
    if !is_safe_kid(kid) || !dir.join(format!("{kid}.pem")).is_file() {
        bail!("no key {kid} in {}", dir.display());
    }
    write_new(
        dir,
        &format!("{kid}.revoked"),
        format!("{}\n", now.to_rfc3339()).as_bytes(),
        0o600,
    )
}

/// Deletes the private key file of `kid`.
pub(super) fn delete_key(dir: &Path, kid: &str) -> anyhow::Result<()> {
    let path = dir.join(format!("{kid}.pem"));
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("deleting {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kids_come_only_from_safe_file_names() {
        assert!(kid_of(Path::new("/k/tessera-20261122T101500Z.pem")).is_ok());
        assert!(kid_of(Path::new("/k/with space.pem")).is_err());
        assert!(kid_of(Path::new("/k/quote\".pem")).is_err());
    }

    #[test]
    fn of_many_writers_of_one_name_exactly_one_creates_it_and_no_temporary_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let pair = generate_pair().unwrap();

        let created: usize = std::thread::scope(|scope| {
            let writers: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| write_key(dir.path(), "tessera-slot", &pair).unwrap()))
                .collect();
            writers
                .into_iter()
                .map(|writer| usize::from(writer.join().unwrap()))
                .sum()
        });

        assert_eq!(created, 1);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["tessera-slot.pem"]);
    }

    #[test]
    fn a_key_is_revoked_once_and_only_if_it_exists() {
        let dir = tempfile::tempdir().unwrap();
        let kid = generate(dir.path()).unwrap();
        let now = Utc::now();

        assert!(revoke(dir.path(), &kid, now).unwrap());
        assert!(!revoke(dir.path(), &kid, now).unwrap());
        assert!(revoke(dir.path(), "absent", now).is_err());
        assert!(revoke(dir.path(), "../escape", now).is_err());
        let scan = scan(dir.path()).unwrap();
        assert_eq!(
            scan.revoked[&kid].timestamp_micros(),
            now.timestamp_micros()
        );
    }
}
