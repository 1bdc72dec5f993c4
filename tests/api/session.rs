use serde_json::{Value, json};

use crate::helpers::{
    Backend, PASSWORD, assert_error, spawn_app, spawn_app_with, verify_with_jwks_requiring,
};

async fn login_returns_a_session_token_naming_a_stored_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.add_user("alice", Some("alice@example.com")).await;

    let response = app.login("alice", PASSWORD).await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert!(body["expires_at"].is_null());
    let token = body["token"].as_str().unwrap();
    let jwks = app.jwks().await;
    let claims =
        verify_with_jwks_requiring(token, &jwks, &app.issuer, &app.issuer, &["iss", "aud"])
            .expect("the session token verifies with the JWKS");
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    assert_eq!(claims["token"], "session");
    assert_eq!(claims["sub"], user.id.to_string());
    assert_eq!(claims["uid"], user.id.to_string());
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["sid"], body["session_id"]);
    assert_eq!(claims["cid"], "");
    assert_eq!(claims["aud"], json!([app.issuer]));
    assert!(claims.get("exp").is_none());
    let sid = uuid::Uuid::parse_str(body["session_id"].as_str().unwrap()).unwrap();
    let (session, _) = app.store.find_session(sid).await.unwrap().unwrap();
    assert_eq!(session.user_id, user.id);
    assert_eq!(session.kid, kid);
    assert_eq!(session.ip.as_deref(), Some("127.0.0.1"));
}

async fn login_accepts_a_form_a_client_id_and_any_case_of_the_name(backend: Backend) {
    let app = crate::helpers::spawn_app_with(backend, |s| {
        s.clients = vec![tessera::clients::ClientSettings {
            id: "portal".into(),
            audience: "tessera".into(),
            redirect_uris: vec!["https://portal.example.com/".into()],
            scopes: None,
            token_delivery: tessera::clients::DeliveryKind::Query,
            param_name: None,
            cookie_name: None,
            cookie_domain: None,
        }];
    })
    .await;
    app.add_user("Alice", None).await;

    let response = app
        .client
        .post(app.url("/session/"))
        .form(&[
            ("username", "aLiCe"),
            ("password", PASSWORD),
            ("client_id", "portal"),
        ])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(body["token"].as_str().unwrap())
        .unwrap()
        .claims;
    assert_eq!(claims["cid"], "portal");
}

async fn wrong_password_unknown_user_and_disabled_user_answer_alike(backend: Backend) {
    let app = spawn_app(backend).await;
    let disabled = app.add_user("disabled", None).await;
    app.store
        .set_active(disabled.id, false, chrono::Utc::now())
        .await
        .unwrap();
    app.add_user("alice", None).await;

    let wrong = assert_error(
        app.login("alice", "not the password").await,
        401,
        "invalid_credentials",
    )
    .await;
    let unknown = assert_error(
        app.login("nobody", PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    let off = assert_error(
        app.login("disabled", PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    let empty = assert_error(app.login("alice", "").await, 401, "invalid_credentials").await;

    assert_eq!(wrong, unknown);
    assert_eq!(wrong, off);
    assert_eq!(wrong, empty);
}

async fn a_session_lifetime_puts_exp_in_the_token(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.tokens.session_lifetime = Some(std::time::Duration::from_secs(3600))
    })
    .await;
    app.add_user("alice", None).await;

    let response = app.login("alice", PASSWORD).await;

    let body: Value = response.json().await.unwrap();
    assert!(body["expires_at"].is_string());
    let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(body["token"].as_str().unwrap())
        .unwrap()
        .claims;
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 3600);
}

async fn get_session_describes_the_current_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.add_user("alice", Some("alice@example.com")).await;
    let token = app.session_token("alice").await;

    let response = app
        .client
        .get(app.url("/session"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user_id"], user.id.to_string());
    assert_eq!(body["username"], "alice");
    assert_eq!(body["email"], "alice@example.com");
    assert!(body["created_at"].is_string());
}

async fn logout_revokes_the_session_for_every_endpoint(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice", None).await;
    let token = app.session_token("alice").await;
    assert_eq!(app.authorize(&token, None).await.status(), 200);

    let response = app
        .client
        .delete(app.url("/session"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 204);
    let refused = assert_error(app.authorize(&token, None).await, 401, "invalid_token").await;
    assert_eq!(refused["message"], "the session has ended");
    let shown = app
        .client
        .get(app.url("/session"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_error(shown, 401, "invalid_token").await;
    let again = app
        .client
        .delete(app.url("/session"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_error(again, 401, "invalid_token").await;
}

async fn disabling_a_user_ends_their_sessions_at_authorize(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.add_user("alice", None).await;
    let token = app.session_token("alice").await;

    app.store
        .set_active(user.id, false, chrono::Utc::now())
        .await
        .unwrap();

    // Disabling revoked the session itself.
    let body = assert_error(app.authorize(&token, None).await, 401, "invalid_token").await;
    assert_eq!(body["message"], "the session has ended");
}

async fn bootstrap_creates_an_admin_only_in_an_empty_database(backend: Backend) {
    let app = spawn_app(backend).await;
    let hasher =
        tessera::password::PasswordHasherPool::for_command_line(Default::default()).unwrap();
    let password = tessera::startup::bootstrap_admin(app.store.as_ref(), None, &hasher)
        .await
        .unwrap()
        .expect("a generated password");
    let again = tessera::startup::bootstrap_admin(app.store.as_ref(), None, &hasher)
        .await
        .unwrap();
    assert!(again.is_none());

    use secrecy::ExposeSecret;
    let response = app.login("admin", password.expose_secret()).await;
    assert_eq!(response.status(), 200);
    let token: Value = response.json().await.unwrap();
    let authorized = app
        .authorize(
            token["token"].as_str().unwrap(),
            Some(json!({"audience": "tessera"})),
        )
        .await;
    let body: Value = authorized.json().await.unwrap();
    let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(body["token"].as_str().unwrap())
        .unwrap()
        .claims;
    assert_eq!(claims["scopes"], json!(["tessera:admin"]));
}

on_both_backends!(
    login_returns_a_session_token_naming_a_stored_session,
    login_accepts_a_form_a_client_id_and_any_case_of_the_name,
    wrong_password_unknown_user_and_disabled_user_answer_alike,
    a_session_lifetime_puts_exp_in_the_token,
    get_session_describes_the_current_session,
    logout_revokes_the_session_for_every_endpoint,
    disabling_a_user_ends_their_sessions_at_authorize,
    bootstrap_creates_an_admin_only_in_an_empty_database,
);
