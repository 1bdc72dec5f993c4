//! Revocation awareness end to end: the server's revocation feed, polled by
//! the verifier, refuses still-valid tokens of ended sessions and disabled
//! users within one poll interval.

use std::net::TcpListener;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use uuid::Uuid;

use tessera::clock::{Clock, SystemClock};
use tessera_verify::{Verifier, VerifyError, example};

use crate::helpers::TestApp;
use crate::support::{claims_of, tessera_with_alice, token_for};

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
async fn after_logout_the_example_service_refuses_the_unexpired_token_within_one_poll_interval() {
    let (app, session) = tessera_with_alice(|_| {}).await;
    let verifier = polling_verifier(&app).await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(example::serve(listener, verifier).unwrap());
    let token = token_for(&app, &session, "notebooks").await;
    let get = || app.client.get(&address).bearer_auth(&token).send();
    assert_eq!(get().await.unwrap().status(), 200);

    logout(&app, &session).await;
    let start = Instant::now();
    let refused = loop {
        let response = get().await.unwrap();
        if response.status() != 200 {
            break response;
        }
        assert!(
            start.elapsed() < POLL_INTERVAL + SLACK,
            "still accepted after {:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(body["message"], "the token's session has ended");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    assert!(
        claims_of(&token)["exp"].as_u64().unwrap() > now.as_secs(),
        "the token itself is still valid"
    );
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
