//! The example downstream service, `notebooks`, as a library so that the
//! tests can start it in-process; `examples/notebooks.rs` is its command
//! line. Not part of the crate's API: it shows how a service uses it.
//!
//! `GET /` answers who the caller is and their scopes; `POST /notebooks`
//! needs the scope `write` (403 without it).

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::json;

use crate::Verifier;
use crate::actix::{AuthError, Authorized};

/// The scope `POST /notebooks` requires.
pub const WRITE_SCOPE: &str = "write";

/// The routes, for `App::configure`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(whoami))
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
