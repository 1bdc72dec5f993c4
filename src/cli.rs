//! The command line: `tessera serve` and the administration commands. Each
//! command loads the configuration and works on the same store and key
//! directory as the server.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use secrecy::ExposeSecret;

use crate::admin::Admin;
use crate::configuration::Settings;
use crate::domain::{Audience, Email, Password, Scope, Username};
use crate::keys::{self, KeySet};
use crate::password::{self, HashParams};
use crate::startup::{self, Application};
use crate::store::{self, Store};
use crate::telemetry::{self, spawn_blocking_with_tracing};
use crate::transfer;

#[derive(Parser)]
#[command(name = "tessera", version, about = "SSO token service")]
pub struct Cli {
    /// TOML configuration file (default: tessera.toml, if present).
    #[arg(long, global = true, env = "TESSERA_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Migrate the database, load the keys and serve (the default).
    Serve,
    /// Apply pending database migrations.
    Migrate,
    /// Manage users and their grants.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Show the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Browser clients of the hosted login page (read from the configuration).
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Write users, grants and sessions as JSON lines (holds password
    /// hashes: keep the output secret).
    Export {
        /// File to write; standard output when absent.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Read an export into an empty database (e.g. SQLite to Postgres).
    Import {
        /// File to read; standard input when absent.
        input: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Add {
        name: String,
        #[arg(long)]
        email: Option<String>,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Set a user's password.
    Passwd {
        name: String,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Disable a user: logins and authorizations are refused.
    Disable { name: String },
    /// Enable a disabled user.
    Enable { name: String },
    /// Lift login throttling and a hard lockout.
    Unlock { name: String },
    /// Grant scopes at an audience.
    Grant {
        name: String,
        audience: String,
        #[arg(required = true)]
        scopes: Vec<String>,
    },
    /// Revoke scopes at an audience.
    Revoke {
        name: String,
        audience: String,
        #[arg(required = true)]
        scopes: Vec<String>,
    },
    /// List users and their grants.
    List,
}

#[derive(Args)]
pub struct PasswordSource {
    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// The latest entries, oldest first.
    Tail {
        /// How many entries.
        #[arg(short = 'n', long, default_value_t = 50)]
        lines: i64,
    },
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// List the keys in the key directory.
    List,
    /// Generate a new signing key; it signs from the next start.
    Generate,
}

#[derive(Subcommand)]
pub enum ClientsCommand {
    /// List the registered clients.
    List,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    telemetry::init(settings.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Migrate => {
            open_store(&settings).await?;
            println!("Database migrated.");
            Ok(())
        }
        Command::User(command) => user(settings, command).await,
        Command::Keys(command) => keys_command(settings, command).await,
        Command::Audit(AuditCommand::Tail { lines }) => audit_tail(settings, lines).await,
        Command::Clients(ClientsCommand::List) => crate::clients::print_list(&settings),
        Command::Export { output } => {
            let store = open_store(&settings).await?;
            let (users, grants, sessions) = match output {
                Some(path) => {
                    let file = create_private_file(&path)?;
                    let mut writer = std::io::BufWriter::new(file);
                    transfer::export(store.as_ref(), &mut writer).await?
                }
                None => transfer::export(store.as_ref(), &mut std::io::stdout().lock()).await?,
            };
            eprintln!("Exported {users} users, {grants} grants, {sessions} sessions.");
            Ok(())
        }
        Command::Import { input } => {
            let store = open_store(&settings).await?;
            let (users, grants, sessions) = match input {
                Some(path) => {
                    let file = std::fs::File::open(&path)
                        .with_context(|| format!("opening {}", path.display()))?;
                    transfer::import(store.as_ref(), &mut std::io::BufReader::new(file)).await?
                }
                None => transfer::import(store.as_ref(), &mut std::io::stdin().lock()).await?,
            };
            println!("Imported {users} users, {grants} grants, {sessions} sessions.");
            Ok(())
        }
    }
}

/// A new file only its owner can read: exports hold password hashes.
fn create_private_file(path: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let bootstrap = settings.bootstrap_password.clone();
    let params = settings.hash_params();
    let application = Application::build(settings).await?;
    let store = application.store();
    if let Some(password) =
        startup::bootstrap_admin(store.as_ref(), bootstrap.as_ref(), params).await?
    {
        println!(
            "Created user admin with password: {}\n(shown once; change it with `tessera user passwd admin`)",
            password.expose_secret()
        );
    }
    println!("Tessera is serving at {}", application.issuer());
    application.run_until_stopped().await?;
    Ok(())
}

async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    let store = store::connect(&settings.database_url, settings.database_max_connections).await?;
    store.migrate().await?;
    Ok(store)
}

async fn user(settings: Settings, command: UserCommand) -> anyhow::Result<()> {
    let store = open_store(&settings).await?;
    let admin = Admin::new(store.as_ref(), "cli");
    let params = settings.hash_params();
    match command {
        UserCommand::Add {
            name,
            email,
            password,
        } => {
            let name = Username::parse(&name)?;
            let email = email.as_deref().map(Email::parse).transpose()?;
            let hash = hash_new_password(&password, params)?;
            let user = admin.create_user(&name, email.as_ref(), &hash).await?;
            println!("Created user {} ({}).", user.username, user.id);
        }
        UserCommand::Passwd { name, password } => {
            let user = admin.find_user(&Username::parse(&name)?).await?;
            let hash = hash_new_password(&password, params)?;
            admin.set_password_hash(&user, &hash).await?;
            println!("Password of {} changed.", user.username);
        }
        UserCommand::Disable { name } => {
            let user = admin.find_user(&Username::parse(&name)?).await?;
            admin.set_active(&user, false).await?;
            println!("Disabled {}.", user.username);
        }
        UserCommand::Enable { name } => {
            let user = admin.find_user(&Username::parse(&name)?).await?;
            admin.set_active(&user, true).await?;
            println!("Enabled {}.", user.username);
        }
        UserCommand::Unlock { name } => {
            let user = admin.find_user(&Username::parse(&name)?).await?;
            admin.unlock(&user).await?;
            println!("Unlocked {}.", user.username);
        }
        UserCommand::Grant {
            name,
            audience,
            scopes,
        } => {
            let user = admin.find_user(&Username::parse(&name)?).await?;
            let audience = Audience::parse(&audience)?;
            let scopes = parse_scopes(&scopes)?;
            admin.add_grants(&user, &audience, &scopes).await?;
            let names: Vec<&str> = scopes.iter().map(Scope::as_str).collect();
            println!(
                "Granted {} at {} to {}.",
                names.join(" "),
                audience.as_str(),
                user.username
            );
        }
        UserCommand::Revoke {
            name,
            audience,
            scopes,
        } => {
            let user = admin.find_user(&Username::parse(&name)?).await?;
            let audience = Audience::parse(&audience)?;
            let scopes = parse_scopes(&scopes)?;
            let removed = admin.remove_grants(&user, &audience, &scopes).await?;
            println!("Revoked {removed} grant(s) of {}.", user.username);
        }
        UserCommand::List => {
            println!("{:<24} {:<8} {:<30} grants", "username", "active", "email");
            for user in admin.list_users().await? {
                let grants: Vec<String> = admin
                    .grants(&user)
                    .await?
                    .into_iter()
                    .map(|g| format!("{}:{}", g.audience, g.scope))
                    .collect();
                println!(
                    "{:<24} {:<8} {:<30} {}",
                    user.username,
                    if user.is_active { "yes" } else { "no" },
                    user.email.as_deref().unwrap_or("-"),
                    grants.join(" ")
                );
            }
        }
    }
    Ok(())
}

async fn audit_tail(settings: Settings, lines: i64) -> anyhow::Result<()> {
    let store = open_store(&settings).await?;
    for entry in store.audit_tail(lines).await? {
        println!(
            "{} {:<22} {:<16} user={} ip={} {}",
            entry.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            entry.event,
            entry.outcome,
            entry.username.as_deref().unwrap_or("-"),
            entry.ip.as_deref().unwrap_or("-"),
            entry.detail
        );
    }
    Ok(())
}

fn parse_scopes(scopes: &[String]) -> anyhow::Result<Vec<Scope>> {
    Ok(scopes
        .iter()
        .map(|s| Scope::parse(s))
        .collect::<Result<_, _>>()?)
}

fn hash_new_password(source: &PasswordSource, params: HashParams) -> anyhow::Result<String> {
    let password = read_password(source)?;
    let password = Password::parse_new(password)?;
    password::hash(&password, params)
}

fn read_password(source: &PasswordSource) -> anyhow::Result<String> {
    if source.password_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let first = rpassword::prompt_password("Password: ")?;
    let second = rpassword::prompt_password("Repeat password: ")?;
    if first != second {
        bail!("the passwords do not match");
    }
    Ok(first)
}

async fn keys_command(settings: Settings, command: KeysCommand) -> anyhow::Result<()> {
    let dir = settings.keys.dir.clone();
    match command {
        KeysCommand::List => {
            let keys = spawn_blocking_with_tracing(move || KeySet::load(&dir)).await??;
            println!("{:<32} {:<8} created", "kid", "state");
            for key in keys.published() {
                let state = if key.kid == keys.signing().kid() {
                    "signing"
                } else {
                    "published"
                };
                println!("{:<32} {:<8} {}", key.kid, state, key.created.to_rfc3339());
            }
        }
        KeysCommand::Generate => {
            let kid = spawn_blocking_with_tracing(move || keys::generate(&dir)).await??;
            println!("Generated key {kid}; it signs from the next start.");
        }
    }
    Ok(())
}
