//! What the verifier tests share: Tessera with a user, tokens crafted with
//! the server's own keys, and a counting proxy in front of the server.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Mutex, RwLock};

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

use tessera::configuration::Settings;
use tessera_verify::Verifier;

use crate::helpers::{Backend, TestApp, spawn_app_with};

/// Tessera with `alice`, who holds `read` and `write` at `notebooks` and
/// `read` at `billing`, logged in; returns the app and her session token.
/// On Postgres, as in production.
pub async fn tessera_with_alice(
    configure: impl Fn(&mut Settings) + Send + Sync + 'static,
) -> (TestApp, String) {
    let app = spawn_app_with(Backend::Postgres, configure).await;
    let alice = app.add_user("alice", Some("alice@example.com")).await;
    app.grant(&alice, "notebooks", &["read", "write"]).await;
    app.grant(&alice, "billing", &["read"]).await;
    let session = app.session_token("alice").await;
    (app, session)
}

/// An authorization token for `audience`, with all the user's scopes there.
pub async fn token_for(app: &TestApp, session: &str, audience: &str) -> String {
    app.authorization_token(session, Some(json!({ "audience": audience })))
        .await
}

/// A verifier for `notebooks` that discovers the keys from the issuer.
pub async fn discovering_verifier(app: &TestApp) -> Verifier {
    Verifier::builder(&app.issuer, "notebooks")
        .build()
        .await
        .expect("the verifier builds")
}

/// The claims of a real token, to craft variants of.
pub fn claims_of(token: &str) -> Value {
    jsonwebtoken::dangerous::insecure_decode_claims(token).unwrap()
}

/// `claims` signed by the server's signing key, with its usual header.
pub fn sign(app: &TestApp, claims: &Value) -> String {
    app.keys().signing().unwrap().sign(claims).unwrap()
}

/// `claims` signed by the server's signing key under any `header`.
pub fn sign_with_header(app: &TestApp, header: &jsonwebtoken::Header, claims: &Value) -> String {
    let kid = app.keys().signing().unwrap().kid().to_owned();
    let pem = std::fs::read(app.keys_dir.join(format!("{kid}.pem"))).unwrap();
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap();
    jsonwebtoken::encode(header, claims, &key).unwrap()
}

/// The server's signing kid.
pub fn signing_kid(app: &TestApp) -> String {
    app.keys().signing().unwrap().kid().to_owned()
}

/// A reverse proxy in front of Tessera that counts the requests per path
/// and can be stopped, making the issuer unreachable. Tessera is started
/// with the proxy's address as its issuer, as behind any reverse proxy, so
/// that discovery leads back through it.
pub struct CountingProxy {
    pub address: String,
    state: web::Data<ProxyState>,
    handle: ServerHandle,
}

struct ProxyState {
    upstream: RwLock<String>,
    counts: Mutex<HashMap<String, usize>>,
    client: tessera_verify::reqwest::Client,
}

impl CountingProxy {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let state = web::Data::new(ProxyState {
            upstream: RwLock::new(String::new()),
            counts: Mutex::new(HashMap::new()),
            client: tessera_verify::reqwest::Client::new(),
        });
        let data = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(forward))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(0)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            address,
            state,
            handle,
        }
    }

    /// Sends what comes next to `upstream` (a server's address).
    pub fn forward_to(&self, upstream: &str) {
        *self.state.upstream.write().unwrap() = upstream.to_owned();
    }

    /// Requests seen for `path`.
    pub fn count(&self, path: &str) -> usize {
        self.state
            .counts
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Stops listening: connections to the issuer are refused from now on.
    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

async fn forward(req: HttpRequest, state: web::Data<ProxyState>) -> HttpResponse {
    *state
        .counts
        .lock()
        .unwrap()
        .entry(req.path().to_owned())
        .or_default() += 1;
    let upstream = state.upstream.read().unwrap().clone();
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let Ok(response) = state.client.get(format!("{upstream}{path}")).send().await else {
        return HttpResponse::BadGateway().finish();
    };
    let mut answer = HttpResponse::build(StatusCode::from_u16(response.status().as_u16()).unwrap());
    for name in ["content-type", "cache-control"] {
        if let Some(value) = response.headers().get(name) {
            answer.insert_header((name, value.to_str().unwrap().to_owned()));
        }
    }
    answer.body(response.bytes().await.unwrap_or_default())
}

/// Tessera behind a [`CountingProxy`], its issuer the proxy's address, with
/// alice logged in (see [`tessera_with_alice`]).
pub async fn proxied_tessera_with_alice(
    configure: impl Fn(&mut Settings) + Send + Sync + 'static,
) -> (CountingProxy, TestApp, String) {
    let proxy = CountingProxy::start();
    let issuer = proxy.address.clone();
    let (app, session) = tessera_with_alice(move |settings| {
        settings.issuer = Some(issuer.clone());
        configure(settings);
    })
    .await;
    proxy.forward_to(&app.address);
    (proxy, app, session)
}
