//! Faults: a database that goes away mid-run, and logs that must never hold
//! a secret.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::helpers::{Backend, PASSWORD, TestDatabase, assert_error, spawn_app_with};

/// A TCP proxy the test can cut and restore, between Tessera and Postgres.
struct Proxy {
    address: SocketAddr,
    open: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let (cut, _) = watch::channel(0u64);
        let (flag, cuts) = (open.clone(), cut.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !flag.load(Ordering::SeqCst) {
                    // Refused: dropped at once.
                    continue;
                }
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self { address, open, cut }
    }

    /// Drops every connection and refuses new ones.
    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_lost_database_answers_503_fast_keeps_serving_keys_and_recovers() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let proxied = database
        .url()
        .replace("127.0.0.1:5432", &proxy.address.to_string());
    let app = spawn_app_with(Backend::Postgres, move |s| {
        s.database_url = proxied.clone().into();
    })
    .await;
    app.add_user("alice", None).await;
    let session = app.session_token("alice").await;
    let sessions_before = database
        .store()
        .await
        .export()
        .await
        .unwrap()
        .sessions
        .len();

    proxy.cut();

    let started = Instant::now();
    let login = app.login("alice", PASSWORD).await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(login.headers()["retry-after"], "2");
    let body = assert_error(login, 503, "unavailable").await;
    assert_eq!(
        body["message"], "the database is unavailable; retry after 2 s",
        "the cause is named, not mistaken for load"
    );
    let authorize = app
        .authorize(&session, Some(json!({"audience": "tessera"})))
        .await;
    assert_error(authorize, 503, "unavailable").await;
    for path in [
        "/.well-known/jwks.json",
        "/.well-known/openid-configuration",
        "/healthz",
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_error(ready, 503, "unavailable").await;

    proxy.restore();

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let response = app.authorize(&session, None).await;
        if response.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "did not recover: {}",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(app.login("alice", PASSWORD).await.status(), 200);
    // The login that failed half-way left no session behind.
    let sessions_after = database
        .store()
        .await
        .export()
        .await
        .unwrap()
        .sessions
        .len();
    assert_eq!(sessions_after, sessions_before + 1);
}

/// Runs the real binary through logins, authorizations and logouts with
/// the most verbose logs, and finds no password and no token in them.
#[tokio::test]
async fn no_password_or_token_ever_reaches_the_logs() {
    let database = TestDatabase::create(Backend::Sqlite).await;
    let keys = tempfile::tempdir().unwrap();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let bootstrap = "bootstrap-Secret-4242";
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("serve")
        .env("DATABASE_URL", database.url())
        .env("TESSERA_KEYS__DIR", keys.path())
        .env("TESSERA_BIND", format!("127.0.0.1:{port}"))
        .env("TESSERA_BOOTSTRAP_PASSWORD", bootstrap)
        .env("RUST_LOG", "trace")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Drain the pipes while the server runs: trace logs fill a pipe fast.
    let drain = |mut pipe: Box<dyn tokio::io::AsyncRead + Unpin + Send>| {
        tokio::spawn(async move {
            let mut text = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut pipe, &mut text)
                .await
                .unwrap();
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut secrets = vec![bootstrap.to_owned(), "wrong-Password-777".to_owned()];
    client
        .post(format!("{base}/session"))
        .json(&json!({"username": "admin", "password": "wrong-Password-777"}))
        .send()
        .await
        .unwrap();
    let login: serde_json::Value = client
        .post(format!("{base}/session"))
        .form(&[("username", "admin"), ("password", bootstrap)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session = login["token"].as_str().unwrap().to_owned();
    let authorized: serde_json::Value = client
        .post(format!("{base}/authorize"))
        .header("Authorization", format!("JWT {session}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = authorized["token"].as_str().unwrap().to_owned();
    client
        .get(format!("{base}/userinfo"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    client
        .delete(format!("{base}/session"))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    client
        .post(format!("{base}/authorize"))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    secrets.push(session.clone());
    secrets.push(token.clone());
    // Signatures alone are secrets too.
    secrets.push(session.rsplit('.').next().unwrap().to_owned());
    secrets.push(token.rsplit('.').next().unwrap().to_owned());

    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout.await.unwrap()),
        String::from_utf8_lossy(&stderr.await.unwrap())
    );
    assert!(logs.contains("Session created"), "the logs were captured");
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "a secret reached the logs");
    }
    let key_file = std::fs::read_dir(keys.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let key = std::fs::read_to_string(key_file).unwrap();
    let key_body: String = key.lines().nth(1).unwrap().to_owned();
    assert!(!logs.contains(&key_body), "key material reached the logs");
}
