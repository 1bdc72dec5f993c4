use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, TestApp, assert_error, spawn_app, spawn_app_with};

async fn an_administrator_manages_users_grants_and_sessions_end_to_end(backend: Backend) {
    use reqwest::Method;
    let app = spawn_app(backend).await;
    let token = app.admin_token().await;

    let created = app
        .call(
            &token,
            Method::POST,
            "/admin/users",
            Some(json!({"username": "dana", "email": "dana@example.com", "password": PASSWORD})),
        )
        .await;
    assert_eq!(created.status(), 201);
    let dana: Value = created.json().await.unwrap();
    assert_eq!(dana["username"], "dana");
    assert!(dana.get("password_hash").is_none());
    let again = app
        .call(
            &token,
            Method::POST,
            "/admin/users",
            Some(json!({"username": "DANA", "password": PASSWORD})),
        )
        .await;
    assert_error(again, 409, "conflict").await;

    let granted = app
        .call(
            &token,
            Method::POST,
            "/admin/users/dana/grants",
            Some(json!({"audience": "notebooks", "scopes": ["read", "write"]})),
        )
        .await;
    assert_eq!(granted.status(), 204);
    let removed: Value = app
        .call(
            &token,
            Method::DELETE,
            "/admin/users/dana/grants",
            Some(json!({"audience": "notebooks", "scopes": ["write"]})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(removed["removed"], 1);
    let shown: Value = app
        .call(&token, Method::GET, "/admin/users/dana", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        shown["grants"],
        json!([{"audience": "notebooks", "scope": "read"}])
    );

    let page: Value = app
        .call(&token, Method::GET, "/admin/users?offset=0&limit=1", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["users"].as_array().unwrap().len(), 1);
    assert_eq!(page["users"][0]["username"], "dana");

    // Sessions: list, revoke one, log out everywhere.
    let first = app.session_token("dana").await;
    let second = app.session_token("dana").await;
    let sessions: Value = app
        .call(&token, Method::GET, "/admin/users/dana/sessions", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        sessions["sessions"].as_array().map(Vec::len),
        Some(2),
        "{sessions}"
    );
    let first_id = jsonwebtoken::dangerous::insecure_decode_claims::<Value>(&first).unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoked = app
        .call(
            &token,
            Method::DELETE,
            &format!("/admin/users/dana/sessions/{first_id}"),
            None,
        )
        .await;
    assert_eq!(revoked.status(), 204);
    assert_eq!(app.authorize(&first, None).await.status(), 401);
    assert_eq!(app.authorize(&second, None).await.status(), 200);
    let everywhere: Value = app
        .call(&token, Method::DELETE, "/admin/users/dana/sessions", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(everywhere["revoked"].as_array().unwrap().len(), 1);
    assert_eq!(app.authorize(&second, None).await.status(), 401);

    // Password, disable, enable, delete.
    let changed = app
        .call(
            &token,
            Method::PUT,
            "/admin/users/dana/password",
            Some(json!({"password": "a brand new one"})),
        )
        .await;
    assert_eq!(changed.status(), 204);
    assert_eq!(app.login("dana", PASSWORD).await.status(), 401);
    assert_eq!(app.login("dana", "a brand new one").await.status(), 200);
    assert_eq!(
        app.call(&token, Method::POST, "/admin/users/dana/disable", None)
            .await
            .status(),
        204
    );
    assert_eq!(app.login("dana", "a brand new one").await.status(), 401);
    assert_eq!(
        app.call(&token, Method::POST, "/admin/users/dana/enable", None)
            .await
            .status(),
        204
    );
    assert_eq!(app.login("dana", "a brand new one").await.status(), 200);
    assert_eq!(
        app.call(&token, Method::DELETE, "/admin/users/dana", None)
            .await
            .status(),
        204
    );
    assert_error(
        app.call(&token, Method::GET, "/admin/users/dana", None)
            .await,
        404,
        "not_found",
    )
    .await;

    let keys: Value = app
        .call(&token, Method::GET, "/admin/keys", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(keys["keys"][0]["state"], "active");

    // Every change is in the audit log, naming the administrator.
    app.audit.flush().await;
    let audit = app.store.audit_tail(200).await.unwrap();
    for event in [
        "user.created",
        "grant.added",
        "grant.removed",
        "session.revoked",
        "session.revoked_all",
        "user.password_changed",
        "user.disabled",
        "user.enabled",
        "user.deleted",
    ] {
        let entry = audit
            .iter()
            .find(|e| e.event == event)
            .unwrap_or_else(|| panic!("{event} audited"));
        assert!(
            entry.detail.starts_with("by root"),
            "{event}: {}",
            entry.detail
        );
    }
}

async fn the_admin_api_refuses_callers_without_the_admin_scope(backend: Backend) {
    use reqwest::Method;
    let app = spawn_app(backend).await;
    let user = app.add_user("eve", None).await;
    app.grant(&user, "notebooks", &["tessera:admin"]).await;
    let session = app.session_token("eve").await;
    let plain = app
        .authorization_token(&session, Some(json!({"audience": "tessera"})))
        .await;
    // The right scope at the wrong audience is no use either.
    let elsewhere = app
        .authorization_token(&session, Some(json!({"audience": "notebooks"})))
        .await;

    assert_error(
        app.client
            .get(app.url("/admin/users"))
            .send()
            .await
            .unwrap(),
        401,
        "invalid_token",
    )
    .await;
    assert_error(
        app.call(&session, Method::GET, "/admin/users", None).await,
        401,
        "invalid_token",
    )
    .await;
    assert_error(
        app.call(&elsewhere, Method::GET, "/admin/users", None)
            .await,
        401,
        "invalid_token",
    )
    .await;
    assert_error(
        app.call(&plain, Method::GET, "/admin/users", None).await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        app.call(&plain, Method::DELETE, "/admin/users/eve", None)
            .await,
        403,
        "forbidden",
    )
    .await;
    assert!(app.store.find_user_by_name("eve").await.unwrap().is_some());
    // Bad input gets 400s naming the problem.
    let token = app.admin_token().await;
    let bad = app
        .call(&token, Method::GET, "/admin/users?limit=100000", None)
        .await;
    assert_error(bad, 400, "invalid_request").await;
    let short = app
        .call(
            &token,
            Method::POST,
            "/admin/users",
            Some(json!({"username": "x", "password": "short"})),
        )
        .await;
    let body = assert_error(short, 400, "invalid_request").await;
    assert!(body["message"].as_str().unwrap().contains("password"));
}

fn session_id(token: &str) -> String {
    jsonwebtoken::dangerous::insecure_decode_claims::<Value>(token).unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The `session_revoked` entries of the whole revocation feed.
async fn revoked_in_feed(app: &TestApp) -> Vec<String> {
    let feed: Value = app
        .client
        .get(app.url("/revocations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    feed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "session_revoked")
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn an_admin_whose_grant_is_removed_loses_admin_rights_with_the_next_call(backend: Backend) {
    use reqwest::Method;
    let app = spawn_app(backend).await;
    let admin2 = app.add_user("admin2", None).await;
    app.grant(&admin2, "tessera", &["tessera:admin"]).await;
    let session = app.session_token("admin2").await;
    let token = app
        .authorization_token(&session, Some(json!({"audience": "tessera"})))
        .await;
    let regrant = json!({"audience": "tessera", "scopes": ["tessera:admin"]});
    assert_eq!(
        app.call(&token, Method::GET, "/admin/users", None)
            .await
            .status(),
        200
    );

    app.store
        .remove_grants(admin2.id, "tessera", &["tessera:admin".to_owned()])
        .await
        .unwrap();

    // The token still says `tessera:admin`; the current grant decides.
    assert_error(
        app.call(
            &token,
            Method::POST,
            "/admin/users/admin2/grants",
            Some(regrant.clone()),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    assert!(app.store.grants(admin2.id).await.unwrap().is_empty());
    assert_error(
        app.call(&token, Method::GET, "/admin/users", None).await,
        403,
        "forbidden",
    )
    .await;

    // Granted again, the same token works again.
    app.grant(&admin2, "tessera", &["tessera:admin"]).await;
    assert_eq!(
        app.call(&token, Method::GET, "/admin/users", None)
            .await
            .status(),
        200
    );
    // A disabled administrator is no caller at all.
    app.store
        .set_active(admin2.id, false, chrono::Utc::now())
        .await
        .unwrap();
    assert_error(
        app.call(&token, Method::GET, "/admin/users", None).await,
        401,
        "invalid_token",
    )
    .await;
}

async fn a_token_narrowed_at_issue_carries_no_admin_rights_its_user_holds(backend: Backend) {
    use reqwest::Method;
    let app = spawn_app(backend).await;
    let admin = app.add_user("root", None).await;
    app.grant(&admin, "tessera", &["tessera:admin", "tessera:introspect"])
        .await;
    let session = app.session_token("root").await;
    let narrow = app
        .authorization_token(
            &session,
            Some(json!({"audience": "tessera", "scopes": ["tessera:introspect"]})),
        )
        .await;

    assert_error(
        app.call(&narrow, Method::GET, "/admin/users", None).await,
        403,
        "forbidden",
    )
    .await;
}

async fn a_password_change_by_an_admin_ends_every_session_of_the_user(backend: Backend) {
    use reqwest::Method;
    let app = spawn_app(backend).await;
    let token = app.admin_token().await;
    app.add_user("bob", None).await;
    let first = app.session_token("bob").await;
    let second = app.session_token("bob").await;
    assert_eq!(app.authorize(&first, None).await.status(), 200);

    let changed = app
        .call(
            &token,
            Method::PUT,
            "/admin/users/bob/password",
            Some(json!({"password": "a brand new one"})),
        )
        .await;

    assert_eq!(changed.status(), 204);
    assert_error(app.authorize(&first, None).await, 401, "invalid_token").await;
    assert_error(app.authorize(&second, None).await, 401, "invalid_token").await;
    let revoked = revoked_in_feed(&app).await;
    assert!(revoked.contains(&session_id(&first)), "{revoked:?}");
    assert!(revoked.contains(&session_id(&second)), "{revoked:?}");
    // The new password opens a new session.
    assert_eq!(app.login("bob", "a brand new one").await.status(), 200);
}

async fn an_admin_changing_their_own_password_keeps_the_session_doing_it(backend: Backend) {
    use reqwest::Method;
    let app = spawn_app(backend).await;
    let token = app.admin_token().await;
    let elsewhere = app.session_token("root").await;

    let changed = app
        .call(
            &token,
            Method::PUT,
            "/admin/users/root/password",
            Some(json!({"password": "a brand new one"})),
        )
        .await;

    assert_eq!(changed.status(), 204);
    assert_error(app.authorize(&elsewhere, None).await, 401, "invalid_token").await;
    assert_eq!(
        app.call(&token, Method::GET, "/admin/users", None)
            .await
            .status(),
        200
    );
    assert_eq!(revoked_in_feed(&app).await, [session_id(&elsewhere)]);
}

async fn a_disabled_user_enabled_again_gets_none_of_their_sessions_back(backend: Backend) {
    use reqwest::Method;
    let app = spawn_app(backend).await;
    let token = app.admin_token().await;
    app.add_user("bob", None).await;
    let session = app.session_token("bob").await;
    assert_eq!(app.authorize(&session, None).await.status(), 200);

    for action in ["disable", "enable"] {
        let done = app
            .call(
                &token,
                Method::POST,
                &format!("/admin/users/bob/{action}"),
                None,
            )
            .await;
        assert_eq!(done.status(), 204, "{action}");
    }

    assert_error(app.authorize(&session, None).await, 401, "invalid_token").await;
    assert_eq!(revoked_in_feed(&app).await, [session_id(&session)]);
    assert_eq!(app.login("bob", PASSWORD).await.status(), 200);
}

/// Every admin operation on a user, at once, while the user is deleted:
/// whichever comes after the deletion finds no user (404), none fails.
async fn admin_operations_racing_a_deletion_never_answer_5xx(backend: Backend) {
    use reqwest::Method;
    let app = spawn_app_with(backend, |settings| {
        // Room for every request of a round at once.
        settings.database_max_connections = 8;
        settings.hashing.queue_timeout = std::time::Duration::from_secs(30);
    })
    .await;
    let token = app.admin_token().await;
    let names = ["racer1", "racer2", "racer3"];
    for round in 0..4 {
        let mut sessions = Vec::new();
        for name in names {
            let created = app
                .call(
                    &token,
                    Method::POST,
                    "/admin/users",
                    Some(json!({"username": name, "password": PASSWORD})),
                )
                .await;
            assert_eq!(created.status(), 201, "round {round}: create {name}");
            sessions.push(session_id(&app.session_token(name).await));
        }
        let grants = json!({"audience": "notebooks", "scopes": ["read"]});
        let password = json!({"password": "another long one"});
        let mut requests: Vec<(Method, String, Option<Value>)> = Vec::new();
        for (name, sid) in names.iter().zip(&sessions) {
            let user = format!("/admin/users/{name}");
            requests.extend([
                (
                    Method::PUT,
                    format!("{user}/password"),
                    Some(password.clone()),
                ),
                (Method::POST, format!("{user}/grants"), Some(grants.clone())),
                (Method::DELETE, user.clone(), None),
                (Method::POST, format!("{user}/disable"), None),
                (Method::POST, format!("{user}/enable"), None),
                (
                    Method::DELETE,
                    format!("{user}/grants"),
                    Some(grants.clone()),
                ),
                (Method::DELETE, format!("{user}/sessions"), None),
                (Method::DELETE, format!("{user}/sessions/{sid}"), None),
                (Method::GET, format!("{user}/sessions"), None),
                (Method::GET, user.clone(), None),
            ]);
        }
        let mut calls = tokio::task::JoinSet::new();
        for (method, path, body) in requests {
            let mut request = app
                .client
                .request(method.clone(), app.url(&path))
                .bearer_auth(&token);
            if let Some(body) = body {
                request = request.json(&body);
            }
            calls.spawn(async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let body = response.text().await.unwrap();
                (format!("{method} {path}"), status, body)
            });
        }
        while let Some(answer) = calls.join_next().await {
            let (request, status, body) = answer.unwrap();
            assert!(
                [200, 204, 404].contains(&status),
                "round {round}: {request} answered {status} {body}"
            );
        }
        for name in names {
            // Deleted by the race; a later create must find the name free.
            assert!(app.store.find_user_by_name(name).await.unwrap().is_none());
        }
    }
}

on_both_backends!(
    an_administrator_manages_users_grants_and_sessions_end_to_end,
    the_admin_api_refuses_callers_without_the_admin_scope,
    an_admin_whose_grant_is_removed_loses_admin_rights_with_the_next_call,
    a_token_narrowed_at_issue_carries_no_admin_rights_its_user_holds,
    a_password_change_by_an_admin_ends_every_session_of_the_user,
    an_admin_changing_their_own_password_keeps_the_session_doing_it,
    a_disabled_user_enabled_again_gets_none_of_their_sessions_back,
    admin_operations_racing_a_deletion_never_answer_5xx,
);
