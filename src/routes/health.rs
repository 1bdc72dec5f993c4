//! `GET /healthz` (the process answers) and `GET /readyz` (the database
//! answers and a signing key is loaded).

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if let Err(error) = state.store.ping().await {
        tracing::warn!(error = ?error, "Database is not reachable");
        return Err(ApiError::Unavailable { retry_after: 5 });
    }
    Ok(HttpResponse::Ok().json(json!({
        "status": "ready",
        "signing_kid": state.keys.signing().kid(),
    })))
}

/// `GET /metrics`: Prometheus text.
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
    let now = chrono::Utc::now();
    let signing = state.keys.signing().kid();
    metrics.key_age.reset();
    for key in state.keys.published() {
        let key_state = if key.kid == signing {
            "active"
        } else {
            "published"
        };
        metrics
            .key_age
            .with_label_values(&[&key.kid, key_state])
            .set((now - key.created).num_seconds());
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics.render()?))
}
