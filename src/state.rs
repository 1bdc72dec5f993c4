//! What every handler shares, built once at start-up and passed as app data.
//! Handlers translate: they read the request, call the session service (or
//! another service) and write the answer.

use std::sync::Arc;

use actix_web::web::Bytes;

use crate::configuration::Settings;
use crate::keys::KeyStore;
use crate::metrics::Metrics;
use crate::oauth::provider::Provider;
use crate::password::PasswordHasherPool;
use crate::sessions::Sessions;
use crate::store::Store;

pub struct AppState {
    pub settings: Settings,
    /// Logging in, issuing, refreshing, logging out, live-session checks.
    pub sessions: Sessions,
    /// The OpenID Connect endpoints' checks and grants.
    pub provider: Provider,
    pub store: Arc<dyn Store>,
    /// The current key set: `keys.current()` for one request's use.
    pub keys: KeyStore,
    /// The bounded pool every password hash goes through.
    pub hasher: PasswordHasherPool,
    /// The discovery document, serialized once.
    pub discovery: Bytes,
    /// The OpenAPI document, serialized once.
    pub openapi: Bytes,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub metrics: Metrics,
}

impl AppState {
    /// `iss` of every token, without a trailing slash.
    pub fn issuer(&self) -> &str {
        &self.sessions.policy().issuer
    }
}
