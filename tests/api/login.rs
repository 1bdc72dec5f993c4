//! The hosted login page's client registry, as the command line shows it.

use std::process::Command;

#[test]
fn clients_list_prints_the_registered_clients() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tessera.toml");
    std::fs::write(
        &config,
        r#"
[tokens]
allowed_audiences = ["tessera", "notebooks"]

[[clients]]
id = "jupyterhub"
audience = "notebooks"
redirect_uris = ["https://hub.example.com/hub/*"]
scopes = ["read"]
"#,
    )
    .unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["--config", config.to_str().unwrap(), "clients", "list"])
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();

    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let line = stdout
        .lines()
        .find(|l| l.starts_with("jupyterhub"))
        .expect("the client is listed");
    for part in [
        "notebooks",
        "query",
        "read",
        "https://hub.example.com/hub/*",
    ] {
        assert!(line.contains(part), "{part} in {line}");
    }
}

#[test]
fn a_client_of_an_audience_that_is_not_allowed_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tessera.toml");
    std::fs::write(
        &config,
        r#"
[[clients]]
id = "jupyterhub"
audience = "notebooks"
redirect_uris = ["https://hub.example.com/hub/*"]
"#,
    )
    .unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["--config", config.to_str().unwrap(), "clients", "list"])
        .current_dir(dir.path())
        .output()
        .unwrap();

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("tokens.allowed_audiences"), "{stderr}");
}
