//! The service configured as in a container network: keys from an explicit
//! JWKS URL and the revocation feed found beside it.

use std::time::{Duration, Instant};

use crate::support::notebooks;

#[tokio::test]
async fn after_logout_the_token_is_refused_through_the_feed_beside_the_jwks_url() {
    let app = notebooks(|tessera, settings| {
        settings.jwks_url = Some(tessera.url("/.well-known/jwks.json"));
        settings.poll_revocations = Some(Duration::from_millis(300));
    })
    .await;
    let token = app.token_for("notebooks").await;
    let get = || app.client.get(app.url("/")).bearer_auth(&token).send();
    assert_eq!(get().await.unwrap().status(), 200);

    let logout = app
        .tessera
        .client
        .delete(app.tessera.url("/session"))
        .bearer_auth(&app.session)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);

    let start = Instant::now();
    let refused = loop {
        let response = get().await.unwrap();
        if response.status() != 200 {
            break response;
        }
        assert!(
            start.elapsed() < Duration::from_millis(1300),
            "still accepted after {:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(refused.status(), 401);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["message"], "the token's session has ended");
}
