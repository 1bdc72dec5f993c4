//! The audit log: who logged in (or failed to, and why), authorized, logged
//! out, and what administrators changed. Request handlers hand entries to a
//! background writer, so recording costs them no database round trip; the
//! writer stores them in batches.
//!
//! Never put a password or a token in an entry.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::store::{AuditEntry, Store};

/// Entries waiting for the writer; past this, recording waits.
const QUEUE: usize = 4096;
/// Entries stored in one statement at most.
const BATCH: usize = 256;
/// How long the writer waits for more entries after the first of a batch.
const LINGER: std::time::Duration = std::time::Duration::from_millis(100);

/// Starts an entry: `event` with `outcome` (`success` or why it failed),
/// at `at` (the caller's clock).
pub fn entry(event: &str, outcome: &str, at: DateTime<Utc>) -> AuditEntry {
    AuditEntry {
        at,
        event: event.to_owned(),
        outcome: outcome.to_owned(),
        username: None,
        user_id: None,
        ip: None,
        user_agent: None,
        detail: String::new(),
    }
}

/// Builder-style setters, so call sites read as one sentence.
pub trait AuditEntryExt {
    fn user(self, username: &str, id: Option<Uuid>) -> Self;
    fn client(self, ip: Option<&str>, user_agent: Option<&str>) -> Self;
    fn detail(self, detail: impl Into<String>) -> Self;
}

impl AuditEntryExt for AuditEntry {
    fn user(mut self, username: &str, id: Option<Uuid>) -> Self {
        self.username = Some(username.to_owned());
        self.user_id = id;
        self
    }

    fn client(mut self, ip: Option<&str>, user_agent: Option<&str>) -> Self {
        self.ip = ip.map(str::to_owned);
        self.user_agent = user_agent.map(str::to_owned);
        self
    }

    fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }
}

/// The handle handlers record through.
#[derive(Clone)]
pub struct AuditLog {
    sender: mpsc::Sender<Message>,
}

/// What the writer receives: entries, and requests to say when everything
/// before them is stored.
enum Message {
    Entry(AuditEntry),
    Flush(oneshot::Sender<()>),
}

/// The background writer, to wait for at shutdown.
pub struct AuditWriter(tokio::task::JoinHandle<()>);

impl AuditWriter {
    /// Waits, at most `limit`, for the writer to store every entry; it
    /// finishes once the last [`AuditLog`] handle is dropped.
    pub async fn drain(self, limit: std::time::Duration) {
        if tokio::time::timeout(limit, self.0).await.is_err() {
            tracing::warn!("The audit writer did not finish in time; entries may be lost");
        }
    }
}

impl AuditLog {
    /// Starts the background writer; it stops, having written everything,
    /// when the last handle is dropped.
    pub fn start(store: Arc<dyn Store>) -> (Self, AuditWriter) {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let writer = tokio::spawn(write_batches(store, receiver));
        (Self { sender }, AuditWriter(writer))
    }

    /// Queues `entry` for the writer.
    pub async fn record(&self, entry: AuditEntry) {
        if self.sender.send(Message::Entry(entry)).await.is_err() {
            tracing::error!("The audit writer has stopped; an entry was lost");
        }
    }

    /// Waits until every entry recorded before the call is stored (or
    /// failed to be).
    pub async fn flush(&self) {
        let (done, stored) = oneshot::channel();
        if self.sender.send(Message::Flush(done)).await.is_ok() {
            let _ = stored.await;
        }
    }
}

async fn write_batches(store: Arc<dyn Store>, mut receiver: mpsc::Receiver<Message>) {
    let mut messages = Vec::with_capacity(BATCH);
    let flushing = |messages: &[Message]| messages.iter().any(|m| matches!(m, Message::Flush(_)));
    while receiver.recv_many(&mut messages, BATCH).await > 0 {
        // Gather what follows for a moment, so that a busy server stores a
        // few large batches a second rather than one statement per entry;
        // a flush is answered at once.
        let until = tokio::time::Instant::now() + LINGER;
        while messages.len() < BATCH && !flushing(&messages) {
            let room = BATCH - messages.len();
            match tokio::time::timeout_at(until, receiver.recv_many(&mut messages, room)).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let mut batch = Vec::with_capacity(messages.len());
        let mut waiting = Vec::new();
        for message in messages.drain(..) {
            match message {
                Message::Entry(entry) => batch.push(entry),
                Message::Flush(done) => waiting.push(done),
            }
        }
        if !batch.is_empty()
            && let Err(error) = store.append_audit(&batch).await
        {
            tracing::error!(error = ?error, lost = batch.len(), "Writing the audit log failed");
        }
        for done in waiting {
            let _ = done.send(());
        }
    }
}
