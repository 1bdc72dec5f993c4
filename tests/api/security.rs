//! Login abuse, audit, and hostile tokens.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use tessera::store::AuditEntry;

use chrono::{TimeDelta, Utc};
use tessera::clock::ManualClock;

use crate::helpers::{
    Backend, PASSWORD, TestApp, assert_error, spawn_app, spawn_app_with, spawn_app_with_clock,
};

async fn login_from(
    app: &TestApp,
    forwarded_for: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    app.client
        .post(app.url("/session"))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
}

/// The audit log, which holds at least `count` entries once what was
/// recorded is stored (it is written in the background).
async fn audit_entries(app: &TestApp, count: usize) -> Vec<AuditEntry> {
    app.audit.flush().await;
    let entries = app.store.audit_tail(1000).await.unwrap();
    assert!(
        entries.len() >= count,
        "{} audit entries, not {count}",
        entries.len()
    );
    entries
}

async fn repeated_failures_are_throttled_with_growing_delays_and_no_lockout(backend: Backend) {
    // The clock stands still: a replica restarts well within the delay.
    let clock = std::sync::Arc::new(ManualClock::new(Utc::now()));
    let app = spawn_app_with_clock(backend, clock.clone(), |s| {
        s.throttle.base_delay = Duration::from_secs(3);
    })
    .await;
    app.add_user("alice", None).await;
    app.add_user("bob", None).await;

    for _ in 0..5 {
        assert_error(
            app.login("alice", "wrong").await,
            401,
            "invalid_credentials",
        )
        .await;
    }
    // The sixth failure starts the first delay...
    assert_error(
        app.login("alice", "wrong").await,
        401,
        "invalid_credentials",
    )
    .await;
    let throttled = app.login("alice", PASSWORD).await;
    let retry_after = throttled.headers()["retry-after"].to_str().unwrap();
    assert_eq!(retry_after, "3");
    assert_error(throttled, 429, "too_many_requests").await;
    // ...for that user name only: bob logs in from the same address.
    assert_eq!(app.login("bob", PASSWORD).await.status(), 200);
    // A second replica on the same database sees the same counters.
    let replica = app.restart().await;
    assert_error(
        replica.login("alice", PASSWORD).await,
        429,
        "too_many_requests",
    )
    .await;

    clock.advance(TimeDelta::milliseconds(3100));

    // No lockout: after the wait the right password works, and resets.
    assert_eq!(app.login("alice", PASSWORD).await.status(), 200);
    assert_error(
        app.login("alice", "wrong").await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_error(
        app.login("alice", "wrong").await,
        401,
        "invalid_credentials",
    )
    .await;
}

async fn the_delay_doubles_with_each_further_failure(backend: Backend) {
    let clock = std::sync::Arc::new(ManualClock::new(Utc::now()));
    let app = spawn_app_with_clock(backend, clock.clone(), |s| {
        s.throttle.user_free_attempts = 1;
        s.throttle.base_delay = std::time::Duration::from_secs(1);
    })
    .await;
    app.add_user("alice", None).await;

    assert_error(
        app.login("alice", "wrong").await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_error(
        app.login("alice", "wrong").await,
        401,
        "invalid_credentials",
    )
    .await;
    let first = app.login("alice", "wrong").await;
    assert_eq!(first.status(), 429);
    clock.advance(TimeDelta::milliseconds(1100));
    assert_error(
        app.login("alice", "wrong").await,
        401,
        "invalid_credentials",
    )
    .await;

    let second = app.login("alice", "wrong").await;

    assert_eq!(second.status(), 429);
    let retry: u64 = second.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 2, "the second delay is longer: {retry}");
}

async fn forwarded_addresses_count_only_behind_a_trusted_proxy(backend: Backend) {
    let trusted = spawn_app_with(backend, |s| {
        s.throttle.user_free_attempts = 2;
        s.throttle.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    trusted.add_user("alice", None).await;
    for _ in 0..3 {
        login_from(&trusted, "203.0.113.1", "alice", "wrong").await;
    }
    assert_eq!(
        login_from(&trusted, "203.0.113.1", "alice", PASSWORD)
            .await
            .status(),
        429
    );
    // Another client behind the same proxy is not throttled.
    assert_eq!(
        login_from(&trusted, "203.0.113.2", "alice", PASSWORD)
            .await
            .status(),
        200
    );
    let entries = audit_entries(&trusted, 5).await;
    assert!(
        entries
            .iter()
            .any(|e| e.ip.as_deref() == Some("203.0.113.2") && e.outcome == "success")
    );

    // Without trust, the header is ignored: changing it does not escape.
    let untrusted = spawn_app_with(backend, |s| s.throttle.user_free_attempts = 2).await;
    untrusted.add_user("alice", None).await;
    for n in 0..3 {
        login_from(&untrusted, &format!("203.0.113.{n}"), "alice", "wrong").await;
    }
    assert_eq!(
        login_from(&untrusted, "198.51.100.9", "alice", PASSWORD)
            .await
            .status(),
        429
    );
}

async fn an_optional_hard_lockout_holds_until_unlocked(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.throttle.lockout_after = Some(3);
        s.throttle.user_free_attempts = 100;
    })
    .await;
    let alice = app.add_user("alice", None).await;
    for _ in 0..3 {
        assert_error(
            app.login("alice", "wrong").await,
            401,
            "invalid_credentials",
        )
        .await;
    }

    let locked = app.login("alice", PASSWORD).await;
    assert!(
        locked.headers().get("retry-after").is_none(),
        "no wait ends a lockout"
    );
    assert_error(locked, 403, "account_locked").await;
    tessera::admin::Admin::new(app.store.as_ref(), "test")
        .unlock(&alice)
        .await
        .unwrap();

    assert_eq!(app.login("alice", PASSWORD).await.status(), 200);
}

/// `count` logins for `username` sent at once, wrong but for the last when
/// `right_last`; returns the answers' statuses and how many passwords were
/// hashed.
async fn concurrent_guesses(
    app: &TestApp,
    username: &str,
    count: usize,
    right_last: bool,
) -> (Vec<u16>, u64) {
    let mut attempts = tokio::task::JoinSet::new();
    for n in 0..count {
        let (client, url) = (app.client.clone(), app.url("/session"));
        let password = if right_last && n + 1 == count {
            PASSWORD
        } else {
            "wrong"
        };
        let body = json!({"username": username, "password": password});
        attempts.spawn(async move {
            let response = client.post(url).json(&body).send().await.unwrap();
            response.status().as_u16()
        });
    }
    let statuses = attempts.join_all().await;
    let metrics = app.metrics().await;
    let hashed = metrics
        .lines()
        .find_map(|line| line.strip_prefix("tessera_password_hash_wait_seconds_count "))
        .map_or(0, |count| count.trim().parse().unwrap());
    (statuses, hashed)
}

async fn concurrent_guesses_hash_no_more_than_the_free_attempts(backend: Backend) {
    // However loaded the machine, a hashed attempt is answered, not shed.
    let app = spawn_app_with(backend, |s| {
        s.hashing.queue_timeout = Duration::from_secs(60);
    })
    .await;
    app.add_user("alice", None).await;

    let (statuses, hashed) = concurrent_guesses(&app, "alice", 60, true).await;

    // Five free attempts, and the one that starts the first delay.
    assert!(hashed <= 5 + 2, "{hashed} hashed: {statuses:?}");
    let answered = statuses.iter().filter(|s| matches!(s, 200 | 401)).count();
    assert_eq!(u64::try_from(answered).unwrap(), hashed, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| matches!(s, 200 | 401 | 429)),
        "{statuses:?}"
    );
}

async fn a_hard_lockout_holds_under_concurrent_guesses(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.throttle.lockout_after = Some(3);
        s.throttle.user_free_attempts = 100;
        s.hashing.queue_timeout = Duration::from_secs(60);
    })
    .await;
    app.add_user("alice", None).await;

    let (statuses, hashed) = concurrent_guesses(&app, "alice", 40, false).await;

    assert_eq!(hashed, 3, "{statuses:?}");
    let locked = statuses.iter().filter(|s| **s == 403).count();
    assert_eq!(locked, 37, "{statuses:?}");
    assert_error(app.login("alice", PASSWORD).await, 403, "account_locked").await;
}

async fn logins_authorizations_logouts_and_changes_are_audited(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.add_user("alice", None).await;
    let disabled = app.add_user("carol", None).await;
    app.store
        .set_active(disabled.id, false, chrono::Utc::now())
        .await
        .unwrap();

    app.login("nobody", PASSWORD).await;
    app.login("alice", "wrong").await;
    app.login("carol", PASSWORD).await;
    let session = app.session_token("alice").await;
    app.authorization_token(&session, None).await;
    app.client
        .delete(app.url("/session"))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    let admin = tessera::admin::Admin::new(app.store.as_ref(), "cli");
    let scopes = [tessera::domain::Scope::parse("read").unwrap()];
    let audience = tessera::domain::Audience::parse("notebooks").unwrap();
    admin.add_grants(&alice, &audience, &scopes).await.unwrap();

    let entries = audit_entries(&app, 7).await;
    let summary: Vec<(String, String, Option<String>)> = entries
        .iter()
        .map(|e| (e.event.clone(), e.outcome.clone(), e.username.clone()))
        .collect();
    let expect = |event: &str, outcome: &str, user: &str| {
        assert!(
            summary.contains(&(event.into(), outcome.into(), Some(user.into()))),
            "{event} {outcome} {user} in {summary:?}"
        );
    };
    expect("login", "unknown_user", "nobody");
    expect("login", "wrong_password", "alice");
    expect("login", "disabled", "carol");
    expect("login", "success", "alice");
    expect("authorize", "success", "alice");
    expect("logout", "success", "alice");
    expect("grant.added", "success", "alice");
    let login = entries
        .iter()
        .find(|e| e.event == "login" && e.outcome == "success")
        .unwrap();
    assert_eq!(login.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(login.user_id, Some(alice.id));
    for entry in &entries {
        assert!(!entry.detail.contains(PASSWORD) && !entry.detail.contains(&session));
    }
}

async fn a_hash_of_old_parameters_is_upgraded_at_login(backend: Backend) {
    let app = spawn_app(backend).await;
    let old = tessera::password::HashParams {
        memory_kib: 8_192,
        iterations: 1,
        parallelism: 1,
    };
    let password = tessera::domain::Password::parse(PASSWORD.into()).unwrap();
    let old_hash = tessera::password::hash(&password, old).unwrap();
    let alice = app.add_user("alice", None).await;
    app.store
        .set_password_hash(alice.id, &old_hash, None, chrono::Utc::now())
        .await
        .unwrap();

    assert_eq!(app.login("alice", PASSWORD).await.status(), 200);

    let stored = app
        .store
        .find_user_by_name("alice")
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    assert_eq!(app.login("alice", PASSWORD).await.status(), 200);
}

async fn hostile_token_headers_and_shapes_are_refused_with_401(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice", None).await;
    let session = app.session_token("alice").await;
    let claims = jsonwebtoken::dangerous::insecure_decode_claims::<Value>(&session).unwrap();
    let keys = app.keys();
    let kid = keys.signing().unwrap().kid().to_owned();
    let sign = |header: Value, claims: &Value| {
        // A real signature over a crafted header, made with the real key.
        let encoded_header = URL_SAFE_NO_PAD.encode(header.to_string());
        let encoded_claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{encoded_header}.{encoded_claims}");
        let pem = std::fs::read(app.keys_dir.join(format!("{kid}.pem"))).unwrap();
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap();
        let signature = jsonwebtoken::crypto::sign(
            signing_input.as_bytes(),
            &key,
            jsonwebtoken::Algorithm::RS256,
        )
        .unwrap();
        format!("{signing_input}.{signature}")
    };

    let mut cases = vec![
        // Keys offered by the token itself are never fetched or trusted.
        sign(
            json!({"alg": "RS256", "jku": "http://127.0.0.1:1/jwks"}),
            &claims,
        ),
        sign(
            json!({"alg": "RS256", "x5u": "http://127.0.0.1:1/cert"}),
            &claims,
        ),
        sign(
            json!({"alg": "RS256", "jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}}),
            &claims,
        ),
        "%%%.###.$$$".to_owned(),
        format!("{}.{}", "a".repeat(5000), "b".repeat(5000)),
    ];
    for (claim, value) in [
        ("exp", json!("tomorrow")),
        ("iat", json!([1])),
        ("aud", json!(5)),
        ("sid", json!({"id": 1})),
        ("token", json!(null)),
        ("sub", json!(false)),
    ] {
        let mut bad = claims.clone();
        bad[claim] = value;
        cases.push(sign(
            json!({"alg": "RS256", "typ": "JWT", "kid": kid}),
            &bad,
        ));
    }
    for token in cases {
        let response = app.authorize(&token, None).await;
        assert_error(response, 401, "invalid_token").await;
    }
}

on_both_backends!(
    repeated_failures_are_throttled_with_growing_delays_and_no_lockout,
    the_delay_doubles_with_each_further_failure,
    forwarded_addresses_count_only_behind_a_trusted_proxy,
    an_optional_hard_lockout_holds_until_unlocked,
    concurrent_guesses_hash_no_more_than_the_free_attempts,
    a_hard_lockout_holds_under_concurrent_guesses,
    logins_authorizations_logouts_and_changes_are_audited,
    a_hash_of_old_parameters_is_upgraded_at_login,
    hostile_token_headers_and_shapes_are_refused_with_401,
);
