//! Every request: a request id (taken from a sane `X-Request-Id` or made
//! fresh, and returned), one log line when it is answered, metrics by route,
//! and error responses that are not yet JSON (from the framework itself)
//! rewritten into Tessera's `{"error", "message"}` shape.
//!
//! The line logs method, route and path, never the query string or a
//! header: neither may carry a credential into the log.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse, ResponseError, web};
use tracing::Instrument;

use crate::error::ApiError;
use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Largest total size of request headers accepted: names and values.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// A client's request id is kept when it is short and plain.
fn sane_request_id(value: &HeaderValue) -> Option<String> {
    let value = value.to_str().ok()?;
    let plain = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    plain.then(|| value.to_owned())
}

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(sane_request_id)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = crate::metrics::method_label(req.method());
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let path = req.path().to_owned();
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|state| state.metrics.clone());
    let span = tracing::info_span!("request", %method, %route, request_id = %request_id);

    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    let response = if header_bytes > MAX_HEADER_BYTES {
        let refused = ApiError::InvalidRequest(format!(
            "the request headers are larger than {MAX_HEADER_BYTES} bytes"
        ))
        .error_response();
        let mut refused = refused;
        *refused.status_mut() = actix_web::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
        req.into_response(refused)
    } else {
        next.call(req)
            .instrument(span.clone())
            .await?
            .map_into_boxed_body()
    };
    let mut response = as_json_error(response);
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    if let Some(metrics) = metrics {
        metrics
            .requests
            .with_label_values(&[route.as_str(), method, &status.to_string()])
            .inc();
        metrics
            .request_duration
            .with_label_values(&[route.as_str(), method])
            .observe(elapsed.as_secs_f64());
    }
    span.in_scope(|| {
        tracing::info!(
            status,
            path = %path,
            elapsed_ms = elapsed.as_secs_f64() * 1000.0,
            "Request answered"
        );
    });
    Ok(response)
}

/// The framework's own errors (a malformed header, a path or query its
/// extractors refuse) answer plain text; give them the JSON shape too.
/// What the HTTP/1 codec refuses before any service runs (a malformed
/// request line, too many headers, a head not sent in time) it answers
/// itself, with an empty body: no middleware sees it.
fn as_json_error(response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let error = match status.as_u16() {
        404 => ApiError::NotFound("no such endpoint".into()),
        405 => ApiError::MethodNotAllowed,
        413 => ApiError::PayloadTooLarge {
            limit: super::MAX_BODY_BYTES,
        },
        code if code >= 500 => {
            ApiError::Unexpected(anyhow::anyhow!("the framework answered {status}"))
        }
        _ => ApiError::InvalidRequest(
            status
                .canonical_reason()
                .unwrap_or("the request is malformed")
                .to_lowercase(),
        ),
    };
    let mut json: HttpResponse = error.error_response();
    *json.status_mut() = status;
    let (req, _) = response.into_parts();
    ServiceResponse::new(req, json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_short_request_ids_are_kept() {
        let id = |v: &str| sane_request_id(&HeaderValue::from_str(v).unwrap());
        assert_eq!(id("abc-123_x.y").as_deref(), Some("abc-123_x.y"));
        assert_eq!(id(""), None);
        assert_eq!(id("has space"), None);
        assert_eq!(id("new\\nline"), None);
        assert_eq!(id(&"x".repeat(65)), None);
    }
}
