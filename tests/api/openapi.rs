//! The OpenAPI document against the running service: every operation it
//! lists answers only statuses it documents, and every route of the route
//! table is in it, so the two cannot drift apart unnoticed. SQLite only: the
//! backend does not change what the HTTP layer answers.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app};

/// The route table of `src/routes/mod.rs` as (method, pattern), less the
/// HTML pages (`/login`, `/logout`, `/oauth2/authorize`, `/oauth2/logout`,
/// `/static/…`), which the document leaves out. A route added there and not here, or not documented, fails
/// `every_route_of_the_route_table_is_documented_and_nothing_else`.
const ROUTE_TABLE: &[(&str, &str)] = &[
    ("post", "/session"),
    ("get", "/session"),
    ("delete", "/session"),
    ("post", "/session/refresh"),
    ("post", "/authorize"),
    ("get", "/.well-known/jwks.json"),
    ("get", "/.well-known/openid-configuration"),
    ("get", "/.well-known/oauth-authorization-server"),
    ("get", "/keys/{file}"),
    ("get", "/revocations"),
    ("post", "/introspect"),
    ("get", "/userinfo"),
    ("post", "/userinfo"),
    ("post", "/oauth2/token"),
    ("post", "/oauth2/revoke"),
    ("get", "/admin/users"),
    ("post", "/admin/users"),
    ("get", "/admin/users/{name}"),
    ("delete", "/admin/users/{name}"),
    ("post", "/admin/users/{name}/disable"),
    ("post", "/admin/users/{name}/enable"),
    ("put", "/admin/users/{name}/password"),
    ("get", "/admin/users/{name}/grants"),
    ("post", "/admin/users/{name}/grants"),
    ("delete", "/admin/users/{name}/grants"),
    ("get", "/admin/users/{name}/sessions"),
    ("delete", "/admin/users/{name}/sessions"),
    ("delete", "/admin/users/{name}/sessions/{session}"),
    ("get", "/admin/clients"),
    ("post", "/admin/clients"),
    ("get", "/admin/clients/{client_id}"),
    ("delete", "/admin/clients/{client_id}"),
    ("post", "/admin/clients/{client_id}/secret"),
    ("post", "/admin/clients/{client_id}/disable"),
    ("post", "/admin/clients/{client_id}/enable"),
    ("get", "/admin/keys"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/healthz"),
    ("get", "/readyz"),
];

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

async fn fetch_document(app: &TestApp) -> Value {
    let response = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.expect("the document is JSON")
}

/// Every (method, path pattern) the document lists.
fn operations(document: &Value) -> Vec<(String, String)> {
    let paths = document["paths"].as_object().expect("paths");
    let mut found = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            if item.get(*method).is_some() {
                found.push(((*method).to_owned(), path.clone()));
            }
        }
    }
    found
}

#[tokio::test]
async fn every_route_of_the_route_table_is_documented_and_nothing_else() {
    let app = spawn_app(Backend::Sqlite).await;

    let document = fetch_document(&app).await;

    let documented: BTreeSet<(String, String)> = operations(&document).into_iter().collect();
    let table: BTreeSet<(String, String)> = ROUTE_TABLE
        .iter()
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    assert_eq!(documented, table);
}

#[tokio::test]
async fn the_document_names_tessera_its_version_and_the_bearer_scheme() {
    let app = spawn_app(Backend::Sqlite).await;

    let document = fetch_document(&app).await;

    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(document["info"]["title"], "Tessera");
    assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
    let bearer = &document["components"]["securitySchemes"]["bearer"];
    assert_eq!(bearer["type"], "http");
    assert_eq!(bearer["scheme"], "bearer");
    let error = &document["components"]["schemas"]["ErrorBody"]["properties"];
    assert!(error.get("error").is_some() && error.get("message").is_some());
    let operation_ids: Vec<&str> = operations(&document)
        .iter()
        .map(|(method, path)| {
            document["paths"][path][method]["operationId"]
                .as_str()
                .unwrap()
        })
        .collect();
    let unique: BTreeSet<&str> = operation_ids.iter().copied().collect();
    assert_eq!(unique.len(), operation_ids.len(), "operation ids repeat");
}

/// The client named in `/admin/clients/{client_id}`.
const PROBED_CLIENT: &str = "probe";

/// What the probe of one operation needs.
struct Fixtures {
    admin_token: String,
    introspect_token: String,
    /// The user named in `/admin/users/{name}`.
    name: String,
    /// A live session of that user.
    session_id: String,
    kid: String,
    /// The secret of the OAuth client `machine`.
    client_secret: String,
}

/// The kind of credential an operation takes, by its path.
enum Credential {
    Session,
    Admin,
    Introspect,
    /// Any authorization token.
    Authorization,
    /// An OAuth client's id and secret.
    Client,
}

fn credential_for(path: &str) -> Credential {
    if path.starts_with("/session") || path == "/authorize" {
        Credential::Session
    } else if path.starts_with("/admin/") {
        Credential::Admin
    } else if path == "/introspect" {
        Credential::Introspect
    } else if path.starts_with("/oauth2/") {
        Credential::Client
    } else {
        Credential::Authorization
    }
}

/// A plausible body for an operation that takes one.
fn body_for(method: &str, path: &str, fixtures: &Fixtures) -> Option<Value> {
    match (method, path) {
        ("post", "/session") => {
            Some(json!({"username": "erin", "password": crate::helpers::PASSWORD}))
        }
        ("post", "/introspect") => Some(json!({"token": fixtures.admin_token})),
        ("post", "/admin/users") => {
            Some(json!({"username": "frank", "password": crate::helpers::PASSWORD}))
        }
        ("put", "/admin/users/{name}/password") => {
            Some(json!({"password": "another correct horse battery"}))
        }
        ("post", "/admin/clients") => Some(json!({
            "client_id": "wiki",
            "audience": "tessera",
            "redirect_uris": ["https://wiki.example.com/oauth/callback"],
        })),
        ("post" | "delete", "/admin/users/{name}/grants") => {
            Some(json!({"audience": "wiki", "scopes": ["wiki:read"]}))
        }
        _ => None,
    }
}

/// The form an OAuth endpoint takes.
fn form_for(method: &str, path: &str) -> Option<&'static [(&'static str, &'static str)]> {
    match (method, path) {
        ("post", "/oauth2/token") => Some(&[("grant_type", "client_credentials")]),
        ("post", "/oauth2/revoke") => Some(&[("token", "not-a-token-of-ours")]),
        _ => None,
    }
}

fn concrete(path: &str, fixtures: &Fixtures) -> String {
    path.replace("{name}", &fixtures.name)
        .replace("{session}", &fixtures.session_id)
        .replace("{file}", &format!("{}.pem", fixtures.kid))
        .replace("{client_id}", PROBED_CLIENT)
}

fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Sends one request; returns what is wrong with its answer, if anything.
async fn probe(
    app: &TestApp,
    operation: &Value,
    method: &str,
    path: &str,
    token: Option<&str>,
    fixtures: &Fixtures,
) -> (u16, Vec<String>) {
    let client = matches!(credential_for(path), Credential::Client);
    let url = app.url(&concrete(path, fixtures));
    let mut request = app.client.request(
        Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
        url,
    );
    match token {
        Some(secret) if client => request = request.basic_auth("machine", Some(secret)),
        Some(token) => request = request.bearer_auth(token),
        None => {}
    }
    if let Some(body) = body_for(method, path, fixtures) {
        request = request.json(&body);
    }
    if let Some(form) = form_for(method, path) {
        request = request.form(form);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|v| media_type(v.to_str().unwrap()));
    let body = response.bytes().await.unwrap();
    let what = format!(
        "{} {path} ({}) answered {status}",
        method.to_uppercase(),
        if token.is_some() {
            "with credentials"
        } else {
            "without"
        }
    );
    let mut problems = Vec::new();
    let Some(documented) = operation["responses"].get(status.to_string()) else {
        problems.push(format!("{what}, which is not documented"));
        return (status, problems);
    };
    let documented_types: Vec<String> = documented["content"]
        .as_object()
        .map(|content| content.keys().map(|k| media_type(k)).collect())
        .unwrap_or_default();
    if body.is_empty() {
        if !documented_types.is_empty() {
            problems.push(format!("{what} with no body, but documents one"));
        }
        return (status, problems);
    }
    let Some(content_type) = content_type else {
        problems.push(format!("{what} with a body and no content type"));
        return (status, problems);
    };
    if !documented_types.contains(&content_type) {
        problems.push(format!(
            "{what} with {content_type}, documented {documented_types:?}"
        ));
    }
    if content_type == "application/json" {
        match serde_json::from_slice::<Value>(&body) {
            Err(e) => problems.push(format!("{what} with a body that is not JSON: {e}")),
            // The OAuth endpoints answer RFC 6749's shape for the errors
            // of the protocol.
            Ok(json)
                if status >= 400
                    && path.starts_with("/oauth2/")
                    && json["error_description"].is_string() =>
            {
                if !json["error"].is_string() {
                    problems.push(format!("{what} with an OAuth error body without `error`"));
                }
            }
            Ok(json) if status >= 400 => {
                if !(json["error"].is_string() && json["message"].is_string()) {
                    problems.push(format!("{what} with an error body not of the shared shape"));
                }
            }
            Ok(_) => {}
        }
    }
    (status, problems)
}

#[tokio::test]
async fn every_documented_route_answers_as_documented() {
    let app = spawn_app(Backend::Sqlite).await;
    let root = app.add_user("root", None).await;
    app.grant(&root, "tessera", &["tessera:admin"]).await;
    let root_session = app.session_token("root").await;
    let admin_token = app
        .authorization_token(&root_session, Some(json!({"audience": "tessera"})))
        .await;
    let watcher = app.add_user("watcher", None).await;
    app.grant(&watcher, "tessera", &["tessera:introspect"])
        .await;
    let watcher_session = app.session_token("watcher").await;
    let introspect_token = app
        .authorization_token(&watcher_session, Some(json!({"audience": "tessera"})))
        .await;
    let dana_user = app.add_user("dana", Some("dana@example.com")).await;
    let dana: Value = app
        .login("dana", crate::helpers::PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    // Session routes log `erin` in afresh for each request.
    app.add_user("erin", None).await;
    let now = chrono::Utc::now();
    app.store
        .create_oauth_client(&tessera::store::OAuthClient {
            id: PROBED_CLIENT.into(),
            secret_hash: Some("00".repeat(32)),
            redirect_uris: vec!["https://probe.example.com/cb".into()],
            post_logout_redirect_uris: Vec::new(),
            audience: "tessera".into(),
            scopes: Vec::new(),
            grant_types: vec!["authorization_code".into()],
            required_grant: None,
            is_active: true,
            created_at: now,
            updated_at: now,
        })
        .await
        .unwrap();
    let allowed = ["tessera".to_owned()];
    let machine = tessera::oauth::clients::OAuthClients::new(
        app.store.as_ref(),
        &allowed,
        &tessera::clock::SystemClock,
        "test",
    )
    .register(tessera::oauth::clients::ClientSpec {
        id: "machine".into(),
        audience: "tessera".into(),
        grant_types: vec!["client_credentials".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let client_secret =
        secrecy::ExposeSecret::expose_secret(machine.secret.as_ref().unwrap()).to_owned();
    let jwks = app.jwks().await;
    let mut fixtures = Fixtures {
        client_secret,
        admin_token,
        introspect_token,
        name: "dana".into(),
        session_id: dana["session_id"].as_str().unwrap().to_owned(),
        kid: jwks.keys[0].common.key_id.clone().expect("a kid"),
    };
    let document = fetch_document(&app).await;
    let mut operations = operations(&document);
    // Changes last, and the deletion of the user the others name last of all.
    operations.sort_by_key(|(method, path)| {
        (
            method == "delete",
            method == "delete" && path == "/admin/users/{name}",
            std::cmp::Reverse(path.len()),
        )
    });
    let mut problems = Vec::new();

    for (method, path) in &operations {
        if path == "/admin/users/{name}/sessions/{session}" {
            // The password change and the disable probed before it ended
            // the user's sessions: this one needs a live one.
            let session = app
                .store
                .create_session(
                    tessera::store::NewSession {
                        id: uuid::Uuid::new_v4(),
                        user_id: dana_user.id,
                        client_id: "",
                        ip: None,
                        user_agent: None,
                        kid: &fixtures.kid,
                        expires_at: None,
                        token_id: "a-token",
                    },
                    chrono::Utc::now(),
                )
                .await
                .unwrap();
            fixtures.session_id = session.id.to_string();
        }
        let operation = &document["paths"][path][method];
        let secured = operation
            .get("security")
            .and_then(Value::as_array)
            .is_some_and(|s| !s.is_empty());
        let (status, found) = probe(&app, operation, method, path, None, &fixtures).await;
        problems.extend(found);
        if !secured {
            if !(200..300).contains(&status) {
                problems.push(format!(
                    "{method} {path} answered {status} to a plain request"
                ));
            }
            continue;
        }
        if status != 401 {
            problems.push(format!(
                "{method} {path} answered {status} without credentials"
            ));
        }
        let session_token;
        let token = match credential_for(path) {
            Credential::Session => {
                session_token = app.session_token("erin").await;
                &session_token
            }
            Credential::Admin => &fixtures.admin_token,
            Credential::Introspect | Credential::Authorization => &fixtures.introspect_token,
            Credential::Client => &fixtures.client_secret,
        };
        let (status, found) = probe(&app, operation, method, path, Some(token), &fixtures).await;
        problems.extend(found);
        if !(200..300).contains(&status) {
            problems.push(format!(
                "{method} {path} answered {status} with credentials"
            ));
        }
    }

    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
