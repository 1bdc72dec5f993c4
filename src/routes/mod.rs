//! The route table: the whole HTTP API at a glance. One file an endpoint
//! group. Handlers translate: they read the request ([`extract`]), call the
//! session service or another service, and map its answer or error to HTTP
//! ([`crate::error`] for JSON, [`crate::browser`] for the login pages).

pub(crate) mod admin;
pub(crate) mod authorize;
mod extract;
pub(crate) mod health;
pub(crate) mod introspect;
mod login;
pub(crate) mod oauth;
pub(crate) mod oauth_clients;
mod observe;
pub(crate) mod refresh;
pub(crate) mod revocations;
pub(crate) mod session;
pub(crate) mod well_known;

pub use admin::ADMIN_SCOPE;
pub use introspect::INTROSPECT_SCOPE;
pub use observe::observe;
pub use well_known::discovery_document;

use actix_web::http::{Method, header};
use actix_web::{HttpRequest, HttpResponse, Resource, ResponseError, Route, guard, web};

use crate::error::ApiError;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    use Method as M;
    cfg.service(
        resource("/session", &[M::GET, M::POST, M::DELETE])
            .route(web::post().to(session::create))
            .route(get().to(session::show))
            .route(web::delete().to(session::delete)),
    )
    .service(resource("/session/refresh", &[M::POST]).route(web::post().to(refresh::refresh)))
    .service(resource("/authorize", &[M::POST]).route(web::post().to(authorize::authorize)))
    .service(resource("/.well-known/jwks.json", &[M::GET]).route(get().to(well_known::jwks)))
    .service(
        resource("/.well-known/openid-configuration", &[M::GET])
            .route(get().to(well_known::discovery)),
    )
    .service(
        resource("/.well-known/oauth-authorization-server", &[M::GET])
            .route(get().to(well_known::discovery)),
    )
    .service(resource("/keys/{file}", &[M::GET]).route(get().to(well_known::public_key_pem)))
    .service(resource("/revocations", &[M::GET]).route(get().to(revocations::feed)))
    .service(resource("/introspect", &[M::POST]).route(web::post().to(introspect::introspect)))
    .service(
        resource("/userinfo", &[M::GET, M::POST])
            .route(get().to(introspect::userinfo))
            .route(web::post().to(introspect::userinfo_post)),
    )
    .service(
        web::scope("/admin")
            .service(
                resource("/users", &[M::GET, M::POST])
                    .route(get().to(admin::list_users))
                    .route(web::post().to(admin::create_user)),
            )
            .service(
                resource("/users/{name}", &[M::GET, M::DELETE])
                    .route(get().to(admin::show_user))
                    .route(web::delete().to(admin::delete_user)),
            )
            .service(
                resource("/users/{name}/disable", &[M::POST])
                    .route(web::post().to(admin::disable_user)),
            )
            .service(
                resource("/users/{name}/enable", &[M::POST])
                    .route(web::post().to(admin::enable_user)),
            )
            .service(
                resource("/users/{name}/password", &[M::PUT])
                    .route(web::put().to(admin::set_password)),
            )
            .service(
                resource("/users/{name}/grants", &[M::GET, M::POST, M::DELETE])
                    .route(get().to(admin::list_grants))
                    .route(web::post().to(admin::add_grants))
                    .route(web::delete().to(admin::remove_grants)),
            )
            .service(
                resource("/users/{name}/sessions", &[M::GET, M::DELETE])
                    .route(get().to(admin::list_sessions))
                    .route(web::delete().to(admin::revoke_all_sessions)),
            )
            .service(
                resource("/users/{name}/sessions/{session}", &[M::DELETE])
                    .route(web::delete().to(admin::revoke_session)),
            )
            .service(resource("/keys", &[M::GET]).route(get().to(admin::list_keys)))
            .service(
                resource("/clients", &[M::GET, M::POST])
                    .route(get().to(oauth_clients::list_clients))
                    .route(web::post().to(oauth_clients::create_client)),
            )
            .service(
                resource("/clients/{client_id}", &[M::GET, M::DELETE])
                    .route(get().to(oauth_clients::show_client))
                    .route(web::delete().to(oauth_clients::delete_client)),
            )
            .service(
                resource("/clients/{client_id}/secret", &[M::POST])
                    .route(web::post().to(oauth_clients::rotate_client_secret)),
            )
            .service(
                resource("/clients/{client_id}/disable", &[M::POST])
                    .route(web::post().to(oauth_clients::disable_client)),
            )
            .service(
                resource("/clients/{client_id}/enable", &[M::POST])
                    .route(web::post().to(oauth_clients::enable_client)),
            )
            .default_service(web::to(not_found)),
    )
    .service(
        resource("/login", &[M::GET, M::POST])
            .route(get().to(login::show))
            .route(web::post().to(login::submit)),
    )
    .service(
        resource("/oauth2/authorize", &[M::GET, M::POST])
            .route(get().to(oauth::authorize_get))
            .route(web::post().to(oauth::authorize_post)),
    )
    .service(resource("/oauth2/token", &[M::POST]).route(web::post().to(oauth::token)))
    .service(resource("/oauth2/revoke", &[M::POST]).route(web::post().to(oauth::revoke)))
    .service(
        resource("/oauth2/logout", &[M::GET, M::POST])
            .route(get().to(oauth::end_session_get))
            .route(web::post().to(oauth::end_session_post)),
    )
    .service(
        resource("/logout", &[M::GET, M::POST])
            .route(get().to(login::log_out))
            .route(web::post().to(login::log_out_form)),
    )
    .service(resource("/static/tessera.css", &[M::GET]).route(get().to(login::stylesheet)))
    .service(resource("/static/brand.css", &[M::GET]).route(get().to(login::brand_stylesheet)))
    .service(resource("/openapi.json", &[M::GET]).route(get().to(well_known::openapi)))
    .service(resource("/healthz", &[M::GET]).route(get().to(health::healthz)))
    .service(resource("/readyz", &[M::GET]).route(get().to(health::readyz)))
    .default_service(web::to(not_found));
}

/// `GET /metrics`: on the main address, or on `metrics_bind` alone.
pub fn configure_metrics(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/metrics", &[Method::GET]).route(get().to(health::metrics)));
}

/// A route for `GET` that answers `HEAD` too, as RFC 9110 §9.3.2 asks: the
/// same handler, so the same status and headers; the HTTP/1 codec leaves
/// out the body of an answer to `HEAD`.
fn get() -> Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// A resource whose routes answer the methods `methods`: `OPTIONS` gets 204
/// and any other method 405, both with `Allow` naming them (RFC 9110
/// §9.3.7, §15.5.6), plus `HEAD` where `GET` is, and `OPTIONS`.
fn resource(path: &str, methods: &[Method]) -> Resource {
    let mut allowed: Vec<&str> = Vec::new();
    for method in methods {
        allowed.push(method.as_str());
        if *method == Method::GET {
            allowed.push(Method::HEAD.as_str());
        }
    }
    allowed.push(Method::OPTIONS.as_str());
    let allow = allowed.join(", ");
    web::resource(path).default_service(web::to(move |req: HttpRequest| {
        let allow = allow.clone();
        async move { other_method(&req, &allow) }
    }))
}

fn other_method(req: &HttpRequest, allow: &str) -> HttpResponse {
    let mut response = if req.method() == Method::OPTIONS {
        HttpResponse::NoContent().finish()
    } else {
        ApiError::MethodNotAllowed.error_response()
    };
    if let Ok(value) = header::HeaderValue::from_str(allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("no such endpoint".into()))
}
