//! The key store: RSA signing keys as PEM files in one directory, and their
//! lifecycle.
//!
//! Each `*.pem` file holds one private key (PKCS#8, or PKCS#1 as older tools
//! write it); the file name without `.pem` is the key id (`kid`). A key's
//! state (published and pending, active, retired) follows from times alone:
//! the activation time in its name and the activation of the key after it
//! ([`lifecycle`]). Revocation is a `{kid}.revoked` file beside the key.
//! Nothing is a mutable flag, so every replica reading the directory, or a
//! copy of it, agrees on which key signs. The README's "Key lifecycle"
//! section is the operator's view of the same rules.
//!
//! Keys are parsed once into aws-lc-rs key pairs; a rescan re-parses only
//! files whose contents changed, and the running service swaps in a new
//! [`KeySet`] only when the directory changed ([`KeyStore`]).
//!
//! Key material never reaches a log line or a `Debug` print. Key ids come
//! only from file names found here: a `kid` from a request is looked up in a
//! map, never used as a path.

mod directory;
pub mod lifecycle;
mod prune;
mod set;
mod store;

pub use directory::{KeyProblem, create_key, generate, revoke, rotate};
pub use lifecycle::{KeyState, KeyStatus, Lifecycle};
pub use prune::{KeptKey, PruneReport, prune};
pub use set::{Jwk, KeySet, PublicKey, SigningKey, SigningUnavailable, export_public};
pub use store::KeyStore;
