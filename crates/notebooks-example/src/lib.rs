//! `notebooks`, an example downstream service of Tessera: it accepts
//! Tessera authorization tokens for its audience, verified offline by
//! `tessera-verify`, from API clients (`Authorization: Bearer`) and from
//! browsers signed in through Tessera's login page (see [`browser`]).
//!
//! `GET /` answers who the caller is and their scopes (JSON); `GET /app` is
//! the same as a page; `POST /notebooks` needs the scope `write` (403
//! without it) and a bearer token.
//!
//! It depends on the verifier only, never on the server: its tests start
//! the real Tessera, the service itself does not need it to build.

pub mod browser;
pub mod configuration;

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::http::header;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::json;
use tessera_verify::actix::{AuthError, Authorized};
use tessera_verify::{BuildError, Verifier};

use crate::browser::{Caller, LoginPage};
use crate::configuration::Settings;

/// The scope `POST /notebooks` requires.
pub const WRITE_SCOPE: &str = "write";

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the verifier's configuration")]
    Verifier(#[from] BuildError),
    #[error("the issuer {0:?} is not a URL, so there is no login page to send browsers to")]
    LoginPage(String),
}

/// The service, configured: its verifier and, when a client id is set, the
/// login page browsers are sent to.
#[derive(Debug, Clone)]
pub struct Notebooks {
    verifier: Verifier,
    login: Option<LoginPage>,
}

impl Notebooks {
    /// Builds the verifier (loading the keys, and the revocations when
    /// polling is on) from `settings`. An unreachable issuer is not an
    /// error: the verifier keeps trying.
    pub async fn build(settings: &Settings) -> Result<Self, StartError> {
        let mut builder = Verifier::builder(&settings.issuer, &settings.audience);
        if let Some(url) = &settings.jwks_url {
            builder = builder.jwks_url(url);
        }
        if let Some(interval) = settings.poll_revocations {
            builder = builder.poll_revocations(interval);
        }
        // Checked by `Settings::parse` already; a hand-built `Settings`
        // falls back to the verifier's default.
        if let Ok(Some(url)) = settings.feed_url() {
            builder = builder.revocations_url(url);
        }
        let login = settings
            .client_id
            .as_deref()
            .map(|client_id| {
                LoginPage::new(&settings.issuer, client_id)
                    .ok_or_else(|| StartError::LoginPage(settings.issuer.clone()))
            })
            .transpose()?;
        Ok(Self {
            verifier: builder.build().await?,
            login,
        })
    }

    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// The routes and their app data, for `App::configure`.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(self.verifier.clone());
        if let Some(login) = &self.login {
            cfg.app_data(web::Data::new(login.clone()));
        }
        cfg.route("/", web::get().to(whoami))
            .route("/app", web::get().to(page))
            .route("/notebooks", web::post().to(create_notebook));
    }

    /// Serves on `listener` until the returned server is stopped.
    pub fn serve(self, listener: TcpListener) -> std::io::Result<Server> {
        Ok(HttpServer::new(move || {
            App::new()
                .wrap(from_fn(browser::hand_over))
                .configure(|cfg| self.configure(cfg))
        })
        .workers(2)
        .listen(listener)?
        .run())
    }
}

async fn whoami(Caller(claims): Caller) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "user_id": claims.sub,
        "username": claims.username,
        "email": claims.email,
        "scopes": claims.scopes,
    }))
}

/// `GET /app`: who is signed in, for people.
async fn page(Caller(claims): Caller) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(format!(
            "<!doctype html><title>Notebooks</title>\
             <p>Signed in as <strong>{}</strong>, with the scopes {}</p>",
            escape_html(&claims.username),
            escape_html(&claims.scopes.join(" "))
        ))
}

async fn create_notebook(auth: Authorized) -> Result<HttpResponse, AuthError> {
    auth.require_scope(WRITE_SCOPE)?;
    Ok(HttpResponse::Created().json(json!({
        "notebook": "untitled",
        "owner": auth.claims().username,
    })))
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
