//! What an operator relies on: metrics, request ids, JSON logs, graceful
//! shutdown.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{Backend, PASSWORD, TestDatabase, spawn_app};

#[tokio::test]
async fn metrics_are_served_after_traffic_with_their_names() {
    let app = spawn_app(Backend::Sqlite).await;
    app.add_user("alice", None).await;
    let session = app.session_token("alice").await;
    app.authorization_token(&session, None).await;
    app.login("alice", "wrong").await;

    let response = app.client.get(app.url("/metrics")).send().await.unwrap();

    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    for expected in [
        r#"tessera_http_requests_total{method="POST",route="/session",status="200"} 1"#,
        r#"tessera_http_requests_total{method="POST",route="/authorize",status="200"} 1"#,
        "tessera_http_request_duration_seconds_bucket",
        r#"tessera_logins_total{outcome="success"} 1"#,
        r#"tessera_logins_total{outcome="invalid_credentials"} 1"#,
        r#"tessera_tokens_issued_total{type="auth"} 1"#,
        r#"tessera_tokens_issued_total{type="session"} 1"#,
        "tessera_password_hash_queue_depth 0",
        "tessera_password_hash_wait_seconds_count 2",
        r#"tessera_db_pool_connections{state="idle"}"#,
        "tessera_key_age_seconds{kid=",
    ] {
        assert!(text.contains(expected), "{expected} in\n{text}");
    }
}

/// The metrics are public unless `metrics_bind` moves them: a failed login
/// must read the same there whether the account exists, is disabled or
/// was only mistyped.
#[tokio::test]
async fn metrics_do_not_tell_why_a_login_failed() {
    let app = spawn_app(Backend::Sqlite).await;
    app.add_user("alice", None).await;
    let mallory = app.add_user("mallory", None).await;
    app.store
        .set_active(mallory.id, false, chrono::Utc::now())
        .await
        .unwrap();
    let logins = || async {
        let text = app.metrics().await;
        text.lines()
            .filter(|line| line.starts_with("tessera_logins_total{"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };

    let mut seen = Vec::new();
    for (username, password) in [
        ("nobody", PASSWORD),
        ("alice", "wrong"),
        ("mallory", PASSWORD),
    ] {
        assert_eq!(app.login(username, password).await.status(), 401);
        seen.push(logins().await);
    }

    for (n, lines) in seen.iter().enumerate() {
        assert_eq!(
            lines,
            &[format!(
                r#"tessera_logins_total{{outcome="invalid_credentials"}} {}"#,
                n + 1
            )],
            "after failure {n}"
        );
    }
}

#[tokio::test]
async fn metrics_bind_serves_the_metrics_there_and_only_there() {
    let app = crate::helpers::spawn_app_with(Backend::Sqlite, |s| {
        s.metrics_bind = Some("127.0.0.1:0".into());
    })
    .await;
    let metrics = app.metrics_address.clone().expect("a metrics address");

    let public = app.client.get(app.url("/metrics")).send().await.unwrap();
    let private = app
        .client
        .get(format!("{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    let elsewhere = app
        .client
        .get(format!("{metrics}/session"))
        .send()
        .await
        .unwrap();

    assert_eq!(public.status(), 404);
    assert_eq!(private.status(), 200);
    assert!(
        private
            .text()
            .await
            .unwrap()
            .contains("tessera_password_hash_queue_depth")
    );
    assert_eq!(elsewhere.status(), 404, "nothing but /metrics there");
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_framework_errors_are_json() {
    let app = spawn_app(Backend::Sqlite).await;

    let fresh = app.client.get(app.url("/healthz")).send().await.unwrap();
    let kept = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-42")
        .send()
        .await
        .unwrap();
    let hostile = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "a b\tc")
        .send()
        .await
        .unwrap();

    assert!(uuid::Uuid::parse_str(fresh.headers()["x-request-id"].to_str().unwrap()).is_ok());
    assert_eq!(kept.headers()["x-request-id"], "trace-42");
    assert_ne!(hostile.headers()["x-request-id"], "a b\tc");
    let wrong_method = app
        .client
        .put(app.url("/admin/users"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    let body: serde_json::Value = wrong_method.json().await.unwrap();
    assert_eq!(body["error"], "method_not_allowed");
}

/// The real binary: JSON log lines that parse, and SIGTERM under load that
/// fails no request already in flight and loses no audit entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_finishes_in_flight_requests_and_logs_are_json() {
    let database = TestDatabase::create(Backend::Sqlite).await;
    let keys = tempfile::tempdir().unwrap();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("serve")
        .env("DATABASE_URL", database.url())
        .env("TESSERA_KEYS__DIR", keys.path())
        .env("TESSERA_BIND", format!("127.0.0.1:{port}"))
        .env("TESSERA_BOOTSTRAP_PASSWORD", PASSWORD)
        .env("TESSERA_LOG_FORMAT", "json")
        .env("TESSERA_THROTTLE__ENABLED", "false")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let logs = tokio::spawn(async move {
        let mut text = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut stderr, &mut text)
            .await
            .unwrap();
        String::from_utf8(text).unwrap()
    });
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.get(format!("{base}/readyz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Logins in flight (each holds a password hash for a while)...
    let in_flight: Vec<_> = (0..6)
        .map(|_| {
            let (client, base) = (client.clone(), base.clone());
            tokio::spawn(async move {
                client
                    .post(format!("{base}/session"))
                    .json(&json!({"username": "admin", "password": PASSWORD}))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(15)).await;
    // ...when the signal comes.
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());

    for request in in_flight {
        assert_eq!(
            request.await.unwrap().unwrap(),
            200,
            "an in-flight login failed"
        );
    }
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("the server stops")
        .unwrap();
    assert!(status.success(), "exit status {status}");
    let after = client.get(format!("{base}/healthz")).send().await;
    assert!(after.is_err(), "no longer accepting");

    let logs = logs.await.unwrap();
    let mut answered = 0;
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        let parsed: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if parsed["fields"]["message"] == "Request answered" {
            answered += 1;
            assert!(parsed["span"]["request_id"].is_string(), "{line}");
        }
        assert!(!line.contains(PASSWORD));
        assert!(!line.contains("did not finish in time"), "{line}");
    }
    assert!(answered >= 6, "one line per request: {answered}");

    // The audit writer drained before the process exited.
    let audited = database
        .store()
        .await
        .audit_tail(100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event == "login" && e.outcome == "success")
        .count();
    assert_eq!(audited, 6, "every answered login is in the audit log");
}
