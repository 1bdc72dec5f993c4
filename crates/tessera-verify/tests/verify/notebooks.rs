//! The example downstream service, started in-process, answering real
//! tokens: 200 with who the caller is, 401 without a valid token, 403
//! without the scope a route needs.

use std::net::TcpListener;

use serde_json::{Value, json};

use tessera_verify::example;

use crate::helpers::TestApp;
use crate::support::{discovering_verifier, tessera_with_alice, token_for};

/// Tessera with alice, the example service in front of a discovering
/// verifier, and alice's session token.
async fn notebooks() -> (TestApp, String, String) {
    let (app, session) = tessera_with_alice(|_| {}).await;
    let verifier = discovering_verifier(&app).await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(example::serve(listener, verifier).unwrap());
    (app, address, session)
}

async fn assert_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status);
    let headers = response.headers().clone();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    if status == 401 {
        assert_eq!(
            headers["www-authenticate"],
            r#"Bearer error="invalid_token""#
        );
    }
    body
}

#[tokio::test]
async fn the_example_service_answers_who_the_caller_is() {
    let (app, address, session) = notebooks().await;
    let token = token_for(&app, &session, "notebooks").await;

    let response = app
        .client
        .get(format!("{address}/"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["username"], "alice");
    assert_eq!(body["email"], "alice@example.com");
    assert_eq!(body["scopes"], json!(["read", "write"]));
}

#[tokio::test]
async fn the_example_service_answers_401_without_a_valid_token() {
    let (app, address, session) = notebooks().await;
    let url = format!("{address}/");

    let missing = app.client.get(&url).send().await.unwrap();
    assert_error(missing, 401, "invalid_token").await;

    let garbage = app
        .client
        .get(&url)
        .bearer_auth("garbage")
        .send()
        .await
        .unwrap();
    let body = assert_error(garbage, 401, "invalid_token").await;
    assert_eq!(body["message"], "the token is malformed");

    let billing = token_for(&app, &session, "billing").await;
    let wrong_audience = app
        .client
        .get(&url)
        .bearer_auth(billing)
        .send()
        .await
        .unwrap();
    let body = assert_error(wrong_audience, 401, "invalid_token").await;
    assert_eq!(body["message"], "the token is not meant for this service");

    let session_token = app
        .client
        .get(&url)
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_error(session_token, 401, "invalid_token").await;
}

#[tokio::test]
async fn the_example_service_answers_403_without_the_scope_a_route_needs() {
    let (app, address, session) = notebooks().await;
    let url = format!("{address}/notebooks");
    let read_only = app
        .authorization_token(
            &session,
            Some(json!({"audience": "notebooks", "scopes": ["read"]})),
        )
        .await;

    let refused = app
        .client
        .post(&url)
        .bearer_auth(&read_only)
        .send()
        .await
        .unwrap();
    let www_authenticate = refused.headers()["www-authenticate"].clone();
    let body = assert_error(refused, 403, "forbidden").await;
    assert_eq!(body["message"], r#"the scope "write" is required"#);
    assert_eq!(
        www_authenticate,
        r#"Bearer error="insufficient_scope", scope="write""#
    );

    let writer = token_for(&app, &session, "notebooks").await;
    let created = app
        .client
        .post(&url)
        .bearer_auth(&writer)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let body: Value = created.json().await.unwrap();
    assert_eq!(body["owner"], "alice");
}

#[tokio::test]
async fn the_browser_route_sends_a_visitor_without_a_token_to_the_login_page() {
    let (app, address, session) = notebooks().await;
    let token = token_for(&app, &session, "notebooks").await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let anonymous = client.get(format!("{address}/app")).send().await.unwrap();
    let forged = client
        .get(format!("{address}/app?token=not-a-token"))
        .send()
        .await
        .unwrap();
    let signed_in = client
        .get(format!("{address}/app?token={token}"))
        .send()
        .await
        .unwrap();

    let expected = format!(
        "{}/login?client_id=notebooks&return_to={}",
        app.issuer,
        address.replace(':', "%3A").replace('/', "%2F") + "%2Fapp"
    );
    for response in [anonymous, forged] {
        assert_eq!(response.status(), 303);
        assert_eq!(response.headers()["location"], expected.as_str());
    }
    assert_eq!(signed_in.status(), 200);
    let page = signed_in.text().await.unwrap();
    assert!(
        page.contains("Signed in as <strong>alice</strong>"),
        "{page}"
    );
}
