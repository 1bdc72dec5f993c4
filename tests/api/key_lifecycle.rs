//! Key rotation as verifiers see it: published before it signs, retired
//! keys still verifying, revocation, files that cannot be used, replicas
//! sharing one directory, and the `tessera keys` commands. Lifecycle steps
//! move a manual clock instead of sleeping; the loop across rotations runs
//! on real time with short intervals.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::jwk::JwkSet;
use serde_json::Value;

use tessera::clock::{Clock, ManualClock};
use tessera::configuration::Settings;
use tessera::keys::{self, KeyState};
use tessera::startup::Application;
use tessera::store::NewSession;

use crate::helpers::{
    Backend, TestApp, TestDatabase, assert_error, spawn_app_with, spawn_app_with_clock,
    verify_with_jwks, verify_with_jwks_requiring,
};

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// When the key `kid` of `app` starts signing.
fn activation_of(app: &TestApp, kid: &str) -> DateTime<Utc> {
    let keys = app.key_store.current();
    keys.statuses(app.key_store.now())
        .into_iter()
        .find(|s| s.kid == kid)
        .and_then(|s| s.activates)
        .expect("the key is loaded")
}

/// Runs `tessera ARGS` on `app`'s database and key directory, successful or
/// not, without blocking this test's runtime, where the server's background
/// tasks (key rescans, the audit writer) run too.
async fn tessera(app: &TestApp, args: &[&str]) -> Output {
    let (database_url, keys_dir) = (app.database.url(), app.keys_dir.clone());
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let scratch = tempfile::tempdir().unwrap();
        Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(&args)
            .current_dir(scratch.path())
            .env("DATABASE_URL", database_url)
            .env("TESSERA_KEYS__DIR", keys_dir)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .expect("run tessera")
    })
    .await
    .unwrap()
}

fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "tessera failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// Log lines written while `f` runs on this thread.
fn logged<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let result = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    (result, text)
}

async fn a_rotated_key_is_in_the_jwks_before_any_token_carries_its_kid(backend: Backend) {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let app = spawn_app_with_clock(backend, clock.clone(), |_| {}).await;
    let old = app.signing_kid();
    app.add_user("alice", None).await;
    let session = app.session_token("alice").await;
    let lifecycle = *app.key_store.current().lifecycle();

    let published_at = clock.now();
    let new = keys::rotate(&app.keys_dir, &lifecycle, published_at).unwrap();
    app.key_store.rescan().await;

    assert!(app.jwks().await.find(&new).is_some());
    let activates = activation_of(&app, &new);
    assert!(activates - published_at >= TimeDelta::seconds(300 + 3600));
    for at in [published_at, activates - TimeDelta::seconds(1)] {
        clock.set(at);
        let token = app.authorization_token(&session, None).await;
        assert_eq!(kid_of(&token), old, "at {at}");
        assert_eq!(kid_of(&app.session_token("alice").await), old, "at {at}");
    }
    clock.set(activates);
    let token = app.authorization_token(&session, None).await;
    assert_eq!(kid_of(&token), new);
    assert_eq!(kid_of(&app.session_token("alice").await), new);
}

async fn a_verifier_that_fetched_the_jwks_once_before_the_rotation_verifies_every_token_across_it(
    backend: Backend,
) {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let app = spawn_app_with_clock(backend, clock.clone(), |_| {}).await;
    app.add_user("alice", None).await;
    let session = app.session_token("alice").await;
    let lifecycle = *app.key_store.current().lifecycle();
    let new = keys::rotate(&app.keys_dir, &lifecycle, clock.now()).unwrap();
    app.key_store.rescan().await;
    let activates = activation_of(&app, &new);

    // The oldest key set that a verifier honouring `max-age` can still hold
    // when the new key starts signing.
    clock.set(activates - TimeDelta::seconds(300));
    let cached = app.jwks().await;
    let mut tokens = Vec::new();
    for at in [
        activates - TimeDelta::seconds(1),
        activates,
        activates + TimeDelta::hours(1),
    ] {
        clock.set(at);
        tokens.push((app.authorization_token(&session, None).await, "tessera"));
        tokens.push((app.session_token("alice").await, app.issuer.as_str()));
    }

    let kids: BTreeSet<String> = tokens.iter().map(|(t, _)| kid_of(t)).collect();
    assert_eq!(kids.len(), 2, "tokens of both keys: {kids:?}");
    for (token, audience) in &tokens {
        verify_with_jwks_requiring(token, &cached, &app.issuer, audience, &["iss", "aud"])
            .expect("verifies with the key set fetched before the rotation");
    }
}

async fn a_key_added_to_the_directory_signs_and_a_removed_one_goes_without_a_restart(
    backend: Backend,
) {
    let app = spawn_app_with(backend, |s| {
        s.keys.rescan_interval = Duration::from_millis(100);
    })
    .await;
    let old = app.signing_kid();
    app.add_user("alice", None).await;

    let new = keys::generate(&app.keys_dir).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.signing_kid() != new {
        assert!(Instant::now() < deadline, "the new key was not picked up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let session = app.session_token("alice").await;
    assert_eq!(kid_of(&session), new);
    let jwks = app.jwks().await;
    assert!(jwks.find(&old).is_some() && jwks.find(&new).is_some());

    std::fs::remove_file(app.keys_dir.join(format!("{old}.pem"))).unwrap();
    while app.jwks().await.find(&old).is_some() {
        assert!(
            Instant::now() < deadline,
            "the removed key is still published"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.authorize(&session, None).await.status(), 200);
}

async fn a_corrupt_file_and_a_world_readable_key_are_skipped_with_a_clear_log_line_while_service_continues(
    backend: Backend,
) {
    use std::os::unix::fs::PermissionsExt;
    // Only this test's rescan reads the directory.
    let app = spawn_app_with(backend, |s| {
        s.keys.rescan_interval = Duration::from_secs(3600);
    })
    .await;
    let signing = app.signing_kid();
    app.add_user("alice", None).await;
    let corrupt = app.keys_dir.join("corrupt.pem");
    std::fs::write(&corrupt, "-----BEGIN PRIVATE KEY-----\ngarbage\n").unwrap();
    std::fs::set_permissions(&corrupt, std::fs::Permissions::from_mode(0o600)).unwrap();
    // Pending: a key that cannot be loaded stops signing once it is active.
    let loose = keys::create_key(&app.keys_dir, Utc::now() + TimeDelta::hours(1)).unwrap();
    std::fs::set_permissions(
        app.keys_dir.join(format!("{loose}.pem")),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();

    let (_, log) = logged(|| app.key_store.rescan_blocking());

    assert!(log.contains("Skipped a key file"), "{log}");
    assert!(
        log.contains("corrupt.pem: not a PEM file; skipped"),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "{loose}.pem: a private key open to group or others (mode 0644)"
        )),
        "{log}"
    );
    let session = app.session_token("alice").await;
    let token = app.authorization_token(&session, None).await;
    assert_eq!(kid_of(&token), signing);
    let jwks = app.jwks().await;
    assert_eq!(jwks.keys.len(), 1);
    assert!(verify_with_jwks(&token, &jwks, &app.issuer, "tessera").is_ok());
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["signing_kid"], signing.as_str());
    let problems = app.key_store.current().problems().to_vec();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems.iter().any(|p| p.file.ends_with("corrupt.pem")));
    assert!(
        problems
            .iter()
            .any(|p| p.file.ends_with(format!("{loose}.pem")))
    );
}

async fn revoking_a_key_drops_it_from_the_jwks_and_its_tokens_are_refused(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.keys.rescan_interval = Duration::from_secs(3600);
    })
    .await;
    let old = app.signing_kid();
    app.add_user("alice", None).await;
    let session = app.session_token("alice").await;

    let revoked = tessera(&app, &["keys", "revoke", &old]).await;
    app.key_store.rescan().await;

    let said = stdout_of(&revoked);
    assert!(said.contains(&format!("Revoked {old}")), "{said}");
    // It was the only key: a replacement signs in its place.
    assert!(said.contains("to sign in place of"), "{said}");
    let jwks = app.jwks().await;
    assert!(jwks.find(&old).is_none());
    let by_kid = app
        .client
        .get(app.url(&format!("/.well-known/jwks.json?kid={old}")))
        .send()
        .await
        .unwrap();
    assert_error(by_kid, 404, "not_found").await;
    let body = assert_error(app.authorize(&session, None).await, 401, "invalid_token").await;
    assert_eq!(body["message"], "the token's signing key has been revoked");
    assert!(app.key_store.current().revoked().contains_key(&old));
    // Verifiers learn of it through the revocation feed.
    let feed: serde_json::Value = app
        .client
        .get(app.url("/revocations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = feed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "key_revoked" && e["id"] == old.as_str());
    assert!(listed, "{feed}");
    let fresh = app.session_token("alice").await;
    assert_ne!(kid_of(&fresh), old);
    assert_eq!(app.authorize(&fresh, None).await.status(), 200);
}

async fn two_instances_sharing_a_directory_with_automatic_rotation_make_one_key_and_serve_the_same_jwks(
    backend: Backend,
) {
    // A minute into a rotation period, so that the next slot is far enough
    // away to be created at once.
    let period = 4 * 3600;
    let start = (Utc::now().timestamp() / period + 1) * period + 60;
    let clock = Arc::new(ManualClock::new(
        DateTime::from_timestamp(start, 0).unwrap(),
    ));
    let configure = |s: &mut Settings| {
        s.keys.rotate_every = Some(Duration::from_secs(4 * 3600));
        s.keys.rescan_interval = Duration::from_secs(3600);
    };
    let first = spawn_app_with_clock(backend, clock.clone(), configure).await;
    let second = first.restart().await;
    let every = TimeDelta::hours(4);

    // Each period, both replicas find the next rotation due at once.
    for _ in 0..2 {
        let (a, b) = tokio::join!(
            first.key_store.rotate_if_due(),
            second.key_store.rotate_if_due()
        );
        a.unwrap();
        b.unwrap();
        clock.advance(every);
    }
    first.key_store.rescan().await;
    second.key_store.rescan().await;

    let mut files: Vec<String> = std::fs::read_dir(&first.keys_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let slots: Vec<&String> = files.iter().filter(|f| f.ends_with("-auto.pem")).collect();
    // The first key, and one key for each of the two slots.
    assert_eq!(files.len(), 3, "{files:?}");
    assert_eq!(slots.len(), 2, "{files:?}");
    let jwks_of = |app: &TestApp| {
        let url = app.url("/.well-known/jwks.json");
        async move { reqwest::get(url).await.unwrap().bytes().await.unwrap() }
    };
    let (a, b) = tokio::join!(jwks_of(&first), jwks_of(&second));
    assert_eq!(a, b);
    let jwks: JwkSet = serde_json::from_slice(&a).unwrap();
    assert_eq!(jwks.keys.len(), 3);
    assert_eq!(first.signing_kid(), second.signing_kid());
}

#[tokio::test]
async fn without_a_key_and_with_generation_off_the_service_refuses_to_start_saying_what_to_do() {
    let database = TestDatabase::create(Backend::Sqlite).await;
    let keys = tempfile::tempdir().unwrap();
    let mut settings = Settings {
        bind: "127.0.0.1:0".into(),
        database_url: database.url().into(),
        ..Settings::default()
    };
    settings.keys.dir = keys.path().to_path_buf();
    settings.keys.generate = false;

    let error = Application::build(settings).await.err().unwrap();

    let message = format!("{error:#}");
    assert!(message.contains("no signing key"), "{message}");
    assert!(message.contains("tessera keys rotate --now"), "{message}");
    assert!(message.contains("keys.generate = true"), "{message}");
}

async fn the_key_commands_rotate_list_and_export_public_keys(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.keys.rescan_interval = Duration::from_secs(3600);
    })
    .await;
    let old = app.signing_kid();
    app.add_user("alice", None).await;
    let session = app.session_token("alice").await;
    let token = app.authorization_token(&session, None).await;

    let rotated = stdout_of(&tessera(&app, &["keys", "rotate"]).await);
    let new = rotated
        .split_whitespace()
        .nth(2)
        .unwrap()
        .trim_end_matches(':')
        .to_owned();
    let listed = stdout_of(&tessera(&app, &["keys", "list"]).await);
    let out = tempfile::tempdir().unwrap();
    let exported = tessera(
        &app,
        &["keys", "export-public", out.path().to_str().unwrap()],
    )
    .await;
    app.key_store.rescan().await;

    assert!(
        rotated.contains("published now, it signs from"),
        "{rotated}"
    );
    let state_of = |kid: &str| {
        listed
            .lines()
            .find(|line| line.starts_with(kid))
            .and_then(|line| line.split_whitespace().nth(1))
            .map(str::to_owned)
    };
    assert_eq!(state_of(&old).as_deref(), Some("active"), "{listed}");
    assert_eq!(state_of(&new).as_deref(), Some("published"), "{listed}");
    stdout_of(&exported);
    for kid in [&old, &new] {
        assert!(out.path().join(format!("{kid}.pem")).is_file());
    }
    // As a djangorestframework-sso "otherapp" does: the file named by kid.
    let pem = std::fs::read(out.path().join(format!("{}.pem", kid_of(&token)))).unwrap();
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(&pem).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["tessera"]);
    assert!(jsonwebtoken::decode::<Value>(&token, &key, &validation).is_ok());
    // Published by the running service at once, signing only later.
    assert!(app.jwks().await.find(&new).is_some());
    assert_eq!(kid_of(&app.authorization_token(&session, None).await), old);
    let statuses = app.key_store.current().statuses(Utc::now());
    assert_eq!(statuses[1].state, KeyState::Published);
    // Exporting into the private key directory is refused.
    let refused = tessera(
        &app,
        &["keys", "export-public", app.keys_dir.to_str().unwrap()],
    )
    .await;
    assert!(!refused.status.success());
}

async fn refresh_moves_a_session_to_the_active_key_and_the_old_token_stops_working(
    backend: Backend,
) {
    let app = spawn_app_with(backend, |s| {
        s.keys.rescan_interval = Duration::from_secs(3600);
    })
    .await;
    let old_kid = app.signing_kid();
    app.add_user("alice", None).await;
    let old = app.session_token("alice").await;
    let new_kid = keys::generate(&app.keys_dir).unwrap();
    app.key_store.rescan().await;

    let response = refresh(&app, &old).await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    let refreshed = body["token"].as_str().unwrap().to_owned();
    let old_claims = jsonwebtoken::dangerous::insecure_decode_claims::<Value>(&old).unwrap();
    assert_eq!(body["session_id"], old_claims["sid"]);
    assert_eq!(kid_of(&refreshed), new_kid);
    let message = "the session token has been replaced by a newer one";
    let refused = assert_error(app.authorize(&old, None).await, 401, "invalid_token").await;
    assert_eq!(refused["message"], message);
    let again = assert_error(refresh(&app, &old).await, 401, "invalid_token").await;
    assert_eq!(again["message"], message);
    assert_eq!(app.authorize(&refreshed, None).await.status(), 200);
    let shown: Value = app
        .client
        .get(app.url("/session"))
        .bearer_auth(&refreshed)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["kid"], new_kid.as_str());
    let now = Utc::now();
    assert!(
        app.store
            .live_sessions_signed_by(&old_kid, now)
            .await
            .unwrap()
            .is_empty()
    );
    // The refreshed token can be refreshed in turn.
    assert_eq!(refresh(&app, &refreshed).await.status(), 200);
}

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .post(app.url("/session/refresh"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn tokens_signed_by_a_retired_key_keep_verifying_until_they_expire(backend: Backend) {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let app = spawn_app_with_clock(backend, clock.clone(), |s| {
        s.keys.rescan_interval = Duration::from_secs(3600);
    })
    .await;
    let old = app.signing_kid();
    app.add_user("alice", None).await;
    let session = app.session_token("alice").await;
    let token = app.authorization_token(&session, None).await;
    let lifecycle = *app.key_store.current().lifecycle();
    let new = keys::rotate(&app.keys_dir, &lifecycle, clock.now()).unwrap();
    app.key_store.rescan().await;
    let retired_at = activation_of(&app, &new);
    clock.set(retired_at);

    let keys = app.key_store.current();
    let status = keys.statuses(clock.now()).remove(0);
    assert_eq!(
        (status.kid.as_str(), status.state),
        (old.as_str(), KeyState::Retired)
    );
    let until = status.verifies_until.unwrap();
    assert_eq!(until, retired_at + TimeDelta::seconds(300 + 30));
    // Still published and verifying: its authorization token, and its
    // session token at /authorize.
    assert!(verify_with_jwks(&token, &app.jwks().await, &app.issuer, "tessera").is_ok());
    assert_eq!(kid_of(&app.authorization_token(&session, None).await), new);
    // Prune keeps it while its tokens may be valid...
    let early = keys::prune(
        &keys,
        &app.keys_dir,
        app.store.as_ref(),
        until - TimeDelta::seconds(1),
        false,
    )
    .await
    .unwrap();
    assert_eq!(early, keys::PruneReport::default());
    // ...and, after that, while the session signed with it lives.
    let kept = keys::prune(&keys, &app.keys_dir, app.store.as_ref(), until, false)
        .await
        .unwrap();
    assert!(kept.deleted.is_empty());
    assert_eq!(kept.kept[0].kid, old);
    assert!(app.keys_dir.join(format!("{old}.pem")).is_file());
    // Once the session has moved to the new key, the old key goes.
    let moved: Value = refresh(&app, &session).await.json().await.unwrap();
    let pruned = keys::prune(&keys, &app.keys_dir, app.store.as_ref(), until, false)
        .await
        .unwrap();
    assert_eq!(pruned.deleted, std::slice::from_ref(&old));
    app.key_store.rescan().await;
    assert!(app.jwks().await.find(&old).is_none());
    assert_eq!(
        app.authorize(moved["token"].as_str().unwrap(), None)
            .await
            .status(),
        200
    );
}

async fn prune_refuses_while_a_session_depends_on_a_key_and_names_it(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.keys.rescan_interval = Duration::from_secs(3600);
    })
    .await;
    let at = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().to_utc();
    // Retired in 2020 when `middle` activated; `middle` retired only now,
    // when the service's own key activated.
    let old = keys::create_key(&app.keys_dir, at("2020-01-01T00:00:00Z")).unwrap();
    let middle = keys::create_key(&app.keys_dir, at("2020-01-02T00:00:00Z")).unwrap();
    let alice = app.add_user("alice", None).await;
    let session = app
        .store
        .create_session(
            NewSession {
                id: uuid::Uuid::new_v4(),
                user_id: alice.id,
                client_id: "",
                ip: None,
                user_agent: None,
                kid: &old,
                expires_at: None,
                token_id: "a-token",
            },
            chrono::Utc::now(),
        )
        .await
        .unwrap();

    let refused = tessera(&app, &["keys", "prune"]).await;
    let listed = stdout_of(&tessera(&app, &["keys", "list"]).await);

    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains(&old) && said.contains(&session.id.to_string()),
        "{said}"
    );
    assert!(said.contains("--revoke-sessions"), "{said}");
    assert!(app.keys_dir.join(format!("{old}.pem")).is_file());
    let line = listed.lines().find(|l| l.starts_with(&old)).unwrap();
    assert!(line.contains("retired") && line.ends_with(" 1"), "{listed}");

    let pruned = stdout_of(&tessera(&app, &["keys", "prune", "--revoke-sessions"]).await);

    assert!(pruned.contains(&format!("Deleted {old}.")), "{pruned}");
    assert!(pruned.contains("Revoked 1 session(s)."), "{pruned}");
    assert!(!app.keys_dir.join(format!("{old}.pem")).exists());
    assert!(app.keys_dir.join(format!("{middle}.pem")).is_file());
    let (ended, _) = app.store.find_session(session.id).await.unwrap().unwrap();
    assert!(ended.revoked_at.is_some());
}

/// A verifier as a downstream service runs one: it fetches the JWKS, keeps
/// it for the `max-age` the response allows, and never refetches because a
/// `kid` is unknown, so a key that signs before it is published fails here.
struct CachingVerifier {
    url: String,
    issuer: String,
    jwks: JwkSet,
    fetched: Instant,
    max_age: Duration,
}

impl CachingVerifier {
    async fn new(app: &TestApp) -> Self {
        let url = app.url("/.well-known/jwks.json");
        let (jwks, max_age) = Self::fetch(&url).await;
        Self {
            url,
            issuer: app.issuer.clone(),
            jwks,
            fetched: Instant::now(),
            max_age,
        }
    }

    async fn fetch(url: &str) -> (JwkSet, Duration) {
        let response = reqwest::get(url).await.unwrap();
        let max_age = response.headers()["cache-control"]
            .to_str()
            .unwrap()
            .split(',')
            .find_map(|d| d.trim().strip_prefix("max-age="))
            .and_then(|secs| secs.parse().ok())
            .map(Duration::from_secs)
            .expect("a max-age");
        (response.json().await.unwrap(), max_age)
    }

    async fn refresh_if_stale(&mut self) {
        if self.fetched.elapsed() >= self.max_age {
            (self.jwks, self.max_age) = Self::fetch(&self.url).await;
            self.fetched = Instant::now();
        }
    }

    fn verify(&self, token: &str, audience: &str) -> Result<(), String> {
        let kid = kid_of(token);
        let jwk = self
            .jwks
            .find(&kid)
            .ok_or_else(|| format!("{kid} is not in the cached key set"))?;
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["iss", "aud", "sub"]);
        jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map(drop)
            .map_err(|e| format!("{kid}: {e}"))
    }
}

/// The "done when": logins, authorizations and verifications run
/// without pause while the service rotates its key three times by itself,
/// and not one verification fails. Rotation every 3 s, each key published
/// 1.5 s (max-age 1 s + lead 0.5 s) before it signs, rescans every 100 ms.
async fn a_login_authorize_verify_loop_runs_across_three_rotations_with_zero_failed_verifications(
    backend: Backend,
) {
    let app = spawn_app_with(backend, |s| {
        s.keys.jwks_max_age = Duration::from_secs(1);
        s.keys.publish_lead = Duration::from_millis(500);
        s.keys.rotate_every = Some(Duration::from_secs(3));
        s.keys.rescan_interval = Duration::from_millis(100);
    })
    .await;
    app.add_user("alice", None).await;
    let first_session = app.session_token("alice").await;
    let mut verifier = CachingVerifier::new(&app).await;
    let mut issued: Vec<(String, String)> = Vec::new();
    let mut failures = Vec::new();
    let mut kids = BTreeSet::new();
    let mut rounds = 0;
    let deadline = Instant::now() + Duration::from_secs(60);

    while kids.len() < 4 && Instant::now() < deadline {
        rounds += 1;
        let session = app.session_token("alice").await;
        let mut round = vec![(session.clone(), app.issuer.clone())];
        // A fresh session and the first one, signed by a retired key by now.
        for held in [&session, &first_session] {
            round.push((
                app.authorization_token(held, None).await,
                "tessera".to_owned(),
            ));
        }
        verifier.refresh_if_stale().await;
        for (token, audience) in round {
            kids.insert(kid_of(&token));
            if let Err(error) = verifier.verify(&token, &audience) {
                failures.push(error);
            }
            issued.push((token, audience));
        }
    }

    // Every token issued across the rotations still verifies at the end.
    verifier.refresh_if_stale().await;
    for (token, audience) in &issued {
        if let Err(error) = verifier.verify(token, audience) {
            failures.push(format!("at the end: {error}"));
        }
    }
    assert!(failures.is_empty(), "failed verifications: {failures:?}");
    assert!(
        kids.len() >= 4,
        "three rotations in time: saw {kids:?} in {rounds} rounds"
    );
}

on_both_backends!(
    refresh_moves_a_session_to_the_active_key_and_the_old_token_stops_working,
    tokens_signed_by_a_retired_key_keep_verifying_until_they_expire,
    prune_refuses_while_a_session_depends_on_a_key_and_names_it,
    a_corrupt_file_and_a_world_readable_key_are_skipped_with_a_clear_log_line_while_service_continues,
    a_rotated_key_is_in_the_jwks_before_any_token_carries_its_kid,
    a_verifier_that_fetched_the_jwks_once_before_the_rotation_verifies_every_token_across_it,
    a_key_added_to_the_directory_signs_and_a_removed_one_goes_without_a_restart,
    revoking_a_key_drops_it_from_the_jwks_and_its_tokens_are_refused,
    two_instances_sharing_a_directory_with_automatic_rotation_make_one_key_and_serve_the_same_jwks,
    the_key_commands_rotate_list_and_export_public_keys,
    a_login_authorize_verify_loop_runs_across_three_rotations_with_zero_failed_verifications,
);
