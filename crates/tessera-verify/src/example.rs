//! The example downstream service, `notebooks`, as a library so that the
//! tests can start it in-process; `examples/notebooks.rs` is its command
//! line. Not part of the crate's API: it shows how a service uses it.
//!
//! `GET /` answers who the caller is and their scopes; `POST /notebooks`
//! needs the scope `write` (403 without it). `GET /app` is the browser's way
//! in: without a valid `?token=` it sends the browser to Tessera's login
//! page (registered there as client `notebooks`, token by query), which
//! sends it back here with one.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::http::header;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::json;

use crate::Verifier;
use crate::actix::{AuthError, Authorized};

/// The scope `POST /notebooks` requires.
pub const WRITE_SCOPE: &str = "write";

/// The routes, for `App::configure`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(whoami))
        .route("/app", web::get().to(browser_app))
        .route("/notebooks", web::post().to(create_notebook));
}

/// Serves the example on `listener` until the returned server is stopped.
pub fn serve(listener: TcpListener, verifier: Verifier) -> std::io::Result<Server> {
    Ok(
        HttpServer::new(move || App::new().app_data(verifier.clone()).configure(configure))
            .workers(2)
            .listen(listener)?
            .run(),
    )
}

async fn whoami(auth: Authorized) -> HttpResponse {
    let claims = auth.claims();
    HttpResponse::Ok().json(json!({
        "user_id": claims.sub,
        "username": claims.username,
        "email": claims.email,
        "scopes": claims.scopes,
    }))
}

async fn create_notebook(auth: Authorized) -> Result<HttpResponse, AuthError> {
    auth.require_scope(WRITE_SCOPE)?;
    Ok(HttpResponse::Created().json(json!({
        "notebook": "untitled",
        "owner": auth.claims().username,
    })))
}

/// The client id this service is registered under at Tessera's login page.
pub const CLIENT_ID: &str = "notebooks";

#[derive(serde::Deserialize)]
struct AppQuery {
    token: Option<String>,
}

/// `GET /app`: a page for people. A valid token in the query shows who is
/// signed in; otherwise the browser goes to Tessera's login page, which
/// comes back here with a token (or at once, when already signed in).
async fn browser_app(req: HttpRequest, query: web::Query<AppQuery>) -> HttpResponse {
    let Some(verifier) = req.app_data::<Verifier>() else {
        return HttpResponse::InternalServerError().finish();
    };
    if let Some(token) = &query.token
        && let Ok(claims) = verifier.verify(token).await
    {
        return HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header((header::REFERRER_POLICY, "no-referrer"))
            .body(format!(
                "<!doctype html><title>Notebooks</title><p>Signed in as <strong>{}</strong></p>",
                escape_html(&claims.username)
            ));
    }
    let info = req.connection_info();
    let return_to = format!("{}://{}/app", info.scheme(), info.host());
    let login = format!(
        "{}/login?client_id={CLIENT_ID}&return_to={}",
        verifier.issuer(),
        percent_encode(&return_to)
    );
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, login))
        .finish()
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}
