//! Browsers: signed in through Tessera's login page, which hands the token
//! over as `?token=`; the service moves it into a cookie and out of the
//! URL, and sends a browser without a usable token to the login page.

use reqwest::header::{LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::{Value, json};

use crate::helpers::PASSWORD;
use crate::support::{
    CLIENT_ID, Running, assert_error, cookie_pair, notebooks, set_cookie, with_client,
};

const HTML: &str = "text/html,application/xhtml+xml,*/*;q=0.8";

fn location(response: &reqwest::Response) -> String {
    response.headers()[LOCATION].to_str().unwrap().to_owned()
}

/// Where the service sends a browser that asked for `path` to log in.
fn login_link(app: &Running, path: &str) -> String {
    let mut url = url::Url::parse(&app.tessera.url("/login")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", CLIENT_ID)
        .append_pair("return_to", &app.url(path));
    url.into()
}

/// The CSRF token of a rendered login form.
fn csrf_token(html: &str) -> String {
    let marker = r#"name="csrf_token" value=""#;
    let start = html.find(marker).expect("a CSRF field") + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end].to_owned()
}

#[tokio::test]
async fn the_login_page_hand_over_is_moved_into_a_cookie_and_out_of_the_url() {
    let app = notebooks(with_client).await;
    let token = app.token_for("notebooks").await;

    let handed_over = app
        .client
        .get(app.url("/app"))
        .query(&[("view", "grid"), ("token", &token)])
        .header("accept", HTML)
        .send()
        .await
        .unwrap();

    assert_eq!(handed_over.status(), 303);
    assert_eq!(location(&handed_over), "/app?view=grid");
    assert_eq!(handed_over.headers()["referrer-policy"], "no-referrer");
    let cookie = set_cookie(handed_over.headers(), "notebooks_token").expect("a token cookie");
    assert_eq!(cookie_pair(&cookie), format!("notebooks_token={token}"));
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "the page is http: {cookie}");

    let page = app
        .client
        .get(app.url("/app?view=grid"))
        .header("cookie", cookie_pair(&cookie))
        .header("accept", HTML)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Signed in as <strong>alice</strong>"),
        "{html}"
    );
    assert!(html.contains("read write"), "{html}");

    let whoami = app
        .client
        .get(app.url("/"))
        .header("cookie", cookie_pair(&cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(whoami.status(), 200);
    let body: Value = whoami.json().await.unwrap();
    assert_eq!(body["username"], "alice");
    assert_eq!(body["scopes"], json!(["read", "write"]));
}

#[tokio::test]
async fn a_hand_over_to_an_https_page_sets_a_secure_cookie() {
    let app = notebooks(with_client).await;
    let token = app.token_for("notebooks").await;

    // As behind a proxy that ends TLS.
    let handed_over = app
        .client
        .get(app.url("/app"))
        .query(&[("token", &token)])
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();

    assert_eq!(handed_over.status(), 303);
    let cookie = set_cookie(handed_over.headers(), "notebooks_token").unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn a_browser_without_a_token_signs_in_at_the_login_page_and_comes_back() {
    let app = notebooks(with_client).await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap();

    let anonymous = browser
        .get(app.url("/app"))
        .header("accept", HTML)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 303);
    assert_eq!(location(&anonymous), login_link(&app, "/app"));

    let form = browser.get(location(&anonymous)).send().await.unwrap();
    assert_eq!(form.status(), 200, "Tessera shows its form for the client");
    let csrf = csrf_token(&form.text().await.unwrap());
    let return_to = app.url("/app");
    let logged_in = browser
        .post(app.tessera.url("/login"))
        .form(&[
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
            ("client_id", CLIENT_ID),
            ("return_to", &return_to),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(logged_in.status(), 303);
    let back = location(&logged_in);
    assert!(
        back.starts_with(&format!("{return_to}?token=")),
        "the login page hands the token over in the query: {back}"
    );

    let handed_over = browser
        .get(&back)
        .header("accept", HTML)
        .send()
        .await
        .unwrap();
    assert_eq!(handed_over.status(), 303);
    assert_eq!(location(&handed_over), "/app");

    let page = browser
        .get(app.url("/app"))
        .header("accept", HTML)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Signed in as <strong>alice</strong>"),
        "{html}"
    );
}

#[tokio::test]
async fn a_token_cookie_that_no_longer_verifies_sends_the_browser_to_log_in_again() {
    let app = notebooks(with_client).await;

    let stale = app
        .client
        .get(app.url("/app"))
        .header("cookie", "notebooks_token=not.a.token")
        .header("accept", HTML)
        .send()
        .await
        .unwrap();

    assert_eq!(stale.status(), 303);
    assert_eq!(location(&stale), login_link(&app, "/app"));
    let removal = stale
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("notebooks_token=;"))
        .expect("the cookie is dropped")
        .to_owned();
    assert!(removal.contains("Max-Age=0"), "{removal}");
}

#[tokio::test]
async fn without_a_client_id_a_browser_gets_401_rather_than_a_login_page() {
    let app = notebooks(|_, _| {}).await;

    let anonymous = app
        .client
        .get(app.url("/app"))
        .header("accept", HTML)
        .send()
        .await
        .unwrap();

    assert_error(anonymous, 401, "invalid_token").await;
}
