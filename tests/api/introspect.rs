use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, spawn_app};

/// A service account: a user holding `tessera:introspect` at `tessera`, and
/// its authorization token.
async fn service_token(app: &TestApp) -> String {
    let service = app.add_user("svc-notebooks", None).await;
    app.grant(&service, "tessera", &["tessera:introspect"])
        .await;
    let session = app.session_token("svc-notebooks").await;
    app.authorization_token(&session, Some(json!({"audience": "tessera"})))
        .await
}

async fn introspect(app: &TestApp, caller: Option<&str>, token: &str) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/introspect"))
        .form(&[("token", token)]);
    if let Some(caller) = caller {
        request = request.bearer_auth(caller);
    }
    request.send().await.unwrap()
}

async fn a_live_token_is_active_with_its_claims_and_a_dead_one_is_not(backend: Backend) {
    let app = spawn_app(backend).await;
    let caller = service_token(&app).await;
    let alice = app.add_user("alice", Some("alice@example.com")).await;
    app.grant(&alice, "notebooks", &["read", "write"]).await;
    let session = app.session_token("alice").await;
    let token = app
        .authorization_token(&session, Some(json!({"audience": "notebooks"})))
        .await;

    let response = introspect(&app, Some(&caller), &token).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(body["sub"], alice.id.to_string());
    assert_eq!(body["username"], "alice");
    assert_eq!(body["scope"], "read write");
    assert_eq!(body["token_type"], "auth");
    assert_eq!(body["aud"], json!(["notebooks"]));
    let session_answer: Value = introspect(&app, Some(&caller), &session)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(session_answer["active"], true);
    assert_eq!(session_answer["token_type"], "session");

    app.client
        .delete(app.url("/session"))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();

    for dead in [token.as_str(), session.as_str(), "garbage", ""] {
        let body: Value = introspect(&app, Some(&caller), dead)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(body, json!({"active": false}), "{dead}");
    }
}

async fn introspection_needs_a_caller_with_the_introspect_scope(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice", None).await;
    let session = app.session_token("alice").await;
    let plain = app.authorization_token(&session, None).await;

    assert_error(introspect(&app, None, &plain).await, 401, "invalid_token").await;
    assert_error(
        introspect(&app, Some(&session), &plain).await,
        401,
        "invalid_token",
    )
    .await;
    assert_error(
        introspect(&app, Some(&plain), &plain).await,
        403,
        "forbidden",
    )
    .await;
    let missing_field = app
        .client
        .post(app.url("/introspect"))
        .bearer_auth(service_token(&app).await)
        .form(&[("nothing", "here")])
        .send()
        .await
        .unwrap();
    assert_error(missing_field, 400, "invalid_request").await;
}

async fn userinfo_says_who_an_authorization_token_belongs_to(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.add_user("alice", Some("alice@example.com")).await;
    app.grant(&alice, "notebooks", &["read"]).await;
    let session = app.session_token("alice").await;
    let token = app
        .authorization_token(&session, Some(json!({"audience": "notebooks"})))
        .await;

    let response = app
        .client
        .get(app.url("/userinfo"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], alice.id.to_string());
    assert_eq!(body["username"], "alice");
    assert_eq!(body["name"], "alice");
    assert_eq!(body["email"], "alice@example.com");
    assert_eq!(body["scopes"], json!(["read"]));
    let with_session = app
        .client
        .get(app.url("/userinfo"))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_error(with_session, 401, "invalid_token").await;
    app.client
        .delete(app.url("/session"))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    let after_logout = app
        .client
        .get(app.url("/userinfo"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_error(after_logout, 401, "invalid_token").await;
}

async fn a_service_whose_introspect_grant_is_removed_is_refused_with_the_next_call(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let caller = service_token(&app).await;
    app.add_user("alice", None).await;
    let session = app.session_token("alice").await;
    assert_eq!(
        introspect(&app, Some(&caller), &session).await.status(),
        200
    );
    let service = app
        .store
        .find_user_by_name("svc-notebooks")
        .await
        .unwrap()
        .unwrap();

    app.store
        .remove_grants(service.id, "tessera", &["tessera:introspect".to_owned()])
        .await
        .unwrap();

    assert_error(
        introspect(&app, Some(&caller), &session).await,
        403,
        "forbidden",
    )
    .await;
    app.store
        .set_active(service.id, false, chrono::Utc::now())
        .await
        .unwrap();
    assert_error(
        introspect(&app, Some(&caller), &session).await,
        401,
        "invalid_token",
    )
    .await;
}

on_both_backends!(
    a_service_whose_introspect_grant_is_removed_is_refused_with_the_next_call,
    a_live_token_is_active_with_its_claims_and_a_dead_one_is_not,
    introspection_needs_a_caller_with_the_introspect_scope,
    userinfo_says_who_an_authorization_token_belongs_to,
);
