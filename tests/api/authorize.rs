use serde_json::{Value, json};

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use tessera::clock::ManualClock;

use crate::helpers::{
    Backend, assert_error, spawn_app, spawn_app_with, spawn_app_with_clock, verify_with_jwks,
};

async fn an_authorization_token_verifies_with_only_the_jwks_and_carries_the_claims(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let user = app.add_user("alice", Some("alice@example.com")).await;
    app.grant(
        &user,
        "notebooks",
        &["read", "access:services!service=notebooks"],
    )
    .await;
    app.grant(&user, "billing", &["billing:write"]).await;
    let session_token = app.session_token("alice").await;

    let response = app
        .authorize(&session_token, Some(json!({"audience": "notebooks"})))
        .await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    let token = body["token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let claims = verify_with_jwks(token, &app.jwks().await, &app.issuer, "notebooks").unwrap();
    let session = jsonwebtoken::dangerous::insecure_decode_claims::<Value>(&session_token).unwrap();
    assert_eq!(claims["iss"], app.issuer);
    assert_eq!(claims["sub"], user.id.to_string());
    assert_eq!(claims["uid"], user.id.to_string());
    assert_eq!(claims["aud"], json!(["notebooks"]));
    assert_eq!(claims["token"], "auth");
    assert_eq!(claims["sid"], session["sid"]);
    assert_eq!(claims["cid"], "");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["username"], "alice");
    assert_eq!(
        claims["scopes"],
        json!(["access:services!service=notebooks", "read"]),
        "only the grants of the requested audience"
    );
    let (iat, nbf, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["nbf"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(nbf, iat);
    assert_eq!(exp - iat, 300);
    assert_ne!(claims["jti"], session["jti"]);
}

async fn without_a_body_the_default_audience_and_all_its_scopes_are_used(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.add_user("alice", None).await;
    app.grant(&user, "tessera", &["a", "b"]).await;
    let session_token = app.session_token("alice").await;

    let token = app.authorization_token(&session_token, None).await;

    let claims = verify_with_jwks(&token, &app.jwks().await, &app.issuer, "tessera").unwrap();
    assert_eq!(claims["scopes"], json!(["a", "b"]));
}

async fn requested_scopes_narrow_the_token_and_unheld_ones_are_forbidden(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.add_user("alice", None).await;
    app.grant(&user, "billing", &["billing:read", "billing:write"])
        .await;
    app.grant(&user, "notebooks", &["admin"]).await;
    let session_token = app.session_token("alice").await;

    let token = app
        .authorization_token(
            &session_token,
            Some(json!({"audience": "billing", "scopes": ["billing:read", "billing:read"]})),
        )
        .await;
    let claims = verify_with_jwks(&token, &app.jwks().await, &app.issuer, "billing").unwrap();
    assert_eq!(claims["scopes"], json!(["billing:read"]));

    // A scope held at another audience is not held here.
    let response = app
        .authorize(
            &session_token,
            Some(json!({"audience": "billing", "scopes": ["admin"]})),
        )
        .await;
    let body = assert_error(response, 403, "forbidden").await;
    assert!(body["message"].as_str().unwrap().contains("admin"));
}

async fn an_audience_that_is_not_allowed_is_forbidden(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice", None).await;
    let session_token = app.session_token("alice").await;

    let response = app
        .authorize(&session_token, Some(json!({"audience": "elsewhere"})))
        .await;

    assert_error(response, 403, "forbidden").await;
}

async fn the_drf_sso_jwt_scheme_and_trailing_slashes_are_accepted(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice", None).await;
    let session_token = app.session_token("alice").await;

    let response = app
        .client
        .post(app.url("/authorize/"))
        .header("Authorization", format!("JWT {session_token}"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
}

async fn an_authorization_token_cannot_mint_another(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice", None).await;
    let session_token = app.session_token("alice").await;
    let token = app.authorization_token(&session_token, None).await;

    // Its audience is not the session audience, and its kind is not
    // "session": either refuses it.
    let response = app.authorize(&token, None).await;

    assert_error(response, 401, "invalid_token").await;
}

async fn an_expired_authorization_token_fails_verification(backend: Backend) {
    // Started in the past, so that the clock can be set back below without
    // going back beyond the first key's activation.
    let clock = Arc::new(ManualClock::new(Utc::now() - TimeDelta::seconds(10)));
    let app = spawn_app_with_clock(backend, clock.clone(), |s| {
        s.tokens.authorization_lifetime = std::time::Duration::from_secs(1)
    })
    .await;
    app.add_user("alice", None).await;
    let session_token = app.session_token("alice").await;
    clock.set(Utc::now());
    let token = app.authorization_token(&session_token, None).await;
    let jwks = app.jwks().await;
    assert!(verify_with_jwks(&token, &jwks, &app.issuer, "tessera").is_ok());

    // A verifier checks `exp` against its own clock: a token issued 2.1 s
    // ago with a 1 s lifetime is one it sees expired now.
    clock.set(Utc::now() - TimeDelta::milliseconds(2100));
    let token = app.authorization_token(&session_token, None).await;

    let error = verify_with_jwks(&token, &jwks, &app.issuer, "tessera").unwrap_err();
    assert_eq!(
        *error.kind(),
        jsonwebtoken::errors::ErrorKind::ExpiredSignature
    );
}

async fn an_expired_session_is_refused(backend: Backend) {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let app = spawn_app_with_clock(backend, clock.clone(), |s| {
        s.tokens.session_lifetime = Some(std::time::Duration::from_secs(1));
        s.tokens.leeway = std::time::Duration::ZERO;
    })
    .await;
    app.add_user("alice", None).await;
    let session_token = app.session_token("alice").await;

    clock.advance(TimeDelta::milliseconds(2100));

    let body = assert_error(
        app.authorize(&session_token, None).await,
        401,
        "invalid_token",
    )
    .await;
    assert_eq!(body["message"], "the token has expired");
}

async fn extra_claims_are_copied_from_user_attributes(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.tokens.extra_claims.insert(
            "user".into(),
            tessera::configuration::UserAttribute::Username,
        );
    })
    .await;
    app.add_user("alice", None).await;
    let session_token = app.session_token("alice").await;

    let token = app.authorization_token(&session_token, None).await;

    let claims = verify_with_jwks(&token, &app.jwks().await, &app.issuer, "tessera").unwrap();
    assert_eq!(claims["user"], "alice");
}

on_both_backends!(
    an_authorization_token_verifies_with_only_the_jwks_and_carries_the_claims,
    without_a_body_the_default_audience_and_all_its_scopes_are_used,
    requested_scopes_narrow_the_token_and_unheld_ones_are_forbidden,
    an_audience_that_is_not_allowed_is_forbidden,
    the_drf_sso_jwt_scheme_and_trailing_slashes_are_accepted,
    an_authorization_token_cannot_mint_another,
    an_expired_authorization_token_fails_verification,
    an_expired_session_is_refused,
    extra_claims_are_copied_from_user_attributes,
);
