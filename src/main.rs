use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tessera::cli::run(tessera::cli::Cli::parse()).await
}
