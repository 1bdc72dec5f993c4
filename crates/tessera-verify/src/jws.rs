//! The compact JWS of a token, taken apart and checked on the path every
//! request takes: the header and the payload are decoded and parsed once, and
//! the signature is checked against a key parsed when its key set was
//! loaded, so that verifying costs little more than the RSA operation.
//!
//! Only the shape Tessera issues is accepted: three base64url parts without
//! padding, a JSON object header with `alg: "RS256"`, no `crit` extension
//! (this crate understands none, RFC 7515 §4.1.11) and no key reference
//! (`jku`, `x5u`, `jwk`, `x5c`: a token never chooses the key that verifies
//! it).

use std::borrow::Cow;

use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use crate::error::VerifyError;

/// The longest signature accepted: that of an 8192-bit key, the largest the
/// RS256 check allows.
const SIGNATURE_LIMIT: usize = 8192 / 8;

/// An issuer's RSA public key, parsed once, for RS256 (PKCS #1 v1.5 with
/// SHA-256, moduli of 2048 to 8192 bits).
#[derive(Debug)]
pub(crate) struct PublicKey(ParsedPublicKey);

impl PublicKey {
    /// From a modulus and exponent, big-endian, as a JWK carries them. Leading
    /// zero bytes, which some publishers leave in, are ignored.
    pub(crate) fn from_components(n: &[u8], e: &[u8]) -> Option<Self> {
        let components = RsaPublicKeyComponents {
            n: strip_leading_zeros(n),
            e: strip_leading_zeros(e),
        };
        components
            .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
            .ok()
            .map(Self)
    }

    /// From DER: a SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`) or a PKCS #1
    /// RSAPublicKey (`BEGIN RSA PUBLIC KEY`).
    pub(crate) fn from_der(der: &[u8]) -> Option<Self> {
        ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der)
            .ok()
            .map(Self)
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// A token split into its parts, its header checked.
pub(crate) struct Jws<'a> {
    /// The key id the header names, if any.
    pub(crate) kid: Option<String>,
    /// `header.payload`, what the signature covers.
    signing_input: &'a str,
    payload: &'a str,
    signature: &'a str,
}

/// The header members this crate looks at. Any member present, even with a
/// value that does not parse as expected, is noticed: `Option<IgnoredAny>` is
/// `Some` for every value but `null`.
#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Option<Cow<'a, str>>,
    kid: Option<String>,
    crit: Option<IgnoredAny>,
    jku: Option<IgnoredAny>,
    x5u: Option<IgnoredAny>,
    jwk: Option<IgnoredAny>,
    x5c: Option<IgnoredAny>,
}

impl<'a> Jws<'a> {
    /// Splits `token` and checks its header. Nothing about the signature or
    /// the payload is known yet.
    pub(crate) fn parse(token: &'a str) -> Result<Self, VerifyError> {
        let (signing_input, signature) = token.rsplit_once('.').ok_or(VerifyError::Malformed)?;
        let (header, payload) = signing_input
            .split_once('.')
            .ok_or(VerifyError::Malformed)?;
        if payload.contains('.') {
            return Err(VerifyError::Malformed);
        }
        let header = decode(header)?;
        // An object only: serde would also take the members as an array.
        if header.trim_ascii_start().first() != Some(&b'{') {
            return Err(VerifyError::Malformed);
        }
        let header: Header = serde_json::from_slice(&header).map_err(|_| VerifyError::Malformed)?;
        if header.alg.as_deref() != Some("RS256") {
            return Err(VerifyError::WrongAlgorithm);
        }
        if header.jku.is_some()
            || header.x5u.is_some()
            || header.jwk.is_some()
            || header.x5c.is_some()
        {
            return Err(VerifyError::KeyReferenceInHeader);
        }
        if header.crit.is_some() {
            return Err(VerifyError::Malformed);
        }
        Ok(Self {
            kid: header.kid,
            signing_input,
            payload,
            signature,
        })
    }

    /// Checks the signature with `key`, and only then parses the payload.
    pub(crate) fn verify<T: DeserializeOwned>(&self, key: &PublicKey) -> Result<T, VerifyError> {
        if self.signature.len() > SIGNATURE_LIMIT.div_ceil(3) * 4 {
            return Err(VerifyError::BadSignature);
        }
        // Room for base64's length estimate, which may exceed the exact
        // length by two bytes.
        let mut signature = [0u8; SIGNATURE_LIMIT + 2];
        let length = URL_SAFE_NO_PAD
            .decode_slice(self.signature, &mut signature)
            .map_err(|_| VerifyError::Malformed)?;
        key.0
            .verify_sig(self.signing_input.as_bytes(), &signature[..length])
            .map_err(|_| VerifyError::BadSignature)?;
        serde_json::from_slice(&decode(self.payload)?).map_err(|_| VerifyError::Malformed)
    }
}

fn decode(part: &str) -> Result<Vec<u8>, VerifyError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| VerifyError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    fn token(header: &str) -> String {
        format!("{}.{}.{}", encode(header), encode("{}"), encode("sig"))
    }

    fn parse(token: &str) -> Result<Option<String>, VerifyError> {
        Jws::parse(token).map(|jws| jws.kid)
    }

    #[test]
    fn an_rs256_header_with_a_kid_parses() {
        assert_eq!(
            parse(&token(r#"{"alg":"RS256","typ":"JWT","kid":"k1"}"#)),
            Ok(Some("k1".into()))
        );
        assert_eq!(parse(&token(r#"{"alg":"RS256"}"#)), Ok(None));
    }

    #[test]
    fn any_other_algorithm_or_none_is_the_wrong_algorithm() {
        for header in [
            r#"{"alg":"none","kid":"k1"}"#,
            r#"{"alg":"HS256","kid":"k1"}"#,
            r#"{"alg":"PS256","kid":"k1"}"#,
            r#"{"alg":"rs256","kid":"k1"}"#,
            r#"{"kid":"k1"}"#,
            r#"{"alg":null,"kid":"k1"}"#,
        ] {
            assert_eq!(
                parse(&token(header)),
                Err(VerifyError::WrongAlgorithm),
                "{header}"
            );
        }
    }

    #[test]
    fn a_key_reference_of_any_kind_or_value_is_refused() {
        for member in [
            r#""jku":"http://evil""#,
            r#""x5u":"http://evil""#,
            r#""jwk":{"kty":"RSA"}"#,
            r#""x5c":["MII"]"#,
            r#""jku":1"#,
            r#""jwk":"x""#,
        ] {
            let header = format!(r#"{{"alg":"RS256","kid":"k1",{member}}}"#);
            assert_eq!(
                parse(&token(&header)),
                Err(VerifyError::KeyReferenceInHeader),
                "{header}"
            );
        }
    }

    #[test]
    fn a_critical_extension_or_a_duplicated_member_is_malformed() {
        for header in [
            r#"{"alg":"RS256","kid":"k1","crit":["exp"],"exp":1}"#,
            r#"{"alg":"RS256","alg":"RS256","kid":"k1"}"#,
            r#"{"alg":"RS256","kid":1}"#,
            r#"["RS256"]"#,
            r#"["RS256","k1",null,null,null,null,null]"#,
        ] {
            assert_eq!(
                parse(&token(header)),
                Err(VerifyError::Malformed),
                "{header}"
            );
        }
    }

    #[test]
    fn anything_but_three_unpadded_base64url_parts_is_malformed() {
        let header = encode(r#"{"alg":"RS256","kid":"k1"}"#);
        for bad in [
            String::new(),
            ".".into(),
            "..".into(),
            format!("{header}.e30"),
            format!("{header}.e30.c2ln.c2ln"),
            format!("{header}=.e30.c2ln"),
            format!("{header}+.e30.c2ln"),
            format!(" {header}.e30.c2ln"),
        ] {
            assert_eq!(parse(&bad), Err(VerifyError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn leading_zeros_of_a_component_are_ignored() {
        assert_eq!(strip_leading_zeros(&[0, 0, 1, 0]), [1, 0]);
        assert_eq!(strip_leading_zeros(&[0, 0]), [] as [u8; 0]);
        assert!(PublicKey::from_components(&[0, 0], &[1, 0, 1]).is_none());
    }
}
