//! End-to-end tests: the real application on an ephemeral port, over HTTP,
//! against a fresh Postgres database per test.

mod authorize;
mod bad_input;
mod helpers;
mod keys;
mod session;
mod well_known;
