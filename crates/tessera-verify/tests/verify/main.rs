//! End-to-end tests of the verifier: the real Tessera server in-process on
//! an ephemeral port with a fresh Postgres database per test (through the
//! server's own test helpers), real tokens from its HTTP API, and the
//! verifier fetching real keys over HTTP.

// The server's test helpers, shared rather than copied, so that both suites
// start Tessera the same way.
#[path = "../../../../tests/api/helpers.rs"]
#[allow(
    dead_code,
    unused_macros,
    reason = "the server's helpers serve its own suite too; this one uses a part"
)]
mod helpers;

mod refetch;
mod revocations;
mod support;
mod verify;
