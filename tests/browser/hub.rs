//! JupyterHub 6.1 with oauthenticator's `GenericOAuthenticator`, as an
//! operator would set it up against Tessera (its configuration is
//! `tests/clients/jupyterhub/jupyterhub_config.py`), signing people in
//! through Tessera's page in Chromium.
//!
//! Also home to [`Service`], a relying party run as a process of its own,
//! which the Django test shares. The relying parties come from
//! `tests/clients/install.sh`; without them the tests skip loudly on a
//! developer's machine and fail in CI.

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::Locator;
use secrecy::ExposeSecret;
use tempfile::TempDir;

use tessera::clock::SystemClock;
use tessera::oauth::clients::{ClientSpec, OAuthClients};

use crate::chrome::Chrome;
use crate::helpers::{Backend, PASSWORD, TestApp, spawn_app_with};
use crate::{current, fill_in, text};

/// Seconds after which the hub asks Tessera about a signed-in user again.
const REFRESH_AGE: u64 = 2;

/// The program named by the environment variable `var`, or `None` (after
/// saying so loudly) on a developer's machine without it. In CI (`CI` set)
/// its absence fails the test.
pub fn installed(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var).map(PathBuf::from) {
        Some(path) if path.is_file() => Some(path),
        found => {
            let problem = match found {
                Some(path) => format!("{var}={} is not a file", path.display()),
                None => format!("{var} is not set"),
            };
            assert!(
                std::env::var_os("CI").is_none(),
                "{problem}, but CI must run the relying-party tests (.ci/run runs \
                 tests/clients/install.sh)"
            );
            eprintln!(
                "\n\
                 ************************************************************************\n\
                 * RELYING-PARTY TEST SKIPPED: {problem}.\n\
                 * Install them with: tests/clients/install.sh target/clients, then\n\
                 *   export RELYING_PARTY_PYTHON=$PWD/target/clients/venv/bin/python\n\
                 *   export RELYING_PARTY_CHP=$PWD/target/clients/chp/node_modules/.bin/configurable-http-proxy\n\
                 ************************************************************************\n"
            );
            None
        }
    }
}

/// A port no one listens on now. (Another process may take it before the
/// service binds it: unlikely enough among ephemeral ports.)
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The directory of a relying party's files in `tests/clients`.
pub fn client_files(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name)
}

/// Registers the confidential OAuth client `spec` and returns its secret.
pub async fn register(app: &TestApp, spec: ClientSpec) -> String {
    let allowed = vec!["tessera".to_owned(), "notebooks".into(), "billing".into()];
    let registered = OAuthClients::new(app.store.as_ref(), &allowed, &SystemClock, "test")
        .register(spec)
        .await
        .expect("the client registers");
    registered
        .secret
        .expect("a confidential client has a secret")
        .expose_secret()
        .to_owned()
}

/// A relying party running as a process group of its own, in a scratch
/// directory that also holds its log. Dropping it ends the group and the
/// process groups named by `pid_files` (processes that it started in
/// sessions of their own); a failing test prints the log first.
pub struct Service {
    name: &'static str,
    child: Child,
    pid_files: Vec<PathBuf>,
    pub dir: TempDir,
}

impl Service {
    /// Starts the command that `command` makes for a fresh directory, in
    /// it, its output to `NAME.log` there.
    pub fn start(name: &'static str, command: impl FnOnce(&Path) -> Command) -> Service {
        let dir = tempfile::tempdir().unwrap();
        let mut command = command(dir.path());
        let log = File::create(dir.path().join(format!("{name}.log"))).unwrap();
        let child = command
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{name} starts: {e}"));
        Service {
            name,
            child,
            pid_files: Vec::new(),
            dir,
        }
    }

    /// Also ends the process group whose leader's pid is in `file`.
    pub fn also_ends_the_group_in(&mut self, file: PathBuf) {
        self.pid_files.push(file);
    }

    /// Waits up to a minute for `url` to answer 200.
    pub async fn wait_until_up(&mut self, url: &str) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer = client.get(url).timeout(Duration::from_secs(2)).send().await;
            if answer.is_ok_and(|r| r.status() == 200) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited ({status}) before {url} answered", self.name);
            }
            assert!(
                Instant::now() < deadline,
                "{} did not answer {url} within a minute",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The log so far, with the values of credential-like parameters
    /// blanked out.
    pub fn log(&self) -> String {
        let path = self.dir.path().join(format!("{}.log", self.name));
        redacted(&std::fs::read_to_string(path).unwrap_or_default())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- {} log ----\n{}---- end of {} log ----",
                self.name,
                self.log(),
                self.name
            );
        }
        let mut groups = vec![self.child.id().to_string()];
        groups.extend(
            self.pid_files
                .iter()
                .filter_map(|file| std::fs::read_to_string(file).ok())
                .map(|pid| pid.trim().to_owned())
                .filter(|pid| pid.parse::<u32>().is_ok_and(|pid| pid > 1)),
        );
        for group in groups {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{group}")])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.wait();
    }
}

/// `text` with what follows `code=`, `state=`, `token=`… blanked out, up to
/// the next `&`, quote or white space.
fn redacted(text: &str) -> String {
    const KEYS: &[&str] = &["code=", "state=", "token=", "secret=", "token_hint="];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((at, key)) = KEYS
        .iter()
        .filter_map(|key| rest.find(key).map(|at| (at, *key)))
        .min()
    {
        let value = at + key.len();
        out.push_str(&rest[..value]);
        let end = rest[value..]
            .find(|c: char| c == '&' || c == '"' || c == '\'' || c.is_whitespace())
            .map_or(rest.len(), |len| value + len);
        if end > value {
            out.push_str("[redacted]");
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Waits (ten seconds at most) for Tessera's login form, which an
/// authorization request shows in place, at `/oauth2/authorize`; a failure
/// names the page without its query.
pub async fn at_tessera_form(chrome: &Chrome, app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let url = current(chrome).await;
        if url.starts_with(&app.url("/"))
            && chrome.client.find(Locator::Id("password")).await.is_ok()
        {
            return;
        }
        let page = url.split('?').next().unwrap_or_default().to_owned();
        assert!(Instant::now() < deadline, "not Tessera's form but {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// JupyterHub and its proxy, signing people in with Tessera as the client
/// `jupyterhub` (audience `notebooks`, for users granted `access` there).
struct Hub {
    base: String,
    _service: Service,
}

impl Hub {
    async fn start(app: &TestApp, python: &Path, chp: &Path) -> Hub {
        let (public, internal, proxy_api) = (free_port(), free_port(), free_port());
        let base = format!("http://127.0.0.1:{public}");
        let secret = register(
            app,
            ClientSpec {
                id: "jupyterhub".into(),
                public: false,
                redirect_uris: vec![format!("{base}/hub/oauth_callback")],
                post_logout_redirect_uris: vec![],
                audience: "notebooks".into(),
                scopes: vec![],
                grant_types: vec![],
                required_grant: Some(("notebooks".into(), "access".into())),
            },
        )
        .await;
        let mut crypt_key = [0u8; 32];
        aws_lc_rs::rand::fill(&mut crypt_key).unwrap();
        let crypt_key: String = crypt_key.iter().map(|b| format!("{b:02x}")).collect();
        let mut service = Service::start("jupyterhub", |dir| {
            let mut command = Command::new(python);
            command
                .args(["-m", "jupyterhub", "-f"])
                .arg(client_files("jupyterhub/jupyterhub_config.py"))
                .env("TESSERA_ISSUER", &app.issuer)
                .env("HUB_CLIENT_ID", "jupyterhub")
                .env("HUB_CLIENT_SECRET", &secret)
                .env("HUB_PORT", public.to_string())
                .env("HUB_INTERNAL_PORT", internal.to_string())
                .env("HUB_PROXY_API_PORT", proxy_api.to_string())
                .env("HUB_DIR", dir)
                .env("HUB_CHP", chp)
                .env("HUB_REFRESH_AGE", REFRESH_AGE.to_string())
                .env("JUPYTERHUB_CRYPT_KEY", &crypt_key);
            command
        });
        // The hub starts the proxy in a session of its own.
        let proxy_pid = service.dir.path().join("proxy.pid");
        service.also_ends_the_group_in(proxy_pid);
        service.wait_until_up(&format!("{base}/hub/health")).await;
        Hub {
            base,
            _service: service,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Who the hub says is signed in: its `/hub/api/user` as the browser sees
/// it, `None` for its 403.
async fn hub_user(chrome: &Chrome, hub: &Hub) -> Option<serde_json::Value> {
    chrome.client.goto(&hub.url("/hub/api/user")).await.unwrap();
    let body = text(chrome, "pre").await;
    let answer: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    if answer["status"] == 403 {
        return None;
    }
    assert!(answer["name"].is_string(), "{answer}");
    Some(answer)
}

/// Waits (ten seconds at most) for the browser to reach the hub's home
/// page, and checks who the page says is signed in.
async fn at_home_as(chrome: &Chrome, hub: &Hub, username: &str) {
    let home = hub.url("/hub/home");
    let deadline = Instant::now() + Duration::from_secs(10);
    while current(chrome).await != home {
        assert!(
            Instant::now() < deadline,
            "not at the hub's home but at {}",
            current(chrome).await.split('?').next().unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(text(chrome, "#login_widget .me-1").await, username);
}

/// Waits (ten seconds at most) for the browser to be at a URL that starts
/// with `prefix`, and returns it.
pub async fn reaches(chrome: &Chrome, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let url = current(chrome).await;
        if url.starts_with(prefix) {
            return url;
        }
        let page = url.split('?').next().unwrap_or_default().to_owned();
        assert!(Instant::now() < deadline, "at {page}, not {prefix}…");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn jupyterhub_signs_people_in_with_tessera_and_lets_them_go_when_tessera_does() {
    let (Some(python), Some(chp)) = (
        installed("RELYING_PARTY_PYTHON"),
        installed("RELYING_PARTY_CHP"),
    ) else {
        return;
    };
    let Some(chrome) = Chrome::start().await else {
        return;
    };
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let alice = app.add_user("alice", Some("alice@example.com")).await;
    app.grant(&alice, "notebooks", &["access"]).await;
    app.add_user("bob", Some("bob@example.com")).await;
    let hub = Hub::start(&app, &python, &chp).await;
    let c = &chrome.client;
    let sign_in = hub.url("/hub/oauth_login?next=%2Fhub%2Fhome");

    // The hub sends the browser to Tessera's form, and Tessera back.
    c.goto(&sign_in).await.unwrap();
    at_tessera_form(&chrome, &app).await;
    fill_in(&chrome, "alice", PASSWORD).await;
    at_home_as(&chrome, &hub, "alice").await;
    let user = hub_user(&chrome, &hub).await.expect("alice is signed in");
    assert_eq!(user["name"], "alice");
    assert_eq!(user["groups"], serde_json::json!(["access"]));

    // Out of the hub, still in Tessera: signing in again needs no form.
    c.goto(&hub.url("/hub/logout")).await.unwrap();
    assert_eq!(hub_user(&chrome, &hub).await, None);
    c.goto(&sign_in).await.unwrap();
    at_home_as(&chrome, &hub, "alice").await;

    // A new signing key: the hub's access token of the old one still
    // passes at its next check, and signing in again works.
    let keys_dir = app.keys_dir.clone();
    let new = tokio::task::spawn_blocking(move || tessera::keys::generate(&keys_dir))
        .await
        .unwrap()
        .unwrap();
    app.key_store.rescan().await;
    assert_eq!(app.signing_kid(), new);
    tokio::time::sleep(Duration::from_secs(REFRESH_AGE + 1)).await;
    assert!(
        hub_user(&chrome, &hub).await.is_some(),
        "kept across the rotation"
    );
    c.goto(&hub.url("/hub/logout")).await.unwrap();
    c.goto(&sign_in).await.unwrap();
    at_home_as(&chrome, &hub, "alice").await;

    // Signed out at Tessera (which asks first, the hub not being able to
    // send an id_token_hint): the hub lets alice go at its next check.
    c.goto(&app.url("/oauth2/logout?client_id=jupyterhub"))
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Id("sign-out"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let sessions = app.store.sessions_of_user(alice.id).await.unwrap();
        if sessions.iter().all(|s| s.revoked_at.is_some()) {
            assert!(!sessions.is_empty());
            break;
        }
        assert!(Instant::now() < deadline, "alice's Tessera session ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(REFRESH_AGE + 1)).await;
    assert_eq!(hub_user(&chrome, &hub).await, None, "the hub let alice go");
    c.goto(&hub.url("/hub/home")).await.unwrap();
    reaches(&chrome, &hub.url("/hub/login?")).await;

    // bob holds no grant at `notebooks`: Tessera sends him back with
    // `access_denied`, and the hub does not let him in.
    c.goto(&sign_in).await.unwrap();
    at_tessera_form(&chrome, &app).await;
    fill_in(&chrome, "bob", PASSWORD).await;
    let back = reaches(&chrome, &hub.url("/hub/oauth_callback?")).await;
    let back = url::Url::parse(&back).unwrap();
    let error = back.query_pairs().find(|(key, _)| key == "error");
    assert_eq!(
        error.map(|(_, v)| v.into_owned()).as_deref(),
        Some("access_denied")
    );
    assert_eq!(hub_user(&chrome, &hub).await, None, "bob is not signed in");

    chrome.close().await;
}
