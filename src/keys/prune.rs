//! `tessera keys prune`: deletes the key files that nothing can need any
//! more, and refuses, naming them, to delete keys that live sessions were
//! signed with.
//!
//! A retired key is needed until every authorization token it signed has
//! expired (retirement + authorization lifetime + leeway) and as long as a
//! live session's token was signed by it. A revoked key is needed by no one:
//! its file goes, its `{kid}.revoked` marker stays, so that a copy of the
//! key put back by mistake is still refused.

use std::path::Path;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::directory;
use super::lifecycle::KeyState;
use super::set::KeySet;
use crate::store::Store;

/// What a prune did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Kids whose files were deleted.
    pub deleted: Vec<String>,
    /// Sessions revoked with `--revoke-sessions`.
    pub revoked_sessions: u64,
    /// Keys past retirement kept because live sessions depend on them.
    pub kept: Vec<KeptKey>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct KeptKey {
    pub kid: String,
    /// The live sessions signed by it.
    pub sessions: Vec<Uuid>,
}

/// Deletes the files of keys of `keys` (read from `dir`) that are revoked,
/// or retired at `now` long enough that no authorization token of theirs is
/// valid, unless a live session depends on one; with `revoke_sessions`,
/// those sessions are revoked and the key deleted too.
pub async fn prune(
    keys: &KeySet,
    dir: &Path,
    store: &dyn Store,
    now: DateTime<Utc>,
    revoke_sessions: bool,
) -> anyhow::Result<PruneReport> {
    let mut report = PruneReport::default();
    for status in keys.statuses(now) {
        let kid = status.kid.clone();
        let prunable = match status.state {
            KeyState::Revoked => dir.join(format!("{kid}.pem")).is_file(),
            // A file this replica cannot read is the operator's to look at.
            _ => status.loaded && status.is_past_retirement(now),
        };
        if !prunable {
            continue;
        }
        let sessions = store.live_sessions_signed_by(&kid, now).await?;
        if !sessions.is_empty() {
            if revoke_sessions {
                report.revoked_sessions += store.revoke_sessions_signed_by(&kid, now).await?;
            } else if status.state != KeyState::Revoked {
                // A revoked key's sessions fail anyway: its file can go.
                report.kept.push(KeptKey { kid, sessions });
                continue;
            }
        }
        directory::delete_key(dir, &kid)?;
        tracing::info!(kid = %kid, "Deleted a key");
        report.deleted.push(kid);
    }
    Ok(report)
}
