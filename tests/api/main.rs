//! End-to-end tests: the real application on an ephemeral port, over HTTP,
//! against a fresh database per test, each test on Postgres and on SQLite.

#[macro_use]
mod helpers;

mod admin;
mod authorize;
mod bad_input;
mod cli;
mod config_reference;
mod deployment;
mod edge;
mod environment;
mod faults;
mod interop;
mod introspect;
mod key_lifecycle;
mod keys;
mod login;
mod measured_alone;
mod oauth_clients;
mod oidc;
mod openapi;
mod operations;
mod readiness;
mod readme;
mod revocations;
mod security;
mod session;
mod store_contract;
mod usernames;
mod well_known;
