//! The server under test: a release `tessera` binary started as a process of
//! its own (so its peak RSS is its own and the load generator does not share
//! its allocator), on a database made for the run and a temporary key
//! directory; and the users, grants and tokens the load needs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use hyper::{Method, StatusCode};
use sqlx::{Connection as _, Executor, PgConnection};
use tempfile::TempDir;
use tessera::domain::Password;
use tessera::password::HashParams;
use tessera::store::NewUser;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::load::{Connection, Template};
use crate::machine::PeakRss;

/// The password of every benchmark user.
pub const PASSWORD: &str = "bench-correct-horse-battery";
/// The audience tokens are asked for, and the scopes held there.
pub const AUDIENCE: &str = "tessera";
const SCOPES: &[&str] = &["bench:read", "bench:write"];
/// The scope `/introspect` requires of its caller.
const INTROSPECT_SCOPE: &str = tessera::routes::INTROSPECT_SCOPE;
/// Who calls `/introspect`.
pub const INTROSPECTOR: &str = "bench-introspector";
/// The OAuth client the token endpoint is driven as.
pub const CLIENT_ID: &str = "bench";
/// Its redirect URI; nothing listens there, the codes are read off the
/// redirects.
pub const REDIRECT_URI: &str = "http://127.0.0.1:9/cb";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Postgres => "postgres",
            Self::Sqlite => "sqlite",
        })
    }
}

/// A database made for this run: a fresh Postgres database, or a SQLite
/// file in a temporary directory. [`Database::remove`] drops it.
pub struct Database {
    pub url: String,
    postgres: Option<(String, String)>,
    _dir: Option<TempDir>,
}

impl Database {
    pub async fn create(backend: Backend, postgres_server: &str) -> anyhow::Result<Self> {
        match backend {
            Backend::Postgres => {
                let mut suffix = [0u8; 6];
                aws_lc_rs::rand::fill(&mut suffix).map_err(|_| anyhow::anyhow!("no randomness"))?;
                let name = format!(
                    "tessera_bench_{}",
                    suffix
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>()
                );
                let mut admin = PgConnection::connect(&database_url(postgres_server, "postgres"))
                    .await
                    .with_context(|| format!("connecting to Postgres at {postgres_server}"))?;
                admin
                    .execute(sqlx::AssertSqlSafe(format!(r#"create database "{name}""#)))
                    .await
                    .with_context(|| format!("creating the database {name}"))?;
                Ok(Self {
                    url: database_url(postgres_server, &name),
                    postgres: Some((postgres_server.to_owned(), name)),
                    _dir: None,
                })
            }
            Backend::Sqlite => {
                let dir = tempfile::tempdir().context("a directory for the SQLite file")?;
                Ok(Self {
                    url: format!("sqlite://{}", dir.path().join("tessera.db").display()),
                    postgres: None,
                    _dir: Some(dir),
                })
            }
        }
    }

    /// The Postgres database's name; `None` for SQLite.
    pub fn postgres_name(&self) -> Option<&str> {
        self.postgres.as_ref().map(|(_, name)| name.as_str())
    }

    pub async fn remove(self) -> anyhow::Result<()> {
        if let Some((server, name)) = &self.postgres {
            let mut admin = PgConnection::connect(&database_url(server, "postgres")).await?;
            admin
                .execute(sqlx::AssertSqlSafe(format!(
                    r#"drop database if exists "{name}" with (force)"#
                )))
                .await
                .with_context(|| format!("dropping the database {name}"))?;
        }
        Ok(())
    }
}

/// The URL of database `name` on `server`, keeping the server URL's query
/// (`postgres://host:5432?sslmode=disable` → `postgres://host:5432/NAME?sslmode=disable`).
fn database_url(server: &str, name: &str) -> String {
    match server.split_once('?') {
        Some((base, query)) => format!("{}/{name}?{query}", base.trim_end_matches('/')),
        None => format!("{}/{name}", server.trim_end_matches('/')),
    }
}

/// How to start the server: binary, database, key directory; each start
/// gets a fresh port.
pub struct Launch {
    pub binary: PathBuf,
    pub database_url: String,
    pub keys: TempDir,
    /// Working directory (so no stray `tessera.toml` is read) and logs.
    pub workdir: TempDir,
    /// Set after the benchmark's own settings, so it can override them.
    pub env: Vec<(String, String)>,
}

impl Launch {
    pub fn new(
        binary: &Path,
        database_url: &str,
        env: &[(String, String)],
    ) -> anyhow::Result<Self> {
        Ok(Self {
            binary: binary.to_owned(),
            database_url: database_url.to_owned(),
            keys: tempfile::tempdir().context("a key directory")?,
            workdir: tempfile::tempdir().context("a working directory")?,
            env: env.to_vec(),
        })
    }

    pub fn log_path(&self) -> PathBuf {
        self.workdir.path().join("tessera.log")
    }

    /// Starts the server and waits until `/readyz` answers 200; returns it
    /// with the time from spawning to ready.
    pub async fn start(&self) -> anyhow::Result<(Server, Duration)> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let spawned = Instant::now();
        let mut child = Command::new(&self.binary)
            .arg("serve")
            .current_dir(self.workdir.path())
            .env_clear()
            .env("TESSERA_BIND", "127.0.0.1:0")
            .env("DATABASE_URL", &self.database_url)
            .env("TESSERA_KEYS__DIR", self.keys.path())
            .env("TESSERA_BOOTSTRAP_PASSWORD", PASSWORD)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        let pid = child.id().context("the server has no pid")?;
        let stdout = child.stdout.take().context("the server's output")?;
        let mut lines = BufReader::new(stdout).lines();
        let issuer = loop {
            let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
                .await
                .context("the server did not say where it serves within 60 s")??;
            match line {
                Some(line) => {
                    if let Some(url) = line.strip_prefix("Tessera is serving at ") {
                        break url.trim().to_owned();
                    }
                }
                None => bail!(
                    "the server stopped before serving; its log is {}:\n{}",
                    self.log_path().display(),
                    tail(&self.log_path())
                ),
            }
        };
        // Nothing more is printed, but the pipe must stay open.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let address: SocketAddr = issuer
            .strip_prefix("http://")
            .and_then(|a| a.parse().ok())
            .with_context(|| format!("an issuer that is not http://ADDRESS: {issuer}"))?;
        let readyz = Template::new(Method::GET, address, "/readyz")?;
        let deadline = spawned + Duration::from_secs(60);
        let mut connection = None;
        loop {
            if connection.is_none() {
                connection = Connection::open(address).await.ok();
            }
            if let Some(conn) = connection.as_mut() {
                match conn.send(readyz.request()).await {
                    Ok((StatusCode::OK, _)) => break,
                    Ok(_) => {}
                    Err(_) => connection = None,
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "the server was not ready within 60 s; see {}",
                    self.log_path().display()
                );
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let ready = spawned.elapsed();
        Ok((
            Server {
                child,
                pid,
                peak_rss: PeakRss::new(pid),
                address,
                issuer,
            },
            ready,
        ))
    }
}

/// The last lines of a log file, for an error message.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

pub struct Server {
    child: Child,
    pub pid: u32,
    /// The server's peak RSS, over each measurement and overall.
    pub peak_rss: PeakRss,
    pub address: SocketAddr,
    pub issuer: String,
}

impl Server {
    /// Asks the server to stop (SIGTERM), and kills it if it has not within
    /// ten seconds.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let pid = libc::pid_t::try_from(self.pid)?;
        // SAFETY: kill has no memory preconditions; the pid is our child's,
        // not yet reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            self.child.kill().await?;
        }
        Ok(())
    }
}

/// Logs `username` in at the server at `address`; returns the session token.
pub async fn log_in(
    address: SocketAddr,
    conn: &mut Connection,
    username: &str,
) -> anyhow::Result<String> {
    let body = serde_json::json!({"username": username, "password": PASSWORD}).to_string();
    let request = Template::new(Method::POST, address, "/session")?.json(body)?;
    token_of(conn.send(request.request()).await?, "/session")
}

/// An authorization token at [`AUDIENCE`] for a session token.
pub async fn authorize(
    address: SocketAddr,
    conn: &mut Connection,
    session: &str,
) -> anyhow::Result<String> {
    let request = Template::new(Method::POST, address, "/authorize")?
        .bearer(session)?
        .json(format!(r#"{{"audience":"{AUDIENCE}"}}"#))?;
    token_of(conn.send(request.request()).await?, "/authorize")
}

fn token_of((status, body): (StatusCode, Bytes), what: &str) -> anyhow::Result<String> {
    if status != StatusCode::OK {
        bail!(
            "{what} answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let value: serde_json::Value = serde_json::from_slice(&body)?;
    value["token"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("{what} answered no token"))
}

/// Creates `count` users named `bench-user-N` holding [`SCOPES`] at
/// [`AUDIENCE`], and [`INTROSPECTOR`] holding the introspection scope,
/// straight in the store (as `tessera user add` and `tessera user grant`
/// would). Returns the user names.
pub async fn create_users(database_url: &str, count: usize) -> anyhow::Result<Vec<String>> {
    let store = tessera::store::connect(&database_url.to_owned().into(), 2).await?;
    store.migrate().await?;
    // One hash for every user: same password, same cost to verify.
    let hash = tokio::task::spawn_blocking(|| {
        let password = Password::parse(PASSWORD.into()).map_err(|e| anyhow::anyhow!("{e}"))?;
        tessera::password::hash(&password, HashParams::default())
    })
    .await??;
    let scopes: Vec<String> = SCOPES.iter().map(|s| (*s).to_owned()).collect();
    let mut names = Vec::with_capacity(count);
    for n in 0..count {
        let name = format!("bench-user-{n}");
        let user = store
            .create_user(
                NewUser {
                    username: &name,
                    email: Some(&format!("{name}@bench.invalid")),
                    password_hash: &hash,
                },
                chrono::Utc::now(),
            )
            .await?;
        store
            .add_grants(user.id, AUDIENCE, &scopes, chrono::Utc::now())
            .await?;
        names.push(name);
    }
    let introspector = store
        .create_user(
            NewUser {
                username: INTROSPECTOR,
                email: None,
                password_hash: &hash,
            },
            chrono::Utc::now(),
        )
        .await?;
    store
        .add_grants(
            introspector.id,
            AUDIENCE,
            &[INTROSPECT_SCOPE.to_owned()],
            chrono::Utc::now(),
        )
        .await?;
    Ok(names)
}

/// What the load is driven with: the users' names and the OAuth client's
/// secret.
pub struct Seeded {
    pub users: Vec<String>,
    pub client_secret: String,
}

/// The users and the OAuth client, straight in the store.
pub async fn seed(database_url: &str, users: usize) -> anyhow::Result<Seeded> {
    Ok(Seeded {
        users: create_users(database_url, users).await?,
        client_secret: register_client(database_url).await?,
    })
}

/// Registers the confidential OAuth client [`CLIENT_ID`] at [`AUDIENCE`]
/// with [`SCOPES`] and every grant type, straight in the store (as
/// `tessera clients add` would). Returns its secret.
pub async fn register_client(database_url: &str) -> anyhow::Result<String> {
    use secrecy::ExposeSecret;
    use tessera::oauth::clients::{ClientSpec, GRANT_TYPES, OAuthClients};
    let store = tessera::store::connect(&database_url.to_owned().into(), 2).await?;
    let allowed = [AUDIENCE.to_owned()];
    let registered = OAuthClients::new(
        store.as_ref(),
        &allowed,
        &tessera::clock::SystemClock,
        "bench",
    )
    .register(ClientSpec {
        id: CLIENT_ID.into(),
        redirect_uris: vec![REDIRECT_URI.into()],
        audience: AUDIENCE.into(),
        scopes: SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        grant_types: GRANT_TYPES.iter().map(|g| (*g).to_owned()).collect(),
        ..ClientSpec::default()
    })
    .await
    .map_err(|e| anyhow::anyhow!("registering the benchmark client: {e}"))?;
    registered
        .secret
        .map(|secret| secret.expose_secret().to_owned())
        .context("a confidential client has a secret")
}
