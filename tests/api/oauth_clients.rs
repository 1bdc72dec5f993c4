//! The admin API's OAuth client registry: `/admin/clients`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, assert_error, spawn_app};

fn hub() -> Value {
    json!({
        "client_id": "hub",
        "audience": "notebooks",
        "redirect_uris": ["http://127.0.0.1:8000/hub/oauth_callback"],
        "post_logout_redirect_uris": ["http://127.0.0.1:8000/hub/"],
        "scopes": ["openid", "profile"],
        "required_grant": {"audience": "notebooks", "scope": "access"},
    })
}

async fn an_administrator_registers_rotates_disables_and_deletes_a_client(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.admin_token().await;

    let created = app
        .call(&token, Method::POST, "/admin/clients", Some(hub()))
        .await;
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["cache-control"], "no-store");
    let created: Value = created.json().await.unwrap();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 43);
    let client = &created["client"];
    assert_eq!(client["client_type"], "confidential");
    assert_eq!(
        client["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(
        client["required_grant"],
        json!({"audience": "notebooks", "scope": "access"})
    );
    let stored = app.store.find_oauth_client("hub").await.unwrap().unwrap();
    assert!(tessera::oauth::clients::secret_matches(&stored, &secret));

    let listed: Value = app
        .call(&token, Method::GET, "/admin/clients", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["clients"][0]["client_id"], "hub");
    let text = listed.to_string();
    let hash = stored.secret_hash.clone().unwrap();
    assert!(!text.contains(&secret) && !text.contains(&hash), "{text}");

    let rotated: Value = app
        .call(&token, Method::POST, "/admin/clients/hub/secret", None)
        .await
        .json()
        .await
        .unwrap();
    let new_secret = rotated["client_secret"].as_str().unwrap();
    let stored = app.store.find_oauth_client("hub").await.unwrap().unwrap();
    assert!(tessera::oauth::clients::secret_matches(&stored, new_secret));
    assert!(!tessera::oauth::clients::secret_matches(&stored, &secret));

    let disabled = app
        .call(&token, Method::POST, "/admin/clients/hub/disable", None)
        .await;
    assert_eq!(disabled.status(), 204);
    let shown: Value = app
        .call(&token, Method::GET, "/admin/clients/hub", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["is_active"], false);
    let enabled = app
        .call(&token, Method::POST, "/admin/clients/hub/enable", None)
        .await;
    assert_eq!(enabled.status(), 204);

    let deleted = app
        .call(&token, Method::DELETE, "/admin/clients/hub", None)
        .await;
    assert_eq!(deleted.status(), 204);
    assert_error(
        app.call(&token, Method::GET, "/admin/clients/hub", None)
            .await,
        404,
        "not_found",
    )
    .await;

    let events = app.audit_events("client.").await;
    assert_eq!(
        events,
        [
            "client.created client hub by root",
            "client.secret_rotated client hub by root",
            "client.disabled client hub by root",
            "client.enabled client hub by root",
            "client.deleted client hub by root",
        ]
    );
}

async fn a_client_that_breaks_the_rules_is_refused_naming_the_rule(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.admin_token().await;
    let with = |change: Value| {
        let mut body = hub();
        for (key, value) in change.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    };

    for (change, names) in [
        (
            json!({"redirect_uris": ["http://hub.example.com/cb"]}),
            "loopback",
        ),
        (
            json!({"redirect_uris": ["https://hub.example.com/cb#here"]}),
            "fragment",
        ),
        (json!({"redirect_uris": []}), "redirect URI"),
        (json!({"audience": "elsewhere"}), "tokens.allowed_audiences"),
        (json!({"client_id": "with space"}), "client id"),
        (json!({"client_id": ".."}), "client id"),
        (
            json!({"redirect_uris": ["http://localhost:8000/cb"]}),
            "loopback IP literal",
        ),
        (
            json!({"redirect_uris": ["https://hub.example.com/cb "]}),
            "white space",
        ),
        (
            json!({"required_grant": {"audience": "elsewhere", "scope": "access"}}),
            "required grant",
        ),
        (json!({"client_id": ".."}), "client id"),
        (
            json!({"redirect_uris": ["http://localhost:8000/cb"]}),
            "loopback IP literal",
        ),
        (
            json!({"redirect_uris": ["https://hub.example.com/cb "]}),
            "white space",
        ),
        (
            json!({"required_grant": {"audience": "elsewhere", "scope": "access"}}),
            "required grant",
        ),
        (json!({"grant_types": ["implicit"]}), "unknown grant type"),
        (
            json!({"public": true, "grant_types": ["client_credentials"]}),
            "public client",
        ),
    ] {
        let body = assert_error(
            app.call(
                &token,
                Method::POST,
                "/admin/clients",
                Some(with(change.clone())),
            )
            .await,
            400,
            "invalid_request",
        )
        .await;
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(names), "{change}: {message}");
    }
    assert!(app.store.oauth_clients().await.unwrap().is_empty());

    let public = with(json!({"client_id": "spa", "public": true}));
    let created: Value = app
        .call(&token, Method::POST, "/admin/clients", Some(public.clone()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(created["client"]["client_type"], "public");
    assert!(created.get("client_secret").is_none());
    assert_error(
        app.call(&token, Method::POST, "/admin/clients", Some(public))
            .await,
        409,
        "conflict",
    )
    .await;
    assert_error(
        app.call(&token, Method::POST, "/admin/clients/spa/secret", None)
            .await,
        409,
        "conflict",
    )
    .await;
    // Ids no client has, one that no database could even look up: 404.
    for (method, path) in [
        (Method::POST, "/admin/clients/nobody/secret"),
        (Method::POST, "/admin/clients/nobody/disable"),
        (Method::POST, "/admin/clients/%00/enable"),
        (Method::GET, "/admin/clients/%00"),
        (Method::DELETE, "/admin/clients/%00"),
    ] {
        assert_error(app.call(&token, method, path, None).await, 404, "not_found").await;
    }
    let unknown_field = with(json!({"client_id": "x", "unknown": 1}));
    assert_error(
        app.call(&token, Method::POST, "/admin/clients", Some(unknown_field))
            .await,
        400,
        "invalid_request",
    )
    .await;
}

async fn only_administrators_manage_clients(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice", None).await;
    let session = app.session_token("alice").await;
    let token = app
        .authorization_token(&session, Some(json!({"audience": "tessera"})))
        .await;
    assert_error(
        app.call(&token, Method::POST, "/admin/clients", Some(hub()))
            .await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        app.call(&token, Method::GET, "/admin/clients", None).await,
        403,
        "forbidden",
    )
    .await;
    assert!(app.store.oauth_clients().await.unwrap().is_empty());
}

on_both_backends!(
    an_administrator_registers_rotates_disables_and_deletes_a_client,
    a_client_that_breaks_the_rules_is_refused_naming_the_rule,
    only_administrators_manage_clients,
);
