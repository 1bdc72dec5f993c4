use serde_json::Value;

use crate::helpers::{Backend, TestApp, assert_error, spawn_app};

async fn feed(app: &TestApp, since: Option<&str>) -> Value {
    let url = match since {
        Some(cursor) => app.url(&format!("/revocations?since={cursor}")),
        None => app.url("/revocations"),
    };
    let response = app.client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn session_id(token: &str) -> String {
    jsonwebtoken::dangerous::insecure_decode_claims::<Value>(token).unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn logout(app: &TestApp, token: &str) {
    let response = app
        .client
        .delete(app.url("/session"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
}

async fn the_feed_lists_logouts_and_user_changes_after_the_cursor(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.add_user("alice", None).await;
    app.add_user("bob", None).await;
    let first = app.session_token("alice").await;
    let second = app.session_token("bob").await;

    let empty = feed(&app, None).await;
    assert_eq!(empty["entries"], serde_json::json!([]));
    assert_eq!(empty["reset"], true);
    let cursor = empty["cursor"].as_str().unwrap().to_owned();

    logout(&app, &first).await;
    app.store
        .set_active(alice.id, false, chrono::Utc::now())
        .await
        .unwrap();
    let page = feed(&app, Some(&cursor)).await;

    assert_eq!(page["reset"], false);
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["kind"], "session_revoked");
    assert_eq!(entries[0]["id"], session_id(&first));
    assert_eq!(entries[1]["kind"], "user_disabled");
    assert_eq!(entries[1]["id"], alice.id.to_string());
    assert!(entries[0]["at"].is_string());

    let next = page["cursor"].as_str().unwrap().to_owned();
    assert_eq!(
        feed(&app, Some(&next)).await["entries"],
        serde_json::json!([])
    );
    logout(&app, &second).await;
    let later = feed(&app, Some(&next)).await;
    let entries = later["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["id"], session_id(&second));
    // From the start, everything still relevant.
    assert_eq!(
        feed(&app, None).await["entries"].as_array().unwrap().len(),
        3
    );
}

async fn a_cursor_from_elsewhere_resets_and_garbage_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice", None).await;
    let token = app.session_token("alice").await;
    logout(&app, &token).await;

    let foreign = feed(&app, Some("99999")).await;
    assert_eq!(foreign["reset"], true);
    assert_eq!(foreign["entries"].as_array().unwrap().len(), 1);

    for bad in ["abc", "-1", "1.5", "%00"] {
        let response = app
            .client
            .get(app.url(&format!("/revocations?since={bad}")))
            .send()
            .await
            .unwrap();
        assert_error(response, 400, "invalid_request").await;
    }
}

async fn entries_older_than_every_token_are_left_out(backend: Backend) {
    let clock = std::sync::Arc::new(tessera::clock::ManualClock::new(chrono::Utc::now()));
    let app = crate::helpers::spawn_app_with_clock(backend, clock.clone(), |s| {
        s.tokens.authorization_lifetime = std::time::Duration::from_secs(1);
        s.tokens.leeway = std::time::Duration::ZERO;
    })
    .await;
    app.add_user("alice", None).await;
    let token = app.session_token("alice").await;
    logout(&app, &token).await;
    assert_eq!(
        feed(&app, None).await["entries"].as_array().unwrap().len(),
        1
    );

    clock.advance(chrono::TimeDelta::milliseconds(1500));

    assert_eq!(feed(&app, None).await["entries"], serde_json::json!([]));
}

on_both_backends!(
    the_feed_lists_logouts_and_user_changes_after_the_cursor,
    a_cursor_from_elsewhere_resets_and_garbage_is_refused,
    entries_older_than_every_token_are_left_out,
);
