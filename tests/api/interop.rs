//! Third-party verifiers accept Tessera's tokens with configuration only:
//! PyJWT's `PyJWKClient` from the discovery document, a
//! djangorestframework-sso "otherapp" with PEM files named by kid, and node's
//! `jose` with `createRemoteJWKSet`. `.ci/run` installs PyJWT and `jose`.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app};

async fn notebooks_token(app: &TestApp) -> String {
    let alice = app.add_user("alice", Some("alice@example.com")).await;
    app.grant(&alice, "notebooks", &["read"]).await;
    let session = app.session_token("alice").await;
    app.authorization_token(&session, Some(json!({"audience": "notebooks"})))
        .await
}

/// Runs a verifier off the test's runtime (the server answers it) and
/// returns the claims it printed.
async fn run(program: &str, args: Vec<String>) -> Value {
    let program = program.to_owned();
    let interop = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(&program)
            .args(&args)
            .current_dir(&interop)
            .output()
            .unwrap_or_else(|e| panic!("{program} must be installed (.ci/run does it): {e}"))
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "the verifier refused the token: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("claims as JSON")
}

#[tokio::test]
async fn pyjwt_and_a_drf_sso_otherapp_verify_authorization_tokens() {
    let app = spawn_app(Backend::Postgres).await;
    let token = notebooks_token(&app).await;
    let pem_dir = tempfile::tempdir().unwrap();
    for key in app.keys().published() {
        std::fs::write(pem_dir.path().join(format!("{}.pem", key.kid)), &key.pem).unwrap();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/verify_pyjwt.py");

    let claims = run(
        "python3",
        vec![
            script.display().to_string(),
            app.issuer.clone(),
            "notebooks".into(),
            token,
            pem_dir.path().display().to_string(),
        ],
    )
    .await;

    assert_eq!(claims["username"], "alice");
    assert_eq!(claims["scopes"], json!(["read"]));
}

#[tokio::test]
async fn node_jose_verifies_authorization_tokens_from_the_remote_jwks() {
    let app = spawn_app(Backend::Postgres).await;
    let token = notebooks_token(&app).await;

    let claims = run(
        "node",
        vec![
            "verify_jose.mjs".into(),
            app.issuer.clone(),
            "notebooks".into(),
            token,
        ],
    )
    .await;

    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["aud"], json!(["notebooks"]));
}
