//! Headless Chromium driven over WebDriver: Debian's `chromium` and
//! `chromium-driver`, a chromedriver of our own on an ephemeral port, and a
//! fresh profile for every test.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use fantoccini::ClientBuilder;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tempfile::TempDir;

/// A browser and the chromedriver that runs it; both end when it is dropped.
pub struct Chrome {
    pub client: fantoccini::Client,
    driver: Child,
    _profile: TempDir,
}

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

impl Chrome {
    /// Starts Chromium, or `None` (after saying so loudly) when chromedriver
    /// is not installed on a developer's machine. In CI (`CI` set) a missing
    /// chromedriver fails the test: `.ci/run` installs it.
    pub async fn start() -> Option<Chrome> {
        let Some(chromedriver) = on_path(&["chromedriver"]) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "chromedriver is not installed, but CI must run the browser tests \
                 (.ci/run installs Debian's chromium and chromium-driver)"
            );
            eprintln!(
                "\n\
                 ************************************************************************\n\
                 * BROWSER TEST SKIPPED: chromedriver is not on PATH.                   *\n\
                 * Install it with: apt-get install -y chromium chromium-driver         *\n\
                 ************************************************************************\n"
            );
            return None;
        };
        let chromium = on_path(&["chromium", "chromium-browser", "google-chrome"])
            .expect("chromedriver is installed but Chromium is not (apt-get install chromium)");

        // Its own process group, so that dropping it ends Chromium too even
        // when the test failed before closing the session.
        let mut driver = Command::new(chromedriver)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        let stdout = driver.stdout.take().unwrap();
        let (port_tx, port_rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Keep reading until chromedriver exits, so its pipe never fills.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    let port: u16 = rest.trim_end_matches('.').trim().parse().unwrap();
                    let _ = port_tx.send(port);
                }
            }
        });
        let port = port_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("chromedriver reports its port");

        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    "--window-size=960,720",
                    "--hide-scrollbars",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let mut connected = None;
        // chromedriver may print its port a moment before it accepts.
        for _ in 0..50 {
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => {
                    connected = Some(client);
                    break;
                }
                Err(error) => {
                    eprintln!("waiting for chromedriver: {error}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        let client = connected.expect("a Chromium session");
        Some(Chrome {
            client,
            driver,
            _profile: profile,
        })
    }

    /// Ends the session (Chromium quits); the driver ends on drop.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.wait();
    }
}
