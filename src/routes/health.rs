//! `GET /healthz` (the process answers) and `GET /readyz` (the database
//! answers and the key whose turn it is to sign is loaded). A key file that
//! cannot be used does not by itself make the service unready, since it
//! keeps signing with the last good copy, but a server that cannot load the
//! active key answers 503 so that a load balancer takes it out.
//!
//! `/readyz` is public: it says ready or not and which key signs, never a
//! file path or why a file failed. Those go to the log, and to
//! `GET /admin/keys` for administrators.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses(
        (status = 200, description = "The process answers", body = shapes::Health),
    ),
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "The database answers and the active signing key is loaded", body = shapes::Readiness),
        (status = 503, description = "The database is unreachable, or the active signing key is not loaded; see `Retry-After`", body = crate::error::ErrorBody),
    ),
)]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if let Err(error) = state.store.ping().await {
        tracing::warn!(error = ?error, "Database is not reachable");
        return Err(ApiError::DatabaseUnavailable { retry_after: 5 });
    }
    let keys = state.keys.current();
    // The store logged why, when the key set changed.
    let signing = keys.signing()?;
    Ok(HttpResponse::Ok().json(json!({
        "status": "ready",
        "signing_kid": signing.kid(),
    })))
}

/// `GET /metrics`: Prometheus text.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"),
    ),
)]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let metrics = &state.metrics;
    let (open, idle) = state.store.pool_status();
    let idle = i64::try_from(idle).unwrap_or(i64::MAX);
    metrics
        .db_connections
        .with_label_values(&["idle"])
        .set(idle);
    metrics
        .db_connections
        .with_label_values(&["in_use"])
        .set(i64::from(open) - idle);
    let now = state.keys.now();
    metrics.key_age.reset();
    for key in state.keys.current().statuses(now) {
        let age = key
            .created
            .map_or(0, |created| (now - created).num_seconds());
        metrics
            .key_age
            .with_label_values(&[&key.kid, &key.state.to_string()])
            .set(age);
    }
    if let Some(every) = state.settings.keys.rotate_every {
        let every = chrono::TimeDelta::from_std(every).map_err(anyhow::Error::from)?;
        let next = crate::keys::lifecycle::next_boundary(now, every);
        metrics.next_rotation.set((next - now).num_seconds());
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics.render()?))
}

/// The shapes of bodies built with `serde_json::json!` or serialized from
/// elsewhere, for the OpenAPI document; only described, never built.
mod shapes {
    #![expect(
        dead_code,
        reason = "these types only describe bodies; nothing builds them"
    )]

    use utoipa::ToSchema;

    /// `GET /healthz`.
    #[derive(ToSchema)]
    pub(crate) struct Health {
        /// Always `ok`.
        status: String,
    }

    /// `GET /readyz`.
    #[derive(ToSchema)]
    pub(crate) struct Readiness {
        /// Always `ready`.
        status: String,
        /// The key that signs new tokens.
        signing_kid: String,
    }
}
