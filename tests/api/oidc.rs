//! The OpenID Connect endpoints over real HTTP, as a relying party and a
//! browser without JavaScript use them: the code flow with PKCE through the
//! hosted login page, the token endpoint's grants, userinfo, revocation and
//! the end-session endpoint, and the cases that must fail.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::header::{CACHE_CONTROL, LOCATION};
use reqwest::redirect::Policy;
use reqwest::{Client, Response};
use secrecy::ExposeSecret;
use serde_json::Value;
use tessera::clock::{Clock, ManualClock, SystemClock};
use tessera::oauth::clients::{ClientSpec, OAuthClients};
use tessera::store::User;

use crate::helpers::{
    Backend, PASSWORD, TestApp, spawn_app, spawn_app_with_clock, verify_with_jwks,
};

const HUB_CALLBACK: &str = "http://127.0.0.1:8000/hub/oauth_callback";
const HUB_HOME: &str = "http://127.0.0.1:8000/hub/";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

struct World {
    app: TestApp,
    alice: User,
    /// The `hub` client's secret.
    secret: String,
}

async fn register(app: &TestApp, spec: ClientSpec) -> Option<String> {
    let allowed: Vec<String> = vec!["tessera".into(), "notebooks".into(), "billing".into()];
    let registered = OAuthClients::new(app.store.as_ref(), &allowed, &SystemClock, "test")
        .register(spec)
        .await
        .unwrap();
    registered.secret.map(|s| s.expose_secret().to_owned())
}

/// Tessera with a confidential `hub` client (audience `notebooks`, the
/// grant `notebooks`/`access` required), alice who holds it and bob who
/// does not.
async fn world(backend: Backend) -> World {
    world_on(spawn_app(backend).await).await
}

async fn world_on(app: TestApp) -> World {
    let alice = app.add_user("alice", Some("alice@example.com")).await;
    app.grant(&alice, "notebooks", &["access", "read"]).await;
    let bob = app.add_user("bob", None).await;
    app.grant(&bob, "notebooks", &["read"]).await;
    let secret = register(
        &app,
        ClientSpec {
            id: "hub".into(),
            redirect_uris: vec![HUB_CALLBACK.into()],
            post_logout_redirect_uris: vec![HUB_HOME.into()],
            audience: "notebooks".into(),
            scopes: vec!["access".into(), "read".into()],
            grant_types: vec![
                "authorization_code".into(),
                "refresh_token".into(),
                "client_credentials".into(),
                "urn:ietf:params:oauth:grant-type:token-exchange".into(),
            ],
            required_grant: Some(("notebooks".into(), "access".into())),
            ..ClientSpec::default()
        },
    )
    .await
    .unwrap();
    World { app, alice, secret }
}

async fn verified(app: &TestApp, token: &str, audience: &str) -> Value {
    verify_with_jwks(token, &app.jwks().await, &app.issuer, audience)
        .expect("verifies with the JWKS")
}

/// A browser: keeps cookies, does not follow redirects.
fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

fn authorize_query(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut query: Vec<(String, String)> = [
        ("response_type", "code"),
        ("client_id", "hub"),
        ("redirect_uri", HUB_CALLBACK),
        ("scope", "openid profile email"),
        ("state", "st-1"),
        ("nonce", "n-1"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    for (name, value) in extra {
        query.retain(|(k, _)| k != name);
        if !value.is_empty() {
            query.push(((*name).to_owned(), (*value).to_owned()));
        }
    }
    query
}

async fn get_authorize(browser: &Client, app: &TestApp, query: &[(String, String)]) -> Response {
    browser
        .get(app.url("/oauth2/authorize"))
        .query(query)
        .send()
        .await
        .unwrap()
}

fn field(html: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("a {name} field"))
        + marker.len();
    let end = start + html[start..].find('"').unwrap();
    // As a browser reads the attribute.
    html[start..end]
        .replace("&#38;", "&")
        .replace("&amp;", "&")
        .replace("&#47;", "/")
}

fn location(response: &Response) -> url::Url {
    let location = response.headers().get(LOCATION).expect("a Location header");
    url::Url::parse(location.to_str().unwrap()).unwrap()
}

fn param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Signs in on the login page the authorization endpoint shows, and
/// follows the redirects to the client: the redirect URI with its query.
async fn sign_in(
    browser: &Client,
    app: &TestApp,
    username: &str,
    query: &[(String, String)],
) -> url::Url {
    let mut url = url::Url::parse(&app.url("/oauth2/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs(query);
    sign_in_at(browser, app, username, url).await
}

async fn sign_in_at(browser: &Client, app: &TestApp, username: &str, url: url::Url) -> url::Url {
    let form = browser.get(url).send().await.unwrap();
    assert_eq!(form.status(), 200, "the login form");
    let html = form.text().await.unwrap();
    let posted = browser
        .post(app.url("/login"))
        .form(&[
            ("username", username),
            ("password", PASSWORD),
            ("csrf_token", &field(&html, "csrf_token")),
            ("client_id", ""),
            ("return_to", ""),
            ("authorization", &field(&html, "authorization")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 303, "signed in");
    let again = location(&posted);
    assert_eq!(again.path(), "/oauth2/authorize");
    let back = browser.get(again).send().await.unwrap();
    assert_eq!(back.status(), 303);
    location(&back)
}

/// An authorization token holding `tessera:introspect`, of a user `svc`.
async fn introspector(app: &TestApp) -> String {
    let service = app.add_user("svc", None).await;
    app.grant(&service, "tessera", &["tessera:introspect"])
        .await;
    let session = app.session_token("svc").await;
    app.authorization_token(&session, Some(serde_json::json!({"audience": "tessera"})))
        .await
}

async fn introspected(app: &TestApp, caller: &str, token: String) -> Value {
    app.client
        .post(app.url("/introspect"))
        .bearer_auth(caller)
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()
}

async fn token(app: &TestApp, secret: &str, form: &[(&str, &str)]) -> Response {
    app.client
        .post(app.url("/oauth2/token"))
        .basic_auth("hub", Some(secret))
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn exchange(app: &TestApp, secret: &str, code: &str) -> Response {
    token(
        app,
        secret,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", HUB_CALLBACK),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
}

async fn oauth_error(response: Response, status: u16, code: &str) {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
}

async fn the_code_flow_signs_in_and_issues_verified_tokens(backend: Backend) {
    let World {
        app, alice, secret, ..
    } = world(backend).await;
    let browser = browser();
    let back = sign_in(&browser, &app, "alice", &authorize_query(&[])).await;
    assert_eq!(&back.as_str()[..HUB_CALLBACK.len()], HUB_CALLBACK);
    assert_eq!(param(&back, "state").as_deref(), Some("st-1"));
    assert_eq!(
        param(&back, "iss").as_deref(),
        Some(app.issuer.as_str()),
        "RFC 9207"
    );
    let code = param(&back, "code").unwrap();

    let response = exchange(&app, &secret, &code).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "openid profile email access read");
    let access = tokens["access_token"].as_str().unwrap();
    let claims = verified(&app, access, "notebooks").await;
    assert_eq!(claims["client_id"], "hub");
    assert_eq!(claims["scope"], "openid profile email access read");
    assert_eq!(claims["scopes"], serde_json::json!(["access", "read"]));
    assert_eq!(claims["sub"], alice.id.to_string());

    let id_token = verified(&app, tokens["id_token"].as_str().unwrap(), "hub").await;
    assert_eq!(id_token["nonce"], "n-1");
    assert_eq!(id_token["preferred_username"], "alice");
    assert_eq!(id_token["email"], "alice@example.com");
    assert_eq!(id_token["email_verified"], true);
    assert_eq!(id_token["sub"], alice.id.to_string());
    assert!(id_token["auth_time"].as_i64().unwrap() <= id_token["iat"].as_i64().unwrap());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access.as_bytes());
    assert_eq!(
        id_token["at_hash"],
        URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16])
    );

    let userinfo: Value = app
        .client
        .get(app.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(userinfo["sub"], alice.id.to_string());
    assert_eq!(userinfo["preferred_username"], "alice");
    assert_eq!(userinfo["groups"], serde_json::json!(["access", "read"]));

    // Single sign-on: the next request needs no form.
    let again = get_authorize(&browser, &app, &authorize_query(&[("state", "st-2")])).await;
    assert_eq!(again.status(), 303, "signed in already");
    assert_eq!(param(&location(&again), "state").as_deref(), Some("st-2"));
    // prompt=login and max_age=0 ask for the password again, and the
    // sign-in that follows completes.
    for extra in [("prompt", "login"), ("max_age", "0")] {
        let forced = get_authorize(&browser, &app, &authorize_query(&[extra])).await;
        assert_eq!(forced.status(), 200, "{extra:?} shows the form");
        let back = sign_in(&browser, &app, "alice", &authorize_query(&[extra])).await;
        assert!(param(&back, "code").is_some(), "{extra:?}: {back}");
    }
}

async fn refresh_tokens_rotate_and_a_reused_one_revokes_its_family(backend: Backend) {
    let World { app, secret, .. } = world(backend).await;
    let back = sign_in(&browser(), &app, "alice", &authorize_query(&[])).await;
    let tokens: Value = exchange(&app, &secret, &param(&back, "code").unwrap())
        .await
        .json()
        .await
        .unwrap();
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |token: String| {
        let app = &app;
        let secret = &secret;
        async move { token_refresh(app, secret, &token).await }
    };
    // A token that only names the family was never issued: refused, and
    // the family lives on, at the token endpoint and the revocation one.
    let forged = format!("{}{}", &first[..32], "A".repeat(43));
    oauth_error(refresh(forged.clone()).await, 400, "invalid_grant").await;
    let revoked = app
        .client
        .post(app.url("/oauth2/revoke"))
        .basic_auth("hub", Some(&secret))
        .form(&[("token", forged.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    // Asking for more than was granted is refused before the token is spent.
    let wider = token(
        &app,
        &secret,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &first),
            ("scope", "openid profile email admin"),
        ],
    )
    .await;
    oauth_error(wider, 400, "invalid_scope").await;
    let response = refresh(first.clone()).await;
    assert_eq!(response.status(), 200);
    let second: Value = response.json().await.unwrap();
    let second = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second, "rotated");
    // Narrowing is allowed; widening is not.
    let narrowed = token(
        &app,
        &secret,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &second),
            ("scope", "openid read"),
        ],
    )
    .await;
    assert_eq!(narrowed.status(), 200);
    let narrowed: Value = narrowed.json().await.unwrap();
    assert_eq!(narrowed["scope"], "openid read");
    let third = narrowed["refresh_token"].as_str().unwrap().to_owned();

    // The first token again: refused, and the whole family with it.
    oauth_error(refresh(first).await, 400, "invalid_grant").await;
    oauth_error(refresh(third).await, 400, "invalid_grant").await;
    assert!(app.audit_events("oauth.refresh_reused").await.len() == 1);
}

/// Refresh tokens issued before a token named its family, when every token
/// of a family was a row of its own: the migration to one row a family
/// keeps the live one, which rotates into the current form, and a spent
/// one presented again still revokes the family.
async fn a_refresh_token_of_the_earlier_form_keeps_working_after_the_migration(backend: Backend) {
    let World { app, secret, .. } = world(backend).await;
    let back = sign_in(&browser(), &app, "alice", &authorize_query(&[])).await;
    let tokens: Value = exchange(&app, &secret, &param(&back, "code").unwrap())
        .await
        .json()
        .await
        .unwrap();
    let current = tokens["refresh_token"].as_str().unwrap();
    let family = uuid::Uuid::try_parse(&current[..32]).unwrap();
    // The family as the earlier form stored it: two tokens, one spent.
    let (live, spent) = ("L".repeat(43), "S".repeat(43));
    let earlier = format!(
        "insert into oauth_refresh_tokens (token_hash, family_id, client_id, session_id, \
         scope, created_at, used_at) \
         select '{}', family_id, client_id, session_id, scope, created_at, null \
         from oauth_refresh_families where family_id = $1; \
         insert into oauth_refresh_tokens (token_hash, family_id, client_id, session_id, \
         scope, created_at, used_at) \
         select '{}', family_id, client_id, session_id, scope, created_at, created_at \
         from oauth_refresh_families where family_id = $1",
        sha256_hex(&live),
        sha256_hex(&spent),
    );
    let migration = std::fs::read_to_string(format!(
        "{}/migrations/{}/20261206000000_refresh_token_families.sql",
        env!("CARGO_MANIFEST_DIR"),
        match backend {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    ))
    .unwrap();
    let carried_over = migration
        .split("-- Tokens of the 43-character form")
        .nth(1)
        .and_then(|rest| rest.split_once("insert"))
        .map(|(_, statement)| format!("insert{}", statement.split(';').next().unwrap()))
        .expect("the migration carries live tokens over");
    let statements = earlier.split("; ").map(str::to_owned).chain([
        "delete from oauth_refresh_families where family_id = $1".to_owned(),
        carried_over,
    ]);
    for statement in statements {
        app.database.execute_with_id(&statement, family).await;
    }

    // The live token rotates, into a token that names its family.
    let response = token_refresh(&app, &secret, &live).await;
    assert_eq!(response.status(), 200);
    let rotated: Value = response.json().await.unwrap();
    let rotated = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert!(
        rotated.starts_with(&family.simple().to_string()),
        "{rotated}"
    );
    // The spent one revokes the family, the new token included.
    oauth_error(
        token_refresh(&app, &secret, &spent).await,
        400,
        "invalid_grant",
    )
    .await;
    oauth_error(
        token_refresh(&app, &secret, &rotated).await,
        400,
        "invalid_grant",
    )
    .await;
    oauth_error(
        token_refresh(&app, &secret, &live).await,
        400,
        "invalid_grant",
    )
    .await;
}

fn sha256_hex(value: &str) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, value.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn token_refresh(app: &TestApp, secret: &str, refresh_token: &str) -> Response {
    token(
        app,
        secret,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

async fn a_replayed_code_is_refused_and_revokes_what_it_issued(backend: Backend) {
    let World { app, secret, .. } = world(backend).await;
    let back = sign_in(&browser(), &app, "alice", &authorize_query(&[])).await;
    let code = param(&back, "code").unwrap();
    let tokens: Value = exchange(&app, &secret, &code).await.json().await.unwrap();
    oauth_error(exchange(&app, &secret, &code).await, 400, "invalid_grant").await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    oauth_error(
        token_refresh(&app, &secret, refresh_token).await,
        400,
        "invalid_grant",
    )
    .await;
}

async fn pkce_and_the_redirect_uri_are_checked_at_the_token_endpoint(backend: Backend) {
    let World { app, secret, .. } = world(backend).await;
    let browser = browser();
    sign_in(&browser, &app, "alice", &authorize_query(&[])).await;
    let code = || async {
        let response = get_authorize(&browser, &app, &authorize_query(&[])).await;
        param(&location(&response), "code").unwrap()
    };
    let wrong_verifier = "x".repeat(43);
    for (verifier, redirect_uri) in [
        (Some(wrong_verifier.as_str()), HUB_CALLBACK),
        (None, HUB_CALLBACK),
        (Some(VERIFIER), "http://127.0.0.1:8000/hub/oauth_callback/"),
        (
            Some(VERIFIER),
            "http://127.0.0.1:8000/hub/oauth_callback?x=1",
        ),
    ] {
        let code = code().await;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect_uri),
        ];
        if let Some(verifier) = verifier {
            form.push(("code_verifier", verifier));
        }
        oauth_error(token(&app, &secret, &form).await, 400, "invalid_grant").await;
    }
    // A wrong secret, and no secret at all.
    let code = code().await;
    oauth_error(exchange(&app, "wrong", &code).await, 401, "invalid_client").await;
    let no_auth = app
        .client
        .post(app.url("/oauth2/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", "hub"),
        ])
        .send()
        .await
        .unwrap();
    oauth_error(no_auth, 401, "invalid_client").await;
    // The code was not spent by those failures of the client's.
    assert_eq!(exchange(&app, &secret, &code).await.status(), 200);
}

async fn bad_authorization_requests_get_an_error_page_or_an_error_redirect(backend: Backend) {
    let World { app, .. } = world(backend).await;
    let browser = browser();
    // The client or the redirect URI cannot be trusted: a page, no redirect.
    for extra in [
        [("client_id", "nobody")],
        [("client_id", "")],
        [("redirect_uri", "http://127.0.0.1:8000/hub/oauth_callback/")],
        [(
            "redirect_uri",
            "http://127.0.0.1:8000/hub/oauth_callback?next=/",
        )],
        [("redirect_uri", "https://evil.example.com/cb")],
        // Any port on loopback is for public (native) clients only.
        [("redirect_uri", "http://127.0.0.1:8001/hub/oauth_callback")],
    ] {
        let response = get_authorize(&browser, &app, &authorize_query(&extra)).await;
        assert_eq!(response.status(), 400, "{extra:?}");
        assert!(response.headers().get(LOCATION).is_none(), "{extra:?}");
    }
    // The rest: back to the client, with the error, its state and iss.
    for (extra, code) in [
        (vec![("prompt", "none")], "login_required"),
        (vec![("scope", "openid billing:admin")], "invalid_scope"),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge_method", "")], "invalid_request"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (
            vec![("response_type", "code id_token")],
            "unsupported_response_type",
        ),
        (vec![("prompt", "none login")], "invalid_request"),
    ] {
        let response = get_authorize(&browser, &app, &authorize_query(&extra)).await;
        assert_eq!(response.status(), 303, "{extra:?}");
        let back = location(&response);
        assert!(back.as_str().starts_with(HUB_CALLBACK), "{extra:?}");
        assert_eq!(param(&back, "error").as_deref(), Some(code), "{extra:?}");
        assert_eq!(param(&back, "state").as_deref(), Some("st-1"));
        assert_eq!(param(&back, "iss").as_deref(), Some(app.issuer.as_str()));
        assert!(param(&back, "code").is_none());
    }
}

async fn a_user_without_the_required_grant_is_denied_and_public_clients_need_pkce(
    backend: Backend,
) {
    let World { app, .. } = world(backend).await;
    let back = sign_in(&browser(), &app, "bob", &authorize_query(&[])).await;
    assert_eq!(param(&back, "error").as_deref(), Some("access_denied"));
    assert!(param(&back, "code").is_none());

    register(
        &app,
        ClientSpec {
            id: "cli".into(),
            public: true,
            redirect_uris: vec!["http://127.0.0.1:9999/cb".into()],
            audience: "notebooks".into(),
            ..ClientSpec::default()
        },
    )
    .await;
    let browser = browser();
    let base = [
        ("client_id", "cli"),
        ("redirect_uri", "http://127.0.0.1:43210/cb"),
    ];
    let mut without_pkce = base.to_vec();
    without_pkce.extend([("code_challenge", ""), ("code_challenge_method", "")]);
    let response = get_authorize(&browser, &app, &authorize_query(&without_pkce)).await;
    assert_eq!(
        param(&location(&response), "error").as_deref(),
        Some("invalid_request")
    );
    // A loopback redirect URI matches with any port (RFC 8252 §7.3).
    let back = sign_in(&browser, &app, "alice", &authorize_query(&base)).await;
    let code = param(&back, "code").expect("a code");
    let response = app
        .client
        .post(app.url("/oauth2/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "cli"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:43210/cb"),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

async fn client_credentials_and_token_exchange_issue_access_tokens(backend: Backend) {
    let World {
        app, alice, secret, ..
    } = world(backend).await;
    let response = token(
        &app,
        &secret,
        &[("grant_type", "client_credentials"), ("scope", "read")],
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body.get("refresh_token").is_none());
    let claims = verified(&app, body["access_token"].as_str().unwrap(), "notebooks").await;
    assert_eq!(claims["sub"], "hub");
    assert_eq!(claims["client_id"], "hub");
    assert_eq!(claims["scope"], "read");
    // Introspection: active while the client is.
    let caller = introspector(&app).await;
    let service_token = body["access_token"].as_str().unwrap().to_owned();
    let active = introspected(&app, &caller, service_token.clone()).await;
    assert_eq!(active["active"], true, "{active}");
    assert_eq!(active["client_id"], "hub");
    app.store
        .set_oauth_client_active("hub", false, SystemClock.now())
        .await
        .unwrap();
    assert_eq!(
        introspected(&app, &caller, service_token).await["active"],
        false
    );
    app.store
        .set_oauth_client_active("hub", true, SystemClock.now())
        .await
        .unwrap();
    oauth_error(
        token(
            &app,
            &secret,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "tessera:admin"),
            ],
        )
        .await,
        400,
        "invalid_scope",
    )
    .await;
    oauth_error(
        token(
            &app,
            &secret,
            &[("grant_type", "client_credentials"), ("scope", "openid")],
        )
        .await,
        400,
        "invalid_scope",
    )
    .await;

    let session = app.session_token("alice").await;
    let response = token(
        &app,
        &secret,
        &[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", &session),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
            ("audience", "notebooks"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    let claims = verified(&app, body["access_token"].as_str().unwrap(), "notebooks").await;
    assert_eq!(claims["sub"], alice.id.to_string());
    assert_eq!(claims["scopes"], serde_json::json!(["access", "read"]));
    oauth_error(
        token(
            &app,
            &secret,
            &[
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:token-exchange",
                ),
                ("subject_token", "not-a-token"),
                ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
            ],
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
    oauth_error(
        token(&app, &secret, &[("grant_type", "password")]).await,
        400,
        "unsupported_grant_type",
    )
    .await;
}

async fn logging_out_ends_the_session_its_refresh_tokens_and_silent_sign_in(backend: Backend) {
    let World { app, secret, .. } = world(backend).await;
    let browser = browser();
    let back = sign_in(&browser, &app, "alice", &authorize_query(&[])).await;
    let tokens: Value = exchange(&app, &secret, &param(&back, "code").unwrap())
        .await
        .json()
        .await
        .unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();
    // A relying party's form from another site comes without the cookie:
    // it is sent on as a GET, which carries it.
    let posted = self::browser()
        .post(app.url("/oauth2/logout"))
        .form(&[("id_token_hint", id_token), ("state", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 303);
    let again = location(&posted);
    assert_eq!(again.path(), "/oauth2/logout");
    assert_eq!(param(&again, "id_token_hint").as_deref(), Some(id_token));
    assert_eq!(param(&again, "state").as_deref(), Some("x"));
    // An unregistered post-logout URI: a page, nothing ends.
    let refused = browser
        .get(app.url("/oauth2/logout"))
        .query(&[
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", "https://evil.example.com/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let response = browser
        .get(app.url("/oauth2/logout"))
        .query(&[
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", HUB_HOME),
            ("state", "bye"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let back = location(&response);
    assert!(back.as_str().starts_with(HUB_HOME));
    assert_eq!(param(&back, "state").as_deref(), Some("bye"));

    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    oauth_error(
        token_refresh(&app, &secret, refresh_token).await,
        400,
        "invalid_grant",
    )
    .await;
    let userinfo = app
        .client
        .get(app.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 401);
    let silent = get_authorize(&browser, &app, &authorize_query(&[("prompt", "none")])).await;
    assert_eq!(
        param(&location(&silent), "error").as_deref(),
        Some("login_required")
    );
}

async fn revocation_and_introspection_understand_refresh_tokens(backend: Backend) {
    let World { app, secret, .. } = world(backend).await;
    let back = sign_in(&browser(), &app, "alice", &authorize_query(&[])).await;
    let tokens: Value = exchange(&app, &secret, &param(&back, "code").unwrap())
        .await
        .json()
        .await
        .unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let caller = introspector(&app).await;
    let introspect = |token: String| introspected(&app, &caller, token);
    let active = introspect(refresh_token.to_owned()).await;
    assert_eq!(active["active"], true, "{active}");
    assert_eq!(active["token_type"], "refresh_token");
    assert_eq!(active["client_id"], "hub");

    let revoked = app
        .client
        .post(app.url("/oauth2/revoke"))
        .basic_auth("hub", Some(&secret))
        .form(&[
            ("token", refresh_token),
            ("token_type_hint", "refresh_token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(introspect(refresh_token.to_owned()).await["active"], false);
    oauth_error(
        token_refresh(&app, &secret, refresh_token).await,
        400,
        "invalid_grant",
    )
    .await;
    // An unknown token is no error (RFC 7009 §2.2).
    let unknown = app
        .client
        .post(app.url("/oauth2/revoke"))
        .basic_auth("hub", Some(&secret))
        .form(&[("token", "unknown")])
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 200);
}

async fn failed_client_authentication_is_throttled(backend: Backend) {
    let World { app, .. } = world(backend).await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let response = token(&app, "wrong", &[("grant_type", "client_credentials")]).await;
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses[0], 401);
    assert_eq!(*statuses.last().unwrap(), 429, "{statuses:?}");
}

/// The token endpoint keeps the clients it reads for
/// `oauth.client_cache_ttl`: a change through a replica's admin API applies
/// there at once, a rotated secret works at once on every replica, and a
/// disable made on another replica applies there once the time is up.
async fn client_changes_reach_every_replica(backend: Backend) {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = spawn_app_with_clock(backend, clock.clone(), |settings| {
        settings.oauth.client_cache_ttl = std::time::Duration::from_secs(60);
    })
    .await;
    let World { app, secret, .. } = world_on(app).await;
    let replica = app.restart().await;
    let credentials = [("grant_type", "client_credentials")];
    for server in [&app, &replica] {
        assert_eq!(token(server, &secret, &credentials).await.status(), 200);
    }
    let admin = app.admin_token().await;
    let post = |path: &'static str| app.call(&admin, reqwest::Method::POST, path, None);

    let rotated: Value = post("/admin/clients/hub/secret")
        .await
        .json()
        .await
        .unwrap();
    let rotated = rotated["client_secret"].as_str().unwrap();
    oauth_error(
        token(&app, &secret, &credentials).await,
        401,
        "invalid_client",
    )
    .await;
    assert_eq!(token(&app, rotated, &credentials).await.status(), 200);
    assert_eq!(
        token(&replica, rotated, &credentials).await.status(),
        200,
        "the replica kept the old secret's client, and reads it again"
    );

    assert_eq!(post("/admin/clients/hub/disable").await.status(), 204);
    oauth_error(
        token(&app, rotated, &credentials).await,
        401,
        "invalid_client",
    )
    .await;
    assert_eq!(
        token(&replica, rotated, &credentials).await.status(),
        200,
        "the replica uses the client it keeps"
    );
    clock.advance(chrono::TimeDelta::seconds(61));
    oauth_error(
        token(&replica, rotated, &credentials).await,
        401,
        "invalid_client",
    )
    .await;

    assert_eq!(post("/admin/clients/hub/enable").await.status(), 204);
    assert_eq!(token(&app, rotated, &credentials).await.status(), 200);
}

/// A refresh token from a sign-in of alice's.
async fn signed_in_refresh_token(app: &TestApp, secret: &str) -> String {
    let back = sign_in(&browser(), app, "alice", &authorize_query(&[])).await;
    let tokens: Value = exchange(app, secret, &param(&back, "code").unwrap())
        .await
        .json()
        .await
        .unwrap();
    tokens["refresh_token"].as_str().unwrap().to_owned()
}

/// On Postgres rotations are written in batches: one whose family's row
/// another transaction holds gives up after the writers' lock timeout with
/// a 503 and its token unspent, and holds up the others no longer.
#[tokio::test]
async fn a_refresh_blocked_by_a_locked_row_fails_for_now_and_spends_nothing() {
    use sqlx::{Connection, PgConnection};
    let World { app, secret, .. } = world(Backend::Postgres).await;
    let blocked = signed_in_refresh_token(&app, &secret).await;
    let other = signed_in_refresh_token(&app, &secret).await;
    let family = uuid::Uuid::parse_str(&blocked[..32]).unwrap();

    let mut holder = PgConnection::connect(&app.database.url()).await.unwrap();
    let mut held = holder.begin().await.unwrap();
    sqlx::query("select 1 from oauth_refresh_families where family_id = $1 for update")
        .bind(family)
        .execute(&mut *held)
        .await
        .unwrap();
    let waiting = token_refresh(&app, &secret, &blocked);
    let behind = async {
        // Sent once the blocked one waits, so that it queues behind it.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        token_refresh(&app, &secret, &other).await
    };
    let (waited, behind) = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        tokio::join!(waiting, behind)
    })
    .await
    .expect("neither refresh hangs");
    assert_eq!(waited.status(), 503);
    assert!(waited.headers().contains_key("retry-after"));
    assert_eq!(behind.status(), 200, "the refresh behind it goes through");

    held.rollback().await.unwrap();
    assert_eq!(
        token_refresh(&app, &secret, &blocked).await.status(),
        200,
        "the blocked token was not spent"
    );
}

/// openid-client (panva), from the npm registry, as a relying party:
/// discovery, code + PKCE, the ID token checked against the JWKS, userinfo,
/// refresh with rotation (a reused token refused), client credentials,
/// token exchange and revocation. Basic authentication on Postgres, the
/// body on SQLite (openid-client's default).
async fn openid_client_signs_in_and_uses_every_grant(backend: Backend) {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};

    let World { app, secret, .. } = world(backend).await;
    let session = app.session_token("alice").await;
    let interop = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    let method = match backend {
        Backend::Postgres => "basic",
        Backend::Sqlite => "post",
    };
    let mut child = Command::new("node")
        .arg("openid_client.mjs")
        .current_dir(&interop)
        .env("ISSUER", &app.issuer)
        .env("CLIENT_ID", "hub")
        .env("CLIENT_SECRET", &secret)
        .env("REDIRECT_URI", HUB_CALLBACK)
        .env("SCOPE", "openid profile email")
        .env("AUTH_METHOD", method)
        .env("EXTRA", "1")
        .env("SESSION_TOKEN", &session)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node must be installed, with `npm ci` in tests/interop (.ci/run does it)");
    let stdout = child.stdout.take().unwrap();
    let (lines, first) = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = Vec::new();
        loop {
            let line = lines
                .next()
                .expect("openid-client printed its steps")
                .unwrap();
            let step: Value = serde_json::from_str(&line).unwrap();
            seen.push(step.clone());
            if step["step"] == "authorization_url" || step["step"] == "summary" {
                return (lines, seen);
            }
        }
    })
    .await
    .unwrap();
    let authorization = first.last().unwrap();
    assert_eq!(authorization["step"], "authorization_url", "{first:?}");
    let url = url::Url::parse(authorization["url"].as_str().unwrap()).unwrap();
    let back = sign_in_at(&browser(), &app, "alice", url).await;
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{back}").unwrap();
    drop(stdin);
    let (rest, output) = tokio::task::spawn_blocking(move || {
        let rest: Vec<Value> = lines
            .map(|line| serde_json::from_str(&line.unwrap()).unwrap())
            .collect();
        (rest, child.wait_with_output().unwrap())
    })
    .await
    .unwrap();
    let summary = rest.last().expect("a summary");
    assert_eq!(
        summary["ok"],
        true,
        "{rest:#?}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let step = |name: &str| rest.iter().find(|s| s["step"] == name).unwrap();
    assert_eq!(step("refresh_1")["rotated"], true);
    assert_eq!(step("refresh_reuse_refused")["ok"], true);
    assert_eq!(step("userinfo")["userinfo"]["preferred_username"], "alice");
    let claims = &step("authorization_code")["tokens"]["id_token_claims"];
    assert_eq!(claims["aud"], "hub");
}

on_both_backends!(
    openid_client_signs_in_and_uses_every_grant,
    the_code_flow_signs_in_and_issues_verified_tokens,
    refresh_tokens_rotate_and_a_reused_one_revokes_its_family,
    a_refresh_token_of_the_earlier_form_keeps_working_after_the_migration,
    a_replayed_code_is_refused_and_revokes_what_it_issued,
    pkce_and_the_redirect_uri_are_checked_at_the_token_endpoint,
    bad_authorization_requests_get_an_error_page_or_an_error_redirect,
    a_user_without_the_required_grant_is_denied_and_public_clients_need_pkce,
    client_credentials_and_token_exchange_issue_access_tokens,
    logging_out_ends_the_session_its_refresh_tokens_and_silent_sign_in,
    revocation_and_introspection_understand_refresh_tokens,
    failed_client_authentication_is_throttled,
    client_changes_reach_every_replica,
);
