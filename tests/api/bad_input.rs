//! No input, however malformed, yields a 500 or a panic: each gets a JSON
//! error with its documented code.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Backend, PASSWORD, assert_error, spawn_app};

async fn malformed_login_bodies_get_400_naming_the_problem(backend: Backend) {
    let app = spawn_app(backend).await;
    let cases: &[(&str, &str, &str)] = &[
        ("application/json", "{not json", "invalid JSON body"),
        ("application/json", r#"{"username": "alice"}"#, "password"),
        ("application/json", r#"{"password": "x"}"#, "username"),
        (
            "application/json",
            r#"{"username": 5, "password": "x"}"#,
            "invalid type",
        ),
        (
            "application/json",
            r#"{"username": "a", "password": "x", "extra": 1}"#,
            "extra",
        ),
        (
            "application/json",
            r#"{"username": "", "password": "x"}"#,
            "username",
        ),
        (
            "application/json",
            r#"{"username": "a b", "password": "x"}"#,
            "username",
        ),
        ("application/json", "", "invalid JSON body"),
        ("application/json", "[]", "invalid JSON body"),
        (
            "application/x-www-form-urlencoded",
            "username=alice",
            "password",
        ),
    ];
    for (content_type, body, mentions) in cases {
        let response = app
            .client
            .post(app.url("/session"))
            .header("content-type", *content_type)
            .body(*body)
            .send()
            .await
            .unwrap();
        let error = assert_error(response, 400, "invalid_request").await;
        assert!(
            error["message"].as_str().unwrap().contains(mentions),
            "{body:?}: {error}"
        );
    }
}

async fn an_overlong_password_is_refused_before_hashing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice", None).await;

    let response = app.login("alice", &"x".repeat(1025)).await;

    let body = assert_error(response, 400, "invalid_request").await;
    assert!(body["message"].as_str().unwrap().contains("password"));
    assert_eq!(app.login("alice", PASSWORD).await.status(), 200);
}

async fn a_huge_body_is_refused_with_413(backend: Backend) {
    let app = spawn_app(backend).await;
    let huge = json!({"username": "a", "password": "x".repeat(100_000)});

    let response = app
        .client
        .post(app.url("/session"))
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_error(response, 413, "payload_too_large").await;

    app.add_user("alice", None).await;
    let token = app.session_token("alice").await;
    let response = app
        .client
        .post(app.url("/authorize"))
        .bearer_auth(&token)
        .json(&json!({"audience": "x".repeat(100_000)}))
        .send()
        .await
        .unwrap();
    assert_error(response, 413, "payload_too_large").await;
}

async fn malformed_authorize_requests_get_clear_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice", None).await;
    let token = app.session_token("alice").await;

    for body in [
        "{",
        r#"{"audience": 5}"#,
        r#"{"scopes": "read"}"#,
        r#"{"scopes": ["two words"]}"#,
        r#"{"audience": ""}"#,
        r#"{"unknown": true}"#,
    ] {
        let response = app
            .client
            .post(app.url("/authorize"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_error(response, 400, "invalid_request").await;
    }
}

async fn garbage_tokens_and_headers_get_401_with_www_authenticate(backend: Backend) {
    let app = spawn_app(backend).await;
    let headers = [
        None,
        Some("Bearer"),
        Some("Bearer "),
        Some("Basic YWxpY2U6eA=="),
        Some("Bearer garbage"),
        Some("Bearer a.b.c"),
        Some("Bearer ...."),
        Some("JWT eyJhbGciOiJSUzI1NiJ9.e30.AAAA"),
        Some("Bearer eyJhbGciOiJub25lIn0.e30."),
    ];
    for header in headers {
        let mut request = app.client.post(app.url("/authorize"));
        if let Some(value) = header {
            request = request.header("Authorization", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.headers()["www-authenticate"],
            r#"Bearer error="invalid_token""#,
            "{header:?}"
        );
        assert_error(response, 401, "invalid_token").await;
    }
}

async fn unknown_routes_and_methods_get_json_errors(backend: Backend) {
    let app = spawn_app(backend).await;

    let missing = app.client.get(app.url("/nowhere")).send().await.unwrap();
    assert_error(missing, 404, "not_found").await;
    for (method, path) in [
        (Method::PUT, "/session"),
        (Method::GET, "/authorize"),
        (Method::POST, "/.well-known/jwks.json"),
    ] {
        let response = app
            .client
            .request(method, app.url(path))
            .send()
            .await
            .unwrap();
        assert_error(response, 405, "method_not_allowed").await;
    }
}

async fn oversized_or_too_many_headers_are_refused_with_431(backend: Backend) {
    let app = spawn_app(backend).await;

    let big = app
        .client
        .get(app.url("/healthz"))
        .header("x-big", "a".repeat(20_000))
        .send()
        .await
        .unwrap();
    let mut many = app.client.get(app.url("/healthz"));
    for n in 0..120 {
        many = many.header(format!("x-header-{n}"), "v");
    }
    // The framework refuses these with 431 and closes the connection, which
    // a client may see as a reset before it reads the answer: refused either
    // way.
    let many = many.send().await;

    let body = assert_error(big, 431, "invalid_request").await;
    assert!(body["message"].as_str().unwrap().contains("headers"));
    assert!(many.is_err() || many.is_ok_and(|r| r.status() == 431));
    // On a new connection (the refused one was closed), service goes on.
    let fresh = reqwest::Client::new();
    let after = fresh.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(after.status(), 200);
}

on_both_backends!(
    oversized_or_too_many_headers_are_refused_with_431,
    malformed_login_bodies_get_400_naming_the_problem,
    an_overlong_password_is_refused_before_hashing,
    a_huge_body_is_refused_with_413,
    malformed_authorize_requests_get_clear_errors,
    garbage_tokens_and_headers_get_401_with_www_authenticate,
    unknown_routes_and_methods_get_json_errors,
);
