use std::path::PathBuf;
use std::sync::Arc;

use reqwest::{Client, Response};
use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection};
use tempfile::TempDir;
use uuid::Uuid;

use tessera::clock::{Clock, ManualClock, SystemClock};
use tessera::configuration::Settings;
use tessera::domain::Password;
use tessera::keys::{KeySet, KeyStore};
use tessera::startup::Application;
use tessera::store::{NewUser, Store, User};

/// The server where each test creates its own database.
fn server_url() -> String {
    std::env::var("TESSERA_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub const PASSWORD: &str = "correct horse battery";

/// The storage backends every end-to-end test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// Runs each named `async fn(Backend)` test once per backend, as
/// `postgres::NAME` and `sqlite::NAME`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
    };
}

/// A fresh database, dropped (Postgres) or deleted (SQLite) when the value
/// is.
pub enum TestDatabase {
    Postgres { name: String },
    Sqlite { dir: TempDir },
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Postgres => {
                let name = format!("tessera_test_{}", Uuid::new_v4().simple());
                let mut conn = PgConnection::connect(&format!("{}/postgres", server_url()))
                    .await
                    .expect("Postgres must run on 127.0.0.1:5432 (see README)");
                conn.execute(sqlx::AssertSqlSafe(format!(r#"create database "{name}""#)))
                    .await
                    .expect("create the test database");
                Self::Postgres { name }
            }
            Backend::Sqlite => Self::Sqlite {
                dir: tempfile::tempdir().expect("a database directory"),
            },
        }
    }

    pub fn url(&self) -> String {
        match self {
            Self::Postgres { name } => format!("{}/{}", server_url(), name),
            Self::Sqlite { dir } => format!("sqlite://{}", dir.path().join("tessera.db").display()),
        }
    }

    /// Runs `statement` with `$1` bound to `id`, as this backend stores ids.
    pub async fn execute_with_id(&self, statement: &str, id: uuid::Uuid) {
        use sqlx::SqliteConnection;
        match self {
            Self::Postgres { .. } => {
                let mut conn = PgConnection::connect(&self.url()).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
                    .bind(id)
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            Self::Sqlite { .. } => {
                let mut conn = SqliteConnection::connect(&self.url()).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
                    .bind(id.to_string())
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
        }
    }

    /// A migrated store on this database.
    pub async fn store(&self) -> Arc<dyn Store> {
        let store = tessera::store::connect(&self.url().into(), 4)
            .await
            .expect("connect");
        store.migrate().await.expect("migrate");
        store
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Self::Postgres { name } = self else {
            return;
        };
        let statement = format!(r#"drop database if exists "{name}" with (force)"#);
        let url = format!("{}/postgres", server_url());
        // The test's runtime may be shutting down: drop from a thread of our own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect(&url).await {
                    let _ = conn.execute(sqlx::AssertSqlSafe(statement)).await;
                }
            });
        })
        .join();
    }
}

pub struct TestApp {
    pub address: String,
    /// Where `/metrics` is served when `metrics_bind` is set.
    pub metrics_address: Option<String>,
    pub issuer: String,
    pub client: Client,
    pub store: Arc<dyn Store>,
    pub keys_dir: PathBuf,
    /// The running service's keys: rescan or rotate without waiting.
    pub key_store: KeyStore,
    /// The running service's audit log, to flush before reading it.
    pub audit: tessera::audit::AuditLog,
    // Dropped last: the key directory and the database outlive the server.
    _keys: Arc<TempDir>,
    pub database: Arc<TestDatabase>,
    configure: Arc<dyn Fn(&mut Settings) + Send + Sync>,
    clock: Option<Arc<ManualClock>>,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// As [`spawn_app_with`], with the key lifecycle on `clock` (kept by
/// restarts), so that lifecycle tests move time instead of sleeping.
pub async fn spawn_app_with_clock(
    backend: Backend,
    clock: Arc<ManualClock>,
    configure: impl Fn(&mut Settings) + Send + Sync + 'static,
) -> TestApp {
    let database = Arc::new(TestDatabase::create(backend).await);
    let keys = Arc::new(tempfile::tempdir().expect("a key directory"));
    start_with_clock(database, keys, Arc::new(configure), None, Some(clock)).await
}

/// Starts the application on a fresh database and key directory, with
/// `configure` applied to the default test settings.
pub async fn spawn_app_with(
    backend: Backend,
    configure: impl Fn(&mut Settings) + Send + Sync + 'static,
) -> TestApp {
    let database = Arc::new(TestDatabase::create(backend).await);
    let keys = Arc::new(tempfile::tempdir().expect("a key directory"));
    start(database, keys, Arc::new(configure), None).await
}

async fn start(
    database: Arc<TestDatabase>,
    keys: Arc<TempDir>,
    configure: Arc<dyn Fn(&mut Settings) + Send + Sync>,
    issuer: Option<String>,
) -> TestApp {
    start_with_clock(database, keys, configure, issuer, None).await
}

async fn start_with_clock(
    database: Arc<TestDatabase>,
    keys: Arc<TempDir>,
    configure: Arc<dyn Fn(&mut Settings) + Send + Sync>,
    issuer: Option<String>,
    clock: Option<Arc<ManualClock>>,
) -> TestApp {
    // `TEST_LOG=1` shows the application's logs.
    if std::env::var_os("TEST_LOG").is_some() {
        tessera::telemetry::init(tessera::configuration::LogFormat::Text);
    }
    let mut settings = Settings {
        bind: "127.0.0.1:0".into(),
        database_url: database.url().into(),
        database_max_connections: 4,
        ..Settings::default()
    };
    settings.keys.dir = keys.path().to_path_buf();
    settings.tokens.allowed_audiences =
        vec!["tessera".into(), "notebooks".into(), "billing".into()];
    settings.issuer = issuer;
    configure(&mut settings);
    settings.validate().expect("valid test settings");
    let lifecycle_clock: Arc<dyn Clock> = match &clock {
        Some(clock) => clock.clone(),
        None => Arc::new(SystemClock),
    };
    let application = Application::build_with_clock(settings, lifecycle_clock)
        .await
        .expect("the application starts");
    let address = format!("http://127.0.0.1:{}", application.port());
    let metrics_address = application
        .metrics_port()
        .map(|port| format!("http://127.0.0.1:{port}"));
    let issuer = application.issuer().to_owned();
    let store = application.store();
    let key_store = application.keys();
    let audit = application.audit();
    tokio::spawn(application.run_until_stopped());
    TestApp {
        address,
        metrics_address,
        issuer,
        client: Client::new(),
        store,
        keys_dir: keys.path().to_path_buf(),
        key_store,
        audit,
        _keys: keys,
        database,
        configure,
        clock,
    }
}

impl TestApp {
    /// An administrator's authorization token (audience `tessera`, scope
    /// `tessera:admin`), of a user `root` made for it.
    pub async fn admin_token(&self) -> String {
        let admin = self.add_user("root", None).await;
        self.grant(&admin, "tessera", &["tessera:admin"]).await;
        let session = self.session_token("root").await;
        self.authorization_token(&session, Some(json!({"audience": "tessera"})))
            .await
    }

    /// A request with a bearer token and, when given, a JSON body.
    pub async fn call(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Response {
        let mut request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    /// The audit log's events starting with `prefix`, oldest first, each
    /// with its detail, once what was recorded is stored.
    pub async fn audit_events(&self, prefix: &str) -> Vec<String> {
        self.audit.flush().await;
        self.store
            .audit_tail(1000)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.event.starts_with(prefix))
            .map(|e| format!("{} {}", e.event, e.detail))
            .collect()
    }

    /// A second server with the same issuer, database and key directory, as
    /// after a restart (keys are read at start-up).
    pub async fn restart(&self) -> TestApp {
        start_with_clock(
            self.database.clone(),
            self._keys.clone(),
            self.configure.clone(),
            Some(self.issuer.clone()),
            self.clock.clone(),
        )
        .await
    }

    /// The same issuer and key directory on another database, as after
    /// moving an installation.
    pub async fn restart_on(&self, database: TestDatabase) -> TestApp {
        start(
            Arc::new(database),
            self._keys.clone(),
            self.configure.clone(),
            Some(self.issuer.clone()),
        )
        .await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// The keys as the server loaded them, to sign crafted tokens.
    pub fn keys(&self) -> KeySet {
        KeySet::load(&self.keys_dir).expect("the test keys load")
    }

    /// The kid that signs the server's tokens now.
    pub fn signing_kid(&self) -> String {
        self.key_store.current().signing_kid().to_owned()
    }

    pub async fn add_user(&self, username: &str, email: Option<&str>) -> User {
        let password = Password::parse(PASSWORD.into()).unwrap();
        let hash = tokio::task::spawn_blocking(move || {
            tessera::password::hash(&password, Default::default())
        })
        .await
        .unwrap()
        .unwrap();
        self.store
            .create_user(
                NewUser {
                    username,
                    email,
                    password_hash: &hash,
                },
                SystemClock.now(),
            )
            .await
            .expect("create a test user")
    }

    pub async fn grant(&self, user: &User, audience: &str, scopes: &[&str]) {
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        self.store
            .add_grants(user.id, audience, &scopes, SystemClock.now())
            .await
            .unwrap();
    }

    /// The Prometheus text of `GET /metrics`.
    pub async fn metrics(&self) -> String {
        let response = self.client.get(self.url("/metrics")).send().await;
        response.unwrap().text().await.unwrap()
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.client
            .post(self.url("/session"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .expect("POST /session")
    }

    /// Logs in and returns the session token.
    pub async fn session_token(&self, username: &str) -> String {
        let response = self.login(username, PASSWORD).await;
        assert_eq!(response.status(), 200, "login of {username}");
        let body: Value = response.json().await.unwrap();
        body["token"].as_str().unwrap().to_owned()
    }

    pub async fn authorize(&self, token: &str, body: Option<Value>) -> Response {
        let mut request = self.client.post(self.url("/authorize")).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("POST /authorize")
    }

    /// Authorizes and returns the authorization token.
    pub async fn authorization_token(&self, session_token: &str, body: Option<Value>) -> String {
        let response = self.authorize(session_token, body).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["token"].as_str().unwrap().to_owned()
    }

    pub async fn jwks(&self) -> jsonwebtoken::jwk::JwkSet {
        self.client
            .get(self.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// Asserts the error shape and code, and returns the body.
pub async fn assert_error(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let body: Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["error"], code, "error code in {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "message in {body}"
    );
    body
}

/// The claims of a token, verified by a standard JWT library with nothing but
/// the published JWKS.
pub fn verify_with_jwks(
    token: &str,
    jwks: &jsonwebtoken::jwk::JwkSet,
    issuer: &str,
    audience: &str,
) -> Result<Value, jsonwebtoken::errors::Error> {
    verify_with_jwks_requiring(token, jwks, issuer, audience, &["exp", "iss", "aud", "sub"])
}

/// As [`verify_with_jwks`], requiring only the `required` registered claims
/// (session tokens have no `exp` by default).
pub fn verify_with_jwks_requiring(
    token: &str,
    jwks: &jsonwebtoken::jwk::JwkSet,
    issuer: &str,
    audience: &str,
    required: &[&str],
) -> Result<Value, jsonwebtoken::errors::Error> {
    let header = jsonwebtoken::decode_header(token)?;
    let kid = header.kid.expect("a kid header");
    let jwk = jwks.find(&kid).expect("the kid is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk)?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.leeway = 0;
    validation.set_required_spec_claims(required);
    jsonwebtoken::decode::<Value>(token, &key, &validation).map(|data| data.claims)
}
