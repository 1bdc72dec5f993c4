//! Token claims, issuing and verifying.
//!
//! Claims are a superset of djangorestframework-sso's (`token`, `sid`, `uid`,
//! `email`, `scopes`), so services that verify that library's tokens accept
//! Tessera's. Verification pins everything: RS256 only, a known `kid`,
//! `iss`, `aud`, `exp`/`nbf` with the configured leeway against the time the
//! caller gives (the service's clock), and the token kind.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::keys::KeySet;

/// The `token` claim of a session token.
pub const SESSION: &str = "session";
/// The `token` claim of an authorization token.
pub const AUTHORIZATION: &str = "auth";

/// A long-lived token naming a session stored in the database.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Vec<String>,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    pub jti: String,
    pub token: String,
    pub sid: String,
    #[serde(default)]
    pub cid: String,
    pub uid: String,
    #[serde(default)]
    pub email: Option<String>,
}

/// A short-lived token carrying the user's scopes for its audiences.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizationClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Vec<String>,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    pub token: String,
    pub sid: String,
    pub cid: String,
    pub uid: String,
    pub email: Option<String>,
    pub username: String,
    pub scopes: Vec<String>,
    /// The OAuth client it was issued to (RFC 9068 §2.2), for tokens from
    /// the token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Its scopes, space-separated (RFC 9068 §2.2.3), for tokens from the
    /// token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Configured claims copied from user attributes (e.g. Hue's `user`).
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// An OpenID Connect ID token (Core §2), for one client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    /// The client id.
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    /// When the user signed in: the session's start.
    pub auth_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The Tessera session, as RP-Initiated Logout and `id_token_hint` use it.
    pub sid: String,
    /// Core §3.1.3.6: the left half of the access token's SHA-256.
    pub at_hash: String,
    pub preferred_username: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

/// `at_hash` of an RS256 ID token (OpenID Connect Core §3.1.3.6): the
/// base64url of the left-most half of the SHA-256 of the access token.
pub fn at_hash(access_token: &str) -> String {
    use base64::Engine;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access_token.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16])
}

/// Why a token was refused. The message is safe to show the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token is not signed with RS256")]
    WrongAlgorithm,
    #[error("the token names no key or an unknown key")]
    UnknownKey,
    #[error("the token's signing key has been revoked")]
    RevokedKey,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was not issued by this service or not for it")]
    WrongIssuerOrAudience,
    #[error("the token is not a session token")]
    NotASessionToken,
    #[error("the token is not an authorization token")]
    NotAnAuthorizationToken,
}

impl From<jsonwebtoken::errors::Error> for TokenError {
    fn from(error: jsonwebtoken::errors::Error) -> Self {
        match error.kind() {
            ErrorKind::InvalidSignature => Self::BadSignature,
            ErrorKind::InvalidAlgorithm
            | ErrorKind::InvalidAlgorithmName
            | ErrorKind::MissingAlgorithm => Self::WrongAlgorithm,
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::ImmatureSignature => Self::NotYetValid,
            ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => Self::WrongIssuerOrAudience,
            _ => Self::Malformed,
        }
    }
}

/// The times of a token, checked against `now`: expired once `exp` plus
/// the leeway has passed, not valid yet while `nbf` minus the leeway is
/// ahead. (The JWT library would read the system clock; Tessera's time is
/// its clock's.)
fn check_times(
    exp: Option<i64>,
    nbf: Option<i64>,
    now: DateTime<Utc>,
    leeway: TimeDelta,
) -> Result<(), TokenError> {
    let (now, leeway) = (now.timestamp(), leeway.num_seconds());
    if exp.is_some_and(|exp| exp.saturating_add(leeway) < now) {
        return Err(TokenError::Expired);
    }
    if nbf.is_some_and(|nbf| nbf.saturating_sub(leeway) > now) {
        return Err(TokenError::NotYetValid);
    }
    Ok(())
}

/// The signature, the algorithm and the presence of `required`; the
/// claims are checked by [`Checks`], in the JWT library's order.
fn signature_only(required: &[&str]) -> Validation {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_required_spec_claims(required);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation
}

/// The claims every token of ours is checked for, in the order the JWT
/// library checks them (times, then issuer, then audience), so that a token
/// wrong in several ways is refused for the same reason as before.
struct Checks {
    issuer: String,
    leeway: TimeDelta,
}

impl Checks {
    /// `accepts`, when given, says whether an audience of the token will
    /// do; one must. Without it any audience will.
    fn check(
        &self,
        (exp, nbf): (Option<i64>, Option<i64>),
        iss: &str,
        aud: &[String],
        accepts: Option<&dyn Fn(&str) -> bool>,
        now: DateTime<Utc>,
    ) -> Result<(), TokenError> {
        check_times(exp, nbf, now, self.leeway)?;
        if iss != self.issuer {
            return Err(TokenError::WrongIssuerOrAudience);
        }
        if let Some(accepts) = accepts
            && !aud.iter().any(|held| accepts(held))
        {
            return Err(TokenError::WrongIssuerOrAudience);
        }
        Ok(())
    }
}

/// What verifying a session token checks against.
pub struct SessionValidation {
    validation: Validation,
    checks: Checks,
    audience: Vec<String>,
}

impl SessionValidation {
    pub fn new(issuer: &str, audience: &[String], leeway: TimeDelta) -> Self {
        Self {
            // Session tokens carry `exp` only when a session lifetime is
            // set; when present it is checked.
            validation: signature_only(&["iss", "aud", "sub"]),
            checks: Checks {
                issuer: issuer.to_owned(),
                leeway,
            },
            audience: audience.to_vec(),
        }
    }

    /// Verifies a session token's signature and claims at `now`. The
    /// session itself (revoked? expired? user active?) is the caller's to
    /// check.
    pub fn verify(
        &self,
        token: &str,
        keys: &KeySet,
        now: DateTime<Utc>,
    ) -> Result<SessionClaims, TokenError> {
        let key = signing_key(token, keys)?;
        let claims =
            jsonwebtoken::decode::<SessionClaims>(token, &key.decoding, &self.validation)?.claims;
        self.checks.check(
            (claims.exp, None),
            &claims.iss,
            &claims.aud,
            Some(&|held| self.audience.iter().any(|a| a == held)),
            now,
        )?;
        if claims.token != SESSION {
            return Err(TokenError::NotASessionToken);
        }
        Ok(claims)
    }
}

/// The key that signed `token`, by its `kid`, after checking that the
/// header names RS256.
fn signing_key<'k>(
    token: &str,
    keys: &'k KeySet,
) -> Result<&'k crate::keys::PublicKey, TokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(TokenError::from)?;
    if header.alg != Algorithm::RS256 {
        return Err(TokenError::WrongAlgorithm);
    }
    let kid = header.kid.as_deref().ok_or(TokenError::UnknownKey)?;
    if keys.is_revoked(kid) {
        return Err(TokenError::RevokedKey);
    }
    keys.get(kid).ok_or(TokenError::UnknownKey)
}

/// What verifying an authorization token checks against.
pub struct AuthorizationValidation {
    validation: Validation,
    checks: Checks,
}

impl AuthorizationValidation {
    pub fn new(issuer: &str, leeway: TimeDelta) -> Self {
        Self {
            validation: signature_only(&["exp", "iss", "aud", "sub"]),
            checks: Checks {
                issuer: issuer.to_owned(),
                leeway,
            },
        }
    }

    /// Verifies an authorization token at `now`, for `audience` when given
    /// (else for any audience). The session behind it is the caller's to
    /// check.
    pub fn verify(
        &self,
        token: &str,
        keys: &KeySet,
        audience: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<AuthorizationClaims, TokenError> {
        let key = signing_key(token, keys)?;
        let claims =
            jsonwebtoken::decode::<AuthorizationClaims>(token, &key.decoding, &self.validation)?
                .claims;
        let is_wanted = |held: &str| audience == Some(held);
        self.checks.check(
            (Some(claims.exp), Some(claims.nbf)),
            &claims.iss,
            &claims.aud,
            audience
                .is_some()
                .then_some(&is_wanted as &dyn Fn(&str) -> bool),
            now,
        )?;
        if claims.token != AUTHORIZATION {
            return Err(TokenError::NotAnAuthorizationToken);
        }
        Ok(claims)
    }
}

/// An ID token Tessera signed, as an `id_token_hint`: the signature, the
/// algorithm and the issuer are checked, not the times (RP-Initiated
/// Logout 1.0 §2: an expired ID token is still a good hint).
pub fn verify_id_token_hint(
    token: &str,
    keys: &KeySet,
    issuer: &str,
) -> Result<IdTokenClaims, TokenError> {
    let key = signing_key(token, keys)?;
    let claims = jsonwebtoken::decode::<IdTokenClaims>(
        token,
        &key.decoding,
        &signature_only(&["iss", "sub", "aud"]),
    )?
    .claims;
    if claims.iss != issuer {
        return Err(TokenError::WrongIssuerOrAudience);
    }
    Ok(claims)
}

/// Seconds since the Unix epoch.
pub fn timestamp(at: DateTime<Utc>) -> i64 {
    at.timestamp()
}

/// A fresh token id.
pub fn new_jti() -> String {
    Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn session_claims(now: i64) -> SessionClaims {
        SessionClaims {
            iss: "http://tessera.test".into(),
            sub: Uuid::nil().to_string(),
            aud: vec!["http://tessera.test".into()],
            iat: now,
            exp: None,
            jti: new_jti(),
            token: SESSION.into(),
            sid: Uuid::new_v4().to_string(),
            cid: String::new(),
            uid: Uuid::nil().to_string(),
            email: None,
        }
    }

    fn setup() -> (tempfile::TempDir, KeySet, SessionValidation) {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeySet::load_or_generate(dir.path()).unwrap();
        let validation = SessionValidation::new(
            "http://tessera.test",
            &["http://tessera.test".into()],
            TimeDelta::seconds(30),
        );
        (dir, keys, validation)
    }

    #[test]
    fn a_session_token_round_trips() {
        let (_dir, keys, validation) = setup();
        let claims = session_claims(Utc::now().timestamp());
        let token = keys.signing().unwrap().sign(&claims).unwrap();
        let verified = validation.verify(&token, &keys, Utc::now()).unwrap();
        assert_eq!(verified.sid, claims.sid);
    }

    #[test]
    fn an_authorization_token_is_not_a_session_token() {
        let (_dir, keys, validation) = setup();
        let mut claims = session_claims(Utc::now().timestamp());
        claims.token = AUTHORIZATION.into();
        let token = keys.signing().unwrap().sign(&claims).unwrap();
        assert_eq!(
            validation.verify(&token, &keys, Utc::now()).unwrap_err(),
            TokenError::NotASessionToken
        );
    }

    #[test]
    fn an_expired_session_token_is_refused() {
        let (_dir, keys, validation) = setup();
        let now = Utc::now().timestamp();
        let mut claims = session_claims(now - 1000);
        claims.exp = Some(now - 100);
        let token = keys.signing().unwrap().sign(&claims).unwrap();
        assert_eq!(
            validation.verify(&token, &keys, Utc::now()).unwrap_err(),
            TokenError::Expired
        );
    }

    #[test]
    fn alg_none_and_garbage_are_refused() {
        let (_dir, keys, validation) = setup();
        let claims = serde_json::to_vec(&session_claims(Utc::now().timestamp())).unwrap();
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(&claims)
        );
        assert!(validation.verify(&none, &keys, Utc::now()).is_err());
        for garbage in ["", ".", "..", "a.b.c", "not a token", "\u{0}"] {
            assert!(validation.verify(garbage, &keys, Utc::now()).is_err());
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// No string is a panic: every one is accepted or refused.
        #[test]
        fn arbitrary_strings_never_panic_the_verifier(token in ".{0,600}") {
            let (_dir, keys, validation) = shared_setup();
            proptest::prop_assert!(validation.verify(&token, keys, Utc::now()).is_err());
        }

        /// Nor is any three-part token with arbitrary base64url parts.
        #[test]
        fn arbitrary_jws_shapes_are_refused(
            header in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            payload in proptest::collection::vec(proptest::num::u8::ANY, 0..400),
            signature in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        ) {
            let (_dir, keys, validation) = shared_setup();
            let token = format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode(header),
                URL_SAFE_NO_PAD.encode(payload),
                URL_SAFE_NO_PAD.encode(signature)
            );
            proptest::prop_assert!(validation.verify(&token, keys, Utc::now()).is_err());
        }

        /// A real token with any one character changed is refused.
        #[test]
        fn a_tampered_token_is_refused(position in 0usize..2000, replacement in "[A-Za-z0-9_-]") {
            let (_dir, keys, validation) = shared_setup();
            let token = keys.signing().unwrap().sign(&session_claims(Utc::now().timestamp())).unwrap();
            let position = position % token.len();
            let mut tampered = token.clone().into_bytes();
            tampered[position] = replacement.as_bytes()[0];
            let tampered = String::from_utf8(tampered).unwrap();
            proptest::prop_assume!(tampered != token);
            // The last character of a base64url signature carries spare bits:
            // some changes there decode to the same bytes.
            if let Ok(claims) = validation.verify(&tampered, keys, Utc::now()) {
                proptest::prop_assert!(position >= token.len() - 1, "accepted at {position}");
                proptest::prop_assert_eq!(claims.sid, jsonwebtoken::dangerous::insecure_decode_claims::<SessionClaims>(&token).unwrap().sid);
            }
        }
    }

    /// One key set for all property cases: generating keys is slow.
    fn shared_setup() -> (
        Option<tempfile::TempDir>,
        &'static KeySet,
        &'static SessionValidation,
    ) {
        static SHARED: std::sync::OnceLock<(tempfile::TempDir, KeySet, SessionValidation)> =
            std::sync::OnceLock::new();
        let (_, keys, validation) = SHARED.get_or_init(setup);
        (None, keys, validation)
    }

    #[test]
    fn a_token_of_another_issuer_is_refused() {
        let (_dir, keys, validation) = setup();
        let mut claims = session_claims(Utc::now().timestamp());
        claims.iss = "http://elsewhere.test".into();
        let token = keys.signing().unwrap().sign(&claims).unwrap();
        assert_eq!(
            validation.verify(&token, &keys, Utc::now()).unwrap_err(),
            TokenError::WrongIssuerOrAudience
        );
    }
}
