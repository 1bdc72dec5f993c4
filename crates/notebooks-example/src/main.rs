//! The `notebooks` command: reads the settings, starts the service.
//!
//! ```sh
//! cargo run -p tessera-example-notebooks -- \
//!     --issuer http://127.0.0.1:8080 --client-id notebooks --poll-revocations 5
//! curl -H "Authorization: Bearer $TOKEN" localhost:8081/
//! ```

use std::net::TcpListener;
use std::process::ExitCode;

use tessera_example_notebooks::Notebooks;
use tessera_example_notebooks::configuration::{Settings, USAGE};

#[actix_web::main]
async fn main() -> ExitCode {
    if std::env::args().any(|arg| arg == "--help" || arg == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let mut message = error.to_string();
            let mut source = error.source();
            while let Some(cause) = source {
                message = format!("{message}: {cause}");
                source = cause.source();
            }
            eprintln!("notebooks: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let settings = Settings::parse(|name| std::env::var(name).ok(), std::env::args().skip(1))?;
    let notebooks = Notebooks::build(&settings).await?;
    let listener = TcpListener::bind((settings.host.as_str(), settings.port))?;
    println!(
        "notebooks listening on http://{} for tokens of {} at audience {}{}",
        listener.local_addr()?,
        settings.issuer,
        settings.audience,
        settings
            .client_id
            .as_deref()
            .map(|id| format!(", signing browsers in as client {id}"))
            .unwrap_or_default()
    );
    notebooks.serve(listener)?.await?;
    Ok(())
}
