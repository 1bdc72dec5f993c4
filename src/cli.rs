//! The command line: `tessera serve` and the administration commands. Each
//! command loads the configuration and works on the same store and key
//! directory as the server.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use secrecy::ExposeSecret;
use uuid::Uuid;

use crate::admin::Admin;
use crate::clients::ClientRegistry;
use crate::clock::{Clock, SystemClock};
use crate::configuration::Settings;
use crate::domain::{Audience, Email, Password, Scope, Username};
use crate::keys::{self, KeySet, Lifecycle};
use crate::oauth::clients::{ClientSpec, OAuthClients};
use crate::password::PasswordHasherPool;
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
    /// Clients: the hosted login page's (from the configuration) and the
    /// OAuth 2.0 / OpenID Connect ones (registered in the database).
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Write users, grants, sessions and OAuth clients as JSON lines (holds
    /// password and client secret hashes: the file is made readable by its
    /// owner only).
    Export {
        /// File to write, created (or truncated) with mode 0600; without it,
        /// standard output, which must then be redirected to a file or a
        /// pipe (a redirected file is made 0600 too).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Read an export into an empty database (e.g. SQLite to Postgres):
    /// one with no user and no OAuth client yet.
    Import {
        /// Export file to read; standard input when absent.
        input: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Add {
        /// The user name to log in with (unique regardless of case and of
        /// look-alike characters).
        name: String,
        /// The user's email address, carried in its tokens' `email` claim.
        #[arg(long)]
        email: Option<String>,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Set a user's password; ends all of the user's sessions.
    Passwd {
        /// The user's name.
        name: String,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Disable a user: logins and authorizations are refused.
    Disable {
        /// The user's name.
        name: String,
    },
    /// Enable a disabled user.
    Enable {
        /// The user's name.
        name: String,
    },
    /// Lift login throttling and a hard lockout.
    Unlock {
        /// The user's name.
        name: String,
    },
    /// Grant scopes at an audience.
    Grant {
        /// The user's name.
        name: String,
        /// The service the scopes are for: the `aud` of its authorization
        /// tokens; one of tokens.allowed_audiences.
        audience: String,
        /// Scopes to grant (one or more), as they appear in the tokens'
        /// `scopes` claim.
        #[arg(required = true)]
        scopes: Vec<String>,
    },
    /// Revoke scopes at an audience.
    Revoke {
        /// The user's name.
        name: String,
        /// The audience the scopes were granted at.
        audience: String,
        /// Scopes to revoke (one or more).
        #[arg(required = true)]
        scopes: Vec<String>,
    },
    /// List users and their grants.
    List,
}

#[derive(Args)]
pub struct PasswordSource {
    /// Read the password from the first line of standard input instead of
    /// prompting for it twice (also done when standard input is not a
    /// terminal).
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
    /// List the keys: kid, state, created, activates, retires, and how many
    /// live sessions were signed by each.
    List,
    /// Create the next key: published at once, it signs after
    /// keys.jwks_max_age + keys.publish_lead.
    Rotate {
        /// Sign with it at once, for emergencies: verifiers that cached the
        /// key set fail on its tokens until they fetch it again.
        #[arg(long)]
        now: bool,
    },
    /// Revoke a key: every replica drops it from the JWKS and refuses its
    /// tokens at its next rescan of the directory.
    Revoke {
        /// The key's id: its file name without `.pem` (see `keys list`).
        kid: String,
    },
    /// Delete the files of revoked keys and of keys retired long enough
    /// that none of their authorization tokens is valid; refuses, naming
    /// them, keys that live sessions were signed with.
    Prune {
        /// Revoke the live sessions signed by such keys, then delete them.
        #[arg(long)]
        revoke_sessions: bool,
    },
    /// Write every published public key as DIR/{kid}.pem (for verifiers
    /// that look keys up by file name, like djangorestframework-sso).
    ExportPublic {
        /// Directory to write the PEM files into (created if missing).
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum ClientsCommand {
    /// List the clients: the login page's (from the configuration) and the
    /// OAuth / OpenID Connect ones (from the database).
    List,
    /// Register an OAuth 2.0 / OpenID Connect client. A confidential one
    /// (the default) gets a secret, printed once: only its hash is kept.
    Add {
        /// The client id.
        id: String,
        /// An exact redirect URI (repeatable): https, or http on a loopback
        /// address.
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// The audience of its access tokens; one of tokens.allowed_audiences.
        #[arg(long)]
        audience: String,
        /// A scope it may ask for (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// A grant type it may use (repeatable): authorization_code,
        /// refresh_token, client_credentials or
        /// urn:ietf:params:oauth:grant-type:token-exchange. Default: the
        /// first two.
        #[arg(long = "grant-type")]
        grant_types: Vec<String>,
        /// Where it may send the browser after a logout (repeatable).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// Only users holding this grant may use it: AUDIENCE SCOPE.
        #[arg(long, num_args = 2, value_names = ["AUDIENCE", "SCOPE"])]
        require_grant: Option<Vec<String>>,
        /// A client that cannot keep a secret (a browser or native app): no
        /// secret, PKCE required.
        #[arg(long)]
        public: bool,
    },
    /// Give a confidential client a new secret, printed once; the old one
    /// stops working.
    RotateSecret {
        /// The client id.
        id: String,
    },
    /// Refuse a client's requests until it is enabled again.
    Disable {
        /// The client id.
        id: String,
    },
    /// Accept a disabled client's requests again.
    Enable {
        /// The client id.
        id: String,
    },
    /// Delete a client.
    Remove {
        /// The client id.
        id: String,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let (settings, warnings) = Settings::load(cli.config.as_deref())?;
    // The `[[clients]]` entries are checked by the registry they make.
    ClientRegistry::from_settings(
        &settings.clients,
        &settings.tokens.allowed_audiences,
        &settings.issuer(),
    )?;
    telemetry::init(settings.log_format);
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
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
        Command::Clients(command) => clients_command(settings, command).await,
        Command::Export { output } => {
            if output.is_none() {
                make_stdout_private()?;
            }
            let store = open_store(&settings).await?;
            let counts = match output {
                Some(path) => {
                    let file = create_private_file(&path)?;
                    let mut writer = std::io::BufWriter::new(file);
                    transfer::export(store.as_ref(), &mut writer).await?
                }
                None => transfer::export(store.as_ref(), &mut std::io::stdout().lock()).await?,
            };
            eprintln!("Exported {counts}.");
            Ok(())
        }
        Command::Import { input } => {
            let store = open_store(&settings).await?;
            let counts = match input {
                Some(path) => {
                    let file = std::fs::File::open(&path)
                        .with_context(|| format!("opening {}", path.display()))?;
                    transfer::import(store.as_ref(), &mut std::io::BufReader::new(file)).await?
                }
                None => transfer::import(store.as_ref(), &mut std::io::stdin().lock()).await?,
            };
            println!("Imported {counts}.");
            Ok(())
        }
    }
}

async fn clients_command(settings: Settings, command: ClientsCommand) -> anyhow::Result<()> {
    if let ClientsCommand::List = command {
        crate::clients::print_list(&settings)?;
    }
    let store = open_store(&settings).await?;
    let clients = OAuthClients::new(
        store.as_ref(),
        &settings.tokens.allowed_audiences,
        &SystemClock,
        "cli",
    );
    match command {
        ClientsCommand::List => {
            let registered = clients.list().await?;
            if !registered.is_empty() {
                println!();
                println!(
                    "{:<20} {:<13} {:<8} {:<20} {:<24} redirect_uris",
                    "oauth client", "kind", "state", "audience", "grant_types"
                );
            }
            for client in registered {
                println!(
                    "{:<20} {:<13} {:<8} {:<20} {:<24} {}",
                    client.id,
                    if client.secret_hash.is_some() {
                        "confidential"
                    } else {
                        "public"
                    },
                    if client.is_active {
                        "active"
                    } else {
                        "disabled"
                    },
                    client.audience,
                    client.grant_types.join(","),
                    client.redirect_uris.join(" ")
                );
            }
        }
        ClientsCommand::Add {
            id,
            redirect_uris,
            audience,
            scopes,
            grant_types,
            post_logout_redirect_uris,
            require_grant,
            public,
        } => {
            let required_grant = require_grant.and_then(|pair| match pair.as_slice() {
                [audience, scope] => Some((audience.clone(), scope.clone())),
                _ => None,
            });
            let registered = clients
                .register(ClientSpec {
                    id,
                    public,
                    redirect_uris,
                    post_logout_redirect_uris,
                    audience,
                    scopes,
                    grant_types,
                    required_grant,
                })
                .await?;
            let id = &registered.client.id;
            match registered.secret {
                Some(secret) => {
                    eprintln!("Client {id} registered. Its secret, shown only now:");
                    println!("{}", secret.expose_secret());
                }
                None => eprintln!("Public client {id} registered (no secret; PKCE required)."),
            }
        }
        ClientsCommand::RotateSecret { id } => {
            let secret = clients.rotate_secret(&id).await?;
            eprintln!("Client {id} has a new secret, shown only now; the old one no longer works:");
            println!("{}", secret.expose_secret());
        }
        ClientsCommand::Disable { id } => {
            clients.set_active(&id, false).await?;
            println!("Client {id} disabled.");
        }
        ClientsCommand::Enable { id } => {
            clients.set_active(&id, true).await?;
            println!("Client {id} enabled.");
        }
        ClientsCommand::Remove { id } => {
            clients.delete(&id).await?;
            println!("Client {id} removed.");
        }
    }
    Ok(())
}

/// A file only its owner can read: exports hold password hashes. A file
/// that already exists is truncated and made private too, before anything
/// is written to it.
fn create_private_file(path: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    make_private(&file).with_context(|| format!("making {} private", path.display()))?;
    Ok(file)
}

/// Readable and writable by its owner only (`fchmod`, so it works on a file
/// the shell opened for a redirection too).
#[cfg(unix)]
fn make_private(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn make_private(_: &std::fs::File) -> std::io::Result<()> {
    Ok(())
}

/// Before an export to standard output: a terminal is refused (password
/// hashes on a screen, and in its scrollback), a file the shell redirected
/// to is made 0600, and a pipe is left to whatever reads it, with a word.
fn make_stdout_private() -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    if stdout.is_terminal() {
        bail!(
            "refusing to write an export (password hashes) to a terminal: use \
             `tessera export --output FILE`, or redirect standard output to a file"
        );
    }
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        use std::os::unix::fs::FileTypeExt;
        let file = std::fs::File::from(
            stdout
                .as_fd()
                .try_clone_to_owned()
                .context("reading standard output")?,
        );
        let kind = file
            .metadata()
            .context("reading standard output")?
            .file_type();
        if kind.is_file() {
            make_private(&file).context(
                "making the file standard output is redirected to readable by its owner only \
                 (use --output FILE instead)",
            )?;
        } else if kind.is_fifo() {
            eprintln!(
                "warning: the export holds password hashes; keep whatever reads this pipe \
                 private (or use --output FILE, which is made 0600)"
            );
        }
    }
    Ok(())
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let bootstrap = settings.bootstrap_password.clone();
    let application = Application::build(settings).await?;
    let store = application.store();
    if let Some(password) =
        startup::bootstrap_admin(store.as_ref(), bootstrap.as_ref(), application.hasher()).await?
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
    let hasher = PasswordHasherPool::for_command_line(crate::password::HashParams::from_settings(
        &settings.hashing,
    ))?;
    match command {
        UserCommand::Add {
            name,
            email,
            password,
        } => {
            let name = Username::parse_new(&name)?;
            let email = email.as_deref().map(Email::parse).transpose()?;
            let hash = hash_new_password(&password, &hasher).await?;
            let user = admin.create_user(&name, email.as_ref(), &hash).await?;
            println!("Created user {} ({}).", user.username, user.id);
        }
        UserCommand::Passwd { name, password } => {
            let user = admin.find_user(&Username::parse(&name)?).await?;
            let hash = hash_new_password(&password, &hasher).await?;
            let revoked = admin.set_password_hash(&user, &hash).await?;
            println!(
                "Password of {} changed; {} session(s) ended.",
                user.username,
                revoked.len()
            );
        }
        UserCommand::Disable { name } => {
            let user = admin.find_user(&Username::parse(&name)?).await?;
            let revoked = admin.set_active(&user, false).await?;
            println!(
                "Disabled {}; {} session(s) ended.",
                user.username,
                revoked.len()
            );
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
            let allowed = &settings.tokens.allowed_audiences;
            if !allowed.iter().any(|a| a == audience.as_str()) {
                eprintln!(
                    "warning: {:?} is not in tokens.allowed_audiences ({}): no token is issued \
                     for it until it is added there",
                    audience.as_str(),
                    allowed.join(", ")
                );
            }
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

/// Reads a new password and hashes it on the hashing pool's thread, never
/// on the executor, with the memory that thread keeps.
async fn hash_new_password(
    source: &PasswordSource,
    hasher: &PasswordHasherPool,
) -> anyhow::Result<String> {
    let password = read_password(source)?;
    let password = Password::parse_new(password)?;
    Ok(hasher.hash(password).await?)
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
    let lifecycle = Lifecycle::from_settings(&settings);
    let load = {
        let dir = dir.clone();
        move || KeySet::load_with(&dir, lifecycle, Arc::new(SystemClock))
    };
    match command {
        KeysCommand::List => {
            let keys = spawn_blocking_with_tracing(load).await??;
            let now = SystemClock.now();
            // The keys are listed even when the database cannot be reached.
            let sessions = match open_store(&settings).await {
                Ok(store) => Some(store.count_live_sessions_by_kid(now).await?),
                Err(error) => {
                    eprintln!("warning: live sessions not counted: {error:#}");
                    None
                }
            };
            print_keys(&keys, now, sessions.as_deref());
        }
        KeysCommand::Prune { revoke_sessions } => {
            let keys = spawn_blocking_with_tracing(load).await??;
            let store = open_store(&settings).await?;
            let report = keys::prune(
                &keys,
                &dir,
                store.as_ref(),
                SystemClock.now(),
                revoke_sessions,
            )
            .await?;
            print_pruned(&report)?;
        }
        KeysCommand::Rotate { now: false } => {
            let now = SystemClock.now();
            let kid =
                spawn_blocking_with_tracing(move || keys::rotate(&dir, &lifecycle, now)).await??;
            println!(
                "Created key {kid}: published now, it signs from {}.",
                lifecycle.activation_for_new_key(now).to_rfc3339()
            );
        }
        KeysCommand::Rotate { now: true } => {
            let kid = spawn_blocking_with_tracing(move || keys::generate(&dir)).await??;
            println!(
                "Created key {kid}: it signs at once (running services pick it up at their next rescan)."
            );
        }
        KeysCommand::Revoke { kid } => {
            let message =
                spawn_blocking_with_tracing(move || revoke_key(&dir, &kid, load)).await??;
            println!("{message}");
        }
        KeysCommand::ExportPublic { dir: out } => {
            let keys = spawn_blocking_with_tracing(load).await??;
            let written = keys::export_public(&keys, &dir, &out)?;
            println!(
                "Wrote {} public key(s) to {}: {}",
                written.len(),
                out.display(),
                written.join(" ")
            );
        }
    }
    Ok(())
}

/// Revokes `kid`; when no other key could sign after it, first creates one
/// that signs at once, so that replicas never run out of keys.
fn revoke_key(
    dir: &std::path::Path,
    kid: &str,
    load: impl Fn() -> anyhow::Result<KeySet>,
) -> anyhow::Result<String> {
    let keys = load()?;
    let others = keys.published().iter().any(|key| key.kid != kid);
    let mut message = String::new();
    if !others && keys.get(kid).is_some() {
        let replacement = keys::generate(dir)?;
        message.push_str(&format!(
            "Created key {replacement} to sign in place of {kid}.\n"
        ));
    }
    if !keys::revoke(dir, kid, SystemClock.now())? {
        message.push_str(&format!("{kid} was already revoked."));
        return Ok(message);
    }
    let after = load()?;
    message.push_str(&format!(
        "Revoked {kid}: running services stop publishing it and refuse its tokens at their \
         next rescan. {} signs now.",
        after.signing_kid()
    ));
    Ok(message)
}

fn print_pruned(report: &keys::PruneReport) -> anyhow::Result<()> {
    for kid in &report.deleted {
        println!("Deleted {kid}.");
    }
    if report.revoked_sessions > 0 {
        println!("Revoked {} session(s).", report.revoked_sessions);
    }
    if report.kept.is_empty() {
        if report.deleted.is_empty() {
            println!("Nothing to prune.");
        }
        return Ok(());
    }
    let kept: Vec<String> = report
        .kept
        .iter()
        .map(|key| {
            let shown: Vec<String> = key.sessions.iter().take(5).map(Uuid::to_string).collect();
            let more = key.sessions.len().saturating_sub(shown.len());
            format!(
                "{} ({} live session(s): {}{})",
                key.kid,
                key.sessions.len(),
                shown.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            )
        })
        .collect();
    bail!(
        "kept {}: live sessions were signed with these keys. Move them to the active key \
         (POST /session/refresh), let them end, or run `tessera keys prune --revoke-sessions`",
        kept.join("; ")
    )
}

fn print_keys(keys: &KeySet, now: DateTime<Utc>, sessions: Option<&[(String, i64)]>) {
    let time = |at: Option<DateTime<Utc>>| {
        at.map_or_else(
            || "-".to_owned(),
            |at| at.format("%Y-%m-%d %H:%M:%SZ").to_string(),
        )
    };
    let sessions_of = |kid: &str| match sessions {
        None => "?".to_owned(),
        Some(counts) => counts
            .iter()
            .find(|(signed_by, _)| signed_by == kid)
            .map_or(0, |(_, count)| *count)
            .to_string(),
    };
    println!(
        "{:<40} {:<10} {:<21} {:<21} {:<21} sessions",
        "kid", "state", "created", "activates", "retires"
    );
    for status in keys.statuses(now) {
        println!(
            "{:<40} {:<10} {:<21} {:<21} {:<21} {}",
            status.kid,
            status.state.to_string(),
            time(status.created),
            time(status.activates),
            time(status.retires),
            sessions_of(&status.kid),
        );
    }
    for problem in keys.problems() {
        eprintln!("warning: {problem}");
    }
}
