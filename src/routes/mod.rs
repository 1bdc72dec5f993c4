//! The route table: the whole HTTP API at a glance. One file an endpoint
//! group.

mod authorize;
mod extract;
mod health;
mod introspect;
mod refresh;
mod revocations;
mod session;
mod well_known;

pub use extract::ensure_live;
pub use introspect::INTROSPECT_SCOPE;
pub use well_known::discovery_document;

use actix_web::{HttpResponse, web};

use crate::error::ApiError;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/session")
            .route(web::post().to(session::create))
            .route(web::get().to(session::show))
            .route(web::delete().to(session::delete))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/session/refresh")
            .route(web::post().to(refresh::refresh))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/authorize")
            .route(web::post().to(authorize::authorize))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/.well-known/jwks.json")
            .route(web::get().to(well_known::jwks))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/.well-known/openid-configuration")
            .route(web::get().to(well_known::discovery))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/.well-known/oauth-authorization-server")
            .route(web::get().to(well_known::discovery))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/keys/{file}")
            .route(web::get().to(well_known::public_key_pem))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/revocations")
            .route(web::get().to(revocations::feed))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/introspect")
            .route(web::post().to(introspect::introspect))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/userinfo")
            .route(web::get().to(introspect::userinfo))
            .default_service(web::to(method_not_allowed)),
    )
    .service(web::resource("/healthz").route(web::get().to(health::healthz)))
    .service(web::resource("/readyz").route(web::get().to(health::readyz)))
    .default_service(web::to(not_found));
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("no such endpoint".into()))
}
