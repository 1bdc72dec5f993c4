//! A Django 5.2 site with mozilla-django-oidc, the library most Django
//! relying parties (Hue among them) build on: `tests/clients/django`,
//! verifying Tessera's ID tokens with its JWKS and signing out through its
//! end-session endpoint.

use fantoccini::Locator;
use std::process::Command;

use tessera::oauth::clients::ClientSpec;

use crate::chrome::Chrome;
use crate::helpers::{Backend, PASSWORD, TestApp, spawn_app_with};
use crate::hub::{Service, at_tessera_form, client_files, free_port, installed, reaches, register};
use crate::{current, fill_in, text};

/// The Django site, signing people in with Tessera as the client `django`.
struct Site {
    base: String,
    _service: Service,
}

impl Site {
    async fn start(app: &TestApp, python: &std::path::Path) -> Site {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let secret = register(
            app,
            ClientSpec {
                id: "django".into(),
                public: false,
                redirect_uris: vec![format!("{base}/oidc/callback/")],
                post_logout_redirect_uris: vec![format!("{base}/logged-out/")],
                audience: "notebooks".into(),
                ..ClientSpec::default()
            },
        )
        .await;
        let mut service = Service::start("django", |dir| {
            let mut command = Command::new(python);
            command
                .arg(client_files("django/serve.py"))
                // No `__pycache__` in the source tree.
                .env("PYTHONDONTWRITEBYTECODE", "1")
                .env("TESSERA_ISSUER", &app.issuer)
                .env("OIDC_CLIENT_ID", "django")
                .env("OIDC_CLIENT_SECRET", &secret)
                .env("PORT", port.to_string())
                .env("DJANGO_DB_PATH", dir.join("db.sqlite3"));
            command
        });
        service.wait_until_up(&format!("{base}/health/")).await;
        Site {
            base,
            _service: service,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

#[tokio::test]
async fn a_django_site_signs_in_with_tessera_and_signs_out_through_its_end_session_endpoint() {
    let Some(python) = installed("RELYING_PARTY_PYTHON") else {
        return;
    };
    let Some(chrome) = Chrome::start().await else {
        return;
    };
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let alice = app.add_user("alice", Some("alice@example.com")).await;
    let site = Site::start(&app, &python).await;
    let c = &chrome.client;

    // The protected page sends the browser to Tessera's form, and Tessera
    // back with a code for an ID token that Django verifies.
    c.goto(&site.url("/protected/")).await.unwrap();
    at_tessera_form(&chrome, &app).await;
    fill_in(&chrome, "alice", PASSWORD).await;
    assert_eq!(text(&chrome, "#username").await, "alice");
    assert_eq!(text(&chrome, "#email").await, "alice@example.com");
    assert_eq!(current(&chrome).await, site.url("/protected/"));

    // Django signs out, then sends the browser to Tessera's end-session
    // endpoint with the ID token as a hint: no question asked, the session
    // ends, and the browser is back on Django with the state it sent.
    c.find(Locator::Id("logout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    reaches(&chrome, &site.url("/logged-out/?state=")).await;
    assert_eq!(text(&chrome, "#who").await, "signed out");
    assert!(
        !text(&chrome, "#state").await.is_empty(),
        "the state came back"
    );
    let sessions = app.store.sessions_of_user(alice.id).await.unwrap();
    assert!(!sessions.is_empty());
    assert!(
        sessions.iter().all(|s| s.revoked_at.is_some()),
        "the Tessera session ended"
    );

    // So the protected page asks for the password again.
    c.goto(&site.url("/protected/")).await.unwrap();
    at_tessera_form(&chrome, &app).await;

    chrome.close().await;
}
