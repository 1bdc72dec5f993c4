//! API clients: a bearer token gets 200 with who the caller is, no valid
//! token 401 with the reason, a missing scope 403.

use serde_json::{Value, json};

use crate::support::{assert_error, notebooks, with_client};

#[tokio::test]
async fn the_service_answers_who_the_caller_is() {
    let app = notebooks(|_, _| {}).await;
    let token = app.token_for("notebooks").await;

    let response = app
        .client
        .get(app.url("/"))
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
async fn the_service_answers_401_with_the_reason_without_a_valid_token() {
    // Even with a login page to send browsers to: an API client is not
    // redirected.
    let app = notebooks(with_client).await;
    let url = app.url("/");

    let missing = app.client.get(&url).send().await.unwrap();
    let body = assert_error(missing, 401, "invalid_token").await;
    assert_eq!(
        body["message"],
        "an Authorization: Bearer token is required"
    );

    let garbage = app
        .client
        .get(&url)
        .bearer_auth("garbage")
        .send()
        .await
        .unwrap();
    let body = assert_error(garbage, 401, "invalid_token").await;
    assert_eq!(body["message"], "the token is malformed");

    let billing = app.token_for("billing").await;
    let wrong_audience = app
        .client
        .get(&url)
        .bearer_auth(billing)
        .send()
        .await
        .unwrap();
    let body = assert_error(wrong_audience, 401, "invalid_token").await;
    assert_eq!(body["message"], "the token is not meant for this service");
}

#[tokio::test]
async fn a_session_token_is_refused_as_not_an_authorization_token() {
    let app = notebooks(with_client).await;
    let reason = "a session token is not an authorization token (exchange it at POST /authorize)";

    let bearer = app
        .client
        .get(app.url("/"))
        .bearer_auth(&app.session)
        .send()
        .await
        .unwrap();
    let body = assert_error(bearer, 401, "invalid_token").await;
    assert_eq!(body["message"], reason);

    // Handed over as if by the login page: refused as well, with no cookie
    // and no redirect.
    let handed_over = app
        .client
        .get(app.url("/app"))
        .query(&[("token", &app.session)])
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert!(handed_over.headers().get("set-cookie").is_none());
    let body = assert_error(handed_over, 401, "invalid_token").await;
    assert_eq!(body["message"], reason);
}

#[tokio::test]
async fn writing_needs_the_scope_and_a_bearer_token() {
    let app = notebooks(|_, _| {}).await;
    let url = app.url("/notebooks");
    let read_only = app
        .tessera
        .authorization_token(
            &app.session,
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

    let writer = app.token_for("notebooks").await;
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

    // The token cookie is for pages: a write that carries only the cookie,
    // as a forged cross-site form would, is refused.
    let with_cookie = app
        .client
        .post(&url)
        .header("cookie", format!("notebooks_token={writer}"))
        .send()
        .await
        .unwrap();
    assert_error(with_cookie, 401, "invalid_token").await;
    // `?token=` is no way in either.
    let with_query = app
        .client
        .post(&url)
        .query(&[("token", &writer)])
        .send()
        .await
        .unwrap();
    assert_error(with_query, 401, "invalid_token").await;
}
