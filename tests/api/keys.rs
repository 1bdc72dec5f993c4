use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use tessera::keys::{self, KeySet};

use crate::helpers::{Backend, TestApp, assert_error, spawn_app, verify_with_jwks};

/// The claims of a valid session token of `app`'s, for tampering with.
async fn valid_session_claims(app: &TestApp) -> Value {
    app.add_user("alice", None).await;
    let token = app.session_token("alice").await;
    jsonwebtoken::dangerous::insecure_decode_claims::<Value>(&token).unwrap()
}

async fn with_a_second_key_old_sessions_still_authorize_and_new_tokens_carry_the_new_kid(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let old_kid = app.keys().signing().unwrap().kid().to_owned();
    app.add_user("alice", None).await;
    let old_session = app.session_token("alice").await;

    let new_kid = keys::generate(&app.keys_dir).unwrap();
    let restarted = app.restart().await;

    let jwks = restarted.jwks().await;
    assert!(jwks.find(&old_kid).is_some() && jwks.find(&new_kid).is_some());
    let token = restarted.authorization_token(&old_session, None).await;
    assert_eq!(
        jsonwebtoken::decode_header(&token).unwrap().kid.unwrap(),
        new_kid
    );
    assert!(verify_with_jwks(&token, &jwks, &restarted.issuer, "tessera").is_ok());
    let new_session = restarted.session_token("alice").await;
    assert_eq!(
        jsonwebtoken::decode_header(&new_session)
            .unwrap()
            .kid
            .unwrap(),
        new_kid
    );
}

async fn a_token_signed_by_a_foreign_key_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let claims = valid_session_claims(&app).await;
    let kid = app.keys().signing().unwrap().kid().to_owned();
    // A foreign key under the same name as the real one.
    let foreign_dir = tempfile::tempdir().unwrap();
    let generated = keys::generate(foreign_dir.path()).unwrap();
    std::fs::rename(
        foreign_dir.path().join(format!("{generated}.pem")),
        foreign_dir.path().join(format!("{kid}.pem")),
    )
    .unwrap();
    let foreign = KeySet::load(foreign_dir.path()).unwrap();
    let forged = foreign.signing().unwrap().sign(&claims).unwrap();

    let body = assert_error(app.authorize(&forged, None).await, 401, "invalid_token").await;
    assert_eq!(body["message"], "the token's signature is invalid");

    // And under a name of its own.
    let other_dir = tempfile::tempdir().unwrap();
    keys::generate(other_dir.path()).unwrap();
    let forged = KeySet::load(other_dir.path())
        .unwrap()
        .signing()
        .unwrap()
        .sign(&claims)
        .unwrap();
    let body = assert_error(app.authorize(&forged, None).await, 401, "invalid_token").await;
    assert_eq!(body["message"], "the token names no key or an unknown key");
}

async fn alg_none_and_hs256_with_the_public_key_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let claims = valid_session_claims(&app).await;
    let kid = app.keys().signing().unwrap().kid().to_owned();
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());

    let none_header =
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string());
    let unsigned = format!("{none_header}.{payload}.");
    assert_error(app.authorize(&unsigned, None).await, 401, "invalid_token").await;

    let public_pem = app
        .client
        .get(app.url(&format!("/keys/{kid}.pem")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid);
    let confused = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&public_pem),
    )
    .unwrap();
    let body = assert_error(app.authorize(&confused, None).await, 401, "invalid_token").await;
    assert_eq!(body["message"], "the token is not signed with RS256");
}

async fn unknown_and_path_like_kids_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let claims = valid_session_claims(&app).await;
    let signing = app.keys();
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());

    for kid in ["nope", "../../etc/passwd", "/dev/zero", "", "tessera-*"] {
        let header =
            URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "typ": "JWT", "kid": kid}).to_string());
        // The real key's signature over the altered header.
        let real = signing.signing().unwrap().sign(&claims).unwrap();
        let signature = real.rsplit('.').next().unwrap();
        let token = format!("{header}.{payload}.{signature}");
        let body = assert_error(app.authorize(&token, None).await, 401, "invalid_token").await;
        assert_eq!(
            body["message"], "the token names no key or an unknown key",
            "kid {kid:?}"
        );
    }
}

async fn a_validly_signed_token_with_a_bad_sid_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let claims = valid_session_claims(&app).await;
    let keys = app.keys();

    for sid in [
        json!("not-a-uuid"),
        json!(uuid::Uuid::new_v4().to_string()),
        json!(42),
        json!(null),
    ] {
        let mut tampered = claims.clone();
        tampered["sid"] = sid.clone();
        let token = keys.signing().unwrap().sign(&tampered).unwrap();
        assert_error(app.authorize(&token, None).await, 401, "invalid_token").await;
        let shown = app
            .client
            .get(app.url("/session"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_error(shown, 401, "invalid_token").await;
    }
}

async fn a_session_token_for_another_user_than_its_session_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let claims = valid_session_claims(&app).await;
    let mut tampered = claims.clone();
    tampered["sub"] = json!(uuid::Uuid::new_v4().to_string());

    let token = app.keys().signing().unwrap().sign(&tampered).unwrap();

    assert_error(app.authorize(&token, None).await, 401, "invalid_token").await;
}

on_both_backends!(
    with_a_second_key_old_sessions_still_authorize_and_new_tokens_carry_the_new_kid,
    a_token_signed_by_a_foreign_key_is_refused,
    alg_none_and_hs256_with_the_public_key_are_refused,
    unknown_and_path_like_kids_are_refused,
    a_validly_signed_token_with_a_bad_sid_is_refused,
    a_session_token_for_another_user_than_its_session_is_refused,
);
