//! The verifier: configuration, and the checks every token goes through.
//!
//! Everything is pinned: RS256 only, a `kid` looked up among the issuer's
//! published keys (never a key or URL the token names itself), `iss`, `aud`
//! containing this service, `exp`/`nbf`/`iat` with the leeway, the token
//! kind (`auth`; a session token is never accepted downstream), and, when
//! revocation polling is on, the session, user and key are not revoked.
//!
//! A [`Verifier`] is cheap to clone (one reference count) and meant to be
//! built once at start-up and shared.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::{Client, Url};

use crate::claims::{self, AUTHORIZATION, Claims};
use crate::error::{BuildError, FetchError, VerifyError};
use crate::jws::Jws;
use crate::keys::{self, KeyCache, KeySource, KeysHealth};
use crate::revocation::{RevocationHealth, Revocations};

/// Defaults, documented on the builder methods that change them.
const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
const DEFAULT_MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// Verifies Tessera authorization tokens for one audience.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    audience: String,
    leeway: i64,
    keys: Arc<KeyCache>,
    revocations: Option<Arc<Revocations>>,
    poller: Option<tokio::task::AbortHandle>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The poller holds only the feed state, not the verifier, so it would
        // otherwise outlive the last clone.
        if let Some(poller) = &self.poller {
            poller.abort();
        }
    }
}

impl Inner {
    /// The checks on a signed token's claims, in this order: the token kind,
    /// `exp` present, not expired, not before `nbf`, issuer, audience, `iat`
    /// not in the future. Times are compared with the leeway. The kind comes
    /// first so that a session token, which usually has no `exp`, is
    /// refused for what it is.
    fn validate(&self, claims: &Claims, now: i64) -> Result<(), VerifyError> {
        if claims.token == claims::SESSION {
            return Err(VerifyError::SessionToken);
        }
        if claims.token != AUTHORIZATION {
            return Err(VerifyError::NotAnAuthorizationToken);
        }
        if claims.exp == claims::absent() {
            return Err(VerifyError::MissingClaim("exp".into()));
        }
        if claims.exp < now.saturating_sub(self.leeway) {
            return Err(VerifyError::Expired);
        }
        let not_after = now.saturating_add(self.leeway);
        if claims.nbf.is_some_and(|nbf| nbf > not_after) {
            return Err(VerifyError::NotYetValid);
        }
        if claims.iss != self.issuer {
            return Err(VerifyError::WrongIssuer);
        }
        if !claims.aud.contains(&self.audience) {
            return Err(VerifyError::WrongAudience);
        }
        // A token issued in the future was signed by a clock we cannot trust.
        if claims.iat > not_after {
            return Err(VerifyError::NotYetValid);
        }
        Ok(())
    }
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .finish_non_exhaustive()
    }
}

/// What the verifier knows about its sources, for a health endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Health {
    pub keys: KeysHealth,
    /// `None` when revocation polling is off.
    pub revocations: Option<RevocationHealth>,
}

impl Verifier {
    /// Starts configuring a verifier for tokens issued by `issuer` (the
    /// `iss` of the tokens, e.g. `https://sso.example.com`; a trailing slash
    /// is ignored) for `audience` (this service's name, e.g. `notebooks`).
    /// By default the keys are found through the issuer's discovery
    /// document.
    pub fn builder(issuer: impl Into<String>, audience: impl Into<String>) -> VerifierBuilder {
        VerifierBuilder {
            issuer: issuer.into(),
            audience: audience.into(),
            keys: KeysFrom::Discovery,
            leeway: DEFAULT_LEEWAY,
            min_refetch_interval: DEFAULT_MIN_REFETCH_INTERVAL,
            poll_revocations: None,
            revocations_url: None,
            client: None,
        }
    }

    /// Verifies `token` (the compact JWT, without `Bearer `) and returns its
    /// claims. Waits on the network only when the token names a key not seen
    /// yet, and then at most for one fetch shared with every other request
    /// that waits for the same.
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let inner = &*self.inner;
        let jws = Jws::parse(token)?;
        let kid = jws.kid.as_deref().ok_or(VerifyError::UnknownKey)?;
        if let Some(revocations) = &inner.revocations
            && revocations.state().is_key_revoked(kid)
        {
            return Err(VerifyError::KeyRevoked);
        }

        let mut keys = inner.keys.current();
        if keys.get(kid).is_none() {
            keys = inner.keys.refetch_for(kid, &keys).await;
        } else {
            inner.keys.refresh_if_stale(&keys);
        }
        let Some(key) = keys.get(kid) else {
            return Err(if keys.is_empty() {
                VerifyError::KeysUnavailable
            } else {
                VerifyError::UnknownKey
            });
        };

        let claims: Claims = jws.verify(key)?;
        inner.validate(&claims, now_seconds())?;
        if let Some(revocations) = &inner.revocations {
            revocations.state().check(&claims)?;
        }
        Ok(claims)
    }

    /// The expected issuer.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// This service's audience.
    pub fn audience(&self) -> &str {
        &self.inner.audience
    }

    /// The state of the key cache and of the revocation feed.
    pub fn health(&self) -> Health {
        Health {
            keys: self.inner.keys.health(),
            revocations: self.inner.revocations.as_ref().map(|r| r.health()),
        }
    }
}

fn now_seconds() -> i64 {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
}

enum KeysFrom {
    Discovery,
    Jwks(String),
    PemDir(PathBuf),
}

/// Configures a [`Verifier`]; see [`Verifier::builder`].
#[must_use]
pub struct VerifierBuilder {
    issuer: String,
    audience: String,
    keys: KeysFrom,
    leeway: Duration,
    min_refetch_interval: Duration,
    poll_revocations: Option<Duration>,
    revocations_url: Option<String>,
    client: Option<Client>,
}

impl VerifierBuilder {
    /// Takes the keys from this JWKS URL instead of discovering it.
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.keys = KeysFrom::Jwks(url.into());
        self
    }

    /// Takes the keys from `{kid}.pem` files in `dir` (public keys, as
    /// Tessera serves them at `/keys/{kid}.pem`), without any network. The
    /// directory is read again when a token names an unknown kid.
    pub fn pem_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.keys = KeysFrom::PemDir(dir.into());
        self
    }

    /// Clock skew tolerated on `exp`, `nbf` and `iat`. Default 30 s.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The shortest time between two key fetches caused by unknown kids or
    /// expiry. Default 5 s. Zero allows a fetch whenever none is running.
    pub fn min_refetch_interval(mut self, interval: Duration) -> Self {
        self.min_refetch_interval = interval;
        self
    }

    /// Polls `{issuer}/revocations` every `interval` (5 s is a good value)
    /// and refuses tokens of revoked sessions, disabled users and revoked
    /// keys. Off by default.
    pub fn poll_revocations(mut self, interval: Duration) -> Self {
        self.poll_revocations = Some(interval);
        self
    }

    /// Polls this revocation feed instead of `{issuer}/revocations`, for a
    /// service that reaches Tessera at another address than the public one
    /// in `iss` (e.g. `http://tessera:8080/revocations` inside a container
    /// network, next to [`jwks_url`](Self::jwks_url)). Only used with
    /// revocation polling on.
    pub fn revocations_url(mut self, url: impl Into<String>) -> Self {
        self.revocations_url = Some(url.into());
        self
    }

    /// As [`poll_revocations`](Self::poll_revocations), every 5 s.
    pub fn with_revocations(self) -> Self {
        self.poll_revocations(DEFAULT_POLL_INTERVAL)
    }

    /// The HTTP client for keys and revocations, e.g. one with a proxy or a
    /// private CA. The default has a 5 s timeout and, with the `rustls`
    /// feature, speaks https with the Mozilla roots.
    pub fn http_client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Checks the configuration, loads the keys (from the network, when it
    /// answers: an unreachable issuer is logged and retried, not an error)
    /// and starts polling revocations. Fails only on configuration errors.
    /// Must run inside a Tokio runtime when revocation polling is on.
    pub async fn build(self) -> Result<Verifier, BuildError> {
        let issuer = self.issuer.trim_end_matches('/').to_owned();
        let issuer_url = keys::parse_http_url(&issuer).ok_or_else(|| BuildError::InvalidUrl {
            what: "issuer",
            url: issuer.clone(),
        })?;
        if self.audience.trim().is_empty() {
            return Err(BuildError::EmptyAudience);
        }
        let feed_url = match self.revocations_url {
            None => join(&issuer_url, "revocations"),
            Some(url) => keys::parse_http_url(&url).ok_or(BuildError::InvalidUrl {
                what: "revocation feed URL",
                url,
            })?,
        };
        let client = match self.client {
            Some(client) => client,
            None => crate::http::default_client()?,
        };

        let (source, pem_keys) = match self.keys {
            KeysFrom::Discovery => (
                KeySource::Discovery {
                    metadata: join(&issuer_url, ".well-known/openid-configuration"),
                    issuer: issuer.clone(),
                },
                None,
            ),
            KeysFrom::Jwks(url) => {
                let parsed = keys::parse_http_url(&url).ok_or(BuildError::InvalidUrl {
                    what: "JWKS URL",
                    url,
                })?;
                (KeySource::Jwks(parsed), None)
            }
            KeysFrom::PemDir(dir) => {
                let loaded = keys::read_pem_dir(&dir).map_err(|error| match error {
                    FetchError::InvalidKeyFile { path, source } => {
                        BuildError::InvalidKeyFile { path, source }
                    }
                    FetchError::KeyDirectory(source) => BuildError::KeyDirectory {
                        path: dir.clone(),
                        source,
                    },
                    other => BuildError::KeyDirectory {
                        path: dir.clone(),
                        source: std::io::Error::other(other),
                    },
                })?;
                if loaded.is_empty() {
                    return Err(BuildError::NoKeys { path: dir });
                }
                (KeySource::PemDir(dir), Some(loaded))
            }
        };
        let keys = Arc::new(KeyCache::new(
            source,
            client.clone(),
            self.min_refetch_interval,
        ));
        match pem_keys {
            Some(loaded) => keys.install(loaded),
            None => keys.prefetch().await,
        }

        let leeway = i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX);

        let (revocations, poller) = match self.poll_revocations {
            None => (None, None),
            Some(interval) => {
                let feed = Arc::new(Revocations::new(feed_url, client, interval));
                // The first poll is awaited, so that the service starts with
                // the revocations that exist rather than with none.
                let cursor = feed.poll(None).await;
                let task = tokio::spawn(Arc::clone(&feed).run(cursor, interval));
                (Some(feed), Some(task.abort_handle()))
            }
        };

        Ok(Verifier {
            inner: Arc::new(Inner {
                issuer,
                audience: self.audience,
                leeway,
                keys,
                revocations,
                poller,
            }),
        })
    }
}

/// `base` (an issuer, which may have a path) joined with `path`.
fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!("{}/{path}", url.path().trim_end_matches('/'));
    url.set_path(&joined);
    url.set_query(None);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_urls_are_under_the_issuer_path() {
        let root = Url::parse("https://sso.example.com").unwrap();
        let nested = Url::parse("https://example.com/sso").unwrap();
        assert_eq!(
            join(&root, ".well-known/openid-configuration").as_str(),
            "https://sso.example.com/.well-known/openid-configuration"
        );
        assert_eq!(
            join(&nested, "revocations").as_str(),
            "https://example.com/sso/revocations"
        );
    }

    #[tokio::test]
    async fn an_issuer_that_is_not_an_http_url_is_a_configuration_error() {
        let result = Verifier::builder("sso.example.com", "notebooks")
            .build()
            .await;
        assert!(matches!(result, Err(BuildError::InvalidUrl { .. })));
    }

    #[tokio::test]
    async fn a_revocation_feed_that_is_not_an_http_url_is_a_configuration_error() {
        let result = Verifier::builder("http://127.0.0.1:1", "notebooks")
            .revocations_url("tessera:8080/revocations")
            .build()
            .await;
        assert!(matches!(
            result,
            Err(BuildError::InvalidUrl {
                what: "revocation feed URL",
                ..
            })
        ));
    }

    #[tokio::test]
    async fn an_empty_audience_is_a_configuration_error() {
        let result = Verifier::builder("http://127.0.0.1:1", " ").build().await;
        assert!(matches!(result, Err(BuildError::EmptyAudience)));
    }

    #[tokio::test]
    async fn an_empty_pem_directory_is_a_configuration_error() {
        let dir = tempfile::tempdir().unwrap();
        let result = Verifier::builder("http://127.0.0.1:1", "notebooks")
            .pem_dir(dir.path())
            .build()
            .await;
        assert!(matches!(result, Err(BuildError::NoKeys { .. })));
    }

    #[tokio::test]
    async fn an_unreachable_issuer_is_not_a_build_error_but_shows_in_health() {
        let verifier = Verifier::builder("http://127.0.0.1:1", "notebooks")
            .build()
            .await
            .unwrap();
        let health = verifier.health();
        assert!(health.keys.last_error.is_some());
        assert!(health.keys.kids.is_empty());
        assert_eq!(
            verifier.verify("a.b.c").await.unwrap_err(),
            VerifyError::Malformed
        );
    }
}
