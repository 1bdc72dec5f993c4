//! The `tessera` binary's administration commands, run as a user would.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::json;

use crate::helpers::{Backend, PASSWORD, TestApp, TestDatabase, assert_error, spawn_app};

/// Runs `tessera ARGS` against `app`'s database and key directory.
async fn tessera(app: &TestApp, args: &[&str], stdin: Option<&str>) -> Output {
    tessera_on(&app.database.url(), app, args, stdin).await
}

/// Runs the binary without blocking this test's runtime, where the server's
/// background tasks (the audit writer) run too.
async fn tessera_on(
    database_url: &str,
    app: &TestApp,
    args: &[&str],
    stdin: Option<&str>,
) -> Output {
    let (database_url, keys_dir) = (database_url.to_owned(), app.keys_dir.clone());
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let stdin = stdin.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        run_tessera(&database_url, &keys_dir, &args, stdin.as_deref())
    })
    .await
    .unwrap()
}

fn run_tessera(
    database_url: &str,
    keys_dir: &std::path::Path,
    args: &[String],
    stdin: Option<&str>,
) -> Output {
    let scratch = tempfile::tempdir().unwrap();
    let mut command = tessera_command(database_url, keys_dir, scratch.path());
    let output = run(command.args(args), stdin);
    assert!(
        output.status.success(),
        "tessera {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `tessera` on `database_url` and `keys_dir`, working in `dir`, with the
/// test application's allowed audiences and warnings only in its log.
fn tessera_command(
    database_url: &str,
    keys_dir: &std::path::Path,
    dir: &std::path::Path,
) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    command
        .current_dir(dir)
        .env("DATABASE_URL", database_url)
        .env("TESSERA_KEYS__DIR", keys_dir)
        .env(
            "TESSERA_TOKENS__ALLOWED_AUDIENCES",
            "[tessera,notebooks,billing]",
        )
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn run(command: &mut Command, stdin: Option<&str>) -> Output {
    let mut child = command.spawn().expect("run tessera");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

/// Runs `command`, which must fail, and returns its standard error after
/// checking that it is a report: `Error: …` and its causes, one a line,
/// with no backtrace although one is asked for.
async fn failure(mut command: Command, stdin: Option<&str>) -> String {
    command
        .env("RUST_BACKTRACE", "1")
        .env("RUST_LIB_BACKTRACE", "1");
    let stdin = stdin.map(str::to_owned);
    let output = tokio::task::spawn_blocking(move || run(&mut command, stdin.as_deref()))
        .await
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!output.status.success(), "{stderr}");
    assert!(
        !stderr.to_lowercase().contains("backtrace"),
        "no backtrace: {stderr}"
    );
    let report: Vec<&str> = stderr
        .lines()
        .skip_while(|line| !line.starts_with("Error: "))
        .collect();
    assert!(!report.is_empty(), "a report: {stderr}");
    for line in &report[1..] {
        assert!(line.starts_with("  caused by: "), "{line:?} in {stderr}");
    }
    let causes: Vec<&&str> = report[1..].iter().collect();
    for (at, cause) in causes.iter().enumerate() {
        assert!(!causes[at + 1..].contains(cause), "repeated: {stderr}");
    }
    stderr
}

async fn users_and_grants_made_on_the_command_line_can_log_in(backend: Backend) {
    let app = spawn_app(backend).await;

    tessera(
        &app,
        &[
            "user",
            "add",
            "carol",
            "--email",
            "carol@example.com",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    tessera(
        &app,
        &["user", "grant", "carol", "notebooks", "read", "write"],
        None,
    )
    .await;
    tessera(
        &app,
        &["user", "revoke", "carol", "notebooks", "write"],
        None,
    )
    .await;
    let listed = tessera(&app, &["user", "list"], None).await;

    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(
        listed.contains("carol") && listed.contains("notebooks:read"),
        "{listed}"
    );
    assert!(!listed.contains("notebooks:write"), "{listed}");
    let session = app.session_token("carol").await;
    let token = app
        .authorization_token(&session, Some(json!({"audience": "notebooks"})))
        .await;
    let claims =
        jsonwebtoken::dangerous::insecure_decode_claims::<serde_json::Value>(&token).unwrap();
    assert_eq!(claims["scopes"], json!(["read"]));
    assert_eq!(claims["email"], "carol@example.com");

    tessera(&app, &["user", "disable", "carol"], None).await;
    assert_eq!(app.login("carol", PASSWORD).await.status(), 401);
    tessera(&app, &["user", "enable", "carol"], None).await;
    assert_eq!(app.login("carol", PASSWORD).await.status(), 200);
}

async fn errors_are_one_line_and_their_causes_and_never_a_backtrace(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice", None).await;
    let scratch = tempfile::tempdir().unwrap();
    let command = || tessera_command(&app.database.url(), &app.keys_dir, scratch.path());

    let mut add = command();
    add.args(["user", "add", "alice", "--password-stdin"]);
    let stderr = failure(add, Some(&format!("{PASSWORD}\n"))).await;
    assert!(
        stderr
            .starts_with("Error: a user named alice, or a name that looks like it, already exists"),
        "{stderr}"
    );

    let mut bad_value = command();
    bad_value
        .args(["user", "list"])
        .env("TESSERA_TOKENS__SESSION_LIFETIME", "soon");
    let stderr = failure(bad_value, None).await;
    assert!(
        stderr.contains(
            "  caused by: tokens.session_lifetime (from the environment variable \
             TESSERA_TOKENS__SESSION_LIFETIME): \"soon\" is not a duration"
        ),
        "{stderr}"
    );

    let file = scratch.path().join("typo.toml");
    std::fs::write(&file, "[tokens]\nsession_lifetme = \"30d\"\n").unwrap();
    let mut typo = command();
    typo.args(["user", "list", "--config"]).arg(&file);
    let stderr = failure(typo, None).await;
    assert!(
        stderr.contains("  caused by: tokens.session_lifetme (in "),
        "{stderr}"
    );
    assert!(
        stderr.contains("expected one of session_audience, session_lifetime"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("default.") && !stderr.contains('`'),
        "{stderr}"
    );

    let mut down = command();
    down.args(["user", "list"])
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/tessera");
    let stderr = failure(down, None).await;
    assert_eq!(
        stderr,
        "Error: connecting to Postgres at 127.0.0.1:1, database tessera\n  caused by: connection refused\n"
    );

    let mut missing = command();
    let url = format!("{}_missing", app.database.url());
    missing.args(["user", "list"]).env("DATABASE_URL", &url);
    if backend == Backend::Postgres {
        let stderr = failure(missing, None).await;
        assert!(
            stderr.contains("caused by: database \"tessera_test_"),
            "{stderr}"
        );
        assert_eq!(stderr.matches("does not exist").count(), 1, "{stderr}");
        assert!(!stderr.contains("at line"), "{stderr}");
    }
}

/// A grant at an audience that is not allowed is kept (the setting may
/// follow), with a warning naming the setting; `/authorize` names it too.
async fn a_grant_at_an_audience_that_is_not_allowed_warns_naming_the_setting(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice", None).await;

    let allowed = tessera(&app, &["user", "grant", "alice", "notebooks", "read"], None).await;
    let not_allowed = tessera(
        &app,
        &["user", "grant", "alice", "dashboards", "read"],
        None,
    )
    .await;

    let stderr = |output: &Output| String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !stderr(&allowed).contains("warning"),
        "{}",
        stderr(&allowed)
    );
    assert_eq!(
        stderr(&not_allowed),
        "warning: \"dashboards\" is not in tokens.allowed_audiences (tessera, notebooks, \
         billing): no token is issued for it until it is added there\n"
    );
    let session = app.session_token("alice").await;
    let response = app
        .authorize(&session, Some(json!({"audience": "dashboards"})))
        .await;
    let body = assert_error(response, 403, "forbidden").await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("not in tokens.allowed_audiences"),
        "{body}"
    );
}

/// An export holds password hashes: its file is 0600 whether `--output`
/// names it (even one that existed, readable by all) or the shell opened
/// it for a redirection. An import into the same, non-empty, database says
/// where to import instead.
async fn an_export_is_readable_by_its_owner_only_and_imports_only_into_an_empty_database(
    backend: Backend,
) {
    use std::os::unix::fs::PermissionsExt;

    let app = spawn_app(backend).await;
    app.add_user("alice", None).await;
    let scratch = tempfile::tempdir().unwrap();
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let open_to_all = |name: &str| {
        let path = scratch.path().join(name);
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        path
    };

    let named = open_to_all("named.jsonl");
    tessera(&app, &["export", "--output", named.to_str().unwrap()], None).await;
    let redirected = open_to_all("redirected.jsonl");
    let mut export = tessera_command(&app.database.url(), &app.keys_dir, scratch.path());
    export
        .arg("export")
        .stdout(std::fs::File::create(&redirected).unwrap());
    let output = tokio::task::spawn_blocking(move || run(&mut export, None))
        .await
        .unwrap();

    assert!(output.status.success(), "{output:?}");
    for path in [&named, &redirected] {
        assert_eq!(mode(path), 0o600, "{}", path.display());
        let dump = std::fs::read_to_string(path).unwrap();
        assert!(
            dump.contains("alice") && dump.contains("$argon2id$"),
            "{dump}"
        );
    }

    let mut import = tessera_command(&app.database.url(), &app.keys_dir, scratch.path());
    import.arg("import").arg(&named);
    let stderr = failure(import, None).await;
    assert!(
        stderr.starts_with(
            "Error: the target database already has users; import into an empty database: \
             point DATABASE_URL at a new one"
        ),
        "{stderr}"
    );
}

/// Every argument of every command says what it is in `--help`, and the
/// binary prints it.
#[test]
fn every_command_describes_its_arguments_in_its_help() {
    use clap::CommandFactory;

    fn undocumented(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if !matches!(id, "help" | "version") && arg.get_help().is_none() {
                missing.push(format!("{path} {id}"));
            }
        }
        for sub in command.get_subcommands() {
            if sub.get_about().is_none() {
                missing.push(format!("{path} {}", sub.get_name()));
            }
            undocumented(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }
    let mut missing = Vec::new();
    undocumented(&tessera::cli::Cli::command(), "tessera", &mut missing);
    assert!(missing.is_empty(), "undocumented: {missing:?}");

    let help = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["user", "grant", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(
        help.contains("<AUDIENCE>") && help.contains("tokens.allowed_audiences"),
        "{help}"
    );
}

/// The emergency `keys rotate --now` has no other name.
#[test]
fn keys_generate_is_not_a_command() {
    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["keys", "generate"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unrecognized subcommand 'generate'"));
}

/// A typo in a SQLite URL would start over on an empty database: the log
/// says which file is used, by its absolute path, and warns when it is new.
/// Logs to a pipe, or with `NO_COLOR`, are plain text.
#[tokio::test]
async fn sqlite_names_its_file_and_warns_when_it_creates_one_in_plain_logs() {
    let scratch = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let dir = scratch.path().canonicalize().unwrap();
    let list = |no_color: bool| {
        let mut command = tessera_command("sqlite:other.db", keys.path(), &dir);
        command.args(["user", "list"]).env("RUST_LOG", "info");
        if no_color {
            command.env("NO_COLOR", "1");
        }
        let output = run(&mut command, None);
        assert!(output.status.success());
        String::from_utf8(output.stderr).unwrap()
    };

    let first = list(false);
    let second = list(true);

    let path = dir.join("other.db");
    assert!(
        first.contains("WARN")
            && first.contains(&format!(
                "creating new SQLite database at {}",
                path.display()
            )),
        "{first}"
    );
    assert!(
        second.contains(&format!("using the SQLite database at {}", path.display())),
        "{second}"
    );
    assert!(!second.contains("creating"), "{second}");
    for log in [first, second] {
        assert!(!log.contains('\x1b'), "no ANSI escapes: {log:?}");
    }
}

async fn a_short_password_is_refused_by_user_add(backend: Backend) {
    let app = spawn_app(backend).await;

    let (url, keys_dir) = (app.database.url(), app.keys_dir.clone());
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["user", "add", "dave", "--password-stdin"])
            .env("DATABASE_URL", url)
            .env("TESSERA_KEYS__DIR", keys_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                child.stdin.take().unwrap().write_all(b"short\n")?;
                child.wait_with_output()
            })
            .unwrap()
    })
    .await
    .unwrap();

    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("at least 8 characters"));
    assert!(app.store.find_user_by_name("dave").await.unwrap().is_none());
}

/// The documented path from the default SQLite file to Postgres: users,
/// password hashes, grants and live sessions all survive.
#[tokio::test]
async fn an_installation_moves_from_sqlite_to_postgres_with_export_and_import() {
    let sqlite = spawn_app(Backend::Sqlite).await;
    let alice = sqlite.add_user("alice", Some("alice@example.com")).await;
    sqlite.grant(&alice, "notebooks", &["read"]).await;
    let session = sqlite.session_token("alice").await;

    let exported = tessera(&sqlite, &["export"], None).await;
    let postgres = TestDatabase::create(Backend::Postgres).await;
    tessera_on(
        &postgres.url(),
        &sqlite,
        &["import"],
        Some(std::str::from_utf8(&exported.stdout).unwrap()),
    )
    .await;
    let moved = sqlite.restart_on(postgres).await;

    // The session token issued on SQLite still authorizes on Postgres.
    let token = moved
        .authorization_token(&session, Some(json!({"audience": "notebooks"})))
        .await;
    let claims =
        jsonwebtoken::dangerous::insecure_decode_claims::<serde_json::Value>(&token).unwrap();
    assert_eq!(claims["sub"], alice.id.to_string());
    assert_eq!(claims["scopes"], json!(["read"]));
    // The password hash came along.
    assert_eq!(moved.login("alice", PASSWORD).await.status(), 200);
}

async fn oauth_clients_are_registered_with_a_secret_shown_once_and_kept_only_hashed(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let stdout = |output: Output| String::from_utf8(output.stdout).unwrap();

    let secret = stdout(
        tessera(
            &app,
            &[
                "clients",
                "add",
                "hub",
                "--audience",
                "tessera",
                "--redirect-uri",
                "http://127.0.0.1:8000/hub/oauth_callback",
                "--scope",
                "openid",
                "--require-grant",
                "tessera",
                "hub:use",
            ],
            None,
        )
        .await,
    );
    let secret = secret.trim();
    assert_eq!(secret.len(), 43, "256 bits, URL-safe base64: {secret:?}");
    tessera(
        &app,
        &[
            "clients",
            "add",
            "spa",
            "--public",
            "--audience",
            "tessera",
            "--redirect-uri",
            "https://app.example.com/callback",
        ],
        None,
    )
    .await;

    let hub = app.store.find_oauth_client("hub").await.unwrap().unwrap();
    let stored = hub.secret_hash.clone().unwrap();
    assert_eq!(stored.len(), 64, "a SHA-256, not the secret");
    assert!(tessera::oauth::clients::secret_matches(&hub, secret));
    assert_eq!(
        hub.required_grant,
        Some(("tessera".into(), "hub:use".into()))
    );
    assert_eq!(hub.grant_types, ["authorization_code", "refresh_token"]);
    let spa = app.store.find_oauth_client("spa").await.unwrap().unwrap();
    assert_eq!(spa.secret_hash, None);

    let listed = stdout(tessera(&app, &["clients", "list"], None).await);
    assert!(
        listed.contains("hub") && listed.contains("confidential"),
        "{listed}"
    );
    assert!(
        listed.contains("spa") && listed.contains("public"),
        "{listed}"
    );
    assert!(!listed.contains(secret), "a list never shows a secret");

    let rotated = stdout(tessera(&app, &["clients", "rotate-secret", "hub"], None).await);
    let hub = app.store.find_oauth_client("hub").await.unwrap().unwrap();
    assert!(tessera::oauth::clients::secret_matches(
        &hub,
        rotated.trim()
    ));
    assert!(
        !tessera::oauth::clients::secret_matches(&hub, secret),
        "the old one is gone"
    );

    tessera(&app, &["clients", "disable", "hub"], None).await;
    assert!(
        !app.store
            .find_oauth_client("hub")
            .await
            .unwrap()
            .unwrap()
            .is_active
    );
    tessera(&app, &["clients", "remove", "spa"], None).await;
    assert_eq!(app.store.find_oauth_client("spa").await.unwrap(), None);

    let events = app.audit_events("client.").await;
    assert_eq!(
        events,
        [
            "client.created client hub by cli",
            "client.created client spa by cli",
            "client.secret_rotated client hub by cli",
            "client.disabled client hub by cli",
            "client.deleted client spa by cli",
        ]
    );
}

on_both_backends!(
    oauth_clients_are_registered_with_a_secret_shown_once_and_kept_only_hashed,
    users_and_grants_made_on_the_command_line_can_log_in,
    a_short_password_is_refused_by_user_add,
    errors_are_one_line_and_their_causes_and_never_a_backtrace,
    a_grant_at_an_audience_that_is_not_allowed_warns_naming_the_setting,
    an_export_is_readable_by_its_owner_only_and_imports_only_into_an_empty_database,
);
