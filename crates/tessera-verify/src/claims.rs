//! The claims of a Tessera authorization token, as a verified token hands
//! them to the service.
//!
//! Only what a downstream service needs is kept; other claims (such as
//! configured extra claims) are skipped while parsing rather than collected,
//! so that verifying stays cheap. Nothing here checks anything: a `Claims`
//! value exists only after [`Verifier::verify`](crate::Verifier::verify)
//! accepted its token.

use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// The `token` claim of an authorization token.
pub const AUTHORIZATION: &str = "auth";

/// The `token` claim of a session token, refused with its own reason.
pub(crate) const SESSION: &str = "session";

/// A verified authorization token's claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Claims {
    /// The issuer, as configured.
    pub iss: String,
    /// The user's id.
    pub sub: String,
    /// The audiences; this service's is among them.
    #[serde(deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Defaulted here (to [`i64::MIN`], which no issuer writes) only so
    /// that a token without it is reported as lacking `exp` (the verifier
    /// requires it) rather than as malformed.
    #[serde(default = "absent")]
    pub exp: i64,
    #[serde(default)]
    pub jti: String,
    /// The token kind: always `"auth"` once verified.
    pub token: String,
    /// The session the token was minted from.
    pub sid: String,
    /// The client id the user logged in with (often empty).
    #[serde(default)]
    pub cid: String,
    /// The user's id, as djangorestframework-sso names it.
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub username: String,
    /// The user's scopes at this audience.
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl Claims {
    /// Whether the token grants `scope` (compared exactly).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|held| held == scope)
    }
}

/// What a missing `exp` reads as.
pub(crate) const fn absent() -> i64 {
    i64::MIN
}

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3). A visitor
/// rather than an untagged enum, which would buffer the value and build an
/// error message for every token whose `aud` is an array.
fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    struct OneOrMany;

    impl<'de> Visitor<'de> for OneOrMany {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or an array of strings")
        }

        fn visit_str<E: de::Error>(self, one: &str) -> Result<Self::Value, E> {
            Ok(vec![one.to_owned()])
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut many = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(16));
            while let Some(one) = seq.next_element()? {
                many.push(one);
            }
            Ok(many)
        }
    }

    deserializer.deserialize_any(OneOrMany)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(aud: serde_json::Value) -> serde_json::Value {
        json!({
            "iss": "http://tessera.test", "sub": "u", "aud": aud, "iat": 1, "nbf": 1,
            "exp": 2, "jti": "j", "token": "auth", "sid": "s", "cid": "", "uid": "u",
            "email": null, "username": "alice", "scopes": ["read", "write"], "user": "alice"
        })
    }

    #[test]
    fn an_audience_may_be_one_string_or_a_list() {
        let one: Claims = serde_json::from_value(claims(json!("notebooks"))).unwrap();
        let many: Claims = serde_json::from_value(claims(json!(["notebooks", "x"]))).unwrap();
        assert_eq!(one.aud, ["notebooks"]);
        assert_eq!(many.aud, ["notebooks", "x"]);
        for bad in [json!(1), json!([1]), json!({"a": "b"}), json!(null)] {
            assert!(
                serde_json::from_value::<Claims>(claims(bad.clone())).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn scopes_are_compared_exactly() {
        let claims: Claims = serde_json::from_value(claims(json!("notebooks"))).unwrap();
        assert!(claims.has_scope("read"));
        assert!(!claims.has_scope("Read"));
        assert!(!claims.has_scope("rea"));
    }

    #[test]
    fn a_token_without_a_kind_or_session_does_not_parse() {
        for claim in ["token", "sid", "sub", "iat"] {
            let mut value = claims(json!("notebooks"));
            value.as_object_mut().unwrap().remove(claim);
            assert!(
                serde_json::from_value::<Claims>(value).is_err(),
                "{claim} is required"
            );
        }
    }
}
