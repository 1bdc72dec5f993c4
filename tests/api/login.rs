//! The hosted login page over real HTTP, as a browser without JavaScript
//! would use it: a cookie jar, and redirects read rather than followed.

use std::process::Command;

use reqwest::header::{HeaderMap, LOCATION, RETRY_AFTER, SET_COOKIE};
use reqwest::redirect::Policy;
use reqwest::{Client, Response};
use serde_json::Value;
use tessera::clients::{ClientSettings, DeliveryKind};
use tessera::configuration::Settings;

use crate::helpers::{Backend, PASSWORD, TestApp, spawn_app_with, verify_with_jwks};

const HUB: &str = "https://hub.example.com/hub/home";
const BILLING: &str = "https://billing.example.com/return";
const DASH: &str = "http://127.0.0.1/dash/";

fn client(id: &str, audience: &str, redirect_uris: &[&str]) -> ClientSettings {
    ClientSettings {
        id: id.into(),
        audience: audience.into(),
        redirect_uris: redirect_uris.iter().map(|s| (*s).to_owned()).collect(),
        scopes: None,
        token_delivery: DeliveryKind::Query,
        param_name: None,
        cookie_name: None,
        cookie_domain: None,
    }
}

/// Three clients, one a delivery: `hub` (query), `billing` (fragment, scope
/// `read` required), `dash` (a cookie on Tessera's host).
fn with_clients(settings: &mut Settings) {
    settings.clients = vec![
        client("hub", "notebooks", &["https://hub.example.com/hub/*"]),
        ClientSettings {
            scopes: Some(vec!["read".into()]),
            token_delivery: DeliveryKind::Fragment,
            ..client("billing", "billing", &[BILLING])
        },
        ClientSettings {
            token_delivery: DeliveryKind::Cookie,
            cookie_name: Some("dash_token".into()),
            ..client("dash", "tessera", &["http://127.0.0.1/dash/*"])
        },
    ];
}

async fn spawn(backend: Backend) -> TestApp {
    spawn_app_with(backend, with_clients).await
}

/// A browser: keeps cookies, does not follow redirects.
fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

async fn login_page(browser: &Client, app: &TestApp, client_id: &str, return_to: &str) -> Response {
    browser
        .get(app.url("/login"))
        .query(&[("client_id", client_id), ("return_to", return_to)])
        .send()
        .await
        .expect("GET /login")
}

/// The CSRF token of a rendered login form.
fn csrf_token(html: &str) -> String {
    let marker = r#"name="csrf_token" value=""#;
    let start = html.find(marker).expect("a CSRF field") + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end].to_owned()
}

async fn post_login(browser: &Client, app: &TestApp, fields: &impl serde::Serialize) -> Response {
    browser
        .post(app.url("/login"))
        .form(fields)
        .send()
        .await
        .expect("POST /login")
}

/// Shows the form for `client_id` and submits it.
async fn sign_in(
    browser: &Client,
    app: &TestApp,
    client_id: &str,
    return_to: &str,
    username: &str,
    password: &str,
) -> Response {
    let form = login_page(browser, app, client_id, return_to).await;
    assert_eq!(form.status(), 200, "the form is shown");
    let csrf = csrf_token(&form.text().await.unwrap());
    post_login(
        browser,
        app,
        &[
            ("username", username),
            ("password", password),
            ("csrf_token", &csrf),
            ("client_id", client_id),
            ("return_to", return_to),
        ],
    )
    .await
}

fn location(response: &Response) -> url::Url {
    let location = response
        .headers()
        .get(LOCATION)
        .expect("a Location header")
        .to_str()
        .unwrap();
    url::Url::parse(location).unwrap()
}

/// The `Set-Cookie` header that sets `name`, if any.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

fn assert_security_headers(headers: &HeaderMap) {
    let csp = headers["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-content-type-options"], "nosniff");
}

async fn the_first_visit_shows_a_login_form_with_labels_and_a_csrf_token(backend: Backend) {
    let app = spawn(backend).await;
    let browser = browser();

    let response = login_page(&browser, &app, "hub", HUB).await;

    assert_eq!(response.status(), 200);
    assert_security_headers(response.headers());
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csrf_cookie = set_cookie(response.headers(), "tessera_csrf").expect("a CSRF cookie");
    assert!(csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Lax"));
    assert!(!csrf_cookie.contains("Secure"), "the issuer is http");
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"<label for="username">"#), "{html}");
    assert!(html.contains(r#"<label for="password">"#));
    assert!(html.contains(r#"id="password" name="password" type="password""#));
    assert!(html.contains("hub.example.com"), "the destination is named");
    assert!(!csrf_token(&html).is_empty());
    assert!(!html.contains("<script"), "no JavaScript");
    assert!(!html.contains("style="), "no inline style");
}

async fn logging_in_redirects_to_return_to_with_a_token_for_the_client(backend: Backend) {
    let app = spawn(backend).await;
    let alice = app.add_user("alice", Some("alice@example.com")).await;
    app.grant(&alice, "notebooks", &["read", "write"]).await;
    let browser = browser();

    let response = sign_in(&browser, &app, "hub", HUB, "alice", PASSWORD).await;

    assert_eq!(response.status(), 303);
    assert_security_headers(response.headers());
    let target = location(&response);
    assert_eq!(
        target.as_str().split('?').next().unwrap(),
        HUB,
        "back to return_to"
    );
    let token = target
        .query_pairs()
        .find(|(name, _)| name == "token")
        .expect("a token parameter")
        .1
        .into_owned();
    let claims = verify_with_jwks(&token, &app.jwks().await, &app.issuer, "notebooks")
        .expect("a token verifiable with the JWKS");
    assert_eq!(claims["username"], "alice");
    assert_eq!(claims["cid"], "hub");
    assert_eq!(claims["token"], "auth");
    assert_eq!(claims["scopes"], serde_json::json!(["read", "write"]));

    let session_cookie =
        set_cookie(response.headers(), "tessera_session").expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(session_cookie.contains(attribute), "{session_cookie}");
    }
    assert!(!session_cookie.contains("Secure"), "the issuer is http");
    // The session cookie is a session token, as POST /session gives.
    let session_token = session_cookie
        .trim_start_matches("tessera_session=")
        .split(';')
        .next()
        .unwrap();
    let session = app
        .client
        .get(app.url("/session"))
        .bearer_auth(session_token)
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), 200);
    let session: Value = session.json().await.unwrap();
    assert_eq!(session["username"], "alice");
    assert_eq!(session["client_id"], "hub");
}

/// `/login` alone signs in to Tessera itself: then it says as whom, and
/// every client's login is single sign-on.
async fn the_login_page_alone_signs_in_to_tessera_and_says_as_whom(backend: Backend) {
    let app = spawn(backend).await;
    let alice = app.add_user("alice", None).await;
    app.grant(&alice, "notebooks", &["read"]).await;
    let browser = browser();

    let form = browser.get(app.url("/login")).send().await.unwrap();
    assert_eq!(form.status(), 200);
    assert_security_headers(form.headers());
    let html = form.text().await.unwrap();
    assert!(
        html.contains("to continue to <strong>Tessera</strong>"),
        "{html}"
    );
    let csrf = csrf_token(&html);
    let fields = |password: &'static str| {
        [
            ("username", "alice"),
            ("password", password),
            ("csrf_token", csrf.as_str()),
            ("client_id", ""),
            ("return_to", ""),
        ]
    };
    let wrong = post_login(&browser, &app, &fields("not the password")).await;
    assert_eq!(wrong.status(), 401);
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("Incorrect username or password.")
    );
    // The failed attempt's page set a fresh CSRF token.
    let form = browser.get(app.url("/login")).send().await.unwrap();
    let csrf = csrf_token(&form.text().await.unwrap());
    let signed_in = post_login(
        &browser,
        &app,
        &[
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", csrf.as_str()),
            ("client_id", ""),
            ("return_to", ""),
        ],
    )
    .await;
    assert_eq!(signed_in.status(), 303);
    assert_eq!(location(&signed_in).as_str(), app.url("/login"));
    assert!(set_cookie(signed_in.headers(), "tessera_session").is_some());

    let page = browser.get(app.url("/login")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("You are signed in as alice"), "{html}");
    assert!(html.contains("/logout\">Sign out</a>"), "{html}");
    let hub = login_page(&browser, &app, "hub", HUB).await;
    assert_eq!(hub.status(), 303, "a client signs in without a form");

    // Signed out, the page is the form again.
    let out = log_out(&browser, &app, &[]).await;
    assert_eq!(out.status(), 200);
    let form = browser.get(app.url("/login")).send().await.unwrap();
    assert!(form.text().await.unwrap().contains(r#"name="password""#));
}

async fn a_second_client_signs_in_from_the_session_cookie_without_a_form(backend: Backend) {
    let app = spawn(backend).await;
    let alice = app.add_user("alice", None).await;
    app.grant(&alice, "billing", &["read", "admin"]).await;
    let browser = browser();
    let first = sign_in(&browser, &app, "hub", HUB, "alice", PASSWORD).await;
    assert_eq!(first.status(), 303);

    let response = login_page(&browser, &app, "billing", BILLING).await;

    assert_eq!(response.status(), 303, "no form the second time");
    assert_security_headers(response.headers());
    let target = location(&response);
    assert_eq!(target.query(), None);
    let token = target
        .fragment()
        .and_then(|f| f.strip_prefix("token="))
        .expect("the token in the fragment");
    let claims = verify_with_jwks(token, &app.jwks().await, &app.issuer, "billing").unwrap();
    assert_eq!(claims["username"], "alice");
    assert_eq!(
        claims["cid"], "billing",
        "the client the token is for, not the one signed in through"
    );
    assert_eq!(
        claims["scopes"],
        serde_json::json!(["read"]),
        "only the client's scopes"
    );
}

async fn a_cookie_client_gets_its_token_in_a_cookie_and_a_bare_redirect(backend: Backend) {
    let app = spawn(backend).await;
    app.add_user("alice", None).await;
    let browser = browser();

    let response = sign_in(&browser, &app, "dash", DASH, "alice", PASSWORD).await;

    assert_eq!(response.status(), 303);
    assert_eq!(location(&response).as_str(), DASH);
    let cookie = set_cookie(response.headers(), "dash_token").expect("the token cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("Path=/"));
    assert!(cookie.contains("Max-Age=300"), "{cookie}");
    let token = cookie
        .trim_start_matches("dash_token=")
        .split(';')
        .next()
        .unwrap();
    let claims = verify_with_jwks(token, &app.jwks().await, &app.issuer, "tessera").unwrap();
    assert_eq!(claims["cid"], "dash");
}

async fn a_wrong_password_shows_one_generic_message_and_keeps_only_the_username(backend: Backend) {
    let app = spawn(backend).await;
    app.add_user("alice", None).await;
    let disabled = app.add_user("mallory", None).await;
    app.store
        .set_active(disabled.id, false, chrono::Utc::now())
        .await
        .unwrap();
    let browser = browser();

    let mut messages = Vec::new();
    for (username, password) in [
        ("alice", "wrong password 123"),
        ("nobody", "wrong password 123"),
        ("mallory", PASSWORD),
        ("with space", "wrong password 123"),
    ] {
        let response = sign_in(&browser, &app, "hub", HUB, username, password).await;
        assert_eq!(response.status(), 401, "{username}");
        assert!(response.headers().get(LOCATION).is_none());
        assert!(set_cookie(response.headers(), "tessera_session").is_none());
        assert_security_headers(response.headers());
        let html = response.text().await.unwrap();
        assert!(!html.contains(password), "the password is never echoed");
        assert!(
            html.contains(&format!(r#"value="{username}""#)),
            "the username is kept: {html}"
        );
        let start = html.find(r#"<p class="error""#).expect("an error message");
        let end = start + html[start..].find("</p>").unwrap();
        messages.push(html[start..end].to_owned());
        // The form can be submitted again: it carries a fresh CSRF token.
        assert!(!csrf_token(&html).is_empty());
    }
    assert!(messages[0].contains("Incorrect username or password."));
    assert!(
        messages.iter().all(|m| *m == messages[0]),
        "one message for every failure: {messages:?}"
    );

    // The kept username is escaped, not markup.
    let response = sign_in(&browser, &app, "hub", HUB, r#""><b>x</b>"#, "wrong").await;
    assert_eq!(response.status(), 401);
    let html = response.text().await.unwrap();
    assert!(!html.contains("<b>x</b>"), "{html}");
    assert!(html.contains("&#60;b&#62;x&#60;/b&#62;"), "{html}");

    let retry = sign_in(&browser, &app, "hub", HUB, "alice", PASSWORD).await;
    assert_eq!(retry.status(), 303, "the right password still works");
}

async fn a_missing_or_forged_csrf_token_is_refused_with_403(backend: Backend) {
    let app = spawn(backend).await;
    app.add_user("alice", None).await;
    let browser = browser();
    let form = login_page(&browser, &app, "hub", HUB).await;
    let csrf = csrf_token(&form.text().await.unwrap());
    let (expires, tag) = csrf.split_once('.').unwrap();
    let later = format!("{}.{tag}", expires.parse::<i64>().unwrap() + 3600);
    let past = format!("{}.{tag}", expires.parse::<i64>().unwrap() - 7200);
    let fields = |csrf: &str| -> Vec<(&str, String)> {
        vec![
            ("username", "alice".into()),
            ("password", PASSWORD.into()),
            ("csrf_token", csrf.into()),
            ("client_id", "hub".into()),
            ("return_to", HUB.into()),
        ]
    };

    let forged = [
        String::new(),
        "forged".into(),
        format!("{expires}.AAAA"),
        later,
        past,
    ];
    for token in &forged {
        let response = post_login(&browser, &app, &fields(token)).await;
        assert_eq!(response.status(), 403, "csrf_token = {token:?}");
        assert!(response.headers().get(LOCATION).is_none());
        assert!(set_cookie(response.headers(), "tessera_session").is_none());
        assert_security_headers(response.headers());
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("This form has expired")
        );
    }
    let mut without_field = fields("");
    without_field.retain(|(name, _)| *name != "csrf_token");
    let response = post_login(&browser, &app, &without_field).await;
    assert_eq!(response.status(), 403);

    // A genuine token from another browser (without its cookie) is refused.
    let response = post_login(&self::browser(), &app, &fields(&csrf)).await;
    assert_eq!(response.status(), 403);
    // ... and works in the browser it was issued to.
    let response = post_login(&browser, &app, &fields(&csrf)).await;
    assert_eq!(response.status(), 303);
}

async fn links_that_do_not_match_the_registry_get_a_400_page_never_a_redirect(backend: Backend) {
    let app = spawn(backend).await;
    app.add_user("alice", None).await;
    let browser = browser();

    let attempts: &[(&str, &str)] = &[
        ("nope", HUB),
        ("", HUB),
        ("hub", ""),
        ("hub", "https://evil.example/hub/home"),
        ("hub", "//evil.example"),
        ("hub", "https://hub.example.com.evil.example/hub/"),
        ("hub", "https://hub.example.com@evil.example/hub/"),
        ("hub", "https://hub.example.com\\@evil.example/hub/"),
        ("hub", "https://hub.example.com/hub/%2f%2fevil.example"),
        ("hub", "https://hub.example.com/hub/../admin"),
        ("hub", "https://hub.example.com/hub/..;/admin"),
        ("hub", "https://hub.example.com/hub/%252e%252e/admin"),
        ("hub", "https://hub.example.com/hubbub"),
        ("hub", "http://hub.example.com/hub/"),
        ("hub", "https://hub.example.com:8443/hub/"),
        ("hub", "javascript:alert(1)//hub.example.com/hub/"),
        ("hub", "https://hub.example.com/hub/\n"),
        ("hub", "https://hub.example.com/hub/#x"),
        ("billing", HUB),
    ];
    for (client_id, return_to) in attempts {
        let response = login_page(&browser, &app, client_id, return_to).await;
        assert_eq!(response.status(), 400, "{client_id} {return_to:?}");
        assert!(response.headers().get(LOCATION).is_none());
        assert_security_headers(response.headers());
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("This sign-in link is not valid")
        );
    }
    let half = browser
        .get(app.url("/login?client_id=hub"))
        .send()
        .await
        .unwrap();
    assert_eq!(half.status(), 400, "a client without return_to");
    let twice = browser
        .get(app.url(&format!(
            "/login?client_id=hub&return_to={HUB}&return_to=https://evil.example/"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), 400, "a repeated return_to is refused");

    // A form posted with a valid CSRF token but a tampered return_to: no
    // session, no redirect.
    let form = login_page(&browser, &app, "hub", HUB).await;
    let csrf = csrf_token(&form.text().await.unwrap());
    let response = post_login(
        &browser,
        &app,
        &[
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
            ("client_id", "hub"),
            ("return_to", "https://evil.example/"),
        ],
    )
    .await;
    assert_eq!(response.status(), 400);
    assert!(response.headers().get(LOCATION).is_none());
    assert!(set_cookie(response.headers(), "tessera_session").is_none());

    // Logout too: nothing revoked, no redirect.
    let signed_in = sign_in(&browser, &app, "hub", HUB, "alice", PASSWORD).await;
    assert_eq!(signed_in.status(), 303);
    let response = browser
        .get(app.url("/logout"))
        .query(&[("return_to", "https://evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers().get(LOCATION).is_none());
    let still_signed_in = login_page(&browser, &app, "hub", HUB).await;
    assert_eq!(still_signed_in.status(), 303);
}

/// The session id behind the token a redirect carries.
async fn session_id_of(app: &TestApp, response: &Response) -> String {
    let token = location(response)
        .query_pairs()
        .find(|(name, _)| name == "token")
        .unwrap()
        .1
        .into_owned();
    let claims = verify_with_jwks(&token, &app.jwks().await, &app.issuer, "notebooks").unwrap();
    claims["sid"].as_str().unwrap().to_owned()
}

async fn revoked_sessions(app: &TestApp) -> Vec<String> {
    let feed: Value = app
        .client
        .get(app.url("/revocations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    feed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "session_revoked")
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Shows the logout page for `link` and submits its form.
async fn log_out(browser: &Client, app: &TestApp, link: &[(&str, &str)]) -> Response {
    let page = browser
        .get(app.url("/logout"))
        .query(link)
        .send()
        .await
        .expect("GET /logout");
    assert_eq!(page.status(), 200, "the logout page is shown");
    let csrf = csrf_token(&page.text().await.unwrap());
    let mut fields = vec![("csrf_token", csrf.as_str())];
    fields.extend_from_slice(link);
    browser
        .post(app.url("/logout"))
        .form(&fields)
        .send()
        .await
        .expect("POST /logout")
}

async fn a_link_to_logout_only_asks_and_a_post_without_its_csrf_token_changes_nothing(
    backend: Backend,
) {
    let app = spawn(backend).await;
    app.add_user("alice", None).await;
    let browser = browser();
    let signed_in = sign_in(&browser, &app, "hub", HUB, "alice", PASSWORD).await;
    let sid = session_id_of(&app, &signed_in).await;

    // What a third-party page gets by sending the browser to the link.
    let page = browser
        .get(app.url("/logout"))
        .query(&[("return_to", "https://hub.example.com/hub/")])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_security_headers(page.headers());
    assert!(set_cookie(page.headers(), "tessera_session").is_none());
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("form-action 'self' https://hub.example.com"),
        "the form's redirect is allowed: {csp}"
    );
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"action="http://127.0.0.1:"#), "{html}");
    assert!(html.contains(r#"name="return_to" value="https://hub.example.com/hub/""#));
    assert!(!csrf_token(&html).is_empty());
    assert!(!revoked_sessions(&app).await.contains(&sid));
    assert_eq!(login_page(&browser, &app, "hub", HUB).await.status(), 303);

    // What a cross-site form can post: no valid CSRF token.
    for csrf in ["", "1999999999.Zm9yZ2Vk"] {
        let forged = browser
            .post(app.url("/logout"))
            .form(&[
                ("csrf_token", csrf),
                ("return_to", "https://hub.example.com/hub/"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 403, "{csrf:?}");
        assert!(forged.headers().get(LOCATION).is_none());
    }
    assert!(!revoked_sessions(&app).await.contains(&sid));
    assert_eq!(
        login_page(&browser, &app, "hub", HUB).await.status(),
        303,
        "still signed in"
    );
}

async fn logout_revokes_the_session_clears_the_cookies_and_goes_back(backend: Backend) {
    let app = spawn(backend).await;
    app.add_user("alice", None).await;
    let browser = browser();
    let signed_in = sign_in(&browser, &app, "hub", HUB, "alice", PASSWORD).await;
    let sid = session_id_of(&app, &signed_in).await;

    let response = log_out(
        &browser,
        &app,
        &[("return_to", "https://hub.example.com/hub/")],
    )
    .await;

    assert_eq!(response.status(), 303);
    assert_security_headers(response.headers());
    assert_eq!(
        location(&response).as_str(),
        "https://hub.example.com/hub/",
        "no token on the way back"
    );
    let removal = set_cookie(response.headers(), "tessera_session").expect("a removal");
    assert!(removal.contains("Max-Age=0"), "{removal}");
    let token_removal = set_cookie(response.headers(), "dash_token").expect("a removal");
    assert!(token_removal.contains("Max-Age=0"), "{token_removal}");
    assert!(
        revoked_sessions(&app).await.contains(&sid),
        "the feed has it"
    );
    let again = login_page(&browser, &app, "hub", HUB).await;
    assert_eq!(again.status(), 200, "the form, not single sign-on");
}

async fn the_browser_logout_is_audited_like_the_api_logout(backend: Backend) {
    let app = spawn(backend).await;
    app.add_user("alice", None).await;
    let browser = browser();
    let signed_in = sign_in(&browser, &app, "hub", HUB, "alice", PASSWORD).await;
    let sid = session_id_of(&app, &signed_in).await;

    assert_eq!(log_out(&browser, &app, &[]).await.status(), 200);

    app.audit.flush().await;
    let entries = app.store.audit_tail(100).await.unwrap();
    let logout = entries
        .iter()
        .find(|e| e.event == "logout")
        .expect("a logout entry");
    assert_eq!(logout.outcome, "success");
    assert_eq!(logout.username.as_deref(), Some("alice"));
    assert_eq!(logout.detail, format!("session {sid}"));
    assert!(logout.ip.is_some(), "where it came from");
}

async fn logout_without_return_to_shows_the_signed_out_page(backend: Backend) {
    let app = spawn(backend).await;
    app.add_user("alice", None).await;
    let browser = browser();
    let signed_in = sign_in(&browser, &app, "hub", HUB, "alice", PASSWORD).await;
    let sid = session_id_of(&app, &signed_in).await;

    let response = log_out(&browser, &app, &[("client_id", "hub")]).await;

    assert_eq!(response.status(), 200);
    assert_security_headers(response.headers());
    assert!(response.text().await.unwrap().contains("Signed out"));
    assert!(revoked_sessions(&app).await.contains(&sid));
    // Signing out twice, or without a session, is harmless.
    let twice = log_out(&browser, &app, &[]).await;
    assert_eq!(twice.status(), 200);
}

async fn a_session_cookie_that_is_no_longer_live_leads_back_to_the_form(backend: Backend) {
    let app = spawn(backend).await;
    let alice = app.add_user("alice", None).await;
    let browser = browser();
    let signed_in = sign_in(&browser, &app, "hub", HUB, "alice", PASSWORD).await;
    assert_eq!(signed_in.status(), 303);

    app.store
        .set_active(alice.id, false, chrono::Utc::now())
        .await
        .unwrap();
    let response = login_page(&browser, &app, "hub", HUB).await;

    assert_eq!(response.status(), 200, "the form");
    let removal = set_cookie(response.headers(), "tessera_session").expect("a removal");
    assert!(removal.contains("Max-Age=0"));

    // A cookie that is not a token of ours at all: the form too.
    let garbage = Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
        .get(app.url("/login"))
        .query(&[("client_id", "hub"), ("return_to", HUB)])
        .header("cookie", "tessera_session=not.a.token")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 200);
}

async fn a_user_without_the_clients_scopes_gets_a_403_page(backend: Backend) {
    let app = spawn(backend).await;
    app.add_user("alice", None).await;
    let browser = browser();

    let response = sign_in(&browser, &app, "billing", BILLING, "alice", PASSWORD).await;

    assert_eq!(response.status(), 403);
    assert!(response.headers().get(LOCATION).is_none());
    assert_security_headers(response.headers());
    assert!(
        set_cookie(response.headers(), "tessera_session").is_some(),
        "signed in all the same"
    );
    let html = response.text().await.unwrap();
    assert!(html.contains("No access"), "{html}");
    assert!(html.contains("/logout"), "an offer to sign out");
}

async fn a_busy_hasher_renders_a_friendly_503_page(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        with_clients(settings);
        settings.hashing.concurrency = Some(1);
        settings.hashing.queue = 0;
    })
    .await;
    app.add_user("alice", None).await;
    // Every form first, then every submission at once: one hashing slot
    // and no queue turn all but one away.
    let mut forms = Vec::new();
    for _ in 0..6 {
        let browser = browser();
        let form = login_page(&browser, &app, "hub", HUB).await;
        let csrf = csrf_token(&form.text().await.unwrap());
        forms.push((browser, csrf));
    }
    let logins: Vec<_> = forms
        .into_iter()
        .map(|(browser, csrf)| {
            let url = app.url("/login");
            tokio::spawn(async move {
                browser
                    .post(url)
                    .form(&[
                        ("username", "alice"),
                        ("password", PASSWORD),
                        ("csrf_token", &csrf),
                        ("client_id", "hub"),
                        ("return_to", HUB),
                    ])
                    .send()
                    .await
                    .unwrap()
            })
        })
        .collect();

    let mut busy = 0;
    for login in logins {
        let response = login.await.unwrap();
        match response.status().as_u16() {
            303 => {}
            503 => {
                busy += 1;
                assert_eq!(response.headers()[RETRY_AFTER], "1");
                assert_security_headers(response.headers());
                let html = response.text().await.unwrap();
                assert!(html.contains("Busy right now"), "{html}");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        busy > 0,
        "one hashing slot and no queue: some logins are turned away"
    );
}

async fn cookies_are_secure_and_host_bound_when_the_issuer_is_https(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        with_clients(settings);
        settings.clients.retain(|c| c.id != "dash");
        settings.issuer = Some("https://sso.example.com".into());
    })
    .await;
    let browser = browser();

    let response = login_page(&browser, &app, "hub", HUB).await;

    assert_eq!(response.status(), 200);
    let csrf = set_cookie(response.headers(), "__Host-tessera_csrf").expect("a __Host- cookie");
    assert!(csrf.contains("Secure") && csrf.contains("Path=/") && !csrf.contains("Domain"));
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"action="https://sso.example.com/login""#));
    assert!(html.contains(r#"href="https://sso.example.com/static/tessera.css""#));
}

async fn the_stylesheets_and_the_logo_are_allowed_by_the_policy(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let brand = dir.path().join("brand.css");
    std::fs::write(&brand, ":root { --accent: #0a7d50; }\n").unwrap();
    let brand_path = brand.clone();
    let app = spawn_app_with(backend, move |settings| {
        with_clients(settings);
        settings.login.product_name = "Example SSO".into();
        settings.login.logo_url = Some("https://cdn.example.com/logo.svg".into());
        settings.login.stylesheet = Some(brand_path.clone());
    })
    .await;
    let browser = browser();

    let page = login_page(&browser, &app, "hub", HUB).await;
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let html = page.text().await.unwrap();
    let default_css = browser
        .get(app.url("/static/tessera.css"))
        .send()
        .await
        .unwrap();
    let brand_css = browser
        .get(app.url("/static/brand.css"))
        .send()
        .await
        .unwrap();

    assert!(
        csp.contains("img-src 'self' https://cdn.example.com;"),
        "{csp}"
    );
    assert!(
        csp.contains("form-action 'self' https://hub.example.com;"),
        "the redirect after the form is allowed: {csp}"
    );
    assert!(html.contains("Example SSO"));
    assert!(html.contains(r#"src="https://cdn.example.com/logo.svg""#));
    assert!(html.contains("/static/brand.css"));
    assert_eq!(default_css.status(), 200);
    assert_eq!(
        default_css.headers()["content-type"],
        "text/css; charset=utf-8"
    );
    assert!(default_css.text().await.unwrap().contains(".card"));
    assert_eq!(brand_css.status(), 200);
    assert!(brand_css.text().await.unwrap().contains("#0a7d50"));
}

/// `client_id` at `POST /session` becomes the `cid` of the session's
/// tokens: a registered client, or none, never what a caller makes up.
async fn an_api_login_names_a_registered_client_or_none(backend: Backend) {
    let app = spawn(backend).await;
    app.add_user("alice", None).await;
    let log_in = |client_id: &str| {
        app.client
            .post(app.url("/session"))
            .json(&serde_json::json!({
                "username": "alice", "password": PASSWORD, "client_id": client_id,
            }))
            .send()
    };

    for made_up in ["<script>", "nobody", "HUB"] {
        let body =
            crate::helpers::assert_error(log_in(made_up).await.unwrap(), 400, "invalid_request")
                .await;
        assert_eq!(body["message"], "client_id: not a registered client");
    }
    for (client_id, cid) in [("hub", "hub"), ("", "")] {
        let response = log_in(client_id).await.unwrap();
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        let token = body["token"].as_str().unwrap();
        let authorized = app.authorization_token(token, None).await;
        let claims =
            verify_with_jwks(&authorized, &app.jwks().await, &app.issuer, "tessera").unwrap();
        assert_eq!(claims["cid"], cid);
    }
}

on_both_backends!(
    an_api_login_names_a_registered_client_or_none,
    the_first_visit_shows_a_login_form_with_labels_and_a_csrf_token,
    logging_in_redirects_to_return_to_with_a_token_for_the_client,
    the_login_page_alone_signs_in_to_tessera_and_says_as_whom,
    a_second_client_signs_in_from_the_session_cookie_without_a_form,
    a_cookie_client_gets_its_token_in_a_cookie_and_a_bare_redirect,
    a_wrong_password_shows_one_generic_message_and_keeps_only_the_username,
    a_missing_or_forged_csrf_token_is_refused_with_403,
    links_that_do_not_match_the_registry_get_a_400_page_never_a_redirect,
    a_link_to_logout_only_asks_and_a_post_without_its_csrf_token_changes_nothing,
    logout_revokes_the_session_clears_the_cookies_and_goes_back,
    the_browser_logout_is_audited_like_the_api_logout,
    logout_without_return_to_shows_the_signed_out_page,
    a_session_cookie_that_is_no_longer_live_leads_back_to_the_form,
    a_user_without_the_clients_scopes_gets_a_403_page,
    a_busy_hasher_renders_a_friendly_503_page,
    cookies_are_secure_and_host_bound_when_the_issuer_is_https,
    the_stylesheets_and_the_logo_are_allowed_by_the_policy,
);

#[test]
fn clients_list_prints_the_registered_clients() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tessera.toml");
    std::fs::write(
        &config,
        r#"
[tokens]
allowed_audiences = ["tessera", "notebooks"]

[[clients]]
id = "jupyterhub"
audience = "notebooks"
redirect_uris = ["https://hub.example.com/hub/*"]
scopes = ["read"]
"#,
    )
    .unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["--config", config.to_str().unwrap(), "clients", "list"])
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();

    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let line = stdout
        .lines()
        .find(|l| l.starts_with("jupyterhub"))
        .expect("the client is listed");
    for part in [
        "notebooks",
        "query",
        "read",
        "https://hub.example.com/hub/*",
    ] {
        assert!(line.contains(part), "{part} in {line}");
    }
}

#[test]
fn a_client_of_an_audience_that_is_not_allowed_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tessera.toml");
    std::fs::write(
        &config,
        r#"
[[clients]]
id = "jupyterhub"
audience = "notebooks"
redirect_uris = ["https://hub.example.com/hub/*"]
"#,
    )
    .unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["--config", config.to_str().unwrap(), "clients", "list"])
        .current_dir(dir.path())
        .output()
        .unwrap();

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("tokens.allowed_audiences"), "{stderr}");
}
