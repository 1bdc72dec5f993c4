//! Builds the application: connects and migrates the store, loads the keys,
//! binds the listener (port 0 in tests) and returns the running server with
//! its real port, beside the task that keeps the keys in step with their
//! directory.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::{NormalizePath, TrailingSlash, from_fn};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};

use crate::audit::{AuditLog, AuditWriter};
use crate::browser::Browser;
use crate::clock::{Clock, SystemClock};
use crate::configuration::Settings;
use crate::domain::Password;
use crate::error::ApiError;
use crate::keys::{KeyStore, Lifecycle};
use crate::metrics::Metrics;
use crate::oauth::clients::ClientCache;
use crate::oauth::provider::Provider;
use crate::password::{HashMetrics, PasswordHasherPool};
use crate::routes;
use crate::sessions::{self, Policy, Sessions};
use crate::state::AppState;
use crate::store::{self, NewUser, Store};
use crate::telemetry::spawn_blocking_with_tracing;

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
    audit: AuditLog,
    /// `GET /metrics` on its own address (`metrics_bind`), if set.
    metrics_server: Option<MetricsServer>,
}

struct MetricsServer {
    port: u16,
    server: Server,
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
        let key_clock = clock.clone();
        let keys = spawn_blocking_with_tracing(move || {
            KeyStore::open(&dir, lifecycle, key_clock, generate)
        })
        .await
        .context("loading keys panicked")??;
        // The next rotation's key is published before the service answers,
        // not at some moment after it started.
        match keys.rotate_if_due().await {
            Ok(Some(_)) => {
                keys.rescan().await;
            }
            Ok(None) => {}
            Err(error) => {
                tracing::error!(error = ?error, "Automatic key rotation failed; retrying at the next rescan");
            }
        }
        let concurrency = settings.hashing_concurrency();
        let (queue, timeout) = (settings.hashing.queue, settings.hash_queue_timeout());
        let params = crate::password::HashParams::from_settings(&settings.hashing);
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
            None => {
                let issuer = crate::configuration::default_issuer(address);
                if address.ip().is_unspecified() {
                    tracing::warn!(
                        issuer = %issuer,
                        "No issuer is set and the service listens on every address: tokens name \
                         {issuer}, which only this machine reaches. Set issuer (TESSERA_ISSUER) \
                         to the URL browsers and services use"
                    );
                }
                issuer
            }
        };
        let trusted_proxies = settings.throttle.trusted_networks()?;
        let (audit, audit_writer) = AuditLog::start(store.clone());
        let browser = web::Data::new(Browser::new(&settings, &issuer, clock.clone())?);
        let discovery = serde_json::to_vec(&routes::discovery_document(&issuer))?.into();
        let openapi = serde_json::to_vec(&crate::openapi::document())?.into();
        let key_maintenance = tokio::spawn(keys.clone().maintain(settings.keys.rescan_interval));
        let sessions = Sessions::new(sessions::Parts {
            store: store.clone(),
            keys: keys.clone(),
            hasher: hasher.clone(),
            audit: audit.clone(),
            clock: clock.clone(),
            metrics: metrics.clone(),
            policy: Policy::from_settings(&settings, issuer)?,
        });
        let provider = Provider::new(
            store.clone(),
            keys.clone(),
            audit.clone(),
            metrics.clone(),
            ClientCache::new(settings.oauth.client_cache_ttl, clock.clone()),
        );
        let state = web::Data::new(AppState {
            settings,
            sessions,
            provider,
            store,
            keys,
            hasher,
            discovery,
            openapi,
            trusted_proxies,
            metrics,
        });
        tracing::info!(
            address = %address,
            issuer = %state.issuer(),
            signing_kid = %state.keys.current().signing_kid(),
            "Tessera is listening"
        );

        let metrics_server = match &state.settings.metrics_bind {
            Some(bind) => Some(MetricsServer::bind(bind, state.clone())?),
            None => None,
        };
        let metrics_on_main = metrics_server.is_none();
        let workers = state.settings.workers();
        let max_connections = state.settings.http.max_connections_per_worker(workers);
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
                .configure(|cfg| {
                    if metrics_on_main {
                        routes::configure_metrics(cfg);
                    }
                })
                .configure(routes::configure)
        })
        .workers(workers)
        .max_connections(max_connections)
        .listen(listener)?
        .shutdown_timeout(30)
        .run();
        Ok(Self {
            port,
            server,
            state,
            key_maintenance,
            audit_writer,
            audit,
            metrics_server,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of `metrics_bind`, when metrics are served apart.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_server.as_ref().map(|m| m.port)
    }

    pub fn issuer(&self) -> &str {
        self.state.issuer()
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.state.store.clone()
    }

    /// The running service's password hashing pool.
    pub fn hasher(&self) -> &PasswordHasherPool {
        &self.state.hasher
    }

    /// The running service's audit log. A handle keeps its writer running:
    /// the server's shutdown waits for it (at most a few seconds).
    pub fn audit(&self) -> AuditLog {
        self.audit.clone()
    }

    /// The running service's keys.
    pub fn keys(&self) -> KeyStore {
        self.state.keys.clone()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let metrics = self.metrics_server.map(|m| {
            let handle = m.server.handle();
            (handle, tokio::spawn(m.server))
        });
        let stopped = self.server.await;
        if let Some((handle, task)) = metrics {
            handle.stop(true).await;
            let _ = task.await;
        }
        self.key_maintenance.abort();
        // The workers have dropped their handles; with ours gone too, the
        // writer stores what is queued and finishes.
        drop(self.state);
        drop(self.audit);
        self.audit_writer.drain(AUDIT_DRAIN).await;
        stopped
    }
}

impl MetricsServer {
    /// One worker serving `GET /metrics` alone on `bind`.
    fn bind(bind: &str, state: web::Data<AppState>) -> anyhow::Result<Self> {
        let listener =
            TcpListener::bind(bind).with_context(|| format!("binding metrics_bind {bind}"))?;
        let port = listener.local_addr()?.port();
        tracing::info!(address = %listener.local_addr()?, "Serving /metrics");
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .configure(routes::configure_metrics)
                .default_service(web::to(|| async {
                    Err::<actix_web::HttpResponse, _>(ApiError::NotFound(
                        "only /metrics is served here".into(),
                    ))
                }))
        })
        .workers(1)
        .listen(listener)?
        .shutdown_timeout(5)
        .run();
        Ok(Self { port, server })
    }
}

/// When the database has no user at all, creates `admin` with the given
/// password or a random one, granted `tessera:admin` at audience `tessera`.
/// Returns the password when it was generated, so it can be shown once.
pub async fn bootstrap_admin(
    store: &dyn Store,
    password: Option<&SecretString>,
    hasher: &PasswordHasherPool,
) -> anyhow::Result<Option<SecretString>> {
    if store.count_users().await? > 0 {
        return Ok(None);
    }
    let (password, generated) = match password {
        Some(p) => (p.expose_secret().to_owned(), false),
        None => (random_password()?, true),
    };
    let parsed = Password::parse_new(password.clone()).context("TESSERA_BOOTSTRAP_PASSWORD")?;
    let hash = hasher.hash(parsed).await?;
    let user = store
        .create_user(
            NewUser {
                username: "admin",
                email: None,
                password_hash: &hash,
            },
            SystemClock.now(),
        )
        .await?;
    store
        .add_grants(
            user.id,
            "tessera",
            &["tessera:admin".to_owned()],
            SystemClock.now(),
        )
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
