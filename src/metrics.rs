//! Prometheus metrics, served as text at `/metrics`. The registry is the
//! application's own (built at start-up and passed as app data), never a
//! process-wide global.
//!
//! Every label value comes from a fixed set, never from the client: each
//! distinct value is a series held in memory for good and rendered on every
//! scrape. The request method is one of the methods of RFC 9110 §9 (or
//! `other`), the route is the pattern of the route table that matched (or
//! `unmatched`), never the raw path, and the status is a code Tessera
//! answered. The one label not fixed in the code, the `kid` of
//! `tessera_key_age_seconds`, comes from the file names in the operator's
//! key directory.

use actix_web::http::Method;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub request_duration: HistogramVec,
    pub logins: IntCounterVec,
    pub tokens_issued: IntCounterVec,
    pub throttled: IntCounterVec,
    pub hash_queue_depth: IntGauge,
    pub hash_wait: Histogram,
    pub db_connections: IntGaugeVec,
    pub key_age: IntGaugeVec,
    pub next_rotation: IntGauge,
}

impl Metrics {
    pub fn new() -> anyhow::Result<Self> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "tessera_http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "tessera_http_request_duration_seconds",
                "HTTP request latency",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["route", "method"],
        )?;
        let logins = IntCounterVec::new(
            Opts::new("tessera_logins_total", "Logins by outcome"),
            &["outcome"],
        )?;
        let tokens_issued = IntCounterVec::new(
            Opts::new("tessera_tokens_issued_total", "Tokens issued by type"),
            &["type"],
        )?;
        let throttled = IntCounterVec::new(
            Opts::new(
                "tessera_throttled_requests_total",
                "Requests refused by throttling (429) or admission control (503)",
            ),
            &["reason"],
        )?;
        let hash_queue_depth = IntGauge::new(
            "tessera_password_hash_queue_depth",
            "Password verifications waiting for a hashing thread",
        )?;
        let hash_wait = Histogram::with_opts(
            HistogramOpts::new(
                "tessera_password_hash_wait_seconds",
                "Time a password verification waited for a hashing thread",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0,
            ]),
        )?;
        let db_connections = IntGaugeVec::new(
            Opts::new(
                "tessera_db_pool_connections",
                "Database pool connections by state",
            ),
            &["state"],
        )?;
        let key_age = IntGaugeVec::new(
            Opts::new(
                "tessera_key_age_seconds",
                "Age of each published key, by state",
            ),
            &["kid", "state"],
        )?;
        let next_rotation = IntGauge::new(
            "tessera_key_next_rotation_seconds",
            "Seconds until automatic rotation makes the next key (when keys.rotate_every is set)",
        )?;
        registry.register(Box::new(next_rotation.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(request_duration.clone()))?;
        registry.register(Box::new(logins.clone()))?;
        registry.register(Box::new(tokens_issued.clone()))?;
        registry.register(Box::new(throttled.clone()))?;
        registry.register(Box::new(hash_queue_depth.clone()))?;
        registry.register(Box::new(hash_wait.clone()))?;
        registry.register(Box::new(db_connections.clone()))?;
        registry.register(Box::new(key_age.clone()))?;
        Ok(Self {
            registry,
            requests,
            request_duration,
            logins,
            tokens_issued,
            throttled,
            hash_queue_depth,
            hash_wait,
            db_connections,
            key_age,
            next_rotation,
        })
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> anyhow::Result<String> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        Ok(String::from_utf8(buffer)?)
    }
}

/// The `method` label of a request: the method if it is one RFC 9110 §9 or
/// RFC 5789 defines, else `other`. Any token is a valid method on the wire,
/// so the raw method would let anyone grow the registry without limit.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_method_label_is_a_standard_method_or_other() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        for unknown in ["X0000001", "get", "PROPFIND", &"X".repeat(8000)] {
            let method = Method::from_bytes(unknown.as_bytes()).unwrap();
            assert_eq!(method_label(&method), "other", "{unknown}");
        }
    }
}
