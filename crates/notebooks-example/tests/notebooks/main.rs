//! The example service end to end: the real Tessera in-process on an
//! ephemeral port with a fresh Postgres database per test (through the
//! server's own test helpers), real tokens from its HTTP API and its login
//! page, and the service in front of a verifier that fetches the keys over
//! HTTP.

// The server's test helpers, shared rather than copied, so that every suite
// starts Tessera the same way.
#[path = "../../../../tests/api/helpers.rs"]
#[allow(
    dead_code,
    unused_macros,
    reason = "the server's helpers serve its own suite too; this one uses a part"
)]
mod helpers;

mod api;
mod browser;
mod compose;
mod revocations;
mod support;
