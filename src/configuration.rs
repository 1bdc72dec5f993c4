//! Typed configuration: built-in defaults, then a TOML file, then environment
//! variables (`TESSERA_…`, with `__` between nested names, and `DATABASE_URL`).
//!
//! Every setting is documented once, here, where it is declared. Invalid
//! settings fail at start-up, never at the first request. Secrets are held as
//! [`SecretString`] so they cannot reach a log line or a `Debug` print.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::domain::Audience;

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "tessera.toml";

/// Claims every token carries; `extra_claims` may not replace them.
const RESERVED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "iat",
    "nbf",
    "exp",
    "jti",
    "token",
    "sid",
    "cid",
    "uid",
    "email",
    "username",
    "scopes",
    "client_id",
    "scope",
];

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address the HTTP server listens on. `TESSERA_BIND`.
    pub bind: String,
    /// A separate address for `GET /metrics` (e.g. `127.0.0.1:9090`, or an
    /// address only the monitoring network reaches). When set, `/metrics`
    /// is served there only, not on `bind`: the production setting, since
    /// metrics tell how the service is used. `TESSERA_METRICS_BIND`.
    pub metrics_bind: Option<String>,
    /// The issuer (`iss`) of every token and the base of published URLs,
    /// e.g. `https://sso.example.com`. Set it in every deployment: unset, it
    /// is `http://{bind}`, with `localhost` for a wildcard address
    /// (`0.0.0.0:8080` gives `http://localhost:8080`, and a warning).
    /// `TESSERA_ISSUER`.
    pub issuer: Option<String>,
    /// `sqlite://FILE` (the default: a file in the working directory, created
    /// on first start) or `postgres://…` (production). `DATABASE_URL` or
    /// `TESSERA_DATABASE_URL`.
    pub database_url: SecretString,
    /// Maximum connections in the database pool. `TESSERA_DATABASE_MAX_CONNECTIONS`.
    pub database_max_connections: u32,
    /// HTTP worker threads; twice the number of cores when unset, since a
    /// worker signing a token holds its core for the whole signature while
    /// the others wait on the database. `TESSERA_WORKERS`.
    pub workers: Option<usize>,
    /// Password given to the `admin` user created when the database has no
    /// user at all; random (and printed once) when unset.
    /// `TESSERA_BOOTSTRAP_PASSWORD`.
    pub bootstrap_password: Option<SecretString>,
    /// `text` (human-readable) or `json`. `TESSERA_LOG_FORMAT`.
    pub log_format: LogFormat,
    pub keys: KeySettings,
    pub tokens: TokenSettings,
    pub hashing: HashingSettings,
    pub throttle: ThrottleSettings,
    pub http: HttpSettings,
    pub oauth: OAuthSettings,
    /// Browser clients of the hosted login page, `[[clients]]` tables; each
    /// field is documented on [`ClientSettings`].
    pub clients: Vec<ClientSettings>,
    /// The hosted login page (`[login]`): branding and the CSRF key; see
    /// [`LoginSettings`].
    pub login: LoginSettings,
}

/// The OAuth 2.0 / OpenID Connect endpoints (`[oauth]`).
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OAuthSettings {
    /// How long a registered client, once read, is used without reading it
    /// again (`5s`, `500ms`; `0` reads it on every request). A change made
    /// through this instance's admin API applies at once; one made on
    /// another replica or from the CLI within this time, so a replaced
    /// secret is accepted that long. A new secret works at once, since a
    /// refused secret is checked against the database again.
    /// `TESSERA_OAUTH__CLIENT_CACHE_TTL`.
    #[serde(deserialize_with = "duration::deserialize")]
    pub client_cache_ttl: Duration,
}

impl Default for OAuthSettings {
    fn default() -> Self {
        Self {
            client_cache_ttl: Duration::from_secs(5),
        }
    }
}

/// Limits of the HTTP server (`[http]`) that keep slow or idle clients from
/// holding it. Request heads must arrive within 5 s (the framework's own
/// limit); bodies within `body_timeout`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Open connections at most, over all workers (each takes an equal
    /// share, rounded up). Past it, new connections wait in the listen
    /// backlog until one closes; those being served are not disturbed.
    /// `TESSERA_HTTP__MAX_CONNECTIONS`.
    pub max_connections: usize,
    /// How long a request body may take to arrive in full (`5s`, `500ms`,
    /// or seconds), counted from when its endpoint starts reading it; a
    /// slower one is answered 408 and its connection closed. Bodies are at
    /// most 16 KiB. `TESSERA_HTTP__BODY_TIMEOUT`.
    #[serde(deserialize_with = "duration::deserialize")]
    pub body_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            body_timeout: Duration::from_secs(5),
        }
    }
}

impl HttpSettings {
    /// The connection cap of each of `workers` workers.
    pub fn max_connections_per_worker(&self, workers: usize) -> usize {
        self.max_connections.div_ceil(workers.max(1))
    }
}

/// Login throttling: failures make later attempts wait, growing with each
/// failure; nothing locks an account for good unless `lockout_after` is set.
/// Counters live in the database, so every replica shares them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleSettings {
    /// `TESSERA_THROTTLE__ENABLED`.
    pub enabled: bool,
    /// Failures for one user name from one address before delays start.
    /// `TESSERA_THROTTLE__USER_FREE_ATTEMPTS`.
    pub user_free_attempts: u32,
    /// Failures from one address (any user name) before delays start.
    /// `TESSERA_THROTTLE__IP_FREE_ATTEMPTS`.
    pub ip_free_attempts: u32,
    /// The first delay (`1s`, or seconds); each further failure doubles it.
    /// `TESSERA_THROTTLE__BASE_DELAY`.
    #[serde(deserialize_with = "duration::deserialize")]
    pub base_delay: Duration,
    /// The longest delay (`15m`, or seconds). `TESSERA_THROTTLE__MAX_DELAY`.
    #[serde(deserialize_with = "duration::deserialize")]
    pub max_delay: Duration,
    /// Time without a failure after which a counter starts over (`15m`, or
    /// seconds). `TESSERA_THROTTLE__WINDOW`.
    #[serde(deserialize_with = "duration::deserialize")]
    pub window: Duration,
    /// Hard lockout: after this many failures in a row for one account,
    /// from any address, logins are refused until `tessera user unlock`.
    /// Off by default, since it lets anyone lock anyone out.
    /// `TESSERA_THROTTLE__LOCKOUT_AFTER`.
    pub lockout_after: Option<u32>,
    /// Proxies whose `X-Forwarded-For` is believed: addresses or CIDR
    /// ranges. Otherwise the socket address is the client's.
    /// `TESSERA_THROTTLE__TRUSTED_PROXIES` (e.g. `["10.0.0.0/8"]`).
    pub trusted_proxies: Vec<String>,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            user_free_attempts: 5,
            ip_free_attempts: 50,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(900),
            window: Duration::from_secs(900),
            lockout_after: None,
            trusted_proxies: Vec::new(),
        }
    }
}

impl ThrottleSettings {
    /// The trusted proxies as networks; a plain address is a network of one.
    pub fn trusted_networks(&self) -> anyhow::Result<Vec<ipnet::IpNet>> {
        self.trusted_proxies
            .iter()
            .map(|entry| {
                entry
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .with_context(|| {
                        format!(
                            "throttle.trusted_proxies: {entry:?} is not an address or CIDR range"
                        )
                    })
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeySettings {
    /// Directory of PEM (PKCS#8) RSA private keys, one file a key; the file
    /// name without `.pem` is the `kid`. `TESSERA_KEYS__DIR`.
    pub dir: PathBuf,
    /// `Cache-Control: max-age` of the JWKS (`5m`, or seconds; whole
    /// seconds). `TESSERA_KEYS__JWKS_MAX_AGE`.
    #[serde(deserialize_with = "duration::deserialize")]
    pub jwks_max_age: Duration,
    /// How much longer than `jwks_max_age` a new key is published before it
    /// signs, so that every verifier honouring the cache header holds it
    /// first (`1h`, `90s`, or seconds). `TESSERA_KEYS__PUBLISH_LEAD`.
    #[serde(deserialize_with = "duration::deserialize")]
    pub publish_lead: Duration,
    /// Create the next key automatically, one per period (`30d`, `12h`, or
    /// seconds); unset (the default) rotates only by hand.
    /// `TESSERA_KEYS__ROTATE_EVERY`.
    #[serde(deserialize_with = "duration::deserialize_option")]
    pub rotate_every: Option<Duration>,
    /// How often the running service reads the key directory again, to pick
    /// up added, rotated, revoked and removed keys (`5s`, `500ms`).
    /// `TESSERA_KEYS__RESCAN_INTERVAL`.
    #[serde(deserialize_with = "duration::deserialize")]
    pub rescan_interval: Duration,
    /// Create a first key when the directory has none; when false, start-up
    /// without a key fails. `TESSERA_KEYS__GENERATE`.
    pub generate: bool,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenSettings {
    /// `aud` of session tokens; defaults to `[issuer]`.
    /// `TESSERA_TOKENS__SESSION_AUDIENCE`.
    pub session_audience: Vec<String>,
    /// Session lifetime (`30d`, `12h`, or seconds; whole seconds); unset
    /// means sessions last until revoked (session tokens then carry no
    /// `exp`). `TESSERA_TOKENS__SESSION_LIFETIME`.
    #[serde(deserialize_with = "duration::deserialize_option")]
    pub session_lifetime: Option<Duration>,
    /// Authorization token lifetime (`5m`, or seconds; whole seconds).
    /// `TESSERA_TOKENS__AUTHORIZATION_LIFETIME`.
    #[serde(deserialize_with = "duration::deserialize")]
    pub authorization_lifetime: Duration,
    /// Clock skew tolerated when checking `exp`/`nbf` (`30s`, or seconds;
    /// whole seconds). `TESSERA_TOKENS__LEEWAY`.
    #[serde(deserialize_with = "duration::deserialize")]
    pub leeway: Duration,
    /// Audiences an authorization token may be issued for.
    /// `TESSERA_TOKENS__ALLOWED_AUDIENCES` (e.g. `[billing,notebooks]`).
    pub allowed_audiences: Vec<String>,
    /// Audience used when `/authorize` names none; must be allowed.
    /// `TESSERA_TOKENS__DEFAULT_AUDIENCE`.
    pub default_audience: String,
    /// Extra claims copied from user attributes into authorization tokens:
    /// claim name → `username`, `email` or `id` (e.g. `user = "username"` for
    /// Hue). `TESSERA_TOKENS__EXTRA_CLAIMS` (e.g. `{user=username}`).
    pub extra_claims: BTreeMap<String, UserAttribute>,
}

/// A user attribute that can be copied into a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserAttribute {
    Username,
    Email,
    Id,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HashingSettings {
    /// Password hashes computed at once; defaults to the number of cores.
    /// `TESSERA_HASHING__CONCURRENCY`.
    pub concurrency: Option<usize>,
    /// Logins allowed to wait for a hashing slot; past it, 503 at once.
    /// `TESSERA_HASHING__QUEUE`.
    pub queue: usize,
    /// How long a login may wait for a hashing slot before it is answered
    /// 503 (`2s`, `500ms`, or seconds). `TESSERA_HASHING__QUEUE_TIMEOUT`.
    #[serde(deserialize_with = "duration::deserialize")]
    pub queue_timeout: Duration,
    /// The same in milliseconds, as older configurations give it; when set
    /// it wins over `queue_timeout`. `TESSERA_HASHING__QUEUE_TIMEOUT_MS`.
    pub queue_timeout_ms: Option<u64>,
    /// argon2id memory in KiB. Stored hashes of other parameters are
    /// re-hashed at the user's next login. `TESSERA_HASHING__MEMORY_KIB`.
    pub memory_kib: u32,
    /// argon2id passes. `TESSERA_HASHING__ITERATIONS`.
    pub iterations: u32,
    /// argon2id lanes. `TESSERA_HASHING__PARALLELISM`.
    pub parallelism: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            metrics_bind: None,
            issuer: None,
            database_url: SecretString::from("sqlite://tessera.db"),
            database_max_connections: 16,
            workers: None,
            bootstrap_password: None,
            log_format: LogFormat::Text,
            keys: KeySettings::default(),
            tokens: TokenSettings::default(),
            hashing: HashingSettings::default(),
            throttle: ThrottleSettings::default(),
            http: HttpSettings::default(),
            oauth: OAuthSettings::default(),
            clients: Vec::new(),
            login: LoginSettings::default(),
        }
    }
}

impl Default for KeySettings {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("./keys"),
            jwks_max_age: Duration::from_secs(300),
            publish_lead: Duration::from_secs(3600),
            rotate_every: None,
            rescan_interval: Duration::from_secs(5),
            generate: true,
        }
    }
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            session_audience: Vec::new(),
            session_lifetime: None,
            authorization_lifetime: Duration::from_secs(300),
            leeway: Duration::from_secs(30),
            allowed_audiences: vec!["tessera".into()],
            default_audience: "tessera".into(),
            extra_claims: BTreeMap::new(),
        }
    }
}

impl Default for HashingSettings {
    fn default() -> Self {
        Self {
            concurrency: None,
            queue: 64,
            queue_timeout: Duration::from_secs(2),
            queue_timeout_ms: None,
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl Settings {
    /// Layers defaults, the TOML file and the environment, then checks the
    /// result. `path` is the `--config` argument: when given, the file must
    /// exist; otherwise `tessera.toml` is read if present.
    /// Also returns what loading found worth a warning (the unknown
    /// `TESSERA_` variables), to be logged once logging is set up.
    pub fn load(path: Option<&Path>) -> anyhow::Result<(Self, Vec<String>)> {
        let mut figment = Figment::new();
        match path {
            Some(path) => {
                if !path.is_file() {
                    bail!("configuration file {} does not exist", path.display());
                }
                figment = figment.merge(Toml::file_exact(path));
            }
            None => figment = figment.merge(Toml::file(DEFAULT_CONFIG_FILE)),
        }
        let figment = figment
            .merge(
                Env::prefixed(ENV_PREFIX)
                    .filter(|name| environment::classify(name.as_str()) == EnvVar::Setting)
                    .split("__"),
            )
            .merge(Env::raw().only(&["DATABASE_URL"]));
        let settings: Settings = figment
            .extract()
            .map_err(setting_error)
            .context("invalid configuration")?;
        settings.validate()?;
        let warnings = std::env::vars_os()
            .filter_map(|(name, _)| name.into_string().ok())
            .filter(|name| {
                name.strip_prefix(ENV_PREFIX)
                    .is_some_and(|rest| environment::classify(rest) == EnvVar::Unknown)
            })
            .map(|name| {
                format!("the environment variable {name} is not a Tessera setting; it is ignored")
            })
            .collect();
        Ok((settings, warnings))
    }

    /// Checks what types alone cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.workers == Some(0) {
            bail!("workers must be positive when set");
        }
        let issuer = self.issuer();
        if !(issuer.starts_with("http://") || issuer.starts_with("https://")) {
            bail!("issuer must be an http(s) URL, got {issuer:?}");
        }
        if DatabaseKind::of(self.database_url.expose_secret()).is_none() {
            bail!("database_url must be a sqlite:// or postgres:// URL");
        }
        for (name, value, whole_seconds) in self.durations() {
            if value > MAX_DURATION {
                bail!(
                    "{name}: {} s is longer than any duration setting may be (at most {} days)",
                    value.as_secs(),
                    MAX_DURATION.as_secs() / 86_400
                );
            }
            if whole_seconds && value.subsec_nanos() != 0 {
                bail!("{name} must be a whole number of seconds");
            }
        }
        let tokens = &self.tokens;
        if tokens.authorization_lifetime.is_zero() {
            bail!("tokens.authorization_lifetime must be positive");
        }
        if tokens.session_lifetime.is_some_and(|d| d.is_zero()) {
            bail!("tokens.session_lifetime must be positive when set");
        }
        if self.throttle.max_delay < self.throttle.base_delay {
            bail!("throttle.max_delay must be at least throttle.base_delay");
        }
        if tokens.allowed_audiences.iter().any(|a| a.trim().is_empty()) {
            bail!("tokens.allowed_audiences may not contain an empty audience");
        }
        for audience in &tokens.allowed_audiences {
            Audience::parse(audience).context("tokens.allowed_audiences")?;
        }
        if !tokens.allowed_audiences.contains(&tokens.default_audience) {
            bail!(
                "tokens.default_audience {:?} is not in tokens.allowed_audiences",
                tokens.default_audience
            );
        }
        for claim in tokens.extra_claims.keys() {
            if RESERVED_CLAIMS.contains(&claim.as_str()) {
                bail!("tokens.extra_claims may not redefine the claim {claim:?}");
            }
        }
        self.throttle.trusted_networks()?;
        argon2::Params::new(
            self.hashing.memory_kib,
            self.hashing.iterations,
            self.hashing.parallelism,
            None,
        )
        .map_err(|e| anyhow::anyhow!("hashing: invalid argon2 parameters: {e}"))?;
        if self.throttle.lockout_after == Some(0) {
            bail!("throttle.lockout_after must be positive when set");
        }
        if self.hashing.concurrency == Some(0) {
            bail!("hashing.concurrency must be positive");
        }
        if self.http.max_connections == 0 {
            bail!("http.max_connections must be positive");
        }
        if self.http.body_timeout.is_zero() {
            bail!("http.body_timeout must be positive");
        }
        self.login.validate()?;
        let keys = &self.keys;
        if keys.rescan_interval.is_zero() {
            bail!("keys.rescan_interval must be positive");
        }
        // A replica only publishes a new key when it next reads the
        // directory: the lead must cover that delay.
        if keys.publish_lead < keys.rescan_interval {
            bail!("keys.publish_lead must be at least keys.rescan_interval");
        }
        if let Some(every) = keys.rotate_every {
            if every.is_zero() {
                bail!("keys.rotate_every must be positive when set");
            }
            if every <= keys.jwks_max_age + keys.publish_lead {
                bail!(
                    "keys.rotate_every must be longer than keys.jwks_max_age + keys.publish_lead, \
                     so that each key is published for that long before it signs"
                );
            }
        }
        Ok(())
    }

    /// Every duration setting by name, with whether it must be whole
    /// seconds (those that reach a token's claims or an HTTP header).
    fn durations(&self) -> Vec<(&'static str, Duration, bool)> {
        let (keys, tokens, throttle) = (&self.keys, &self.tokens, &self.throttle);
        let mut all = vec![
            ("keys.jwks_max_age", keys.jwks_max_age, true),
            ("keys.publish_lead", keys.publish_lead, false),
            ("keys.rescan_interval", keys.rescan_interval, false),
            (
                "tokens.authorization_lifetime",
                tokens.authorization_lifetime,
                true,
            ),
            ("tokens.leeway", tokens.leeway, true),
            ("hashing.queue_timeout", self.hash_queue_timeout(), false),
            ("http.body_timeout", self.http.body_timeout, false),
            ("oauth.client_cache_ttl", self.oauth.client_cache_ttl, false),
            ("throttle.base_delay", throttle.base_delay, false),
            ("throttle.max_delay", throttle.max_delay, false),
            ("throttle.window", throttle.window, false),
        ];
        if let Some(lifetime) = tokens.session_lifetime {
            all.push(("tokens.session_lifetime", lifetime, true));
        }
        if let Some(every) = keys.rotate_every {
            all.push(("keys.rotate_every", every, true));
        }
        all
    }

    /// How long a login may wait for a hashing slot.
    pub fn hash_queue_timeout(&self) -> Duration {
        self.hashing
            .queue_timeout_ms
            .map_or(self.hashing.queue_timeout, Duration::from_millis)
    }

    /// The `iss` of every token, without a trailing slash. Unset, it is
    /// [`default_issuer`] of `bind` (whose port may still be 0: the running
    /// service uses the address it bound).
    pub fn issuer(&self) -> String {
        match &self.issuer {
            Some(issuer) => issuer.trim_end_matches('/').to_owned(),
            None => match self.bind.parse::<SocketAddr>() {
                Ok(address) => default_issuer(address),
                Err(_) => format!("http://{}", self.bind),
            },
        }
    }

    pub fn hashing_concurrency(&self) -> usize {
        self.hashing.concurrency.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
        })
    }

    /// HTTP workers: as configured, or twice the number of cores.
    pub fn workers(&self) -> usize {
        self.workers.unwrap_or_else(|| {
            2 * std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }
}

/// The issuer when none is configured: `http://{address}`, except that a
/// wildcard address (`0.0.0.0`, `::`), which no browser or service can
/// reach, becomes `localhost`. Right for a service tried on one machine;
/// anywhere else `issuer` must be set, since tokens carry it and verifiers
/// fetch keys from it.
pub fn default_issuer(address: SocketAddr) -> String {
    if address.ip().is_unspecified() {
        format!("http://localhost:{}", address.port())
    } else {
        format!("http://{address}")
    }
}

/// One `[[clients]]` entry, as written in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSettings {
    /// The `client_id` of `/login?client_id=…`; also the `cid` of the
    /// sessions and tokens made through it.
    pub id: String,
    /// The audience of the tokens handed to this client; must be one of
    /// `tokens.allowed_audiences`.
    pub audience: String,
    /// Where the browser may be sent back: exact URLs
    /// (`https://hub.example.com/hub/login`; the query string may vary), or
    /// an origin and path prefix ending in `/*` (`https://hub.example.com/hub/*`
    /// allows `/hub` and everything under `/hub/`). No query or fragment.
    pub redirect_uris: Vec<String>,
    /// Scopes to request at the audience; when absent, every scope the user
    /// holds there.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// How the authorization token reaches the client: `query`
    /// (`return_to?token=…`, the default), `fragment` (`return_to#token=…`)
    /// or `cookie` (a cookie set on `cookie_domain`).
    #[serde(default)]
    pub token_delivery: DeliveryKind,
    /// Name of the query or fragment parameter carrying the token; default
    /// `token`. Only with `query` and `fragment`.
    #[serde(default)]
    pub param_name: Option<String>,
    /// Name of the cookie carrying the token; required with `cookie`.
    #[serde(default)]
    pub cookie_name: Option<String>,
    /// Domain the token cookie is set on (e.g. `example.com` for sites under
    /// it); the issuer's host and every redirect URI's host must lie within
    /// it. When absent the cookie is for the issuer's host only.
    #[serde(default)]
    pub cookie_domain: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryKind {
    #[default]
    Query,
    Fragment,
    Cookie,
}

/// The hosted login page (`[login]`).
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoginSettings {
    /// Name shown on the login pages. `TESSERA_LOGIN__PRODUCT_NAME`.
    pub product_name: String,
    /// Absolute http(s) URL of a logo shown above the form; its origin is
    /// allowed as an image source. `TESSERA_LOGIN__LOGO_URL`.
    pub logo_url: Option<String>,
    /// A CSS file read at start-up and served at `/static/brand.css`, after
    /// the default stylesheet, so it can override any of it.
    /// `TESSERA_LOGIN__STYLESHEET`.
    pub stylesheet: Option<PathBuf>,
    /// Key of the login forms' CSRF tokens, at least 32 bytes; random at
    /// each start when unset. Set it when several replicas serve the pages
    /// (or a form shown before a restart should still work).
    /// `TESSERA_LOGIN__CSRF_SECRET`.
    pub csrf_secret: Option<SecretString>,
}

impl Default for LoginSettings {
    fn default() -> Self {
        Self {
            product_name: "Tessera".into(),
            logo_url: None,
            stylesheet: None,
            csrf_secret: None,
        }
    }
}

impl LoginSettings {
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.product_name.trim().is_empty() {
            bail!("login.product_name must not be empty");
        }
        if let Some(logo) = &self.logo_url {
            logo_origin(logo)?;
        }
        if let Some(path) = &self.stylesheet
            && !path.is_file()
        {
            bail!("login.stylesheet {} is not a file", path.display());
        }
        if let Some(secret) = &self.csrf_secret
            && secret.expose_secret().len() < 32
        {
            bail!("login.csrf_secret must be at least 32 bytes");
        }
        Ok(())
    }
}

/// The origin of the logo URL, for the Content-Security-Policy.
pub fn logo_origin(logo: &str) -> anyhow::Result<String> {
    let url = url::Url::parse(logo).context("login.logo_url must be an absolute URL")?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        bail!("login.logo_url must be an http(s) URL");
    }
    Ok(url.origin().ascii_serialization())
}

/// A figment error as users write settings: the setting's dotted name
/// (`tokens.session_lifetime`), the file or environment variable it came
/// from, and what is wrong, without figment's profile prefix (`default.`),
/// its upper-cased keys or its nested backticks.
fn setting_error(error: figment::Error) -> anyhow::Error {
    let problems: Vec<String> = error
        .into_iter()
        .map(|e| describe_setting_error(&e))
        .collect();
    anyhow::anyhow!(problems.join("; "))
}

fn describe_setting_error(error: &figment::Error) -> String {
    use figment::error::Kind;

    let plain = |text: String| text.replace('`', "");
    let problem = match &error.kind {
        Kind::UnknownField(_, expected) => {
            format!("not a setting; expected one of {}", expected.join(", "))
        }
        Kind::UnknownVariant(found, expected) => {
            format!("{found:?} is not one of {}", expected.join(", "))
        }
        Kind::InvalidType(found, expected) => plain(format!("expected {expected}, found {found}")),
        Kind::InvalidValue(found, expected) => plain(format!("expected {expected}, found {found}")),
        Kind::Message(message) => message.clone(),
        other => plain(other.to_string()),
    };
    let setting = error.path.join(".").to_ascii_lowercase();
    let source = error.metadata.as_ref().and_then(|metadata| {
        if let Some(figment::Source::File(path)) = &metadata.source {
            return Some(format!("in {}", path.display()));
        }
        if !metadata.name.contains("environment variable") || error.path.is_empty() {
            return None;
        }
        let variable = if metadata.name.contains(ENV_PREFIX) {
            format!("{ENV_PREFIX}{}", error.path.join("__"))
        } else {
            error.path.join("_")
        };
        Some(format!(
            "from the environment variable {}",
            variable.to_ascii_uppercase()
        ))
    });
    match (setting.is_empty(), source) {
        (false, Some(source)) => format!("{setting} ({source}): {problem}"),
        (false, None) => format!("{setting}: {problem}"),
        (true, Some(source)) => format!("{source}: {problem}"),
        (true, None) => problem,
    }
}

/// The database a `database_url` names, by its scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Postgres,
    Sqlite,
}

impl DatabaseKind {
    pub fn of(url: &str) -> Option<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else {
            None
        }
    }
}

/// Environment variables that configure Tessera start with this.
const ENV_PREFIX: &str = "TESSERA_";

use environment::EnvVar;

/// Which `TESSERA_` variables are settings. Whatever else a deployment puts
/// in the environment must not stop the service: above all the variables
/// Kubernetes gives every pod for each Service of its namespace
/// (`TESSERA_PORT=tcp://…`, `TESSERA_SERVICE_HOST`, … for a Service named
/// `tessera`), which are ignored silently, as is `TESSERA_CONFIG` (the
/// `--config` argument). Any other unknown one is named in a warning.
mod environment {
    use serde_aux::serde_introspection::serde_introspect;

    use super::{
        HashingSettings, HttpSettings, KeySettings, Settings, ThrottleSettings, TokenSettings,
    };

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum EnvVar {
        /// A setting, or a section of settings.
        Setting,
        /// Not a setting, and expected to be there.
        Ignored,
        Unknown,
    }

    /// Classifies a variable by its name without the `TESSERA_` prefix.
    pub fn classify(name: &str) -> EnvVar {
        let name = name.to_ascii_lowercase();
        if name == "config" || is_service_link(&name) {
            return EnvVar::Ignored;
        }
        let mut path = name.split("__");
        let top = path.next().unwrap_or_default();
        let known = match (path.next(), path.next()) {
            (None, _) => serde_introspect::<Settings>().contains(&top),
            (Some(field), None) => {
                section_fields(top).is_some_and(|fields| fields.contains(&field))
            }
            // The one map among the settings: claim name → attribute.
            (Some(field), Some(_)) => (top, field) == ("tokens", "extra_claims"),
        };
        if known {
            EnvVar::Setting
        } else {
            EnvVar::Unknown
        }
    }

    fn section_fields(section: &str) -> Option<&'static [&'static str]> {
        Some(match section {
            "keys" => serde_introspect::<KeySettings>(),
            "tokens" => serde_introspect::<TokenSettings>(),
            "hashing" => serde_introspect::<HashingSettings>(),
            "throttle" => serde_introspect::<ThrottleSettings>(),
            "http" => serde_introspect::<HttpSettings>(),
            "oauth" => serde_introspect::<super::OAuthSettings>(),
            "login" => serde_introspect::<super::LoginSettings>(),
            _ => return None,
        })
    }

    /// The names of Kubernetes service links, after the Service's name:
    /// `SERVICE_HOST`, `SERVICE_PORT[_<port name>]`, `PORT`, and
    /// `PORT_<number>_<protocol>[_PROTO|_PORT|_ADDR]`, also behind another
    /// prefix (a Service named `tessera-db` gives `TESSERA_DB_SERVICE_HOST`).
    fn is_service_link(name: &str) -> bool {
        let words: Vec<&str> = name.split('_').collect();
        words.iter().enumerate().any(|(at, word)| {
            let rest = &words[at + 1..];
            match *word {
                "service" => rest == ["host"] || rest.first() == Some(&"port"),
                "port" => match rest {
                    [] => true,
                    [number, protocol, tail @ ..] => {
                        number.parse::<u16>().is_ok()
                            && matches!(*protocol, "tcp" | "udp" | "sctp")
                            && matches!(tail, [] | ["proto" | "port" | "addr"])
                    }
                    _ => false,
                },
                _ => false,
            }
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn settings_sections_and_their_fields_are_settings() {
            for name in [
                "BIND",
                "DATABASE_URL",
                "METRICS_BIND",
                "KEYS__DIR",
                "tokens__leeway",
                "TOKENS__EXTRA_CLAIMS",
                "TOKENS__EXTRA_CLAIMS__USER",
                "THROTTLE__LOCKOUT_AFTER",
                "HTTP__BODY_TIMEOUT",
                "LOGIN__CSRF_SECRET",
                "KEYS",
            ] {
                assert_eq!(classify(name), EnvVar::Setting, "{name}");
            }
        }

        #[test]
        fn kubernetes_service_links_and_the_config_path_are_ignored() {
            for name in [
                "CONFIG",
                "PORT",
                "SERVICE_HOST",
                "SERVICE_PORT",
                "SERVICE_PORT_HTTP",
                "PORT_8080_TCP",
                "PORT_8080_TCP_ADDR",
                "PORT_8080_TCP_PORT",
                "PORT_8080_TCP_PROTO",
                "PORT_9090_UDP",
                "DB_SERVICE_HOST",
                "DB_PORT_5432_TCP_ADDR",
                "DB_PORT",
            ] {
                assert_eq!(classify(name), EnvVar::Ignored, "{name}");
            }
        }

        #[test]
        fn anything_else_is_unknown() {
            for name in [
                "BIDN",
                "KEYS__DIRECTORY",
                "TOKENS__LEEWAY__X",
                "NOSUCH__DIR",
                "PORT_X_TCP",
                "PORTS",
                "",
            ] {
                assert_eq!(classify(name), EnvVar::Unknown, "{name}");
            }
        }
    }
}

/// The longest any duration setting may be: ten years. Every duration is
/// checked against it at start-up, so that no time arithmetic on a
/// configured duration can overflow while the service runs.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 86_400);

/// A configured duration as a [`chrono::TimeDelta`], for arithmetic on
/// timestamps. Settings are bounded by [`MAX_DURATION`] at start-up, so the
/// conversion is exact for them; anything larger saturates.
pub fn time_delta(duration: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(duration).unwrap_or(chrono::TimeDelta::MAX)
}

/// Durations in settings: a whole number of seconds, or a string such as
/// `30d`, `12h`, `90s` or `100ms`.
mod duration {
    use std::fmt;
    use std::time::Duration;

    use serde::{Deserializer, de};

    struct Visitor;

    impl de::Visitor<'_> for Visitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration: seconds, or text such as 30d, 12h, 90s or 500ms")
        }

        fn visit_u64<E: de::Error>(self, secs: u64) -> Result<Duration, E> {
            Ok(Duration::from_secs(secs))
        }

        fn visit_i64<E: de::Error>(self, secs: i64) -> Result<Duration, E> {
            u64::try_from(secs)
                .map(Duration::from_secs)
                .map_err(|_| E::custom(format!("{secs} is negative; a duration is not")))
        }

        fn visit_f64<E: de::Error>(self, secs: f64) -> Result<Duration, E> {
            Duration::try_from_secs_f64(secs)
                .map_err(|_| E::custom(format!("{secs} is not a duration in seconds")))
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
            let text = text.trim();
            match text.parse::<u64>() {
                Ok(secs) => Ok(Duration::from_secs(secs)),
                Err(_) => humantime::parse_duration(text).map_err(|e| {
                    E::custom(format!(
                        "{text:?} is not a duration (e.g. 30d, 12h, 90s, 500ms, or seconds): {e}"
                    ))
                }),
            }
        }
    }

    struct OptionVisitor;

    impl<'de> de::Visitor<'de> for OptionVisitor {
        type Value = Option<Duration>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            Visitor.expecting(f)
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            deserialize(d).map(Some)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(Visitor)
    }

    pub fn deserialize_option<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        d.deserialize_option(OptionVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Settings::default().validate().unwrap();
        assert_eq!(Settings::default().issuer(), "http://127.0.0.1:8080");
    }

    #[test]
    fn an_unset_issuer_is_the_bind_address_with_localhost_for_a_wildcard() {
        let issuer_of = |bind: &str| {
            Settings {
                bind: bind.into(),
                ..Settings::default()
            }
            .issuer()
        };
        assert_eq!(issuer_of("0.0.0.0:8080"), "http://localhost:8080");
        assert_eq!(issuer_of("[::]:9000"), "http://localhost:9000");
        assert_eq!(issuer_of("10.1.2.3:8080"), "http://10.1.2.3:8080");
        assert_eq!(issuer_of("[::1]:8080"), "http://[::1]:8080");
        assert_eq!(issuer_of("sso.internal:8080"), "http://sso.internal:8080");
        let configured = Settings {
            bind: "0.0.0.0:8080".into(),
            issuer: Some("https://sso.example.com/".into()),
            ..Settings::default()
        };
        assert_eq!(configured.issuer(), "https://sso.example.com");
    }

    #[test]
    fn default_audience_must_be_allowed() {
        let mut settings = Settings::default();
        settings.tokens.default_audience = "elsewhere".into();
        assert!(settings.validate().is_err());
    }

    #[test]
    fn extra_claims_cannot_replace_reserved_claims() {
        let mut settings = Settings::default();
        settings
            .tokens
            .extra_claims
            .insert("sub".into(), UserAttribute::Username);
        assert!(settings.validate().is_err());
        settings.tokens.extra_claims.clear();
        settings
            .tokens
            .extra_claims
            .insert("user".into(), UserAttribute::Username);
        settings.validate().unwrap();
    }

    #[test]
    fn key_durations_are_read_as_seconds_or_human_text() {
        let settings: Settings = Figment::new()
            .merge(Toml::string(
                r#"
                [keys]
                jwks_max_age = 60
                publish_lead = "90s"
                rotate_every = "30d"
                rescan_interval = 2
                "#,
            ))
            .extract()
            .unwrap();
        settings.validate().unwrap();
        assert_eq!(settings.keys.publish_lead, Duration::from_secs(90));
        assert_eq!(
            settings.keys.rotate_every,
            Some(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(settings.keys.rescan_interval, Duration::from_secs(2));
        assert!(settings.keys.generate);
        let wrong: Result<Settings, _> = Figment::new()
            .merge(Toml::string("[keys]\nrotate_every = \"soon\""))
            .extract();
        assert!(wrong.unwrap_err().to_string().contains("not a duration"));
    }

    #[test]
    fn automatic_rotation_must_leave_room_to_publish_each_key_first() {
        let mut settings = Settings::default();
        assert_eq!(settings.keys.rotate_every, None);
        settings.keys.rotate_every = Some(Duration::from_secs(3600));
        assert!(settings.validate().is_err());
        settings.keys.rotate_every = Some(Duration::from_secs(3600 + 301));
        settings.validate().unwrap();
        settings.keys.rotate_every = Some(Duration::from_millis(7_200_500));
        assert!(settings.validate().is_err());
    }

    fn error_of(toml: &str) -> String {
        let error = Figment::new()
            .merge(Toml::string(toml))
            .extract::<Settings>()
            .map_err(setting_error)
            .unwrap_err();
        error.to_string()
    }

    #[test]
    fn setting_errors_name_the_setting_as_users_write_it() {
        let message = error_of("[tokens]\nsession_lifetime = \"soon\"");
        assert!(
            message.starts_with("tokens.session_lifetime: \"soon\" is not a duration"),
            "{message}"
        );
        let message = error_of("[tokens]\nsession_lifetme = 3");
        assert!(
            message.starts_with("tokens.session_lifetme: not a setting; expected one of "),
            "{message}"
        );
        assert!(message.contains("session_lifetime, "), "{message}");
        let message = error_of("bind = 1");
        assert_eq!(
            message, "bind: expected a string, found signed int 1",
            "{message}"
        );
        let message = error_of("log_format = \"xml\"");
        assert_eq!(message, "log_format: \"xml\" is not one of text, json");
        for message in [message, error_of("bnd = 1")] {
            assert!(!message.contains("default."), "{message}");
            assert!(!message.contains('`'), "{message}");
        }
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let settings = Settings {
            database_url: SecretString::from("postgres://u:hunter2@db/tessera"),
            bootstrap_password: Some(SecretString::from("swordfish")),
            ..Settings::default()
        };
        let printed = format!("{settings:?}");
        assert!(!printed.contains("hunter2"));
        assert!(!printed.contains("swordfish"));
    }
}
