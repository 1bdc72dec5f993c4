//! Key rotation and outages, counted at a proxy in front of the issuer:
//! unknown kids refetch once for everyone, no more often than allowed, and
//! an unreachable issuer stops nothing that is already known.

use std::time::Duration;

use tessera_verify::{Verifier, VerifyError};

use crate::support::{claims_of, proxied_tessera_with_alice, sign_with_header, token_for};

const JWKS: &str = "/.well-known/jwks.json";
const DISCOVERY: &str = "/.well-known/openid-configuration";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_with_a_new_kid_cause_one_fetch() {
    let (proxy, app, session) = proxied_tessera_with_alice(|_| {}).await;
    // No minimum interval: only single flight stands between the thousand
    // requests and a thousand fetches.
    let verifier = Verifier::builder(&app.issuer, "notebooks")
        .min_refetch_interval(Duration::ZERO)
        .build()
        .await
        .unwrap();
    assert!(
        verifier
            .verify(&token_for(&app, &session, "notebooks").await)
            .await
            .is_ok()
    );
    assert_eq!((proxy.count(DISCOVERY), proxy.count(JWKS)), (1, 1));

    // Rotate: a new key, which the restarted server signs with.
    let new_kid = tessera::keys::generate(&app.keys_dir).unwrap();
    let restarted = app.restart().await;
    proxy.forward_to(&restarted.address);
    let token = token_for(&restarted, &session, "notebooks").await;
    assert_eq!(
        jsonwebtoken::decode_header(&token).unwrap().kid.unwrap(),
        new_kid
    );

    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..1000 {
        let (verifier, token) = (verifier.clone(), token.clone());
        requests.spawn(async move { verifier.verify(&token).await });
    }
    let results = requests.join_all().await;

    assert!(results.iter().all(Result::is_ok));
    assert_eq!(proxy.count(JWKS), 2, "one refetch for the thousand");
    assert_eq!(proxy.count(DISCOVERY), 1, "discovery happens once");
    assert!(verifier.health().keys.kids.contains(&new_kid));
}

#[tokio::test]
async fn unknown_kids_refetch_at_most_once_per_minimum_interval() {
    let (proxy, app, session) = proxied_tessera_with_alice(|_| {}).await;
    let interval = Duration::from_millis(500);
    let verifier = Verifier::builder(&app.issuer, "notebooks")
        .min_refetch_interval(interval)
        .build()
        .await
        .unwrap();
    let claims = claims_of(&token_for(&app, &session, "notebooks").await);
    let unknown = |n: usize| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(format!("made-up-{n}"));
        header
    };

    // Right after the fetch at start-up: no refetch.
    for n in 0..5 {
        let token = sign_with_header(&app, &unknown(n), &claims);
        assert_eq!(
            verifier.verify(&token).await.unwrap_err(),
            VerifyError::UnknownKey
        );
    }
    assert_eq!(proxy.count(JWKS), 1);

    // Once the interval has passed: one refetch, then quiet again.
    tokio::time::sleep(interval + Duration::from_millis(100)).await;
    for n in 5..10 {
        let token = sign_with_header(&app, &unknown(n), &claims);
        assert_eq!(
            verifier.verify(&token).await.unwrap_err(),
            VerifyError::UnknownKey
        );
    }
    assert_eq!(proxy.count(JWKS), 2);
}

#[tokio::test]
async fn verification_goes_on_with_the_cached_keys_while_the_issuer_is_unreachable() {
    // max-age=0: every verification finds the set stale and wants a refresh.
    let (proxy, app, session) = proxied_tessera_with_alice(|settings| {
        settings.keys.jwks_max_age = std::time::Duration::ZERO;
    })
    .await;
    let interval = Duration::from_millis(50);
    let verifier = Verifier::builder(&app.issuer, "notebooks")
        .min_refetch_interval(interval)
        .build()
        .await
        .unwrap();
    let token = token_for(&app, &session, "notebooks").await;
    assert!(verifier.verify(&token).await.is_ok());

    proxy.stop().await;
    for _ in 0..5 {
        tokio::time::sleep(interval * 2).await;
        assert!(verifier.verify(&token).await.is_ok());
    }

    let health = verifier.health();
    // After a failed JWKS fetch the keys are discovered afresh, in case the
    // issuer moved them: the error is the discovery's.
    let error = health
        .keys
        .last_error
        .expect("the failed refresh is reported");
    assert!(error.contains(DISCOVERY), "{error}");
    assert!(health.keys.last_attempt > health.keys.last_success);
    // A token with a kid the verifier never saw cannot be checked meanwhile.
    let mut claims = claims_of(&token);
    claims["sub"] = serde_json::json!("someone else");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("rotated-while-down".into());
    assert_eq!(
        verifier
            .verify(&sign_with_header(&app, &header, &claims))
            .await
            .unwrap_err(),
        VerifyError::UnknownKey
    );
}

#[tokio::test]
async fn a_stale_key_set_is_refreshed_in_the_background() {
    let (proxy, app, session) = proxied_tessera_with_alice(|settings| {
        settings.keys.jwks_max_age = std::time::Duration::ZERO;
    })
    .await;
    let verifier = Verifier::builder(&app.issuer, "notebooks")
        .min_refetch_interval(Duration::from_millis(50))
        .build()
        .await
        .unwrap();
    let token = token_for(&app, &session, "notebooks").await;

    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(verifier.verify(&token).await.is_ok());
    // The refresh runs on its own task; give it a moment.
    for _ in 0..50 {
        if proxy.count(JWKS) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    assert_eq!(proxy.count(JWKS), 2);
}
