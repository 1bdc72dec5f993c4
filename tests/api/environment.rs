//! What a deployment puts in the environment: settings are read from
//! `TESSERA_…` variables, and nothing else there stops the service.

use std::path::Path;
use std::process::{Command, Output};

/// Runs `tessera user list` on a fresh SQLite database in `dir`, with only
/// the given environment.
fn user_list(dir: &Path, env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["user", "list"])
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run tessera")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn kubernetes_service_links_and_the_config_path_do_not_stop_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("elsewhere.toml");
    std::fs::write(&config, "database_url = \"sqlite://from-config.db\"\n").unwrap();

    let output = user_list(
        dir.path(),
        &[
            ("TESSERA_PORT", "tcp://10.0.0.1:8080"),
            ("TESSERA_SERVICE_HOST", "10.0.0.1"),
            ("TESSERA_SERVICE_PORT", "8080"),
            ("TESSERA_SERVICE_PORT_HTTP", "8080"),
            ("TESSERA_PORT_8080_TCP", "tcp://10.0.0.1:8080"),
            ("TESSERA_PORT_8080_TCP_ADDR", "10.0.0.1"),
            ("TESSERA_PORT_8080_TCP_PORT", "8080"),
            ("TESSERA_PORT_8080_TCP_PROTO", "tcp"),
            ("TESSERA_CONFIG", config.to_str().unwrap()),
        ],
    );

    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!stderr(&output).contains("TESSERA_"), "{}", stderr(&output));
    assert!(
        dir.path().join("from-config.db").exists(),
        "TESSERA_CONFIG names the configuration file"
    );
}

#[test]
fn an_unknown_tessera_variable_is_named_once_in_a_warning() {
    let dir = tempfile::tempdir().unwrap();

    let output = user_list(
        dir.path(),
        &[
            ("TESSERA_BIDN", "0.0.0.0:8080"),
            ("TESSERA_KEYS__DIRECTORY", "/keys"),
        ],
    );

    assert!(output.status.success(), "{}", stderr(&output));
    let log = stderr(&output);
    assert_eq!(log.matches("TESSERA_BIDN").count(), 1, "{log}");
    assert_eq!(log.matches("TESSERA_KEYS__DIRECTORY").count(), 1, "{log}");
    assert!(log.contains("WARN"), "{log}");
}

#[test]
fn unknown_keys_in_the_configuration_file_still_fail_naming_the_valid_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tessera.toml"), "bidn = \"0.0.0.0:8080\"\n").unwrap();

    let output = user_list(dir.path(), &[]);

    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("bidn"), "{message}");
    assert!(message.contains("bind"), "{message}");
}

#[test]
fn huge_durations_are_refused_at_start_up_with_the_setting_named() {
    let dir = tempfile::tempdir().unwrap();
    for (name, value, setting) in [
        (
            "TESSERA_THROTTLE__WINDOW",
            "10000000000000000",
            "throttle.window",
        ),
        (
            "TESSERA_TOKENS__SESSION_LIFETIME",
            "1000000000000000",
            "tokens.session_lifetime",
        ),
        ("TESSERA_TOKENS__LEEWAY", "99999999999d", "tokens.leeway"),
    ] {
        let output = user_list(dir.path(), &[(name, value)]);

        assert!(!output.status.success(), "{name}={value} accepted");
        let message = stderr(&output);
        assert!(message.contains(setting), "{name}: {message}");
        assert!(!message.contains("panicked"), "{name}: {message}");
    }
}

#[test]
fn every_duration_setting_takes_seconds_or_text() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tessera.toml"),
        r#"
[tokens]
session_lifetime = "30d"
authorization_lifetime = "5m"
leeway = 30

[throttle]
base_delay = "500ms"
max_delay = "15m"
window = 900

[hashing]
queue_timeout = "2s"

[keys]
jwks_max_age = "5m"
"#,
    )
    .unwrap();

    let output = user_list(dir.path(), &[("TESSERA_THROTTLE__WINDOW", "1h")]);

    assert!(output.status.success(), "{}", stderr(&output));
}
