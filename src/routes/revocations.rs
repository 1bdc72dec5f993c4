//! `GET /revocations?since=CURSOR`: what verifiers must stop accepting before
//! the tokens expire — revoked sessions, disabled (and re-enabled) users,
//! revoked keys.
//!
//! Entries older than the authorization-token lifetime plus leeway are left
//! out: every token they concern has expired. The feed holds only opaque ids
//! and is public, like the JWKS.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct FeedQuery {
    since: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Feed {
    /// Pass back as `since` to get what came after.
    cursor: String,
    /// The entries are the whole current state, not a continuation: the
    /// client replaces what it holds.
    reset: bool,
    entries: Vec<Entry>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Entry {
    kind: String,
    id: String,
    at: DateTime<Utc>,
}

#[utoipa::path(
    get,
    path = "/revocations",
    operation_id = "revocation_feed",
    tag = "keys",
    params(("since" = Option<String>, Query, description = "The `cursor` of the previous answer")),
    responses(
        (status = 200, description = "What verifiers must stop accepting", body = Feed),
        (status = 400, description = "`since` is not a cursor from this feed", body = crate::error::ErrorBody),
        (status = 503, description = "The database or the password hasher is busy or unreachable; see `Retry-After`", body = crate::error::ErrorBody),
    ),
)]
pub async fn feed(
    query: web::Query<FeedQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let since = query
        .since
        .as_deref()
        .map(|s| {
            s.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                ApiError::InvalidRequest("since: not a cursor from this feed".into())
            })
        })
        .transpose()?;
    let horizon = state.sessions.revocation_horizon();
    let (mut entries, latest) = state.store.revocations(since.unwrap_or(0), horizon).await?;
    // A cursor beyond the feed's end is from another database: start over.
    let reset = since.is_none_or(|cursor| cursor > latest);
    if reset && since.is_some() {
        entries = state.store.revocations(0, horizon).await?.0;
    }
    let cursor = latest;
    // Revoked keys live in the key directory, not the feed's table: every
    // answer lists them all (they are few), and clients add them idempotently.
    let keys = state.keys.current();
    let revoked_keys = keys.revoked().iter().map(|(kid, at)| Entry {
        kind: "key_revoked".into(),
        id: kid.clone(),
        at: *at,
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(Feed {
            cursor: cursor.to_string(),
            reset,
            entries: entries
                .into_iter()
                .map(|e| Entry {
                    kind: e.kind,
                    id: e.subject,
                    at: e.at,
                })
                .chain(revoked_keys)
                .collect(),
        }))
}
