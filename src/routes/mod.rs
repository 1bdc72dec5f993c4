//! The route table: the whole HTTP API at a glance. One file an endpoint
//! group.

pub(crate) mod admin;
pub(crate) mod authorize;
mod extract;
pub(crate) mod health;
pub(crate) mod introspect;
mod login;
mod observe;
pub(crate) mod refresh;
pub(crate) mod revocations;
pub(crate) mod session;
pub(crate) mod well_known;

pub use admin::ADMIN_SCOPE;
pub use extract::ensure_live;
pub use introspect::INTROSPECT_SCOPE;
pub use observe::observe;
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
    .service(
        web::scope("/admin")
            .service(
                web::resource("/users")
                    .route(web::get().to(admin::list_users))
                    .route(web::post().to(admin::create_user)),
            )
            .service(
                web::resource("/users/{name}")
                    .route(web::get().to(admin::show_user))
                    .route(web::delete().to(admin::delete_user)),
            )
            .service(
                web::resource("/users/{name}/disable").route(web::post().to(admin::disable_user)),
            )
            .service(
                web::resource("/users/{name}/enable").route(web::post().to(admin::enable_user)),
            )
            .service(
                web::resource("/users/{name}/password").route(web::put().to(admin::set_password)),
            )
            .service(
                web::resource("/users/{name}/grants")
                    .route(web::get().to(admin::list_grants))
                    .route(web::post().to(admin::add_grants))
                    .route(web::delete().to(admin::remove_grants)),
            )
            .service(
                web::resource("/users/{name}/sessions")
                    .route(web::get().to(admin::list_sessions))
                    .route(web::delete().to(admin::revoke_all_sessions)),
            )
            .service(
                web::resource("/users/{name}/sessions/{session}")
                    .route(web::delete().to(admin::revoke_session)),
            )
            .service(web::resource("/keys").route(web::get().to(admin::list_keys)))
            .default_service(web::to(not_found)),
    )
    .service(
        web::resource("/login")
            .route(web::get().to(login::show))
            .route(web::post().to(login::submit))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/logout")
            .route(web::get().to(login::log_out))
            .route(web::post().to(login::log_out_form))
            .default_service(web::to(method_not_allowed)),
    )
    .service(web::resource("/static/tessera.css").route(web::get().to(login::stylesheet)))
    .service(web::resource("/static/brand.css").route(web::get().to(login::brand_stylesheet)))
    .service(
        web::resource("/openapi.json")
            .route(web::get().to(well_known::openapi))
            .default_service(web::to(method_not_allowed)),
    )
    .service(web::resource("/healthz").route(web::get().to(health::healthz)))
    .service(web::resource("/readyz").route(web::get().to(health::readyz)))
    .default_service(web::to(not_found));
}

/// `GET /metrics`: on the main address, or on `metrics_bind` alone.
pub fn configure_metrics(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/metrics")
            .route(web::get().to(health::metrics))
            .default_service(web::to(method_not_allowed)),
    );
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("no such endpoint".into()))
}
