//! What the example's tests share: Tessera with a user and the example
//! service registered as a login page client, and the service running.

use std::net::TcpListener;

use reqwest::header::{HeaderMap, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use tessera::clients::{ClientSettings, DeliveryKind};
use tessera_example_notebooks::Notebooks;
use tessera_example_notebooks::configuration::Settings;

use crate::helpers::{Backend, TestApp, spawn_app_with};

/// The client id the service is registered under.
pub const CLIENT_ID: &str = "notebooks";

pub struct Running {
    pub tessera: TestApp,
    /// The service's base URL, `http://127.0.0.1:PORT`.
    pub address: String,
    /// Alice's session token.
    pub session: String,
    /// Does not follow redirects, keeps no cookies: each test reads what the
    /// service answers.
    pub client: reqwest::Client,
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// An authorization token of alice for `audience`, with all her scopes
    /// there.
    pub async fn token_for(&self, audience: &str) -> String {
        self.tessera
            .authorization_token(&self.session, Some(json!({ "audience": audience })))
            .await
    }
}

/// Tessera with `alice`, who holds `read` and `write` at `notebooks` and
/// `read` at `billing`, logged in, with the service registered as client
/// `notebooks` (token by query, back to anywhere on the service); and the
/// service, its settings from `configure` on top of the issuer's address.
pub async fn notebooks(configure: impl FnOnce(&TestApp, &mut Settings)) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let redirect = format!("{address}/*");
    let tessera = spawn_app_with(Backend::Postgres, move |settings| {
        settings.clients = vec![ClientSettings {
            id: CLIENT_ID.into(),
            audience: "notebooks".into(),
            redirect_uris: vec![redirect.clone()],
            scopes: None,
            token_delivery: DeliveryKind::Query,
            param_name: None,
            cookie_name: None,
            cookie_domain: None,
        }];
    })
    .await;
    let alice = tessera.add_user("alice", Some("alice@example.com")).await;
    tessera.grant(&alice, "notebooks", &["read", "write"]).await;
    tessera.grant(&alice, "billing", &["read"]).await;
    let session = tessera.session_token("alice").await;

    let mut settings = Settings {
        issuer: tessera.issuer.clone(),
        ..Settings::default()
    };
    configure(&tessera, &mut settings);
    let service = Notebooks::build(&settings)
        .await
        .expect("the service starts");
    tokio::spawn(service.serve(listener).unwrap());
    Running {
        tessera,
        address,
        session,
        client: reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .unwrap(),
    }
}

/// As a browser would be configured: the service signs browsers in as
/// client `notebooks`.
pub fn with_client(_: &TestApp, settings: &mut Settings) {
    settings.client_id = Some(CLIENT_ID.into());
}

/// Asserts an error answer in Tessera's shape and returns its body.
pub async fn assert_error(response: reqwest::Response, status: u16, code: &str) -> Value {
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

/// The `Set-Cookie` header that sets `name`, if any.
pub fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// The `name=value` part of a `Set-Cookie` header, as a browser sends it
/// back.
pub fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}
