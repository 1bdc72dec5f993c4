//! The registry of OAuth 2.0 / OpenID Connect clients: registered from the
//! CLI or the admin API, stored in the database so that every replica sees
//! them.
//!
//! A confidential client authenticates with a secret that Tessera makes:
//! 256 random bits, shown once, of which only the SHA-256 is kept. A slow
//! password hash would add nothing for a secret no one chose, and the token
//! endpoint checks it on every call. A public client has no secret and
//! must use PKCE.
//!
//! Redirect URIs are stored exactly as registered and compared as simple
//! strings (OAuth 2.1 §2.3.1, RFC 9700 §2.1): no prefixes, no patterns, no
//! normalization. They are parsed only to be checked: `https`, or `http`
//! on a loopback IP literal (RFC 8252 §7.3; `localhost` is not, §8.3),
//! without a fragment (RFC 6749 §3.1.2), white space or user information.
//! (RFC 8252 §7.3 also has a loopback redirect's port vary per request: the
//! authorization endpoint is to compare such URIs without their port.)

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_lc_rs::{constant_time, digest, rand};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use secrecy::{ExposeSecret, SecretString};
use url::{Host, Url};

use crate::audit::{self, AuditEntryExt};
use crate::clock::Clock;
use crate::domain::{Audience, Scope};
use crate::store::{OAuthClient, Store, StoreError};

/// The grant types a client may be registered for.
pub const GRANT_TYPES: &[&str] = &[
    AUTHORIZATION_CODE,
    REFRESH_TOKEN,
    CLIENT_CREDENTIALS,
    TOKEN_EXCHANGE,
];
pub const AUTHORIZATION_CODE: &str = "authorization_code";
pub const REFRESH_TOKEN: &str = "refresh_token";
pub const CLIENT_CREDENTIALS: &str = "client_credentials";
/// RFC 8693 §2.1.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The longest redirect URI accepted, in bytes.
const MAX_URI_BYTES: usize = 2048;

/// Most clients kept by a [`ClientCache`].
const CACHED_CLIENTS: u64 = 10_000;

/// Active clients as last read, each for `oauth.client_cache_ttl` by the
/// service's clock: the token endpoint authenticates its client on every
/// call, and a read of it would be one more database round trip per
/// token. Only active clients are kept, never an unknown id. The
/// registry's changes through this process ([`OAuthClients::with_cache`])
/// forget what they change, and a read that began before such a change
/// keeps nothing, so that it cannot put back what the change replaced.
pub struct ClientCache {
    kept: Option<moka::sync::Cache<String, Arc<Kept>>>,
    ttl: TimeDelta,
    clock: Arc<dyn Clock>,
    /// Counts the changes forgotten so far.
    changes: AtomicU64,
}

struct Kept {
    client: OAuthClient,
    read_at: DateTime<Utc>,
}

impl ClientCache {
    /// A cache keeping each client for `ttl`; none at all for zero.
    pub fn new(ttl: Duration, clock: Arc<dyn Clock>) -> Self {
        let kept = (!ttl.is_zero()).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(CACHED_CLIENTS)
                // Only to free memory: freshness is checked on `clock`.
                .time_to_live(ttl)
                .build()
        });
        Self {
            kept,
            ttl: TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX),
            clock,
            changes: AtomicU64::new(0),
        }
    }

    /// The client kept under `id`, if it was read less than the TTL ago.
    pub fn get(&self, id: &str) -> Option<OAuthClient> {
        let kept = self.kept.as_ref()?.get(id)?;
        (self.clock.now() - kept.read_at < self.ttl).then(|| kept.client.clone())
    }

    /// What to hand [`ClientCache::put`] with a read that starts now.
    pub fn before_read(&self) -> u64 {
        self.changes.load(Ordering::SeqCst)
    }

    /// Keeps `client`, read from the database after `before_read` gave
    /// `since`, if it is active and nothing changed since; forgets its id
    /// otherwise.
    pub fn put(&self, id: &str, client: Option<&OAuthClient>, since: u64) {
        let Some(kept) = &self.kept else { return };
        match client.filter(|client| client.is_active) {
            Some(client) => {
                let entry = Kept {
                    client: client.clone(),
                    read_at: self.clock.now(),
                };
                kept.insert(id.to_owned(), Arc::new(entry));
                // Checked after the insert: a change that counts itself
                // later forgets this entry itself.
                if self.changes.load(Ordering::SeqCst) != since {
                    kept.invalidate(id);
                }
            }
            None => kept.invalidate(id),
        }
    }

    pub fn forget(&self, id: &str) {
        self.changes.fetch_add(1, Ordering::SeqCst);
        if let Some(kept) = &self.kept {
            kept.invalidate(id);
        }
    }
}

/// What an operator registers.
#[derive(Debug, Clone, Default)]
pub struct ClientSpec {
    pub id: String,
    /// No secret: the client cannot keep one (a browser or native app).
    pub public: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub audience: String,
    pub scopes: Vec<String>,
    /// Empty: `authorization_code` and `refresh_token`.
    pub grant_types: Vec<String>,
    /// The grant a user must hold to use the client: audience and scope.
    pub required_grant: Option<(String, String)>,
}

/// A registered client and, for a confidential one, its secret: shown once,
/// never stored.
pub struct Registered {
    pub client: OAuthClient,
    pub secret: Option<SecretString>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Invalid(String),
    #[error("a client named {0:?} already exists")]
    Taken(String),
    #[error("no client named {0:?}")]
    Unknown(String),
    #[error("the client {0:?} is public: it has no secret")]
    Public(String),
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<StoreError> for ClientError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// Registering and changing clients on behalf of `actor` (`cli`, or an
/// administrator's user name); every change is audited.
pub struct OAuthClients<'a> {
    store: &'a dyn Store,
    /// `tokens.allowed_audiences`: a client's audience must be one.
    allowed_audiences: &'a [String],
    clock: &'a dyn Clock,
    actor: String,
    cache: Option<&'a ClientCache>,
}

impl<'a> OAuthClients<'a> {
    pub fn new(
        store: &'a dyn Store,
        allowed_audiences: &'a [String],
        clock: &'a dyn Clock,
        actor: impl Into<String>,
    ) -> Self {
        Self {
            store,
            allowed_audiences,
            clock,
            actor: actor.into(),
            cache: None,
        }
    }

    /// Forgets in `cache` every client this changes, so that the change
    /// applies at once where the cache serves.
    pub fn with_cache(self, cache: &'a ClientCache) -> Self {
        Self {
            cache: Some(cache),
            ..self
        }
    }

    fn forget(&self, id: &str) {
        if let Some(cache) = self.cache {
            cache.forget(id);
        }
    }

    /// Checks and stores a new client; a confidential one gets its secret.
    pub async fn register(&self, spec: ClientSpec) -> Result<Registered, ClientError> {
        // What both stores keep of a time, so the answer matches them.
        let now = self.clock.now().trunc_subsecs(6);
        let secret = (!spec.public).then(new_secret).transpose()?;
        let client = OAuthClient {
            secret_hash: secret.as_ref().map(hash_secret),
            ..self.checked(spec, now)?
        };
        self.store
            .create_oauth_client(&client)
            .await
            .map_err(|error| match error {
                StoreError::ClientIdTaken => ClientError::Taken(client.id.clone()),
                other => other.into(),
            })?;
        self.record("client.created", &client.id).await?;
        Ok(Registered { client, secret })
    }

    pub async fn list(&self) -> Result<Vec<OAuthClient>, ClientError> {
        Ok(self.store.oauth_clients().await?)
    }

    pub async fn find(&self, id: &str) -> Result<OAuthClient, ClientError> {
        // Not a name any client has (nor one every database can look up).
        if !is_client_id(id) {
            return Err(ClientError::Unknown(id.to_owned()));
        }
        self.store
            .find_oauth_client(id)
            .await?
            .ok_or_else(|| ClientError::Unknown(id.to_owned()))
    }

    /// A new secret for a confidential client; the old one stops working.
    pub async fn rotate_secret(&self, id: &str) -> Result<SecretString, ClientError> {
        let client = self.find(id).await?;
        if client.secret_hash.is_none() {
            return Err(ClientError::Public(id.to_owned()));
        }
        let secret = new_secret()?;
        if !self
            .store
            .set_oauth_client_secret(id, &hash_secret(&secret), self.clock.now())
            .await?
        {
            return Err(ClientError::Unknown(id.to_owned()));
        }
        self.forget(id);
        self.record("client.secret_rotated", id).await?;
        Ok(secret)
    }

    pub async fn set_active(&self, id: &str, active: bool) -> Result<(), ClientError> {
        if !is_client_id(id) {
            return Err(ClientError::Unknown(id.to_owned()));
        }
        if !self
            .store
            .set_oauth_client_active(id, active, self.clock.now())
            .await?
        {
            return Err(ClientError::Unknown(id.to_owned()));
        }
        self.forget(id);
        let event = if active {
            "client.enabled"
        } else {
            "client.disabled"
        };
        self.record(event, id).await
    }

    pub async fn delete(&self, id: &str) -> Result<(), ClientError> {
        if !is_client_id(id) {
            return Err(ClientError::Unknown(id.to_owned()));
        }
        if !self.store.delete_oauth_client(id).await? {
            return Err(ClientError::Unknown(id.to_owned()));
        }
        self.forget(id);
        self.record("client.deleted", id).await
    }

    async fn record(&self, event: &str, client_id: &str) -> Result<(), ClientError> {
        let entry = audit::entry(event, "success", self.clock.now())
            .detail(format!("client {client_id} by {}", self.actor));
        self.store.append_audit(&[entry]).await?;
        Ok(())
    }

    /// The client `spec` describes, checked; no secret yet.
    fn checked(
        &self,
        spec: ClientSpec,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<OAuthClient, ClientError> {
        let invalid = |message: String| ClientError::Invalid(message);
        if !is_client_id(&spec.id) {
            return Err(invalid(
                "the client id must be 1 to 64 letters, digits, '-', '_' or '.', \
                 starting with a letter or digit"
                    .into(),
            ));
        }
        let audience = Audience::parse(&spec.audience).map_err(|e| invalid(e.to_string()))?;
        if !self
            .allowed_audiences
            .iter()
            .any(|a| a == audience.as_str())
        {
            return Err(invalid(format!(
                "the audience {:?} is not in tokens.allowed_audiences",
                audience.as_str()
            )));
        }
        let mut scopes = Vec::new();
        for scope in &spec.scopes {
            scopes.push(
                Scope::parse(scope)
                    .map_err(|e| invalid(e.to_string()))?
                    .into_string(),
            );
        }
        scopes.sort();
        scopes.dedup();
        let mut grant_types = if spec.grant_types.is_empty() {
            vec![AUTHORIZATION_CODE.to_owned(), REFRESH_TOKEN.to_owned()]
        } else {
            spec.grant_types.clone()
        };
        grant_types.sort();
        grant_types.dedup();
        if let Some(unknown) = grant_types
            .iter()
            .find(|g| !GRANT_TYPES.contains(&g.as_str()))
        {
            return Err(invalid(format!(
                "unknown grant type {unknown:?}; one of {}",
                GRANT_TYPES.join(", ")
            )));
        }
        let has = |grant: &str| grant_types.iter().any(|g| g == grant);
        if spec.public && has(CLIENT_CREDENTIALS) {
            return Err(invalid(
                "a public client cannot use client_credentials: it has no secret".into(),
            ));
        }
        if has(REFRESH_TOKEN) && !has(AUTHORIZATION_CODE) {
            return Err(invalid(
                "refresh_token comes with authorization_code".into(),
            ));
        }
        let redirect_uris = checked_uris(&spec.redirect_uris, "redirect URI")?;
        if has(AUTHORIZATION_CODE) && redirect_uris.is_empty() {
            return Err(invalid(
                "authorization_code needs at least one redirect URI".into(),
            ));
        }
        let post_logout_redirect_uris =
            checked_uris(&spec.post_logout_redirect_uris, "post-logout redirect URI")?;
        let required_grant = match spec.required_grant {
            None => None,
            Some((audience, scope)) => {
                let audience = Audience::parse(&audience).map_err(|e| invalid(e.to_string()))?;
                if !self
                    .allowed_audiences
                    .iter()
                    .any(|a| a == audience.as_str())
                {
                    return Err(invalid(format!(
                        "the required grant's audience {:?} is not in tokens.allowed_audiences",
                        audience.as_str()
                    )));
                }
                let scope = Scope::parse(&scope).map_err(|e| invalid(e.to_string()))?;
                Some((audience.as_str().to_owned(), scope.into_string()))
            }
        };
        Ok(OAuthClient {
            id: spec.id,
            secret_hash: None,
            redirect_uris,
            post_logout_redirect_uris,
            audience: audience.as_str().to_owned(),
            scopes,
            grant_types,
            required_grant,
            is_active: true,
            created_at: now,
            updated_at: now,
        })
    }
}

/// Whether `secret` is the client's. The comparison takes the same time
/// wherever the hashes differ; a public client has no secret to match.
pub fn secret_matches(client: &OAuthClient, secret: &str) -> bool {
    let Some(stored) = &client.secret_hash else {
        return false;
    };
    let offered = hex_sha256(secret.as_bytes());
    constant_time::verify_slices_are_equal(offered.as_bytes(), stored.as_bytes()).is_ok()
}

/// The login page's client id rule, starting with a letter or digit (so
/// that no id is `.` or `..` in a path).
pub(crate) fn is_client_id(value: &str) -> bool {
    crate::clients::is_name(value) && value.starts_with(|c: char| c.is_ascii_alphanumeric())
}

/// Each URI checked, and kept exactly as given: what a simple string
/// comparison compares with.
fn checked_uris(uris: &[String], what: &str) -> Result<Vec<String>, ClientError> {
    let mut checked = Vec::with_capacity(uris.len());
    for raw in uris {
        let invalid = |why: &str| ClientError::Invalid(format!("{what} {raw:?}: {why}"));
        if raw.len() > MAX_URI_BYTES {
            return Err(invalid("longer than 2048 bytes"));
        }
        // The URL parser would drop these; the stored string must be the
        // one a client sends.
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                "must not contain white space or control characters",
            ));
        }
        let url = Url::parse(raw).map_err(|_| invalid("not an absolute URL"))?;
        let loopback = match url.host() {
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.is_loopback(),
            Some(Host::Domain(_)) | None => false,
        };
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => {
                return Err(invalid(
                    "http is allowed on a loopback IP literal only (127.0.0.1 or [::1])",
                ));
            }
            _ => return Err(invalid("must be https (or http on a loopback address)")),
        }
        if url.fragment().is_some() {
            return Err(invalid("must not have a fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("must not carry user information"));
        }
        if !checked.contains(raw) {
            checked.push(raw.clone());
        }
    }
    Ok(checked)
}

/// A fresh secret: 256 random bits, URL-safe base64.
fn new_secret() -> anyhow::Result<SecretString> {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes).map_err(|_| anyhow::anyhow!("the system's random source failed"))?;
    Ok(SecretString::from(URL_SAFE_NO_PAD.encode(bytes)))
}

fn hash_secret(secret: &SecretString) -> String {
    hex_sha256(secret.expose_secret().as_bytes())
}

pub(crate) fn hex_sha256(bytes: &[u8]) -> String {
    digest::digest(&digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn active_client(id: &str) -> OAuthClient {
        let now = Utc::now();
        OAuthClient {
            id: id.to_owned(),
            secret_hash: None,
            redirect_uris: vec!["https://hub.example.com/cb".into()],
            post_logout_redirect_uris: Vec::new(),
            audience: "notebooks".into(),
            scopes: Vec::new(),
            grant_types: vec![AUTHORIZATION_CODE.into()],
            required_grant: None,
            is_active: true,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn the_cache_keeps_active_clients_for_its_time_and_never_what_a_change_replaced() {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let cache = ClientCache::new(Duration::from_secs(5), clock.clone());
        let hub = active_client("hub");

        cache.put("hub", Some(&hub), cache.before_read());
        assert_eq!(cache.get("hub").map(|c| c.id), Some("hub".into()));
        clock.advance(TimeDelta::seconds(5));
        assert!(cache.get("hub").is_none(), "read 5 s ago: read it again");

        // A read that began before a change ends after it.
        let since = cache.before_read();
        cache.forget("hub");
        cache.put("hub", Some(&hub), since);
        assert!(
            cache.get("hub").is_none(),
            "it read what the change replaced"
        );

        let disabled = OAuthClient {
            is_active: false,
            ..hub.clone()
        };
        cache.put("hub", Some(&hub), cache.before_read());
        cache.put("hub", Some(&disabled), cache.before_read());
        assert!(cache.get("hub").is_none(), "a disabled client is not kept");

        let none = ClientCache::new(Duration::ZERO, clock);
        none.put("hub", Some(&hub), none.before_read());
        assert!(none.get("hub").is_none(), "a zero TTL keeps nothing");
    }

    #[test]
    fn redirect_uris_are_https_or_loopback_http_without_fragments() {
        let ok = |uri: &str| checked_uris(&[uri.to_owned()], "redirect URI").is_ok();
        assert!(ok("https://hub.example.com/hub/oauth_callback"));
        assert!(ok("http://127.0.0.1:8000/hub/oauth_callback"));
        assert!(ok("http://[::1]:8000/cb"));
        assert!(!ok("http://localhost/cb"), "RFC 8252 §8.3");
        assert!(!ok("http://hub.example.com/cb"), "plain http elsewhere");
        assert!(!ok(" https://hub.example.com/cb"), "white space");
        assert!(!ok("https://hub.example.com/c\tb"), "a tab");
        assert!(!ok("https://hub.example.com/cb#x"), "a fragment");
        assert!(
            !ok("https://user:pw@hub.example.com/cb"),
            "user information"
        );
        assert!(!ok("/hub/oauth_callback"), "relative");
        assert!(!ok("javascript:alert(1)"));
    }

    #[test]
    fn redirect_uris_are_kept_exactly_as_registered() {
        let given = [
            "https://hub.example.com".to_owned(),
            "https://HUB.example.com:443/x/../cb".to_owned(),
            "https://hub.example.com".to_owned(),
        ];
        assert_eq!(
            checked_uris(&given, "redirect URI").unwrap(),
            given[..2],
            "no trailing slash added, no normalization, duplicates dropped"
        );
    }

    #[test]
    fn a_secret_matches_only_its_own_hash() {
        let secret = new_secret().unwrap();
        let client = OAuthClient {
            id: "hub".into(),
            secret_hash: Some(hash_secret(&secret)),
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            audience: "tessera".into(),
            scopes: Vec::new(),
            grant_types: Vec::new(),
            required_grant: None,
            is_active: true,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        };
        assert!(secret_matches(&client, secret.expose_secret()));
        assert!(!secret_matches(&client, "guess"));
        assert!(!secret_matches(&client, ""));
        let public = OAuthClient {
            secret_hash: None,
            ..client
        };
        assert!(!secret_matches(&public, ""));
        assert_eq!(secret.expose_secret().len(), 43);
    }
}
