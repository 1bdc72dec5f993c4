//! `tessera export` / `tessera import`: an installation as JSON lines, one
//! record a line (`{"type": "user" | "grant" | "session" | "client", …}`),
//! to move it between backends (SQLite to Postgres) without losing a user,
//! a password hash, a grant, a live session or a registered client.
//!
//! The export holds password hashes and client secret hashes: treat the
//! file as a secret.

use std::io::{BufRead, Write};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::store::{Dump, OAuthClient, Session, Store, User, UserGrant};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Record {
    User {
        id: Uuid,
        username: String,
        email: Option<String>,
        password_hash: String,
        is_active: bool,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
    },
    Grant {
        user_id: Uuid,
        audience: String,
        scope: String,
        created_at: DateTime<Utc>,
    },
    Session {
        id: Uuid,
        user_id: Uuid,
        client_id: String,
        ip: Option<String>,
        user_agent: Option<String>,
        kid: String,
        created_at: DateTime<Utc>,
        last_used_at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
        revoked_at: Option<DateTime<Utc>>,
        /// Absent from exports made before session refresh existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_id: Option<String>,
    },
    /// An OAuth 2.0 / OpenID Connect client.
    Client {
        id: String,
        secret_hash: Option<String>,
        redirect_uris: Vec<String>,
        post_logout_redirect_uris: Vec<String>,
        audience: String,
        scopes: Vec<String>,
        grant_types: Vec<String>,
        /// Audience and scope.
        required_grant: Option<(String, String)>,
        is_active: bool,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
    },
}

/// How many records of each kind an export or import held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub users: usize,
    pub grants: usize,
    pub sessions: usize,
    pub clients: usize,
}

impl Counts {
    fn of(dump: &Dump) -> Self {
        Self {
            users: dump.users.len(),
            grants: dump.grants.len(),
            sessions: dump.sessions.len(),
            clients: dump.clients.len(),
        }
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} users, {} grants, {} sessions, {} clients",
            self.users, self.grants, self.sessions, self.clients
        )
    }
}

/// Writes every record of `store` to `out`; returns how many of each.
pub async fn export(store: &dyn Store, out: &mut dyn Write) -> anyhow::Result<Counts> {
    let dump = store.export().await?;
    let counts = Counts::of(&dump);
    for user in dump.users {
        write_record(
            out,
            &Record::User {
                id: user.id,
                username: user.username,
                email: user.email,
                password_hash: user.password_hash,
                is_active: user.is_active,
                created_at: user.created_at,
                updated_at: user.updated_at,
            },
        )?;
    }
    for grant in dump.grants {
        write_record(
            out,
            &Record::Grant {
                user_id: grant.user_id,
                audience: grant.audience,
                scope: grant.scope,
                created_at: grant.created_at,
            },
        )?;
    }
    for s in dump.sessions {
        write_record(
            out,
            &Record::Session {
                id: s.id,
                user_id: s.user_id,
                client_id: s.client_id,
                ip: s.ip,
                user_agent: s.user_agent,
                kid: s.kid,
                created_at: s.created_at,
                last_used_at: s.last_used_at,
                expires_at: s.expires_at,
                revoked_at: s.revoked_at,
                token_id: s.token_id,
            },
        )?;
    }
    for c in dump.clients {
        write_record(
            out,
            &Record::Client {
                id: c.id,
                secret_hash: c.secret_hash,
                redirect_uris: c.redirect_uris,
                post_logout_redirect_uris: c.post_logout_redirect_uris,
                audience: c.audience,
                scopes: c.scopes,
                grant_types: c.grant_types,
                required_grant: c.required_grant,
                is_active: c.is_active,
                created_at: c.created_at,
                updated_at: c.updated_at,
            },
        )?;
    }
    out.flush()?;
    Ok(counts)
}

fn write_record(out: &mut dyn Write, record: &Record) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, record)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Reads JSON lines from `input` into `store`, which must hold no user yet;
/// all or nothing. Returns how many of each record.
pub async fn import(store: &dyn Store, input: &mut dyn BufRead) -> anyhow::Result<Counts> {
    let what = if store.count_users().await? > 0 {
        "users"
    } else if !store.oauth_clients().await?.is_empty() {
        "OAuth clients"
    } else {
        ""
    };
    if !what.is_empty() {
        bail!(
            "the target database already has {what}; import into an empty database: \
             point DATABASE_URL at a new one (a new file, DATABASE_URL=sqlite://new.db, or \
             a new Postgres database made with `createdb`) and import there before its \
             first `tessera serve`, which creates the user admin"
        );
    }
    let mut dump = Dump::default();
    for (number, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let record: Record = serde_json::from_str(&line)
            .with_context(|| format!("line {}: not a Tessera export record", number + 1))?;
        match record {
            Record::User {
                id,
                username,
                email,
                password_hash,
                is_active,
                created_at,
                updated_at,
            } => dump.users.push(User {
                id,
                username,
                email,
                password_hash,
                is_active,
                created_at,
                updated_at,
            }),
            Record::Grant {
                user_id,
                audience,
                scope,
                created_at,
            } => dump.grants.push(UserGrant {
                user_id,
                audience,
                scope,
                created_at,
            }),
            Record::Session {
                id,
                user_id,
                client_id,
                ip,
                user_agent,
                kid,
                created_at,
                last_used_at,
                expires_at,
                revoked_at,
                token_id,
            } => dump.sessions.push(Session {
                id,
                user_id,
                client_id,
                ip,
                user_agent,
                kid,
                created_at,
                last_used_at,
                expires_at,
                revoked_at,
                token_id,
            }),
            Record::Client {
                id,
                secret_hash,
                redirect_uris,
                post_logout_redirect_uris,
                audience,
                scopes,
                grant_types,
                required_grant,
                is_active,
                created_at,
                updated_at,
            } => dump.clients.push(OAuthClient {
                id,
                secret_hash,
                redirect_uris,
                post_logout_redirect_uris,
                audience,
                scopes,
                grant_types,
                required_grant,
                is_active,
                created_at,
                updated_at,
            }),
        }
    }
    let counts = Counts::of(&dump);
    store.import(&dump).await?;
    Ok(counts)
}
