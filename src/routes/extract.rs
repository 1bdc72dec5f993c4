//! Reading requests: bounded bodies, JSON or form, bearer tokens, where a
//! request came from, and (through the session service) the session or
//! caller behind a token.

use actix_web::http::header;
use actix_web::mime;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{HttpRequest, web};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use super::MAX_BODY_BYTES;
use crate::error::ApiError;
use crate::sessions::{Caller, LiveSession, Origin, VerifiedSession};
use crate::state::AppState;

/// Longest bearer token looked at.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Reads the body, refusing more than [`MAX_BODY_BYTES`] as soon as it is
/// announced or seen, and a body that takes longer than
/// `http.body_timeout` in all: a client sending a byte now and then
/// would otherwise hold its connection, and a worker's slot, for as long as
/// it likes.
pub async fn body(
    req: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
) -> Result<Bytes, ApiError> {
    let limit = state.settings.http.body_timeout;
    tokio::time::timeout(limit, read_body(req, payload))
        .await
        .unwrap_or(Err(ApiError::RequestTimeout {
            limit_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
        }))
}

async fn read_body(req: &HttpRequest, mut payload: web::Payload) -> Result<Bytes, ApiError> {
    let too_large = ApiError::PayloadTooLarge {
        limit: MAX_BODY_BYTES,
    };
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|len| len > MAX_BODY_BYTES) {
        return Err(too_large);
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::InvalidRequest(format!("unreadable body: {e}")))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The client's address: the socket peer, unless the peer is a trusted
/// proxy, in which case the right-most `X-Forwarded-For` address that is
/// not itself a trusted proxy (addresses left of it could be forged by the
/// client).
pub fn client_ip(req: &HttpRequest, state: &AppState) -> Option<String> {
    let peer = req.peer_addr()?.ip();
    Some(forwarded_client(peer, req.headers(), &state.trusted_proxies).to_string())
}

fn forwarded_client(
    peer: std::net::IpAddr,
    headers: &header::HeaderMap,
    trusted: &[ipnet::IpNet],
) -> std::net::IpAddr {
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    let hops = headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in hops.into_iter().rev() {
        match hop.parse::<std::net::IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            // Garbage in the chain: trust nothing beyond it.
            Err(_) => break,
        }
    }
    client
}

/// The `User-Agent`, cut to 512 bytes at a character boundary.
pub fn user_agent(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::USER_AGENT)?.to_str().ok()?;
    let mut end = value.len().min(512);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    Some(value[..end].to_owned())
}

/// What a body is, by its `Content-Type`. The media type is matched without
/// regard to case and with any parameters (RFC 9110 §8.3.1). A body is
/// never parsed as anything its type does not say: a cross-site
/// `<form enctype="text/plain">` can send a body that reads as JSON, but
/// not with a JSON type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MediaType {
    /// `application/json`, or any `application/…+json` (RFC 6839 §3.1).
    Json,
    /// `application/x-www-form-urlencoded`.
    Form,
}

impl MediaType {
    /// The request's body type: `None` when it names none, or one Tessera
    /// does not read.
    fn of(req: &HttpRequest) -> Option<Self> {
        let value = req.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
        let mime: mime::Mime = value.trim().parse().ok()?;
        if mime.type_() != mime::APPLICATION {
            return None;
        }
        if mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON) {
            Some(Self::Json)
        } else if mime.subtype() == mime::WWW_FORM_URLENCODED {
            Some(Self::Form)
        } else {
            None
        }
    }
}

fn unsupported(expected: &str) -> ApiError {
    ApiError::UnsupportedMediaType(format!("the body must be {expected}"))
}

/// Parses a JSON or form body, by its `Content-Type`; any other type is
/// 415, a malformed body 400 naming what is wrong.
pub fn json_or_form<T: DeserializeOwned>(req: &HttpRequest, body: &[u8]) -> Result<T, ApiError> {
    match MediaType::of(req) {
        Some(MediaType::Json) => parse_json(body),
        Some(MediaType::Form) => parse_form(body),
        None => Err(unsupported(
            "application/json or application/x-www-form-urlencoded",
        )),
    }
}

/// Parses a JSON body; any other type is 415.
pub fn json<T: DeserializeOwned>(req: &HttpRequest, body: &[u8]) -> Result<T, ApiError> {
    match MediaType::of(req) {
        Some(MediaType::Json) => parse_json(body),
        _ => Err(unsupported("application/json")),
    }
}

/// As [`json`], for a body whose fields are all optional: an empty body,
/// whatever its type, is the default.
pub fn optional_json<T: DeserializeOwned + Default>(
    req: &HttpRequest,
    body: &[u8],
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        json(req, body)
    }
}

/// Parses a form body; any other type is 415.
pub fn form<T: DeserializeOwned>(req: &HttpRequest, body: &[u8]) -> Result<T, ApiError> {
    match MediaType::of(req) {
        Some(MediaType::Form) => parse_form(body),
        _ => Err(unsupported("application/x-www-form-urlencoded")),
    }
}

fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::InvalidRequest(format!("invalid JSON body: {e}")))
}

fn parse_form<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_urlencoded::from_bytes(body)
        .map_err(|e| ApiError::InvalidRequest(format!("invalid form body: {e}")))
}

/// The token of an `Authorization: Bearer <token>` header, or of the
/// `JWT <token>` scheme that djangorestframework-sso clients send.
pub fn bearer_token(req: &HttpRequest) -> Result<&str, ApiError> {
    let missing = || ApiError::InvalidToken("an Authorization: Bearer token is required".into());
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(missing)?
        .to_str()
        .map_err(|_| missing())?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(missing)?;
    if !(scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("jwt")) {
        return Err(missing());
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(missing());
    }
    // Our tokens are well under 2 KiB; a huge one is not worth parsing.
    if token.len() > MAX_TOKEN_BYTES {
        return Err(ApiError::InvalidToken("the token is too long".into()));
    }
    Ok(token)
}

/// Where the request came from: its client's address and user agent.
pub fn origin(req: &HttpRequest, state: &AppState) -> Origin {
    Origin {
        ip: client_ip(req, state),
        user_agent: user_agent(req),
    }
}

/// The request's session token, verified; its session not yet read.
pub fn verified_session(req: &HttpRequest, state: &AppState) -> Result<VerifiedSession, ApiError> {
    Ok(state.sessions.verify(bearer_token(req)?)?)
}

/// The request's session token with its live session and user: 401 when
/// the session is unknown, ended, of a disabled user, or no longer this
/// token's.
pub async fn live_session(req: &HttpRequest, state: &AppState) -> Result<LiveSession, ApiError> {
    Ok(state.sessions.check(bearer_token(req)?).await?)
}

/// The caller of Tessera's own API behind the request's authorization token
/// (audience `tessera`): 401 unless the token verifies and its session is
/// live; 403 unless the token carries `scope` and the user holds it now.
pub async fn authorized_caller(
    req: &HttpRequest,
    state: &AppState,
    scope: &str,
) -> Result<Caller, ApiError> {
    Ok(state.sessions.caller(bearer_token(req)?, scope).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("x-forwarded-for"),
            HeaderValue::from_str(value).unwrap(),
        );
        headers
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy = "10.1.2.3".parse().unwrap();
        let stranger = "198.51.100.7".parse().unwrap();
        let headers = forwarded("203.0.113.9");

        assert_eq!(forwarded_client(stranger, &headers, &trusted), stranger);
        assert_eq!(
            forwarded_client(proxy, &headers, &trusted).to_string(),
            "203.0.113.9"
        );
        assert_eq!(forwarded_client(proxy, &HeaderMap::new(), &trusted), proxy);
    }

    proptest::proptest! {
        /// Any body, JSON or not, is parsed or refused with a 400: never a
        /// panic, never another status.
        #[test]
        fn any_body_is_parsed_or_refused_with_400(body in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            #[derive(serde::Deserialize)]
            #[expect(dead_code, reason = "only parsing is under test")]
            struct Login {
                username: String,
                password: String,
            }
            for content_type in ["application/json", "application/x-www-form-urlencoded"] {
                let req = actix_web::test::TestRequest::default()
                    .insert_header((header::CONTENT_TYPE, content_type))
                    .to_http_request();
                if let Err(error) = json_or_form::<Login>(&req, &body) {
                    proptest::prop_assert!(matches!(error, ApiError::InvalidRequest(_)));
                }
            }
        }

        #[test]
        fn any_forwarded_header_yields_an_address(value in "[ -~]{0,200}") {
            let trusted: Vec<ipnet::IpNet> = vec!["127.0.0.0/8".parse().unwrap()];
            let mut headers = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static("x-forwarded-for"), value);
            }
            let _ = forwarded_client("127.0.0.1".parse().unwrap(), &headers, &trusted);
        }
    }

    #[test]
    fn only_json_and_form_types_are_read_whatever_their_case_and_parameters() {
        let of = |value: &str| {
            let req = actix_web::test::TestRequest::default()
                .insert_header((header::CONTENT_TYPE, value))
                .to_http_request();
            MediaType::of(&req)
        };
        for json in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/merge-patch+json",
            " application/json ",
        ] {
            assert_eq!(of(json), Some(MediaType::Json), "{json:?}");
        }
        for form in [
            "application/x-www-form-urlencoded",
            "APPLICATION/X-WWW-FORM-URLENCODED",
            "application/x-www-form-urlencoded;charset=UTF-8",
        ] {
            assert_eq!(of(form), Some(MediaType::Form), "{form:?}");
        }
        for other in [
            "text/plain",
            "text/plain; a=application/json",
            "multipart/form-data; boundary=x",
            "application/jsonx",
            "application/x-www-form-urlencodedx",
            "text/json",
            "application",
            "",
        ] {
            assert_eq!(of(other), None, "{other:?}");
        }
        let none = actix_web::test::TestRequest::default().to_http_request();
        assert_eq!(MediaType::of(&none), None);
    }

    #[test]
    fn a_forged_left_part_of_the_chain_is_ignored() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy = "10.1.2.3".parse().unwrap();
        // The client sent "1.1.1.1"; the proxies appended the real address
        // and their own.
        let headers = forwarded("1.1.1.1, 203.0.113.9, 10.9.9.9");
        assert_eq!(
            forwarded_client(proxy, &headers, &trusted).to_string(),
            "203.0.113.9"
        );
        let garbage = forwarded("1.1.1.1, not-an-ip");
        assert_eq!(forwarded_client(proxy, &garbage, &trusted), proxy);
    }
}
