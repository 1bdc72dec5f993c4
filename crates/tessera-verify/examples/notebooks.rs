//! An example downstream service that accepts Tessera authorization tokens
//! for the audience `notebooks`.
//!
//! ```sh
//! cargo run -p tessera-verify --example notebooks -- \
//!     --issuer http://127.0.0.1:8080 --port 8081 --poll-revocations 5
//! curl -H "Authorization: Bearer $TOKEN" localhost:8081/
//! ```
//!
//! Each option may also come from the environment: `TESSERA_ISSUER`,
//! `NOTEBOOKS_AUDIENCE`, `NOTEBOOKS_BIND`, `NOTEBOOKS_PORT`, `NOTEBOOKS_POLL_REVOCATIONS`
//! (seconds; unset: no revocation polling). `RUST_LOG` filters the log.

use std::net::TcpListener;
use std::time::Duration;

use tessera_verify::Verifier;
use tessera_verify::example;

const USAGE: &str =
    "usage: notebooks [--issuer URL] [--audience NAME] [--port N] [--poll-revocations SECONDS]";

struct Options {
    issuer: String,
    audience: String,
    port: u16,
    /// The address to listen on: loopback unless told (`NOTEBOOKS_BIND`,
    /// e.g. `0.0.0.0` in a container).
    host: String,
    poll_revocations: Option<u64>,
}

fn options() -> Result<Options, String> {
    let env = |name: &str| std::env::var(name).ok();
    let mut options = Options {
        issuer: env("TESSERA_ISSUER").unwrap_or_else(|| "http://127.0.0.1:8080".into()),
        audience: env("NOTEBOOKS_AUDIENCE").unwrap_or_else(|| "notebooks".into()),
        host: env("NOTEBOOKS_BIND").unwrap_or_else(|| "127.0.0.1".into()),
        port: env("NOTEBOOKS_PORT")
            .map_or(Ok(8081), |p| p.parse().map_err(|_| "NOTEBOOKS_PORT"))?,
        poll_revocations: env("NOTEBOOKS_POLL_REVOCATIONS")
            .map(|s| s.parse().map_err(|_| "NOTEBOOKS_POLL_REVOCATIONS"))
            .transpose()?,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--issuer" => options.issuer = value()?,
            "--audience" => options.audience = value()?,
            "--port" => options.port = value()?.parse().map_err(|_| "--port: not a port")?,
            "--poll-revocations" => {
                options.poll_revocations = Some(
                    value()?
                        .parse()
                        .map_err(|_| "--poll-revocations: not seconds")?,
                );
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(options)
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|arg| arg == "--help" || arg == "-h") {
        println!("{USAGE}");
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let options = options()?;
    let mut builder = Verifier::builder(&options.issuer, &options.audience);
    if let Some(seconds) = options.poll_revocations {
        builder = builder.poll_revocations(Duration::from_secs(seconds));
    }
    let verifier = builder.build().await?;
    let listener = TcpListener::bind((options.host.as_str(), options.port))?;
    println!(
        "notebooks listening on http://{} for tokens of {} at audience {}",
        listener.local_addr()?,
        options.issuer,
        options.audience
    );
    example::serve(listener, verifier)?.await?;
    Ok(())
}
