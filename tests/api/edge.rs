//! The HTTP edge under hostile clients: metric labels they cannot grow,
//! bodies that must arrive in time, a cap on open connections, and what
//! each content type and method gets.
//!
//! The storage backend plays no part here: these run on SQLite only.

use std::time::Duration;

use reqwest::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Backend, PASSWORD, TestApp, assert_error, spawn_app, spawn_app_with};

/// The `host:port` of the app, for raw connections.
fn socket_address(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_owned()
}

async fn metrics(app: &TestApp) -> String {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// The series of the HTTP request metrics.
fn request_series(text: &str) -> usize {
    text.lines()
        .filter(|line| line.starts_with("tessera_http_request"))
        .count()
}

/// This process's resident memory, in KiB: the server runs in it.
fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

async fn send(app: &TestApp, method: &str, path: &str) {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let response = app
        .client
        .request(method, app.url(path))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());
}

#[tokio::test]
async fn client_chosen_methods_and_paths_add_no_metric_series() {
    let app = spawn_app(Backend::Sqlite).await;
    // One of each kind first, so that every series the flood can touch
    // exists before counting.
    send(&app, "X0000000", "/healthz").await;
    send(&app, "GET", "/nowhere/0").await;
    send(&app, "GET", "/keys/0.pem").await;
    metrics(&app).await;
    let before = metrics(&app).await;
    let resident_before = resident_kib();

    for n in 1..=1000 {
        send(&app, &format!("X{n:07}"), "/healthz").await;
        send(&app, "GET", &format!("/nowhere/{n}")).await;
        send(&app, "GET", &format!("/keys/{n}.pem")).await;
    }
    for n in 0..300 {
        send(&app, &format!("X{n:07}{}", "Y".repeat(8000)), "/healthz").await;
    }
    let after = metrics(&app).await;

    assert_eq!(request_series(&after), request_series(&before));
    assert!(
        after.len() < before.len() + 4096,
        "/metrics grew from {} to {} bytes",
        before.len(),
        after.len()
    );
    assert!(!after.contains("X0000001"), "no raw method is a label");
    assert!(!after.contains("/nowhere/1"), "no raw path is a label");
    // Generous: only the allocator's own slack; the old fault took 30 MiB
    // for far fewer long methods than this.
    let grown = resident_kib().saturating_sub(resident_before);
    assert!(grown < 32 * 1024, "resident memory grew by {grown} KiB");
}

/// Reads one HTTP/1.1 response from `stream`: its status, its head, and its
/// body (by `Content-Length`).
async fn read_response(stream: &mut TcpStream) -> (u16, String, String) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let read = stream.read(&mut chunk).await.unwrap();
        assert!(read > 0, "the connection closed before a response");
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |value| value.trim().parse().unwrap());
    while buffer.len() < head_end + length {
        let read = stream.read(&mut chunk).await.unwrap();
        assert!(read > 0, "the connection closed inside a body");
        buffer.extend_from_slice(&chunk[..read]);
    }
    let status = head[9..12].parse().unwrap();
    let body = String::from_utf8_lossy(&buffer[head_end..head_end + length]).into_owned();
    (status, head, body)
}

/// A body announced at 16,000 bytes and sent one byte every 50 ms: the
/// server answers and closes once the body timeout has passed, long before
/// the body would be complete (13 minutes).
async fn trickle(app: &TestApp, path: &str) -> (u16, String, String) {
    let stream = TcpStream::connect(socket_address(app)).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: tessera\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 16000\r\n\r\n"
    );
    writer.write_all(head.as_bytes()).await.unwrap();
    let slow_client = tokio::spawn(async move {
        for _ in 0..16_000 {
            if writer.write_all(b"a").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    // Until the server closes: a reset after the answer counts as closed.
    let read_all = async {
        let mut answer = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(read @ 1..) = reader.read(&mut chunk).await {
            answer.extend_from_slice(&chunk[..read]);
        }
        answer
    };
    let answer = tokio::time::timeout(Duration::from_secs(20), read_all).await;
    slow_client.abort();
    let answer = answer.unwrap_or_else(|_| panic!("{path}: still open after 20 s"));
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").expect("a response");
    let status = head[9..12].parse().unwrap();
    (status, head.to_lowercase(), body.to_owned())
}

#[tokio::test]
async fn a_body_that_trickles_in_is_cut_off_and_its_connection_closed() {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.http.body_timeout = std::time::Duration::from_secs(1);
    })
    .await;

    let (status, head, body) = trickle(&app, "/session").await;
    assert_eq!(status, 408, "{head}");
    assert!(head.contains("connection: close"), "{head}");
    assert!(body.contains(r#""error":"request_timeout""#), "{body}");

    // The login page reads its form through the same reader.
    let (status, head, _) = trickle(&app, "/login").await;
    assert!((400..500).contains(&status), "{head}");

    // The others are served meanwhile and after.
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

const GET_HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: tessera\r\n\r\n";

#[tokio::test]
async fn past_the_connection_cap_new_connections_wait_and_served_ones_go_on() {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.workers = Some(1);
        settings.http.max_connections = 2;
    })
    .await;
    let address = socket_address(&app);
    // Two connections, each served once and kept alive: the cap is reached.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        stream.write_all(GET_HEALTHZ).await.unwrap();
        assert_eq!(read_response(&mut stream).await.0, 200);
        held.push(stream);
    }

    // The kernel takes a third into the backlog; Tessera does not serve it.
    let mut waiting = TcpStream::connect(&address).await.unwrap();
    waiting.write_all(GET_HEALTHZ).await.unwrap();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), waiting.read(&mut byte)).await;
    assert!(early.is_err(), "a connection past the cap was served");

    // The held ones are still served; when one closes, the third goes in.
    for stream in &mut held {
        stream.write_all(GET_HEALTHZ).await.unwrap();
        assert_eq!(read_response(stream).await.0, 200);
    }
    drop(held.remove(0));
    let served = tokio::time::timeout(Duration::from_secs(10), read_response(&mut waiting))
        .await
        .expect("the waiting connection is served once a slot is free");
    assert_eq!(served.0, 200);
}

/// Every resource of the route table, made concrete, with the methods its
/// routes answer.
const RESOURCES: &[(&str, &[&str])] = &[
    ("/session", &["GET", "POST", "DELETE"]),
    ("/session/refresh", &["POST"]),
    ("/authorize", &["POST"]),
    ("/.well-known/jwks.json", &["GET"]),
    ("/.well-known/openid-configuration", &["GET"]),
    ("/.well-known/oauth-authorization-server", &["GET"]),
    ("/keys/nokey.pem", &["GET"]),
    ("/revocations", &["GET"]),
    ("/introspect", &["POST"]),
    ("/userinfo", &["GET", "POST"]),
    ("/oauth2/authorize", &["GET", "POST"]),
    ("/oauth2/token", &["POST"]),
    ("/oauth2/revoke", &["POST"]),
    ("/oauth2/logout", &["GET", "POST"]),
    ("/admin/users", &["GET", "POST"]),
    ("/admin/users/alice", &["GET", "DELETE"]),
    ("/admin/users/alice/disable", &["POST"]),
    ("/admin/users/alice/enable", &["POST"]),
    ("/admin/users/alice/password", &["PUT"]),
    ("/admin/users/alice/grants", &["GET", "POST", "DELETE"]),
    ("/admin/users/alice/sessions", &["GET", "DELETE"]),
    (
        "/admin/users/alice/sessions/00000000-0000-0000-0000-000000000000",
        &["DELETE"],
    ),
    ("/admin/keys", &["GET"]),
    ("/metrics", &["GET"]),
    ("/login", &["GET", "POST"]),
    ("/logout", &["GET", "POST"]),
    ("/static/tessera.css", &["GET"]),
    ("/static/brand.css", &["GET"]),
    ("/openapi.json", &["GET"]),
    ("/healthz", &["GET"]),
    ("/readyz", &["GET"]),
];

#[tokio::test]
async fn head_answers_wherever_get_does_with_the_same_status_and_headers_and_no_body() {
    let app = spawn_app(Backend::Sqlite).await;
    for (path, methods) in RESOURCES {
        if !methods.contains(&"GET") {
            continue;
        }
        let get = app.client.get(app.url(path)).send().await.unwrap();
        let head = app.client.head(app.url(path)).send().await.unwrap();
        assert_eq!(head.status(), get.status(), "HEAD {path}");
        for name in ["content-type", "content-length", "cache-control"] {
            if *path == "/metrics" && name == "content-length" {
                continue; // counts this very request
            }
            assert_eq!(
                head.headers().get(name),
                get.headers().get(name),
                "{name} of HEAD {path}"
            );
        }
        assert!(head.bytes().await.unwrap().is_empty(), "HEAD {path}");
    }
}

/// The methods of an `Allow` header.
fn allowed(response: &reqwest::Response) -> Vec<String> {
    let allow = response
        .headers()
        .get("allow")
        .unwrap_or_else(|| panic!("an Allow header from {}", response.url()));
    allow
        .to_str()
        .unwrap()
        .split(',')
        .map(|m| m.trim().to_owned())
        .collect()
}

#[tokio::test]
async fn options_names_the_methods_of_a_resource_and_others_get_405_naming_them_too() {
    let app = spawn_app(Backend::Sqlite).await;
    for (path, methods) in RESOURCES {
        let options = app
            .client
            .request(Method::OPTIONS, app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(options.status(), 204, "OPTIONS {path}");
        let allow = allowed(&options);
        let mut expected: Vec<String> = Vec::new();
        for method in *methods {
            expected.push((*method).to_owned());
            if *method == "GET" {
                expected.push("HEAD".into());
            }
        }
        expected.push("OPTIONS".into());
        assert_eq!(allow, expected, "Allow of {path}");

        for method in ["GET", "POST", "PUT", "DELETE", "PATCH", "X-UNKNOWN"] {
            let response = app
                .client
                .request(
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    app.url(path),
                )
                .send()
                .await
                .unwrap();
            if methods.contains(&method) {
                assert_ne!(response.status(), 405, "{method} {path}");
            } else {
                assert_eq!(allowed(&response), expected, "Allow of {method} {path}");
                assert_error(response, 405, "method_not_allowed").await;
            }
        }
    }
}

#[tokio::test]
async fn a_body_is_read_only_as_what_its_content_type_says() {
    let app = spawn_app(Backend::Sqlite).await;
    app.add_user("alice", None).await;
    let login = format!(r#"{{"username": "alice", "password": "{PASSWORD}"}}"#);
    let form = format!("username=alice&password={}", PASSWORD.replace(' ', "+"));
    let post = |path: &str, content_type: Option<&str>, body: String| {
        let mut request = app.client.post(app.url(path)).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send()
    };

    // JSON that a cross-site `<form enctype="text/plain">` can send.
    for content_type in [Some("text/plain"), Some("text/plain; charset=utf-8"), None] {
        let response = post("/session", content_type, login.clone()).await.unwrap();
        assert_error(response, 415, "unsupported_media_type").await;
    }
    let form_as_text = post("/session", Some("text/plain"), form.clone())
        .await
        .unwrap();
    assert_error(form_as_text, 415, "unsupported_media_type").await;

    // Types match without regard to case, with parameters.
    for content_type in [
        "Application/JSON; charset=UTF-8",
        "application/vnd.tessera+json",
    ] {
        let response = post("/session", Some(content_type), login.clone())
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{content_type}");
    }
    let response = post(
        "/session",
        Some("APPLICATION/X-WWW-FORM-URLENCODED; charset=utf-8"),
        form.clone(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);

    // JSON-only endpoints refuse forms; an empty body where every field is
    // optional needs no type.
    let token = app.session_token("alice").await;
    let authorize = |content_type: Option<&'static str>, body: &'static str| {
        let mut request = app
            .client
            .post(app.url("/authorize"))
            .bearer_auth(&token)
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send()
    };
    assert_eq!(authorize(None, "").await.unwrap().status(), 200);
    let as_text = authorize(Some("text/plain"), r#"{"audience": "tessera"}"#)
        .await
        .unwrap();
    assert_error(as_text, 415, "unsupported_media_type").await;
    let as_form = authorize(
        Some("application/x-www-form-urlencoded"),
        "audience=tessera",
    )
    .await
    .unwrap();
    assert_error(as_form, 415, "unsupported_media_type").await;
    let as_json = authorize(Some("application/json"), r#"{"audience": "tessera"}"#)
        .await
        .unwrap();
    assert_eq!(as_json.status(), 200);
}
