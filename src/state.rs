//! What every handler shares, built once at start-up and passed as app data.

use std::sync::Arc;

use actix_web::web::Bytes;

use crate::audit::AuditLog;
use crate::configuration::Settings;
use crate::keys::KeyStore;
use crate::metrics::Metrics;
use crate::password::PasswordHasherPool;
use crate::store::Store;
use crate::tokens::{AuthorizationValidation, SessionValidation};

/// The audience of Tessera's own API (introspection, administration).
pub const TESSERA_AUDIENCE: &str = "tessera";

pub struct AppState {
    pub settings: Settings,
    /// `iss` of every token, without a trailing slash.
    pub issuer: String,
    /// `aud` of session tokens.
    pub session_audience: Vec<String>,
    pub store: Arc<dyn Store>,
    /// The current key set: `keys.current()` for one request's use.
    pub keys: KeyStore,
    pub hasher: PasswordHasherPool,
    pub session_validation: SessionValidation,
    pub authorization_validation: AuthorizationValidation,
    /// The discovery document, serialized once.
    pub discovery: Bytes,
    /// The OpenAPI document, serialized once.
    pub openapi: Bytes,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub audit: AuditLog,
    pub metrics: Metrics,
}
