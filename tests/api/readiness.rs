//! Readiness as a load balancer sees it: a server that cannot load the key
//! whose turn it is to sign refuses to sign and answers not ready, and
//! recovers by itself; the public `/readyz` answer names no file, the admin
//! API does. Lifecycle steps move a manual clock instead of sleeping.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use reqwest::header::RETRY_AFTER;
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use tessera::clients::{ClientSettings, DeliveryKind};
use tessera::clock::{Clock, ManualClock};
use tessera::configuration::Settings;
use tessera::keys;

use crate::helpers::{
    Backend, PASSWORD, TestApp, assert_error, spawn_app_with, spawn_app_with_clock,
};

const HUB: &str = "https://hub.example.com/hub/home";

/// One browser client, and rescans only when a test asks for one.
fn settings(settings: &mut Settings) {
    settings.keys.rescan_interval = Duration::from_secs(3600);
    settings.clients = vec![ClientSettings {
        id: "hub".into(),
        audience: "notebooks".into(),
        redirect_uris: vec!["https://hub.example.com/hub/*".into()],
        scopes: None,
        token_delivery: DeliveryKind::Query,
        param_name: None,
        cookie_name: None,
        cookie_domain: None,
    }];
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The hosted login form, shown and submitted with the test password.
async fn form_login(app: &TestApp, username: &str) -> reqwest::Response {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap();
    let form = browser
        .get(app.url("/login"))
        .query(&[("client_id", "hub"), ("return_to", HUB)])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200, "the form is shown");
    let html = form.text().await.unwrap();
    let marker = r#"name="csrf_token" value=""#;
    let start = html.find(marker).expect("a CSRF field") + marker.len();
    let csrf = &html[start..start + html[start..].find('"').unwrap()];
    browser
        .post(app.url("/login"))
        .form(&[
            ("username", username),
            ("password", PASSWORD),
            ("csrf_token", csrf),
            ("client_id", "hub"),
            ("return_to", HUB),
        ])
        .send()
        .await
        .unwrap()
}

async fn a_restarted_server_that_cannot_load_the_active_key_signs_nothing_until_it_can(
    backend: Backend,
) {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let app = spawn_app_with_clock(backend, clock.clone(), settings).await;
    let first = app.signing_kid();
    app.add_user("alice", None).await;
    let signed_by_first = app.session_token("alice").await;
    let now = clock.now();
    let active = keys::create_key(&app.keys_dir, now + TimeDelta::minutes(1)).unwrap();
    let pending = keys::create_key(&app.keys_dir, now + TimeDelta::hours(1)).unwrap();
    clock.advance(TimeDelta::minutes(2));
    app.key_store.rescan().await;
    assert_eq!(app.signing_kid(), active, "the first key has retired");

    // The active key cannot be used (open to its group: refused even when
    // the tests run as root, whom a mode of 000 would not stop) and the
    // pending one is corrupt; then a server starts on the directory.
    let active_file = app.keys_dir.join(format!("{active}.pem"));
    chmod(&active_file, 0o640);
    std::fs::write(app.keys_dir.join(format!("{pending}.pem")), "garbage").unwrap();
    let restarted = app.restart().await;

    let refused = restarted.login("alice", PASSWORD).await;
    assert_eq!(refused.headers()[RETRY_AFTER], "5");
    let body = assert_error(refused, 503, "unavailable").await;
    assert!(
        body["message"].as_str().unwrap().contains(&active),
        "{body}"
    );
    assert!(!body.to_string().contains(".pem"), "{body}");
    let authorize = restarted.authorize(&signed_by_first, None).await;
    assert_eq!(authorize.headers()[RETRY_AFTER], "5");
    assert_error(authorize, 503, "unavailable").await;
    let refresh = restarted
        .client
        .post(restarted.url("/session/refresh"))
        .bearer_auth(&signed_by_first)
        .send()
        .await
        .unwrap();
    assert_error(refresh, 503, "unavailable").await;
    let form = form_login(&restarted, "alice").await;
    assert_eq!(form.status(), 503);
    assert!(form.headers().contains_key(RETRY_AFTER));
    let ready = restarted
        .client
        .get(restarted.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.headers()[RETRY_AFTER], "5");
    let body = assert_error(ready, 503, "unavailable").await;
    assert!(!body.to_string().contains(".pem"), "{body}");
    // It still verifies with the keys it holds.
    let shown = restarted
        .client
        .get(restarted.url("/session"))
        .bearer_auth(&signed_by_first)
        .send()
        .await
        .unwrap();
    assert_eq!(shown.status(), 200);
    // The server that loaded the key before keeps signing with it.
    assert_eq!(kid_of(&app.session_token("alice").await), active);

    // The file is fixed: the next rescan loads it, and it signs again.
    chmod(&active_file, 0o600);
    restarted.key_store.rescan().await;

    let token = restarted.session_token("alice").await;
    assert_eq!(kid_of(&token), active);
    assert_ne!(kid_of(&token), first);
    let ready = restarted
        .client
        .get(restarted.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let jwks = restarted.jwks().await;
    assert!(jwks.find(&active).is_some());
}

async fn a_pending_key_that_cannot_be_loaded_stops_signing_when_it_activates(backend: Backend) {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let app = spawn_app_with_clock(backend, clock.clone(), settings).await;
    let first = app.signing_kid();
    app.add_user("alice", None).await;
    let pending = keys::create_key(&app.keys_dir, clock.now() + TimeDelta::hours(1)).unwrap();
    std::fs::write(app.keys_dir.join(format!("{pending}.pem")), "garbage").unwrap();
    app.key_store.rescan().await;
    assert_eq!(kid_of(&app.session_token("alice").await), first);

    clock.advance(TimeDelta::hours(2));

    let refused = app.login("alice", PASSWORD).await;
    let body = assert_error(refused, 503, "unavailable").await;
    assert!(
        body["message"].as_str().unwrap().contains(&pending),
        "{body}"
    );
}

async fn readyz_names_no_key_file_and_the_admin_key_list_does(backend: Backend) {
    let app = spawn_app_with(backend, settings).await;
    let signing = app.signing_kid();
    let corrupt = app.keys_dir.join("corrupt.pem");
    std::fs::write(&corrupt, "-----BEGIN PRIVATE KEY-----\ngarbage\n").unwrap();
    chmod(&corrupt, 0o600);
    app.key_store.rescan().await;

    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();

    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body, json!({"status": "ready", "signing_kid": signing}));
    let token = app.admin_token().await;
    let listed = app
        .client
        .get(app.url("/admin/keys"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let body: Value = listed.json().await.unwrap();
    assert_eq!(body["signing_kid"], signing.as_str());
    assert_eq!(body["signing"], true);
    let problems = body["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{body}");
    assert_eq!(problems[0]["file"], corrupt.display().to_string());
    assert!(
        problems[0]["reason"]
            .as_str()
            .unwrap()
            .contains("not a PEM file")
    );
}

on_both_backends!(
    a_restarted_server_that_cannot_load_the_active_key_signs_nothing_until_it_can,
    a_pending_key_that_cannot_be_loaded_stops_signing_when_it_activates,
    readyz_names_no_key_file_and_the_admin_key_list_does,
);
