//! Why a token was refused, and why a verifier could not be built.
//!
//! [`VerifyError`]'s messages are safe to show the client that sent the
//! token: they name the check that failed, never key material, the token, or
//! what the issuer answered. Fetch failures are reported through
//! [`Verifier::health`](crate::Verifier::health) and the log instead.

use std::path::PathBuf;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token is not signed with RS256")]
    WrongAlgorithm,
    /// The header carries `jku`, `x5u` or `jwk`. Those are never followed
    /// (a token may not choose the key that verifies it), and Tessera never
    /// sets them, so such a token is refused outright.
    #[error("the token names its own key source; only the issuer's published keys are trusted")]
    KeyReferenceInHeader,
    #[error("the token names no key or an unknown key")]
    UnknownKey,
    #[error("the token's signing key has been revoked")]
    KeyRevoked,
    /// No key could be loaded at all (the issuer has not been reachable since
    /// start-up): the token is not at fault.
    #[error("the issuer's keys are not available yet")]
    KeysUnavailable,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    /// `nbf` or `iat` lies in the future, beyond the leeway.
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was not issued by the expected issuer")]
    WrongIssuer,
    #[error("the token is not meant for this service")]
    WrongAudience,
    #[error("the token lacks the {0} claim")]
    MissingClaim(String),
    /// A Tessera session token (`token: "session"`). It proves a login to
    /// Tessera only; a service accepts the short-lived authorization token
    /// that `POST /authorize` exchanges it for.
    #[error("a session token is not an authorization token (exchange it at POST /authorize)")]
    SessionToken,
    /// Any other kind of token: only `token: "auth"` is accepted.
    #[error("the token is not an authorization token")]
    NotAnAuthorizationToken,
    #[error("the token's session has ended")]
    SessionRevoked,
    #[error("the token's user is disabled")]
    UserDisabled,
}

/// Why a [`Verifier`](crate::Verifier) could not be built: its configuration
/// is wrong. An issuer that cannot be reached is not an error here; the
/// verifier starts and keeps trying.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    #[error("the {what} {url:?} is not an http(s) URL")]
    InvalidUrl { what: &'static str, url: String },
    #[error("the audience may not be empty")]
    EmptyAudience,
    #[error("reading the key directory {}", path.display())]
    KeyDirectory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the key file {} is not an RSA public key in PEM", path.display())]
    InvalidKeyFile {
        path: PathBuf,
        #[source]
        source: InvalidKey,
    },
    #[error("the key directory {} holds no `{{kid}}.pem` file", path.display())]
    NoKeys { path: PathBuf },
    #[error("building the HTTP client")]
    HttpClient(#[source] reqwest::Error),
}

/// Why the keys or the revocation feed could not be fetched. Only logged and
/// reported in [`Health`](crate::Health): it is about the issuer, not about a
/// token.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("requesting {url}")]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered {status}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
    },
    #[error("{url} answered more than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("{url} answered an invalid document")]
    InvalidDocument {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the discovery document names the issuer {found:?}, not {expected:?}")]
    IssuerMismatch { expected: String, found: String },
    #[error("the discovery document's jwks_uri {0:?} is not an http(s) URL")]
    InvalidJwksUri(String),
    #[error("{url} holds no usable RS256 key")]
    NoUsableKey { url: String },
    #[error("reading the key directory")]
    KeyDirectory(#[source] std::io::Error),
    #[error("the key file {} is not an RSA public key in PEM", path.display())]
    InvalidKeyFile {
        path: PathBuf,
        #[source]
        source: InvalidKey,
    },
}

/// Why a key file is not a usable key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidKey(pub(crate) &'static str);

/// The error and its causes on one line, for the log and health reports.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
