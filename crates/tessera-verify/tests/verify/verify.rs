//! What the verifier accepts, from each key source, and what it refuses.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, Header};
use serde_json::{Value, json};

use tessera_verify::{Verifier, VerifyError};

use crate::helpers::TestApp;
use crate::support::{
    CountingProxy, claims_of, discovering_verifier, proxied_tessera_with_alice, sign,
    sign_with_header, signing_kid, tessera_with_alice, token_for,
};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

/// Tessera with alice, a discovering verifier and a valid token.
async fn setup() -> (TestApp, Verifier, String) {
    let (app, session) = tessera_with_alice(|_| {}).await;
    let verifier = discovering_verifier(&app).await;
    let token = token_for(&app, &session, "notebooks").await;
    (app, verifier, token)
}

#[tokio::test]
async fn a_token_verifies_with_keys_found_through_issuer_discovery() {
    let (app, session) = tessera_with_alice(|_| {}).await;
    let verifier = Verifier::builder(&app.issuer, "notebooks")
        .build()
        .await
        .unwrap();
    let token = token_for(&app, &session, "notebooks").await;

    let claims = verifier.verify(&token).await.unwrap();

    assert_eq!(claims.username, "alice");
    assert_eq!(claims.email.as_deref(), Some("alice@example.com"));
    assert_eq!(claims.iss, app.issuer);
    assert_eq!(claims.aud, ["notebooks"]);
    assert_eq!(claims.scopes, ["read", "write"]);
    assert!(claims.has_scope("write"));
    assert_eq!(claims.token, "auth");
    let health = verifier.health();
    assert_eq!(health.keys.kids, [signing_kid(&app)]);
    assert!(health.keys.last_error.is_none());
    assert!(health.revocations.is_none());
}

#[tokio::test]
async fn a_token_verifies_with_keys_from_a_jwks_url() {
    let (app, session) = tessera_with_alice(|_| {}).await;
    let verifier = Verifier::builder(&app.issuer, "notebooks")
        .jwks_url(app.url("/.well-known/jwks.json"))
        .build()
        .await
        .unwrap();
    let token = token_for(&app, &session, "notebooks").await;

    let claims = verifier.verify(&token).await.unwrap();

    assert_eq!(claims.username, "alice");
}

#[tokio::test]
async fn a_token_verifies_offline_with_a_directory_of_exported_pem_files() {
    let (app, session) = tessera_with_alice(|_| {}).await;
    let kid = signing_kid(&app);
    let pem = app
        .client
        .get(app.url(&format!("/keys/{kid}.pem")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(format!("{kid}.pem")), pem).unwrap();
    // No network at all: the issuer is only the expected `iss`.
    let verifier = Verifier::builder(&app.issuer, "notebooks")
        .pem_dir(dir.path())
        .build()
        .await
        .unwrap();
    let token = token_for(&app, &session, "notebooks").await;

    let claims = verifier.verify(&token).await.unwrap();

    assert_eq!(claims.username, "alice");
    let health = verifier.health();
    assert_eq!(health.keys.kids, [kid]);
    assert_eq!(health.keys.last_attempt, None, "nothing was fetched");
}

#[tokio::test]
async fn a_session_token_is_refused_even_when_it_names_the_audience() {
    let (app, session) = tessera_with_alice(|settings| {
        // A session token that passes every other check: the audience, and
        // an expiry.
        settings.tokens.session_audience = vec!["notebooks".into()];
        settings.tokens.session_lifetime = Some(std::time::Duration::from_secs(3600));
    })
    .await;
    let verifier = discovering_verifier(&app).await;

    let error = verifier.verify(&session).await.unwrap_err();

    assert_eq!(error, VerifyError::SessionToken);
}

#[tokio::test]
async fn a_default_session_token_is_refused_as_a_session_token() {
    let (app, session) = tessera_with_alice(|_| {}).await;
    let verifier = discovering_verifier(&app).await;

    let error = verifier.verify(&session).await.unwrap_err();

    // It has no expiry and its audience is the issuer, but what is wrong
    // with it is its kind, and that is what the service is told.
    assert_eq!(error, VerifyError::SessionToken);
    assert_eq!(
        error.to_string(),
        "a session token is not an authorization token (exchange it at POST /authorize)"
    );
}

#[tokio::test]
async fn a_token_of_another_kind_is_not_an_authorization_token() {
    let (app, verifier, token) = setup().await;
    let mut claims = claims_of(&token);
    claims["token"] = json!("refresh");

    let error = verifier.verify(&sign(&app, &claims)).await.unwrap_err();

    assert_eq!(error, VerifyError::NotAnAuthorizationToken);
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let (app, session) = tessera_with_alice(|_| {}).await;
    let verifier = discovering_verifier(&app).await;
    let token = token_for(&app, &session, "billing").await;

    assert_eq!(
        verifier.verify(&token).await.unwrap_err(),
        VerifyError::WrongAudience
    );
}

#[tokio::test]
async fn a_token_of_another_issuer_is_refused() {
    let (app, session) = tessera_with_alice(|_| {}).await;
    let verifier = Verifier::builder("https://sso.example.com", "notebooks")
        .jwks_url(app.url("/.well-known/jwks.json"))
        .build()
        .await
        .unwrap();
    let token = token_for(&app, &session, "notebooks").await;

    assert_eq!(
        verifier.verify(&token).await.unwrap_err(),
        VerifyError::WrongIssuer
    );
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let (app, session) = tessera_with_alice(|settings| {
        settings.tokens.authorization_lifetime = std::time::Duration::from_secs(1);
    })
    .await;
    let verifier = Verifier::builder(&app.issuer, "notebooks")
        .leeway(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let token = token_for(&app, &session, "notebooks").await;
    let exp = claims_of(&token)["exp"].as_i64().unwrap();

    // Expired once the clock, in whole seconds, is past `exp`.
    while now() <= exp {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    assert_eq!(
        verifier.verify(&token).await.unwrap_err(),
        VerifyError::Expired
    );
}

#[tokio::test]
async fn the_leeway_accepts_a_token_that_expired_moments_ago() {
    let (app, verifier, token) = setup().await;
    let mut claims = claims_of(&token);
    claims["exp"] = json!(now() - 10);

    assert!(verifier.verify(&sign(&app, &claims)).await.is_ok());

    claims["exp"] = json!(now() - 40);
    assert_eq!(
        verifier.verify(&sign(&app, &claims)).await.unwrap_err(),
        VerifyError::Expired
    );
}

#[tokio::test]
async fn a_token_not_valid_yet_or_issued_in_the_future_is_refused() {
    let (app, verifier, token) = setup().await;
    let claims = claims_of(&token);

    let mut early = claims.clone();
    early["nbf"] = json!(now() + 600);
    let mut future = claims.clone();
    future["iat"] = json!(now() + 600);

    for crafted in [early, future] {
        assert_eq!(
            verifier.verify(&sign(&app, &crafted)).await.unwrap_err(),
            VerifyError::NotYetValid
        );
    }
}

#[tokio::test]
async fn a_tampered_signature_or_payload_is_refused() {
    let (app, verifier, token) = setup().await;
    let (signed, signature) = token.rsplit_once('.').unwrap();

    // One character in the middle of the signature.
    let mut bytes = signature.as_bytes().to_vec();
    bytes[20] = if bytes[20] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{signed}.{}", String::from_utf8(bytes).unwrap());
    assert_eq!(
        verifier.verify(&tampered).await.unwrap_err(),
        VerifyError::BadSignature
    );

    // Another payload under the original signature.
    let mut claims = claims_of(&token);
    claims["scopes"] = json!(["read", "write", "admin"]);
    let forged = sign(&app, &claims);
    let (forged_signed, _) = forged.rsplit_once('.').unwrap();
    let spliced = format!("{forged_signed}.{signature}");
    assert_eq!(
        verifier.verify(&spliced).await.unwrap_err(),
        VerifyError::BadSignature
    );
}

#[tokio::test]
async fn a_token_signed_by_a_foreign_key_under_a_known_kid_is_refused() {
    let (app, verifier, token) = setup().await;
    let foreign = tempfile::tempdir().unwrap();
    let generated = tessera::keys::generate(foreign.path()).unwrap();
    let kid = signing_kid(&app);
    std::fs::rename(
        foreign.path().join(format!("{generated}.pem")),
        foreign.path().join(format!("{kid}.pem")),
    )
    .unwrap();
    let forged = tessera::keys::KeySet::load(foreign.path())
        .unwrap()
        .signing()
        .unwrap()
        .sign(&claims_of(&token))
        .unwrap();

    assert_eq!(
        verifier.verify(&forged).await.unwrap_err(),
        VerifyError::BadSignature
    );
}

#[tokio::test]
async fn alg_none_and_hs256_with_the_public_key_are_refused() {
    let (app, verifier, token) = setup().await;
    let claims = claims_of(&token);
    let kid = signing_kid(&app);
    let encode = |value: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
    };

    let none = format!(
        "{}.{}.",
        encode(&json!({"alg": "none", "typ": "JWT", "kid": kid})),
        encode(&claims)
    );
    assert!(verifier.verify(&none).await.is_err());

    let jwks = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid);
    let hs256 = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&jwks),
    )
    .unwrap();
    assert_eq!(
        verifier.verify(&hs256).await.unwrap_err(),
        VerifyError::WrongAlgorithm
    );
}

#[tokio::test]
async fn a_token_naming_its_own_key_source_is_refused_without_following_it() {
    let (app, verifier, token) = setup().await;
    let claims = claims_of(&token);
    let kid = signing_kid(&app);

    let mut jku = Header::new(Algorithm::RS256);
    jku.kid = Some(kid.clone());
    // Nothing listens there; were it followed, the error would differ.
    jku.jku = Some("http://127.0.0.1:1/jwks.json".into());
    let mut x5u = Header::new(Algorithm::RS256);
    x5u.kid = Some(kid.clone());
    x5u.x5u = Some("http://127.0.0.1:1/cert.pem".into());

    for header in [jku, x5u] {
        assert_eq!(
            verifier
                .verify(&sign_with_header(&app, &header, &claims))
                .await
                .unwrap_err(),
            VerifyError::KeyReferenceInHeader
        );
    }
}

#[tokio::test]
async fn garbage_is_malformed() {
    let (_app, verifier, _token) = setup().await;
    for garbage in ["", ".", "..", "a.b.c", "not a token", "\u{0}"] {
        assert_eq!(
            verifier.verify(garbage).await.unwrap_err(),
            VerifyError::Malformed,
            "{garbage:?}"
        );
    }
}

#[tokio::test]
async fn discovery_refuses_a_document_that_names_another_issuer() {
    let (app, session) = tessera_with_alice(|_| {}).await;
    // The same server under another address: its discovery document names
    // its own, so its keys are not this issuer's.
    let proxy = CountingProxy::start();
    proxy.forward_to(&app.address);
    let verifier = Verifier::builder(&proxy.address, "notebooks")
        .build()
        .await
        .unwrap();
    let token = token_for(&app, &session, "notebooks").await;

    assert_eq!(
        verifier.verify(&token).await.unwrap_err(),
        VerifyError::KeysUnavailable
    );
    let error = verifier.health().keys.last_error.unwrap();
    assert!(error.contains("names the issuer"), "{error}");
    assert_eq!(proxy.count("/.well-known/jwks.json"), 0);
}

#[tokio::test]
async fn an_unreachable_revocation_feed_keeps_the_last_state_and_shows_in_health() {
    let (proxy, app, session) = proxied_tessera_with_alice(|_| {}).await;
    let interval = Duration::from_millis(100);
    let verifier = Verifier::builder(&app.issuer, "notebooks")
        .poll_revocations(interval)
        .build()
        .await
        .unwrap();
    let token = token_for(&app, &session, "notebooks").await;
    assert!(verifier.verify(&token).await.is_ok());

    proxy.stop().await;
    tokio::time::sleep(interval * 3).await;

    assert!(verifier.verify(&token).await.is_ok());
    let health = verifier.health().revocations.unwrap();
    assert_eq!(health.poll_interval, interval);
    assert!(health.last_attempt.is_some());
    let error = health.last_error.expect("the failed poll is reported");
    assert!(error.contains("/revocations"), "{error}");
}

#[tokio::test]
async fn an_authorization_token_without_an_expiry_lacks_the_exp_claim() {
    let (app, verifier, token) = setup().await;
    let mut claims = claims_of(&token);
    claims.as_object_mut().unwrap().remove("exp");

    let error = verifier.verify(&sign(&app, &claims)).await.unwrap_err();

    assert_eq!(error, VerifyError::MissingClaim("exp".into()));
}
