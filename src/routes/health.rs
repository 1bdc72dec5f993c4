//! `GET /healthz` (the process answers) and `GET /readyz` (the database
//! answers and a signing key is loaded). A key file that cannot be used does
//! not make the service unready, since it keeps signing with the last good
//! key, but `/readyz` lists it under `warnings` for the operator.

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
    let keys = state.keys.current();
    let warnings: Vec<String> = keys.problems().iter().map(ToString::to_string).collect();
    Ok(HttpResponse::Ok().json(json!({
        "status": "ready",
        "signing_kid": keys.signing().kid(),
        "warnings": warnings,
    })))
}
