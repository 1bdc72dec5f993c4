//! Verifies Tessera authorization tokens in a downstream service, offline,
//! with the issuer's published keys.
//!
//! A [`Verifier`] is built once at start-up with the issuer and this
//! service's audience, and finds the keys through the issuer's discovery
//! document, a JWKS URL, or a directory of `{kid}.pem` files. It caches them,
//! follows key rotation, and keeps verifying while the issuer is down.
//! [`Verifier::verify`] works with any framework; with the `actix` feature
//! (on by default), [`actix::Authorized`] is an extractor that answers 401
//! and 403 itself.
//!
//! This crate has no database or server-side dependency and never logs a
//! token.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = tessera_verify::Verifier::builder("https://sso.example.com", "notebooks")
//!     .with_revocations()
//!     .build()
//!     .await?;
//! let claims = verifier.verify("eyJ…").await?;
//! println!("{} may {:?}", claims.username, claims.scopes);
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "actix")]
pub mod actix;
mod claims;
mod error;
mod http;
mod jws;
mod keys;
mod revocation;
mod verifier;

pub use claims::{AUTHORIZATION, Claims};
pub use error::{BuildError, InvalidKey, VerifyError};
pub use keys::KeysHealth;
pub use revocation::RevocationHealth;
pub use verifier::{Health, Verifier, VerifierBuilder};

/// The HTTP client crate, for [`VerifierBuilder::http_client`].
pub use reqwest;
