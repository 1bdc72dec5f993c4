//! The HTTP edge under hostile clients: metric labels they cannot grow.
//!
//! The storage backend plays no part here: these run on SQLite only.

use reqwest::Method;

use crate::helpers::{Backend, TestApp, spawn_app};

async fn metrics(app: &TestApp) -> String {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// The series of the HTTP request metrics.
fn request_series(text: &str) -> usize {
    text.lines()
        .filter(|line| line.starts_with("tessera_http_request"))
        .count()
}

/// This process's resident memory, in KiB: the server runs in it.
fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

async fn send(app: &TestApp, method: &str, path: &str) {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let response = app
        .client
        .request(method, app.url(path))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());
}

#[tokio::test]
async fn client_chosen_methods_and_paths_add_no_metric_series() {
    let app = spawn_app(Backend::Sqlite).await;
    // One of each kind first, so that every series the flood can touch
    // exists before counting.
    send(&app, "X0000000", "/healthz").await;
    send(&app, "GET", "/nowhere/0").await;
    send(&app, "GET", "/keys/0.pem").await;
    metrics(&app).await;
    let before = metrics(&app).await;
    let resident_before = resident_kib();

    for n in 1..=1000 {
        send(&app, &format!("X{n:07}"), "/healthz").await;
        send(&app, "GET", &format!("/nowhere/{n}")).await;
        send(&app, "GET", &format!("/keys/{n}.pem")).await;
    }
    for n in 0..300 {
        send(&app, &format!("X{n:07}{}", "Y".repeat(8000)), "/healthz").await;
    }
    let after = metrics(&app).await;

    assert_eq!(request_series(&after), request_series(&before));
    assert!(
        after.len() < before.len() + 4096,
        "/metrics grew from {} to {} bytes",
        before.len(),
        after.len()
    );
    assert!(!after.contains("X0000001"), "no raw method is a label");
    assert!(!after.contains("/nowhere/1"), "no raw path is a label");
    // Generous: only the allocator's own slack; the old fault took 30 MiB
    // for far fewer long methods than this.
    let grown = resident_kib().saturating_sub(resident_before);
    assert!(grown < 32 * 1024, "resident memory grew by {grown} KiB");
}
