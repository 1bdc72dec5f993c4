//! User names as people read them: a name that renders like another's, or
//! hides characters, is refused; a name logs in by its folded form; and
//! users stored before names were folded keep logging in after the upgrade,
//! also those whose names now fold to another's.

use std::str::FromStr;

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection, SqliteConnection};

use crate::helpers::{Backend, PASSWORD, TestApp, TestDatabase, assert_error, spawn_app};

async fn create_user(app: &TestApp, token: &str, username: &str) -> reqwest::Response {
    app.client
        .request(Method::POST, app.url("/admin/users"))
        .bearer_auth(token)
        .json(&json!({"username": username, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
}

/// The name of the user whose session `token` is.
async fn username_of(app: &TestApp, token: &str) -> String {
    let response = app
        .client
        .get(app.url("/session"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["username"].as_str().unwrap().to_owned()
}

async fn look_alike_and_invisible_names_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.admin_token().await;
    assert_eq!(create_user(&app, &token, "admin").await.status(), 201);

    for (name, status, code) in [
        ("ａdmin", 409, "conflict"),
        ("ADMIN", 409, "conflict"),
        ("\u{430}dmin", 409, "conflict"),
        ("admin\u{200b}", 400, "invalid_request"),
        ("\u{202e}nimda", 400, "invalid_request"),
    ] {
        let response = create_user(&app, &token, name).await;
        let body = assert_error(response, status, code).await;
        assert!(
            body["message"].as_str().unwrap().contains("username")
                || body["message"].as_str().unwrap().contains("looks like"),
            "{name:?}: {body}"
        );
    }
    // Names that merely differ are welcome.
    assert_eq!(create_user(&app, &token, "admins").await.status(), 201);
    assert_eq!(create_user(&app, &token, "Zoë").await.status(), 201);
}

async fn a_name_logs_in_by_its_folded_form(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("admin", None).await;

    let session = app.session_token("ＡＤＭＩＮ").await;

    assert_eq!(username_of(&app, &session).await, "admin");
    // An invisible character makes another name, never `admin`'s.
    let zero_width = app.login("admin\u{200b}", PASSWORD).await;
    assert_error(zero_width, 401, "invalid_credentials").await;
}

/// A database with the schema as it was before names were folded (every
/// migration up to the skeleton) and users stored as that version did,
/// `ａdmin` (full-width `ａ`) among them, next to the older `admin`.
async fn database_from_before_folding(backend: Backend) -> TestDatabase {
    let database = TestDatabase::create(backend).await;
    let name = match backend {
        Backend::Postgres => "postgres",
        Backend::Sqlite => "sqlite",
    };
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(name);
    let old = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_owned();
        if file.as_str() < "20261202093000" {
            std::fs::copy(&path, old.path().join(&file)).unwrap();
        }
    }
    let migrator = sqlx::migrate::Migrator::new(old.path()).await.unwrap();
    let hash = tessera::password::hash(
        &tessera::domain::Password::parse(PASSWORD.into()).unwrap(),
        Default::default(),
    )
    .unwrap();
    // Names, their lower-case keys, and when they were stored.
    let days_ago = |days| chrono::Utc::now() - chrono::TimeDelta::days(days);
    let users = [
        ("admin", "admin", days_ago(3)),
        ("Alice", "alice", days_ago(2)),
        ("ａdmin", "ａdmin", days_ago(1)),
    ];
    match backend {
        Backend::Postgres => {
            let mut conn = PgConnection::connect(&database.url()).await.unwrap();
            migrator.run(&mut conn).await.unwrap();
            for (username, key, at) in users {
                sqlx::query(
                    "insert into users (id, username, username_key, password_hash, created_at) \
                     values (gen_random_uuid(), $1, $2, $3, $4)",
                )
                .bind(username)
                .bind(key)
                .bind(&hash)
                .bind(at)
                .execute(&mut conn)
                .await
                .unwrap();
            }
        }
        Backend::Sqlite => {
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(&database.url())
                .unwrap()
                .create_if_missing(true);
            let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
            migrator.run(&mut conn).await.unwrap();
            for (username, key, at) in users {
                let at = at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
                sqlx::query(
                    "insert into users (id, username, username_key, password_hash, is_active, \
                     created_at, updated_at) values (?1, ?2, ?3, ?4, 1, ?5, ?5)",
                )
                .bind(uuid::Uuid::new_v4().to_string())
                .bind(username)
                .bind(key)
                .bind(&hash)
                .bind(at)
                .execute(&mut conn)
                .await
                .unwrap();
            }
        }
    }
    database
}

async fn users_stored_before_names_were_folded_keep_logging_in(backend: Backend) {
    let first = spawn_app(backend).await;
    let database = database_from_before_folding(backend).await;

    let app = first.restart_on(database).await;

    // The older of two names that now fold alike takes the folded form...
    let session = app.session_token("ＡＤＭＩＮ").await;
    assert_eq!(username_of(&app, &session).await, "admin");
    let session = app.session_token("admin").await;
    assert_eq!(username_of(&app, &session).await, "admin");
    // ...and the younger logs in by its exact name, as before.
    let session = app.session_token("ａdmin").await;
    assert_eq!(username_of(&app, &session).await, "ａdmin");
    let session = app.session_token("ALICE").await;
    assert_eq!(username_of(&app, &session).await, "Alice");
    // The stored names' skeletons refuse new look-alikes.
    let token = app.admin_token().await;
    for name in ["\u{430}dmin", "ａlice", "\u{410}lice"] {
        let response = create_user(&app, &token, name).await;
        assert_error(response, 409, "conflict").await;
    }
    // Folding again at the next start changes nothing.
    let again = app.restart().await;
    let session = again.session_token("ａdmin").await;
    assert_eq!(username_of(&again, &session).await, "ａdmin");
}

on_both_backends!(
    look_alike_and_invisible_names_are_refused,
    a_name_logs_in_by_its_folded_form,
    users_stored_before_names_were_folded_keep_logging_in,
);
