//! Revocation awareness end to end: the server's revocation feed, polled by
//! the verifier, refuses still-valid tokens of ended sessions and disabled
//! users within one poll interval.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use uuid::Uuid;

use tessera::clock::{Clock, SystemClock};
use tessera_verify::{Verifier, VerifyError};

use crate::helpers::TestApp;
use crate::support::{claims_of, proxied_tessera_with_alice, tessera_with_alice, token_for};

/// Short, so that the tests are quick; the default is 5 s.
const POLL_INTERVAL: Duration = Duration::from_millis(300);
/// What one poll may take on top of the interval on a loaded machine.
const SLACK: Duration = Duration::from_secs(1);

async fn polling_verifier(app: &TestApp) -> Verifier {
    Verifier::builder(&app.issuer, "notebooks")
        .poll_revocations(POLL_INTERVAL)
        .build()
        .await
        .unwrap()
}

async fn logout(app: &TestApp, session: &str) {
    let response = app
        .client
        .delete(app.url("/session"))
        .bearer_auth(session)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
}

fn user_id(token: &str) -> Uuid {
    claims_of(token)["sub"].as_str().unwrap().parse().unwrap()
}

/// How long until `verify` answers other than `Ok`, polling every 20 ms;
/// panics past one poll interval and the slack.
async fn time_until_refused(verifier: &Verifier, token: &str) -> (Duration, VerifyError) {
    let start = Instant::now();
    loop {
        if let Err(error) = verifier.verify(token).await {
            return (start.elapsed(), error);
        }
        assert!(
            start.elapsed() < POLL_INTERVAL + SLACK,
            "still accepted after {:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn after_logout_the_unexpired_token_is_refused_within_one_poll_interval() {
    let (app, session) = tessera_with_alice(|_| {}).await;
    let verifier = polling_verifier(&app).await;
    let token = token_for(&app, &session, "notebooks").await;
    assert!(verifier.verify(&token).await.is_ok());

    logout(&app, &session).await;
    let (_, error) = time_until_refused(&verifier, &token).await;

    assert_eq!(error, VerifyError::SessionRevoked);
    assert_eq!(error.to_string(), "the token's session has ended");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    assert!(
        claims_of(&token)["exp"].as_u64().unwrap() > now.as_secs(),
        "the token itself is still valid"
    );
}

#[tokio::test]
async fn keys_and_revocations_may_come_from_another_address_than_the_issuer() {
    // The issuer, the `iss` of the tokens, is Tessera's public address (a
    // proxy); this service reaches Tessera directly, as inside a container
    // network.
    let (proxy, app, session) = proxied_tessera_with_alice(|_| {}).await;
    let verifier = Verifier::builder(&app.issuer, "notebooks")
        .jwks_url(app.url("/.well-known/jwks.json"))
        .revocations_url(app.url("/revocations"))
        .poll_revocations(POLL_INTERVAL)
        .build()
        .await
        .unwrap();
    let token = token_for(&app, &session, "notebooks").await;
    assert_eq!(claims_of(&token)["iss"], proxy.address.as_str());
    assert!(verifier.verify(&token).await.is_ok());

    logout(&app, &session).await;
    let (_, error) = time_until_refused(&verifier, &token).await;

    assert_eq!(error, VerifyError::SessionRevoked);
    for path in ["/revocations", "/.well-known/jwks.json"] {
        assert_eq!(proxy.count(path), 0, "{path} went through the issuer");
    }
}

#[tokio::test]
async fn a_disabled_user_is_refused_and_not_accepted_again_once_enabled() {
    let (app, session) = tessera_with_alice(|_| {}).await;
    let verifier = polling_verifier(&app).await;
    let token = token_for(&app, &session, "notebooks").await;
    assert!(verifier.verify(&token).await.is_ok());

    app.store
        .set_active(user_id(&token), false, SystemClock.now())
        .await
        .unwrap();
    let (_, error) = time_until_refused(&verifier, &token).await;
    // Disabling revoked the user's sessions as well.
    assert_eq!(error, VerifyError::SessionRevoked);

    app.store
        .set_active(user_id(&token), true, SystemClock.now())
        .await
        .unwrap();
    let start = Instant::now();
    while verifier.health().revocations.unwrap().disabled_users != 0 {
        assert!(start.elapsed() < POLL_INTERVAL + SLACK, "still disabled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Enabled again, the user's old sessions stay revoked.
    assert_eq!(
        verifier.verify(&token).await.unwrap_err(),
        VerifyError::SessionRevoked
    );
    assert!(verifier.health().revocations.unwrap().last_error.is_none());
}

#[tokio::test]
async fn a_verifier_started_after_a_logout_refuses_the_token_at_once() {
    let (app, session) = tessera_with_alice(|_| {}).await;
    let token = token_for(&app, &session, "notebooks").await;
    logout(&app, &session).await;

    // The first poll, awaited by build, is the feed's whole state.
    let verifier = polling_verifier(&app).await;

    assert_eq!(
        verifier.verify(&token).await.unwrap_err(),
        VerifyError::SessionRevoked
    );
    let health = verifier.health().revocations.unwrap();
    assert_eq!(health.revoked_sessions, 1);
    assert!(health.last_success.is_some());
}
