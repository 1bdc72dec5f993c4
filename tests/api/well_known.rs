use serde_json::{Value, json};

use crate::helpers::{Backend, assert_error, spawn_app, spawn_app_with, verify_with_jwks};

async fn the_jwks_publishes_every_key_with_a_cache_lifetime(backend: Backend) {
    let app = spawn_app(backend).await;
    let kid = app.keys().signing().unwrap().kid().to_owned();

    let response = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert!(
        response.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=300")
    );
    let body: Value = response.json().await.unwrap();
    let key = &body["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["kid"], kid);
    assert_eq!(key["use"], "sig");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["e"], "AQAB");
    assert!(key["n"].as_str().unwrap().len() > 300);
}

async fn a_kid_header_or_query_selects_one_key_and_an_unknown_kid_is_404(backend: Backend) {
    let app = spawn_app(backend).await;
    tessera::keys::generate(&app.keys_dir).unwrap();
    let app = app.restart().await;
    let jwks = app.jwks().await;
    assert_eq!(jwks.keys.len(), 2);
    let first = jwks.keys[0].common.key_id.clone().unwrap();

    // Hue's key-server client sends the kid as a header and takes keys[0].
    let by_header: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .header("kid", &first)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_header["keys"].as_array().unwrap().len(), 1);
    assert_eq!(by_header["keys"][0]["kid"], first.as_str());
    let by_query: Value = app
        .client
        .get(app.url(&format!("/.well-known/jwks.json?kid={first}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_query, by_header);

    let unknown = app
        .client
        .get(app.url("/.well-known/jwks.json?kid=nope"))
        .send()
        .await
        .unwrap();
    assert_error(unknown, 404, "not_found").await;
}

async fn both_discovery_documents_point_at_the_jwks(backend: Backend) {
    let app = spawn_app(backend).await;

    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let body: Value = app
            .client
            .get(app.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["issuer"], app.issuer);
        assert_eq!(
            body["jwks_uri"],
            format!("{}/.well-known/jwks.json", app.issuer)
        );
        assert_eq!(body["id_token_signing_alg_values_supported"][0], "RS256");
        for (field, value) in [
            ("authorization_endpoint", "/oauth2/authorize"),
            ("token_endpoint", "/oauth2/token"),
            ("revocation_endpoint", "/oauth2/revoke"),
            ("end_session_endpoint", "/oauth2/logout"),
            ("userinfo_endpoint", "/userinfo"),
        ] {
            assert_eq!(body[field], format!("{}{value}", app.issuer), "{field}");
        }
        assert_eq!(body["response_types_supported"], json!(["code"]));
        assert_eq!(body["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(body["authorization_response_iss_parameter_supported"], true);
        assert!(
            body["grant_types_supported"]
                .as_array()
                .unwrap()
                .contains(&json!("refresh_token"))
        );
        // The published URL answers.
        let jwks = app
            .client
            .get(body["jwks_uri"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(jwks.status(), 200);
    }
}

async fn the_pem_export_verifies_authorization_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice", None).await;
    let session = app.session_token("alice").await;
    let token = app.authorization_token(&session, None).await;
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();

    let pem = app
        .client
        .get(app.url(&format!("/keys/{kid}.pem")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();

    assert!(pem.starts_with(b"-----BEGIN PUBLIC KEY-----"));
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(&pem).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["tessera"]);
    validation.set_issuer(&[&app.issuer]);
    assert!(jsonwebtoken::decode::<Value>(&token, &key, &validation).is_ok());
    assert!(verify_with_jwks(&token, &app.jwks().await, &app.issuer, "tessera").is_ok());
    let missing = app
        .client
        .get(app.url("/keys/nope.pem"))
        .send()
        .await
        .unwrap();
    assert_error(missing, 404, "not_found").await;
}

async fn health_and_readiness_answer(backend: Backend) {
    let app = spawn_app(backend).await;

    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();

    assert_eq!(health.status(), 200);
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["signing_kid"], app.keys().signing().unwrap().kid());
}

/// `docker run` without `TESSERA_ISSUER`: the service listens on
/// `0.0.0.0`, which no browser can be sent to.
async fn without_an_issuer_a_wildcard_bind_publishes_localhost(backend: Backend) {
    let app = spawn_app_with(backend, |settings| settings.bind = "0.0.0.0:0".into()).await;
    let port = app.address.rsplit(':').next().unwrap().to_owned();

    let body: Value = app
        .client
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert_eq!(app.issuer, format!("http://localhost:{port}"));
    assert_eq!(body["issuer"], app.issuer);
    assert_eq!(
        body["jwks_uri"],
        format!("http://localhost:{port}/.well-known/jwks.json")
    );
}

on_both_backends!(
    without_an_issuer_a_wildcard_bind_publishes_localhost,
    the_jwks_publishes_every_key_with_a_cache_lifetime,
    a_kid_header_or_query_selects_one_key_and_an_unknown_kid_is_404,
    both_discovery_documents_point_at_the_jwks,
    the_pem_export_verifies_authorization_tokens,
    health_and_readiness_answer,
);
