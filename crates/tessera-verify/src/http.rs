//! Talking to the issuer: the HTTP client and bounded GET requests.
//!
//! Every request has a timeout and every body a size limit, so that a slow
//! or hostile issuer can neither hang a verifier nor fill its memory. This
//! module never sees a token.

use std::time::Duration;

use reqwest::header::{ACCEPT, CACHE_CONTROL, HeaderMap};
use reqwest::{Client, Url};

use crate::error::{BuildError, FetchError};

/// A whole exchange, including connecting, may take this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The client used unless the application gives its own.
pub(crate) fn default_client() -> Result<Client, BuildError> {
    Client::builder()
        .user_agent(concat!("tessera-verify/", env!("CARGO_PKG_VERSION")))
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .map_err(BuildError::HttpClient)
}

/// A successful answer.
pub(crate) struct Fetched {
    pub body: Vec<u8>,
    /// From `Cache-Control`, when it says.
    pub max_age: Option<Duration>,
}

/// GETs `url`, expecting 2xx and at most `limit` bytes.
pub(crate) async fn get(client: &Client, url: &Url, limit: usize) -> Result<Fetched, FetchError> {
    let request_error = |source| FetchError::Request {
        url: url.to_string(),
        source,
    };
    let mut response = client
        .get(url.clone())
        .header(ACCEPT, "application/json")
        .send()
        .await
        .map_err(request_error)?;
    let status = response.status();
    if !status.is_success() {
        return Err(FetchError::Status {
            url: url.to_string(),
            status,
        });
    }
    let too_large = || FetchError::TooLarge {
        url: url.to_string(),
        limit,
    };
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(too_large());
    }
    let max_age = max_age(response.headers());
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(request_error)? {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched { body, max_age })
}

/// `max-age` of a `Cache-Control` header; `no-cache` and `no-store` mean
/// zero. `None` when the header says neither.
fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut found = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let directive = directive.trim();
            let (name, argument) = directive.split_once('=').unwrap_or((directive, ""));
            let name = name.trim();
            if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
                return Some(Duration::ZERO);
            }
            if name.eq_ignore_ascii_case("max-age")
                && let Ok(seconds) = argument.trim().trim_matches('"').parse::<u64>()
            {
                found = Some(Duration::from_secs(seconds));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(CACHE_CONTROL, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            max_age(&headers(&["public, max-age=300"])),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            max_age(&headers(&["Max-Age = 60 , public"])),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            max_age(&headers(&["public", "max-age=\"7\""])),
            Some(Duration::from_secs(7))
        );
    }

    #[test]
    fn no_cache_and_no_store_mean_zero() {
        assert_eq!(
            max_age(&headers(&["max-age=300, no-cache"])),
            Some(Duration::ZERO)
        );
        assert_eq!(max_age(&headers(&["no-store"])), Some(Duration::ZERO));
    }

    #[test]
    fn without_a_max_age_nothing_is_said() {
        assert_eq!(max_age(&headers(&[])), None);
        assert_eq!(max_age(&headers(&["public"])), None);
        assert_eq!(max_age(&headers(&["max-age=soon"])), None);
    }
}
