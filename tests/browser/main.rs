//! Browser tests: Tessera's hosted login page in headless Chromium, with two
//! downstream sites, as a person would use them. A binary of its own so it
//! can be run or left out by name (`cargo nextest run --test browser`).
//!
//! They need Debian's `chromium` and `chromium-driver`; without chromedriver
//! they skip loudly on a developer's machine and fail in CI.

#[path = "../api/helpers.rs"]
#[expect(
    dead_code,
    unused_macros,
    reason = "shared with the API tests; this binary uses only part of it"
)]
mod helpers;

mod chrome;
mod django;
mod downstream;
mod hub;

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use fantoccini::Locator;
use tessera::clients::{ClientSettings, DeliveryKind};

use chrome::Chrome;
use downstream::Downstream;
use helpers::{Backend, PASSWORD, TestApp, spawn_app_with};

/// Tessera with two registered downstream sites, `alpha` (audience
/// `notebooks`) and `beta` (audience `billing`), each on a port of its own,
/// and the user `alice`.
struct World {
    app: TestApp,
    alpha: String,
    beta: String,
}

async fn world() -> World {
    let alpha = TcpListener::bind("127.0.0.1:0").unwrap();
    let beta = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = |listener: &TcpListener, id: &str| {
        format!(
            "http://127.0.0.1:{}/{id}",
            listener.local_addr().unwrap().port()
        )
    };
    let (alpha_base, beta_base) = (base(&alpha, "alpha"), base(&beta, "beta"));
    let clients = vec![
        client("alpha", "notebooks", &alpha_base),
        client("beta", "billing", &beta_base),
        // Only for the README's screenshot: a realistic destination.
        client("jupyterhub", "notebooks", "https://hub.example.com/hub"),
    ];
    // The browser does not care which store is behind Tessera; the HTTP
    // tests run every flow on both.
    let app = spawn_app_with(Backend::Sqlite, move |settings| {
        settings.clients = clients.clone();
    })
    .await;
    app.add_user("alice", Some("alice@example.com")).await;
    Downstream::serve(alpha, "alpha", "notebooks", &app.issuer);
    Downstream::serve(beta, "beta", "billing", &app.issuer);
    World {
        app,
        alpha: format!("{alpha_base}/"),
        beta: format!("{beta_base}/"),
    }
}

fn client(id: &str, audience: &str, base: &str) -> ClientSettings {
    ClientSettings {
        id: id.into(),
        audience: audience.into(),
        redirect_uris: vec![format!("{base}/*")],
        scopes: None,
        token_delivery: DeliveryKind::Query,
        param_name: None,
        cookie_name: None,
        cookie_domain: None,
    }
}

async fn text(chrome: &Chrome, css: &str) -> String {
    chrome
        .client
        .wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} on the page: {e}"))
        .text()
        .await
        .unwrap()
}

/// The page's `h1` once it reads `expected`, or what it reads after ten
/// seconds: just after a click, the page being left may still be showing.
async fn heading_becomes(chrome: &Chrome, expected: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = match chrome.client.find(Locator::Css("h1")).await {
            Ok(heading) => heading.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if seen == expected || Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn fill_in(chrome: &Chrome, username: &str, password: &str) {
    let c = &chrome.client;
    let name = c.wait().for_element(Locator::Id("username")).await.unwrap();
    name.clear().await.unwrap();
    name.send_keys(username).await.unwrap();
    let secret = c.find(Locator::Id("password")).await.unwrap();
    secret.clear().await.unwrap();
    secret.send_keys(password).await.unwrap();
    c.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn current(chrome: &Chrome) -> String {
    chrome.client.current_url().await.unwrap().to_string()
}

/// Whether the page is Tessera's login form.
async fn on_login_form(chrome: &Chrome, app: &TestApp) -> bool {
    current(chrome).await.starts_with(&app.url("/login?"))
        && chrome.client.find(Locator::Id("password")).await.is_ok()
}

#[tokio::test]
async fn a_user_signs_in_once_for_two_sites_and_signs_out_of_both() {
    let Some(chrome) = Chrome::start().await else {
        return;
    };
    let world = world().await;
    let c = &chrome.client;

    // First visit: the site sends the browser to Tessera's form.
    c.goto(&world.alpha).await.unwrap();
    assert!(
        on_login_form(&chrome, &world.app).await,
        "{}",
        current(&chrome).await
    );
    assert!(c.title().await.unwrap().starts_with("Sign in"));

    // A wrong password: the generic message, the name kept, the password not.
    fill_in(&chrome, "alice", "not the password").await;
    assert_eq!(
        text(&chrome, "#login-error").await,
        "Incorrect username or password."
    );
    let name = c.find(Locator::Id("username")).await.unwrap();
    assert_eq!(name.prop("value").await.unwrap().as_deref(), Some("alice"));
    let secret = c.find(Locator::Id("password")).await.unwrap();
    assert_eq!(secret.prop("value").await.unwrap().as_deref(), Some(""));

    // The right one: back on the site, which shows who signed in.
    fill_in(&chrome, "alice", PASSWORD).await;
    assert_eq!(text(&chrome, "#user").await, "alice");
    assert_eq!(current(&chrome).await, world.alpha);

    // The second site: signed in with no form.
    c.goto(&world.beta).await.unwrap();
    assert_eq!(text(&chrome, "#user").await, "alice");
    assert_eq!(current(&chrome).await, world.beta);

    // Signing out on the first site asks first, then ends the Tessera
    // session; each site learns it from the revocation feed on its next
    // page.
    c.find(Locator::Id("logout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Id("sign-out"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("password")).await.unwrap();
    assert!(
        on_login_form(&chrome, &world.app).await,
        "alpha is signed out"
    );
    c.goto(&world.beta).await.unwrap();
    c.wait().for_element(Locator::Id("password")).await.unwrap();
    assert!(
        on_login_form(&chrome, &world.app).await,
        "beta is signed out"
    );

    chrome.close().await;
}

#[tokio::test]
async fn a_forged_or_missing_csrf_token_gets_the_403_page() {
    let Some(chrome) = Chrome::start().await else {
        return;
    };
    let world = world().await;
    let c = &chrome.client;

    c.goto(&world.alpha).await.unwrap();
    assert!(on_login_form(&chrome, &world.app).await);
    c.execute(
        "document.querySelector('input[name=csrf_token]').value = arguments[0];",
        vec![serde_json::json!("1999999999.Zm9yZ2Vk")],
    )
    .await
    .unwrap();
    fill_in(&chrome, "alice", PASSWORD).await;
    assert_eq!(
        heading_becomes(&chrome, "This form has expired").await,
        "This form has expired"
    );
    assert!(c.find(Locator::Id("user")).await.is_err());

    c.goto(&world.alpha).await.unwrap();
    assert!(on_login_form(&chrome, &world.app).await);
    c.delete_cookie("tessera_csrf").await.unwrap();
    fill_in(&chrome, "alice", PASSWORD).await;
    assert_eq!(
        heading_becomes(&chrome, "This form has expired").await,
        "This form has expired"
    );

    // A fresh form still works.
    c.goto(&world.alpha).await.unwrap();
    fill_in(&chrome, "alice", PASSWORD).await;
    assert_eq!(text(&chrome, "#user").await, "alice");

    chrome.close().await;
}

#[tokio::test]
async fn open_redirect_attempts_get_the_400_page_and_stay_on_tessera() {
    let Some(chrome) = Chrome::start().await else {
        return;
    };
    let world = world().await;
    let c = &chrome.client;
    let alpha_origin = world.alpha.trim_end_matches("/alpha/");

    // Signed in, so that a mistaken match would redirect at once.
    c.goto(&world.alpha).await.unwrap();
    fill_in(&chrome, "alice", PASSWORD).await;
    assert_eq!(text(&chrome, "#user").await, "alice");

    for return_to in [
        "https://evil.example/".to_owned(),
        "//evil.example/alpha/".to_owned(),
        format!("{alpha_origin}.evil.example/alpha/"),
        "http://alice@evil.example/alpha/".to_owned(),
        format!("{alpha_origin}/alphabet/"),
        format!("{alpha_origin}/alpha/../admin"),
        format!("{alpha_origin}/alpha/%2f%2fevil.example"),
        "javascript:alert(document.domain)".to_owned(),
        world.beta.clone(),
    ] {
        let mut link = url::Url::parse(&world.app.url("/login")).unwrap();
        link.query_pairs_mut()
            .append_pair("client_id", "alpha")
            .append_pair("return_to", &return_to);
        c.goto(link.as_str()).await.unwrap();
        assert_eq!(
            text(&chrome, "h1").await,
            "This sign-in link is not valid",
            "{return_to}"
        );
        assert!(
            current(&chrome)
                .await
                .starts_with(&world.app.url("/login?"))
        );
    }

    chrome.close().await;
}

#[tokio::test]
async fn the_login_page_is_styled_under_its_content_security_policy() {
    let Some(chrome) = Chrome::start().await else {
        return;
    };
    let world = world().await;
    let c = &chrome.client;

    c.goto(&world.alpha).await.unwrap();
    assert!(on_login_form(&chrome, &world.app).await);
    // The stylesheet loaded despite `default-src 'none'`: the button has
    // its colour.
    let button = c.find(Locator::Css("button[type=submit]")).await.unwrap();
    let colour = button.css_value("background-color").await.unwrap();
    assert!(colour.contains("47, 91, 234"), "{colour}");
    let label = c
        .find(Locator::Css("label[for=username]"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(label, "Username");

    let mut link = url::Url::parse(&world.app.url("/login")).unwrap();
    link.query_pairs_mut()
        .append_pair("client_id", "jupyterhub")
        .append_pair("return_to", "https://hub.example.com/hub/home");
    c.goto(link.as_str()).await.unwrap();
    assert!(on_login_form(&chrome, &world.app).await);
    let png = c.screenshot().await.unwrap();
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("login-page.png");
    std::fs::write(&target, &png).unwrap();
    // `UPDATE_SCREENSHOTS=1` refreshes the README's picture.
    if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/login-page.png");
        std::fs::create_dir_all(docs.parent().unwrap()).unwrap();
        std::fs::write(docs, &png).unwrap();
    }
    eprintln!("screenshot: {}", target.display());

    // On a phone-sized window the form still fits without scrolling sideways.
    c.set_window_size(390, 844).await.unwrap();
    let width = c
        .execute("return document.documentElement.scrollWidth;", vec![])
        .await
        .unwrap();
    assert!(width.as_u64().unwrap() <= 390, "scroll width {width}");
    let phone = c.screenshot().await.unwrap();
    std::fs::write(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("login-page-phone.png"),
        phone,
    )
    .unwrap();

    chrome.close().await;
}
