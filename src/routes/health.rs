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
