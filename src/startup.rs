//! Builds the application: connects and migrates the store, loads the keys,
//! binds the listener (port 0 in tests) and returns the running server with
//! its real port, beside the task that keeps the keys in step with their
//! directory.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{NormalizePath, TrailingSlash, from_fn};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};

use crate::audit::{AuditLog, AuditWriter};
use crate::browser::Browser;
use crate::configuration::Settings;
use crate::domain::Password;
use crate::error::ApiError;
use crate::keys::{Clock, KeyStore, Lifecycle, SystemClock};
use crate::metrics::Metrics;
use crate::password::{self, HashMetrics, HashParams, PasswordHasherPool};
use crate::routes;
use crate::state::AppState;
use crate::store::{self, NewUser, Store};
use crate::telemetry::spawn_blocking_with_tracing;
use crate::tokens::{AuthorizationValidation, SessionValidation};

/// How long a stopping server waits for the audit log to be written.
const AUDIT_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    /// Rescans the key directory and rotates keys; stopped with the server.
    key_maintenance: tokio::task::JoinHandle<()>,
    /// Stores audit entries; drained when the server stops.
    audit_writer: AuditWriter,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// As [`Application::build`], with the key lifecycle on `clock`.
    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let store =
            store::connect(&settings.database_url, settings.database_max_connections).await?;
        store.migrate().await?;
        Self::build_with_parts(settings, store, clock).await
    }

    pub async fn build_with_store(
        settings: Settings,
        store: Arc<dyn Store>,
    ) -> anyhow::Result<Self> {
        Self::build_with_parts(settings, store, Arc::new(SystemClock)).await
    }

    async fn build_with_parts(
        settings: Settings,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let (dir, generate) = (settings.keys.dir.clone(), settings.keys.generate);
        let lifecycle = Lifecycle::from_settings(&settings);
        let keys =
            spawn_blocking_with_tracing(move || KeyStore::open(&dir, lifecycle, clock, generate))
                .await
                .context("loading keys panicked")??;
        let concurrency = settings.hashing_concurrency();
        let (queue, timeout) = (
            settings.hashing.queue,
            Duration::from_millis(settings.hashing.queue_timeout_ms),
        );
        let params = settings.hash_params();
        let metrics = Metrics::new()?;
        let hash_metrics = HashMetrics {
            queue_depth: metrics.hash_queue_depth.clone(),
            wait: metrics.hash_wait.clone(),
        };
        let hasher = spawn_blocking_with_tracing(move || {
            PasswordHasherPool::new(params, concurrency, queue, timeout, hash_metrics)
        })
        .await
        .context("preparing the hasher panicked")??;

        let listener = TcpListener::bind(&settings.bind)
            .with_context(|| format!("binding {}", settings.bind))?;
        let address = listener.local_addr()?;
        let port = address.port();
        let issuer = match &settings.issuer {
            Some(_) => settings.issuer(),
            None => format!("http://{address}"),
        };
        let session_audience = if settings.tokens.session_audience.is_empty() {
            vec![issuer.clone()]
        } else {
            settings.tokens.session_audience.clone()
        };
        let session_validation =
            SessionValidation::new(&issuer, &session_audience, settings.tokens.leeway);
        let authorization_validation =
            AuthorizationValidation::new(&issuer, settings.tokens.leeway);
        let trusted_proxies = settings.throttle.trusted_networks()?;
        let (audit, audit_writer) = AuditLog::start(store.clone());
        let browser = web::Data::new(Browser::new(&settings, &issuer)?);
        let discovery = serde_json::to_vec(&routes::discovery_document(&issuer))?.into();
        let openapi = serde_json::to_vec(&crate::openapi::document())?.into();
        let key_maintenance = tokio::spawn(keys.clone().maintain(settings.keys.rescan_interval));
        let state = web::Data::new(AppState {
            settings,
            issuer,
            session_audience,
            store,
            keys,
            hasher,
            session_validation,
            authorization_validation,
            discovery,
            openapi,
            trusted_proxies,
            audit,
            metrics,
        });
        tracing::info!(
            address = %address,
            issuer = %state.issuer,
            signing_kid = %state.keys.current().signing_kid(),
            "Tessera is listening"
        );

        let workers = state.settings.workers();
        let data = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(routes::observe))
                .wrap(NormalizePath::new(TrailingSlash::Trim))
                .app_data(data.clone())
                .app_data(browser.clone())
                .app_data(web::QueryConfig::default().error_handler(|e, _| {
                    ApiError::InvalidRequest(format!("invalid query string: {e}")).into()
                }))
                .app_data(web::PathConfig::default().error_handler(|e, _| {
                    ApiError::InvalidRequest(format!("invalid path: {e}")).into()
                }))
                .configure(routes::configure)
        })
        .workers(workers)
        .listen(listener)?
        .shutdown_timeout(30)
        .run();
        Ok(Self {
            port,
            server,
            state,
            key_maintenance,
            audit_writer,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.state.store.clone()
    }

    /// The running service's keys.
    pub fn keys(&self) -> KeyStore {
        self.state.keys.clone()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let stopped = self.server.await;
        self.key_maintenance.abort();
        // The workers have dropped their handles; with ours gone too, the
        // writer stores what is queued and finishes.
        drop(self.state);
        self.audit_writer.drain(AUDIT_DRAIN).await;
        stopped
    }
}

/// When the database has no user at all, creates `admin` with the given
/// password or a random one, granted `tessera:admin` at audience `tessera`.
/// Returns the password when it was generated, so it can be shown once.
pub async fn bootstrap_admin(
    store: &dyn Store,
    password: Option<&SecretString>,
    params: HashParams,
) -> anyhow::Result<Option<SecretString>> {
    if store.count_users().await? > 0 {
        return Ok(None);
    }
    let (password, generated) = match password {
        Some(p) => (p.expose_secret().to_owned(), false),
        None => (random_password()?, true),
    };
    let parsed = Password::parse_new(password.clone()).context("TESSERA_BOOTSTRAP_PASSWORD")?;
    let hash = spawn_blocking_with_tracing(move || password::hash(&parsed, params)).await??;
    let user = store
        .create_user(NewUser {
            username: "admin",
            email: None,
            password_hash: &hash,
        })
        .await?;
    store
        .add_grants(user.id, "tessera", &["tessera:admin".to_owned()])
        .await?;
    tracing::info!("Created the bootstrap user admin");
    Ok(generated.then(|| SecretString::from(password)))
}

fn random_password() -> anyhow::Result<String> {
    use base64::Engine;
    let mut bytes = [0u8; 18];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow::anyhow!("no randomness"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}
