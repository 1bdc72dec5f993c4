//! The README's tour, run as written: its block of shell commands, in a
//! fresh directory laid out as `cargo run` leaves the project,
//! against the `tessera` binary started there with no settings but its
//! port.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const README: &str = include_str!("../../README.md");
/// The comment that marks the tour's block in the README.
const MARKER: &str = "<!-- The tour: tests/api/readme.rs runs this block as written. -->";
/// The tour's one line that names the port, replaced by the test's.
const URL_LINE: &str = "URL=http://127.0.0.1:8080";

/// The shell block after the marker.
fn tour() -> &'static str {
    let after = &README[README.find(MARKER).expect("the README marks its tour") + MARKER.len()..];
    let start = after
        .find("```sh\n")
        .expect("a shell block after the marker")
        + "```sh\n".len();
    let end = start + after[start..].find("\n```").expect("the block's end");
    &after[start..=end]
}

#[test]
fn the_readme_tour_runs_as_written_against_a_fresh_instance() {
    let dir = tempfile::tempdir().unwrap();
    let built = dir.path().join("target/debug");
    std::fs::create_dir_all(&built).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_tessera"), built.join("tessera")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let path = std::env::var("PATH").unwrap_or_default();
    // Nothing of this shell's environment but PATH: no TESSERA_* setting,
    // no DATABASE_URL, no RUST_BACKTRACE.
    let mut server = Command::new(built.join("tessera"))
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", &path)
        .env("HOME", dir.path())
        .env("TESSERA_BIND", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server_guard = KillOnDrop(&mut server);
    let stdout = server_guard.0.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut password = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(printed) = line.strip_prefix("Created user admin with password: ") {
            password = Some(printed.to_owned());
        }
        if line.starts_with("Tessera is serving at") {
            break;
        }
    }
    let password = password.expect("the first start prints admin's password");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    let tour = tour();
    assert!(
        tour.contains(URL_LINE),
        "the tour names its URL in one line"
    );
    let script = tour.replace(URL_LINE, &format!("URL=http://127.0.0.1:{port}"));
    let mut shell = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", &path)
        .env("HOME", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = shell.stdin.take().unwrap();
        writeln!(stdin, "{password}").unwrap();
    }
    let output = shell.wait_with_output().unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(output.status.success(), "the tour failed:\n{out}\n{err}");
    // Each step showed what the README says it shows.
    for expected in [
        r#""username": "admin""#,
        r#""tessera:admin""#,
        "Verified OK",
        &format!(r#""issuer": "http://127.0.0.1:{port}""#),
        r#""reports:read""#,
        "401",
        "<title>Sign in",
    ] {
        assert!(out.contains(expected), "no {expected} in:\n{out}\n{err}");
    }
    assert!(!err.contains("backtrace"), "{err}");
    drop(server_guard);
}

struct KillOnDrop<'a>(&'a mut std::process::Child);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
