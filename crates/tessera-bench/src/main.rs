//! `tessera-bench`: how close Tessera comes to its cryptographic limits.
//!
//! Measures, in one run and on the same cores: the raw limits (RS256 signs
//! and verifies with the key parsed once, argon2id verifies with the
//! server's parameters), then, for each database backend, a release
//! `tessera` server started as a process of its own on a fresh database,
//! driven over many keep-alive connections for a fixed time: `/authorize`
//! (at its maximum, at half of it, and while `/session` is flooded),
//! `/session`, the JWKS, discovery, `/introspect`, the token endpoint's
//! grants (code exchange, refresh, client credentials); and the verifier
//! crate's `verify` in-process. Prints a table against the targets and
//! writes it as JSON.
//!
//! A program, not a test: it asserts nothing, and fails only when it cannot
//! measure. It sends traffic to 127.0.0.1 only, for a bounded time, and
//! drops the database it made.

mod limits;
mod load;
mod machine;
mod report;
mod server;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use hyper::Method;

use crate::load::{Connection, Pacing, Phase, Requests, Sampled, Template};
use crate::machine::{CpuSample, Machine};
use crate::report::{BackendSummary, Report, Row};
use crate::server::{Backend, Database, Launch, Server};

/// Measures Tessera's endpoints against the raw cryptographic limits of
/// this machine. Run through cargo, it first builds the server with its own
/// profile (`cargo run --profile dist -p tessera-bench` builds
/// `cargo build --profile dist --bin tessera`).
#[derive(Parser, Debug)]
#[command(name = "tessera-bench")]
struct Args {
    /// Counted time of each measurement (after a warm-up of a fifth of it,
    /// 2 s at most), e.g. `10s`, `500ms`, `1m`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Which database backends to run the server on.
    #[arg(long, value_enum, default_value_t = Choice::Both)]
    backend: Choice,
    /// Also write the results to this file as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The server binary; by default `tessera` next to this program, built
    /// first when this program runs through `cargo run`.
    #[arg(long)]
    server: Option<PathBuf>,
    /// Extra environment for the server, `NAME=VALUE`, repeatable (e.g.
    /// `RUST_LOG=warn`, `TESSERA_HASHING__CONCURRENCY=1`).
    #[arg(long, value_parser = parse_env)]
    server_env: Vec<(String, String)>,
    /// The Postgres server to make the benchmark database on; a query
    /// (e.g. `?sslmode=disable`) is kept for every connection.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    postgres: String,
    /// Connections for the cheap endpoints (JWKS, discovery) and for the
    /// `/session` flood.
    #[arg(long, default_value_t = 256)]
    connections: usize,
    /// Connections for `/authorize` and `/introspect`.
    #[arg(long, default_value_t = 64)]
    authorize_connections: usize,
    /// Connections for `/session` at its maximum rate.
    #[arg(long, default_value_t = 16)]
    session_connections: usize,
    /// Users to create; each has a session that `/authorize` is driven with.
    #[arg(long, default_value_t = 64)]
    users: usize,
    /// The `/session` flood, as a multiple of its measured maximum rate.
    #[arg(long, default_value_t = 4.0)]
    flood_factor: f64,
    /// `/authorize`'s load during the flood, as a share of its measured
    /// maximum rate.
    #[arg(long, default_value_t = 0.25)]
    flood_authorize_share: f64,
    /// Run only these measurements (comma-separated); `flood` runs
    /// `authorize` and `session` too, for their maximum rates.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Measurement>,
    /// Time to measure each raw limit.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    limit_duration: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Measurement {
    WellKnown,
    Authorize,
    Session,
    Introspect,
    /// The token endpoint: code exchange, refresh, client credentials.
    Token,
    Flood,
    Verifier,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Choice {
    Postgres,
    Sqlite,
    Both,
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("expected NAME=VALUE, got {text:?}"))
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("not a duration: {text:?} (e.g. 10s, 500ms, 1m)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" | "min" => value * 60.0,
        _ => return Err(format!("unknown unit {unit:?} (ms, s or m)")),
    };
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err("the duration must be positive".into());
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: this is a debug build of the load generator; run it with --release, or the numbers mean little"
        );
    }
    let binary = server_binary(&args)?;
    let machine = Machine::describe();
    let load_before = machine::load_average();
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    eprintln!(
        "{date}: {} cores ({}), load average {load_before}; server {}",
        machine.cores,
        machine.model,
        binary.display()
    );

    eprintln!("Measuring the raw limits…");
    let (cores, limit_duration) = (machine.cores, args.limit_duration);
    let limits =
        tokio::task::spawn_blocking(move || limits::measure(cores, limit_duration)).await??;
    eprintln!(
        "  sign {:.0}/s (1 core) {:.0}/s ({cores} cores); verify {:.0}/s (1 core); argon2id {:.1}/s ({cores} cores)",
        limits.sign_one_core.per_second,
        limits.sign_all_cores.per_second,
        limits.verify_one_core.per_second,
        limits.argon2_all_cores.per_second,
    );

    let backends = match args.backend {
        Choice::Postgres => vec![Backend::Postgres],
        Choice::Sqlite => vec![Backend::Sqlite],
        Choice::Both => vec![Backend::Postgres, Backend::Sqlite],
    };
    let mut rows = Vec::new();
    let mut summaries = Vec::new();
    for (index, backend) in backends.into_iter().enumerate() {
        eprintln!("Backend {backend}:");
        let database = Database::create(backend, &args.postgres).await?;
        let result = run_backend(&args, &binary, backend, &database, &limits, index == 0).await;
        let removed = database.remove().await;
        let (summary, backend_rows) = result?;
        removed?;
        summaries.push(summary);
        rows.extend(backend_rows);
    }

    let report = Report {
        date,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        machine,
        load_average_before: load_before,
        load_average_after: machine::load_average(),
        duration_s: args.duration.as_secs_f64(),
        limits,
        backends: summaries,
        rows,
    };
    println!();
    println!(
        "{} — {} cores, {} — load average {} before, {} after",
        report.date,
        report.machine.cores,
        report.machine.model,
        report.load_average_before,
        report.load_average_after
    );
    println!();
    print!("{}", report.table());
    println!();
    println!("Where the CPU went (per request; \"other\" is everything else on the machine):");
    println!();
    print!("{}", report.cpu_table());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("Wrote {}", path.display());
    }
    Ok(())
}

/// The server binary: as given, or `tessera` beside this program, built
/// first when running through cargo so that it is never stale.
fn server_binary(args: &Args) -> anyhow::Result<PathBuf> {
    if let Some(path) = &args.server {
        return Ok(path.clone());
    }
    let here = std::env::current_exe().context("locating this program")?;
    let binary = here
        .parent()
        .context("this program's directory")?
        .join("tessera");
    if let Some(cargo) = std::env::var_os("CARGO") {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
        let mut command = std::process::Command::new(cargo);
        // The profile this program was built with, named by its directory
        // (`target/dist`, `target/release`, `target/debug`).
        let profile = match binary.parent().and_then(Path::file_name) {
            Some(dir) if dir == "debug" => "dev".to_owned(),
            Some(dir) => dir.to_string_lossy().into_owned(),
            None => "release".to_owned(),
        };
        command.args(["build", "--bin", "tessera", "--profile", &profile]);
        command.arg("--manifest-path").arg(&manifest);
        eprintln!("Building the server: cargo build --profile {profile} --bin tessera");
        let status = command.status().context("running cargo build")?;
        if !status.success() {
            bail!("building the server failed");
        }
    }
    if !binary.is_file() {
        bail!(
            "{} does not exist: build it with `cargo build --profile dist --bin tessera`, or name it with --server",
            binary.display()
        );
    }
    Ok(binary)
}

/// What a measurement reads from the server: its peak RSS during it.
async fn measured<F, T>(server: &Server, work: F) -> anyhow::Result<(T, Option<u64>)>
where
    F: std::future::Future<Output = anyhow::Result<T>>,
{
    server.peak_rss.begin();
    let value = work.await?;
    Ok((value, server.peak_rss.end()))
}

async fn run_backend(
    args: &Args,
    binary: &Path,
    backend: Backend,
    database: &Database,
    limits: &limits::Limits,
    with_verifier: bool,
) -> anyhow::Result<(BackendSummary, Vec<Row>)> {
    let launch = Launch::new(binary, &database.url, &args.server_env)?;
    // First start: migrations, a key, the admin user.
    let (first, first_start) = launch.start().await?;
    first.stop().await?;
    let seeded = server::seed(&database.url, args.users).await?;
    // Second start, as after a restart: what start-to-ready means.
    let (server, start_to_ready) = launch.start().await?;
    eprintln!(
        "  first start {:.0} ms, second start to ready {:.0} ms (log: {})",
        first_start.as_secs_f64() * 1000.0,
        start_to_ready.as_secs_f64() * 1000.0,
        launch.log_path().display()
    );
    let result = drive(
        args,
        &server,
        backend,
        database,
        &seeded,
        limits,
        with_verifier,
    )
    .await;
    let peak = server.peak_rss.overall().map(|kib| kib as f64 / 1024.0);
    server.stop().await?;
    let rows = result?;
    let start_ms = start_to_ready.as_secs_f64() * 1000.0;
    Ok((
        BackendSummary {
            backend,
            first_start_ms: first_start.as_secs_f64() * 1000.0,
            start_to_ready_ms: start_ms,
            start_to_ready_met: start_ms < report::START_TO_READY_MS,
            peak_rss_mib: peak,
            peak_rss_met: peak.map(|p| p < report::PEAK_RSS_MIB),
            users: seeded.users.len(),
        },
        rows,
    ))
}

/// Logs every user in and gets the tokens the load needs, over a few
/// connections at once (logins are argon2-bound).
async fn sessions_for(server: &Server, users: &[String]) -> anyhow::Result<Vec<String>> {
    let chunks: Vec<Vec<String>> = users
        .chunks(users.len().div_ceil(8).max(1))
        .map(<[String]>::to_vec)
        .collect();
    let mut tasks = Vec::new();
    for chunk in chunks {
        let address = server.address;
        tasks.push(tokio::spawn(async move {
            let mut conn = Connection::open(address).await?;
            let mut tokens = Vec::new();
            for user in chunk {
                tokens.push(server::log_in(address, &mut conn, &user).await?);
            }
            anyhow::Ok(tokens)
        }));
    }
    let mut sessions = Vec::new();
    for task in tasks {
        sessions.extend(task.await??);
    }
    Ok(sessions)
}

fn warmup(duration: Duration) -> Duration {
    (duration / 5).clamp(Duration::from_millis(200), Duration::from_secs(2))
}

/// Drives one running server through the selected measurements.
struct Driver<'a> {
    args: &'a Args,
    server: &'a Server,
    backend: Backend,
    /// The Postgres database, whose backends' CPU time is measured.
    database: Option<Arc<str>>,
    limits: &'a limits::Limits,
    rows: Vec<Row>,
}

impl Driver<'_> {
    fn closed(&self, connections: usize) -> Phase {
        Phase {
            connections,
            pacing: Pacing::Closed,
            warmup: warmup(self.args.duration),
            duration: self.args.duration,
            sample: Some(Sampled {
                pid: self.server.pid,
                database: self.database.clone(),
            }),
        }
    }

    fn open(&self, connections: usize, rate: f64) -> Phase {
        Phase {
            pacing: Pacing::Open { rate },
            ..self.closed(connections)
        }
    }

    /// Runs `phase` with `templates`, reading the server's peak RSS.
    async fn run(
        &self,
        templates: &Arc<Vec<Template>>,
        phase: Phase,
    ) -> anyhow::Result<(load::Outcome, Option<u64>)> {
        measured(
            self.server,
            load::run(self.server.address, templates.clone(), phase),
        )
        .await
    }

    fn row(&self, endpoint: &str, load: String, outcome: &load::Outcome) -> Row {
        Row::from_outcome(Some(self.backend), endpoint, load, outcome)
    }

    fn template(&self, method: Method, path: &str) -> anyhow::Result<Template> {
        Template::new(method, self.server.address, path)
    }

    /// The JWKS and the discovery document.
    async fn well_known(&mut self) -> anyhow::Result<()> {
        for (endpoint, path) in [
            ("GET /.well-known/jwks.json", "/.well-known/jwks.json"),
            (
                "GET /.well-known/openid-configuration",
                "/.well-known/openid-configuration",
            ),
        ] {
            eprintln!("  {endpoint}");
            let templates = Arc::new(vec![self.template(Method::GET, path)?]);
            let phase = self.closed(self.args.connections);
            let (outcome, peak) = self.run(&templates, phase.clone()).await?;
            let row = self
                .row(
                    endpoint,
                    format!("closed, {} conns", phase.connections),
                    &outcome,
                )
                .rate_at_least(report::WELL_KNOWN_RATE)
                .with_peak_rss(peak);
            record(&mut self.rows, row);
        }
        Ok(())
    }

    /// `/authorize` at its maximum rate, then at half of it, open-loop.
    /// Returns the maximum.
    async fn authorize(&mut self, authorize: &Arc<Vec<Template>>) -> anyhow::Result<f64> {
        eprintln!("  POST /authorize, maximum rate");
        let phase = self.closed(self.args.authorize_connections);
        let (outcome, peak) = self.run(authorize, phase.clone()).await?;
        let maximum = outcome.rate();
        let sign = self.limits.sign_all_cores;
        let row = self
            .row(
                "POST /authorize",
                format!("closed, {} conns", phase.connections),
                &outcome,
            )
            .against(
                &format!("RS256 sign ×{}", sign.threads),
                sign.per_second,
                Some(report::AUTHORIZE_SHARE_OF_SIGN),
            )
            .with_peak_rss(peak);
        record(&mut self.rows, row);

        eprintln!("  POST /authorize at half its maximum");
        let half = maximum / 2.0;
        let phase = self.open(self.args.authorize_connections, half);
        let (outcome, peak) = self.run(authorize, phase.clone()).await?;
        let row = self
            .row(
                "POST /authorize at ½ max",
                format!("open {half:.0}/s, {} conns", phase.connections),
                &outcome,
            )
            .p99_under(report::AUTHORIZE_P99_AT_HALF_MS)
            .with_peak_rss(peak);
        record(&mut self.rows, row);
        Ok(maximum)
    }

    /// `/session` at its maximum rate; returns it.
    async fn session(&mut self, logins: &Arc<Vec<Template>>) -> anyhow::Result<f64> {
        eprintln!("  POST /session, maximum rate");
        let phase = self.closed(self.args.session_connections);
        let (outcome, peak) = self.run(logins, phase.clone()).await?;
        let argon2 = self.limits.argon2_all_cores;
        let row = self
            .row(
                "POST /session",
                format!("closed, {} conns", phase.connections),
                &outcome,
            )
            .against(
                &format!("argon2id ×{}", argon2.threads),
                argon2.per_second,
                Some(report::SESSION_SHARE_OF_ARGON2),
            )
            .with_peak_rss(peak);
        record(&mut self.rows, row);
        Ok(outcome.rate())
    }

    /// `/introspect`: a service asking about users' authorization tokens.
    async fn introspect(&mut self, sessions: &[String]) -> anyhow::Result<()> {
        eprintln!("  POST /introspect");
        let address = self.server.address;
        let mut conn = Connection::open(address).await?;
        let introspector = server::log_in(address, &mut conn, server::INTROSPECTOR).await?;
        let caller = server::authorize(address, &mut conn, &introspector).await?;
        let mut introspected = Vec::new();
        for session in sessions {
            let token = server::authorize(address, &mut conn, session).await?;
            introspected.push(
                self.template(Method::POST, "/introspect")?
                    .bearer(&caller)?
                    .form(format!("token={token}"))?,
            );
        }
        let phase = self.closed(self.args.authorize_connections);
        let (outcome, peak) = self.run(&Arc::new(introspected), phase.clone()).await?;
        let row = self
            .row(
                "POST /introspect",
                format!("closed, {} conns", phase.connections),
                &outcome,
            )
            .with_peak_rss(peak);
        record(&mut self.rows, row);
        Ok(())
    }

    /// The token endpoint's grants, each at its maximum rate and at half
    /// of it: `client_credentials` (one request over and over), the
    /// `authorization_code` exchange (codes issued beforehand by
    /// `/oauth2/authorize` from the users' sessions, each used once) and
    /// `refresh_token` (each connection rotating its own token).
    async fn token_endpoint(&mut self, sessions: &[String], secret: &str) -> anyhow::Result<()> {
        let client = format!("client_id={}&client_secret={secret}", server::CLIENT_ID);
        let token = self
            .template(Method::POST, "/oauth2/token")?
            .form(format!("{client}&grant_type=client_credentials"))?;
        let connections = self.args.authorize_connections;
        let sign = self.limits.sign_all_cores;
        let against = format!("RS256 sign ×{}", sign.threads);

        eprintln!("  POST /oauth2/token client_credentials");
        let requests = Requests::Cycle(Arc::new(vec![token.clone()]));
        self.grant_rows(
            "client_credentials",
            || requests.clone(),
            connections,
            (
                &against,
                sign.per_second,
                report::CLIENT_CREDENTIALS_SHARE_OF_SIGN,
            ),
        )
        .await?;

        // Enough codes for the measured time and its warm-up at the
        // highest rate a grant that signs twice could reach.
        let window = (self.args.duration + warmup(self.args.duration)).as_secs_f64();
        let enough = (sign.per_second / 2.0 * window * 1.2) as usize;
        eprintln!("  POST /oauth2/token authorization_code ({enough} codes issued first)");
        let exchange = |code: &str| {
            token.with_body(format!(
                "{client}&grant_type=authorization_code&code={code}&redirect_uri={}",
                server::REDIRECT_URI
            ))
        };
        let codes = self.codes(sessions, enough).await?;
        let templates = Arc::new(codes.iter().map(|c| exchange(c)).collect::<Vec<_>>());
        let max = self
            .grant_row(
                "authorization_code",
                Requests::Once(templates),
                self.closed(connections),
                Some((
                    &against,
                    sign.per_second,
                    report::CODE_EXCHANGE_SHARE_OF_SIGN,
                )),
            )
            .await?;
        let half = max / 2.0;
        let codes = self
            .codes(sessions, (half * window * 1.2) as usize + connections)
            .await?;
        let templates = Arc::new(codes.iter().map(|c| exchange(c)).collect::<Vec<_>>());
        self.grant_row(
            "authorization_code at ½ max",
            Requests::Once(templates),
            self.open(connections, half),
            None,
        )
        .await?;

        eprintln!("  POST /oauth2/token refresh_token");
        // One refresh token a connection, from a code exchange each.
        let follow: load::Follow = {
            let client = client.clone();
            Arc::new(move |template: &Template, body: &[u8]| refresh_of(template, &client, body))
        };
        let seeds = self
            .refresh_seeds(sessions, connections, &exchange, &token, &client)
            .await?;
        let max = self
            .grant_row(
                "refresh_token",
                Requests::Chain(seeds, follow.clone()),
                self.closed(connections),
                Some((&against, sign.per_second, report::REFRESH_SHARE_OF_SIGN)),
            )
            .await?;
        // The first phase spent its chains' last tokens: new ones.
        let seeds = self
            .refresh_seeds(sessions, connections, &exchange, &token, &client)
            .await?;
        self.grant_row(
            "refresh_token at ½ max",
            Requests::Chain(seeds, follow),
            self.open(connections, max / 2.0),
            None,
        )
        .await?;
        Ok(())
    }

    /// One refresh request a connection, each from a code exchange.
    async fn refresh_seeds(
        &self,
        sessions: &[String],
        connections: usize,
        exchange: &impl Fn(&str) -> Template,
        token: &Template,
        client: &str,
    ) -> anyhow::Result<Arc<Vec<Template>>> {
        let codes = self.codes(sessions, connections).await?;
        let mut conn = Connection::open(self.server.address).await?;
        let mut seeds = Vec::with_capacity(connections);
        for code in &codes {
            let (status, body) = conn.send(exchange(code).request()).await?;
            anyhow::ensure!(status.is_success(), "a code exchange answered {status}");
            seeds.push(refresh_of(token, client, &body).context("no refresh token")?);
        }
        Ok(Arc::new(seeds))
    }

    /// A grant at its maximum rate and at half of it; returns the maximum.
    /// A chain's tokens are spent by the first phase, so each phase gets
    /// fresh requests from `requests`.
    async fn grant_rows(
        &mut self,
        grant: &str,
        requests: impl Fn() -> Requests,
        connections: usize,
        (against, limit, target): (&str, f64, f64),
    ) -> anyhow::Result<f64> {
        let max = self
            .grant_row(
                grant,
                requests(),
                self.closed(connections),
                Some((against, limit, target)),
            )
            .await?;
        self.grant_row(
            &format!("{grant} at ½ max"),
            requests(),
            self.open(connections, max / 2.0),
            None,
        )
        .await?;
        Ok(max)
    }

    async fn grant_row(
        &mut self,
        grant: &str,
        requests: Requests,
        phase: Phase,
        against: Option<(&str, f64, f64)>,
    ) -> anyhow::Result<f64> {
        let load = match phase.pacing {
            Pacing::Closed => format!("closed, {} conns", phase.connections),
            Pacing::Open { rate } => format!("open {rate:.0}/s, {} conns", phase.connections),
        };
        let (outcome, peak) = measured(
            self.server,
            load::run_requests(self.server.address, requests, phase),
        )
        .await?;
        let mut row = self.row(&format!("POST /oauth2/token {grant}"), load, &outcome);
        row = match against {
            Some((label, limit, target)) => row.against(label, limit, Some(target)),
            None => row.p99_under(report::TOKEN_P99_AT_HALF_MS),
        };
        record(&mut self.rows, row.with_peak_rss(peak));
        Ok(outcome.rate())
    }

    /// `count` authorization codes for the benchmark client, from
    /// `/oauth2/authorize` with the users' session cookies, eight
    /// connections at a time.
    async fn codes(&self, sessions: &[String], count: usize) -> anyhow::Result<Vec<String>> {
        let address = self.server.address;
        let path = format!(
            "/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid&state=s",
            server::CLIENT_ID,
            server::REDIRECT_URI
        );
        let mut tasks = Vec::new();
        for part in 0..8 {
            let share = count / 8 + usize::from(part < count % 8);
            let requests: Vec<Template> = (0..share)
                .map(|n| {
                    let session = &sessions[(part + n * 8) % sessions.len()];
                    self.template(Method::GET, &path)?
                        .header(hyper::header::COOKIE, &format!("tessera_session={session}"))
                })
                .collect::<anyhow::Result<_>>()?;
            tasks.push(tokio::spawn(async move {
                let mut conn = Connection::open(address).await?;
                let mut codes = Vec::with_capacity(requests.len());
                for request in requests {
                    let (status, headers, _) = conn.exchange(request.request()).await?;
                    let location = headers
                        .get(hyper::header::LOCATION)
                        .and_then(|l| l.to_str().ok())
                        .with_context(|| {
                            format!("/oauth2/authorize answered {status} without a redirect")
                        })?;
                    let code = location
                        .split(['?', '&'])
                        .find_map(|pair| pair.strip_prefix("code="))
                        .with_context(|| {
                            format!(
                                "no code in the redirect: {}",
                                location.split('?').next().unwrap_or("")
                            )
                        })?;
                    codes.push(code.to_owned());
                }
                anyhow::Ok(codes)
            }));
        }
        let mut codes = Vec::with_capacity(count);
        for task in tasks {
            codes.extend(task.await??);
        }
        Ok(codes)
    }

    /// `/authorize` at a steady rate while `/session` is flooded past its
    /// capacity.
    async fn flood(
        &mut self,
        authorize: &Arc<Vec<Template>>,
        authorize_max: f64,
        logins: &Arc<Vec<Template>>,
        session_max: f64,
    ) -> anyhow::Result<()> {
        let flood_rate = session_max * self.args.flood_factor;
        let authorize_rate = authorize_max * self.args.flood_authorize_share;
        eprintln!(
            "  POST /authorize at {authorize_rate:.0}/s while POST /session is flooded at {flood_rate:.0}/s"
        );
        let flood = self.open(self.args.connections, flood_rate);
        let steady = self.open(self.args.authorize_connections, authorize_rate);
        let ((flooded, authorized), peak) = measured(self.server, async {
            let (flooded, authorized) = tokio::join!(
                load::run(self.server.address, logins.clone(), flood.clone()),
                load::run(self.server.address, authorize.clone(), steady.clone()),
            );
            Ok((flooded?, authorized?))
        })
        .await?;
        let row = self
            .row(
                "POST /authorize during /session flood",
                format!("open {authorize_rate:.0}/s, {} conns", steady.connections),
                &authorized,
            )
            .p99_under(report::AUTHORIZE_P99_UNDER_FLOOD_MS)
            .with_peak_rss(peak);
        record(&mut self.rows, row);
        let argon2 = self.limits.argon2_all_cores;
        let row = self
            .row(
                "POST /session flood",
                format!("open {flood_rate:.0}/s, {} conns", flood.connections),
                &flooded,
            )
            .against(
                &format!("argon2id ×{}", argon2.threads),
                argon2.per_second,
                None,
            )
            .with_peak_rss(peak);
        record(&mut self.rows, row);
        Ok(())
    }
}

async fn drive(
    args: &Args,
    server: &Server,
    backend: Backend,
    database: &Database,
    seeded: &server::Seeded,
    limits: &limits::Limits,
    with_verifier: bool,
) -> anyhow::Result<Vec<Row>> {
    let users = &seeded.users;
    let selected = |m: Measurement| args.only.is_empty() || args.only.contains(&m);
    let flood = selected(Measurement::Flood);
    let mut driver = Driver {
        args,
        server,
        backend,
        database: database.postgres_name().map(Arc::from),
        limits,
        rows: Vec::new(),
    };
    let sessions = sessions_for(server, users).await?;
    let authorize = Arc::new(
        sessions
            .iter()
            .map(|session| {
                driver
                    .template(Method::POST, "/authorize")?
                    .bearer(session)?
                    .json(format!(r#"{{"audience":"{}"}}"#, server::AUDIENCE))
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
    );
    let logins = Arc::new(
        users
            .iter()
            .map(|user| {
                driver.template(Method::POST, "/session")?.json(
                    serde_json::json!({"username": user, "password": server::PASSWORD}).to_string(),
                )
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
    );

    if selected(Measurement::WellKnown) {
        driver.well_known().await?;
    }
    let mut authorize_max = None;
    if selected(Measurement::Authorize) || flood {
        authorize_max = Some(driver.authorize(&authorize).await?);
    }
    let mut session_max = None;
    if selected(Measurement::Session) || flood {
        session_max = Some(driver.session(&logins).await?);
    }
    if selected(Measurement::Introspect) {
        driver.introspect(&sessions).await?;
    }
    if selected(Measurement::Token) {
        driver
            .token_endpoint(&sessions, &seeded.client_secret)
            .await?;
    }
    if let (true, Some(authorize_max), Some(session_max)) = (flood, authorize_max, session_max) {
        driver
            .flood(&authorize, authorize_max, &logins, session_max)
            .await?;
    }
    if with_verifier && selected(Measurement::Verifier) {
        eprintln!("  tessera-verify in-process");
        // The set-up connections have long been closed for idleness.
        let mut conn = Connection::open(server.address).await?;
        let token = server::authorize(server.address, &mut conn, &sessions[0]).await?;
        let row = verifier_row(server, token, args.duration, limits).await?;
        record(&mut driver.rows, row);
    }
    Ok(driver.rows)
}

/// The refresh request for the `refresh_token` in a token response.
fn refresh_of(template: &Template, client: &str, body: &[u8]) -> Option<Template> {
    let answer: serde_json::Value = serde_json::from_slice(body).ok()?;
    let token = answer["refresh_token"].as_str()?;
    Some(template.with_body(format!(
        "{client}&grant_type=refresh_token&refresh_token={token}"
    )))
}

/// Keeps a finished measurement, with a line of progress.
fn record(rows: &mut Vec<Row>, row: Row) {
    eprintln!(
        "    {:.0}/s, p50 {} ms, p99 {} ms, {} errors {:?}",
        row.requests_per_s,
        row.p50_ms.map_or("-".into(), |v| format!("{v:.2}")),
        row.p99_ms.map_or("-".into(), |v| format!("{v:.2}")),
        row.errors,
        row.error_statuses
    );
    rows.push(row);
}

/// The verifier crate's `verify`, on one thread, against one core's raw
/// verify rate.
async fn verifier_row(
    server: &Server,
    token: String,
    duration: Duration,
    limits: &limits::Limits,
) -> anyhow::Result<Row> {
    let verifier = tessera_verify::Verifier::builder(&server.issuer, server::AUDIENCE)
        .jwks_url(format!("{}/.well-known/jwks.json", server.issuer))
        .build()
        .await
        .context("building the verifier")?;
    verifier
        .verify(&token)
        .await
        .context("the verifier refuses a fresh token")?;
    let pid = server.pid;
    let warm = warmup(duration);
    // A thread of its own, named, so a profiler can tell it apart.
    let thread = std::thread::Builder::new()
        .name("bench-verify".into())
        .spawn(move || -> anyhow::Result<load::Outcome> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut latency =
                    hdrhistogram::Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)?;
                let (mut ok, mut failed) = (0u64, 0u64);
                let warm_until = Instant::now() + warm;
                while Instant::now() < warm_until {
                    let _ = verifier.verify(&token).await;
                }
                let first = CpuSample::take(pid, None);
                let started = Instant::now();
                let end = started + duration;
                let mut now = started;
                while now < end {
                    let result = verifier.verify(&token).await;
                    let after = Instant::now();
                    match result {
                        Ok(_) => {
                            ok += 1;
                            // Nanoseconds: a verification takes tens of microseconds.
                            latency.saturating_record(
                                u64::try_from(after.duration_since(now).as_nanos())
                                    .unwrap_or(u64::MAX),
                            );
                        }
                        Err(_) => failed += 1,
                    }
                    now = after;
                }
                let window = started.elapsed();
                let cpu = first.until(&CpuSample::take(pid, None), ok);
                let mut errors = std::collections::BTreeMap::new();
                if failed > 0 {
                    errors.insert(401, failed);
                }
                Ok(load::Outcome {
                    ok,
                    errors,
                    latency,
                    window,
                    cpu: Some(cpu),
                })
            })
        })?;
    let outcome = tokio::task::spawn_blocking(move || thread.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the verifier thread panicked"))??;
    let one = limits.verify_one_core;
    let mut row = Row::from_outcome(
        None,
        "tessera-verify verify()",
        "1 thread, no HTTP".into(),
        &outcome,
    )
    .against(
        "RS256 verify ×1",
        one.per_second,
        Some(report::VERIFIER_SHARE_OF_VERIFY),
    );
    // Recorded in nanoseconds: shown in milliseconds.
    row.p50_ms = outcome.latency_quantile(0.50).map(|ns| ns / 1e6);
    row.p99_ms = outcome.latency_quantile(0.99).map(|ns| ns / 1e6);
    row.p999_ms = outcome.latency_quantile(0.999).map(|ns| ns / 1e6);
    row.max_ms = outcome.latency_quantile(1.0).map(|ns| ns / 1e6);
    Ok(row)
}
