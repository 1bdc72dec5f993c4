//! Tessera: an SSO token service. Users log in once for a long-lived session
//! token, exchange it for short-lived RS256 authorization tokens carrying
//! their scopes, and downstream services verify those offline with the
//! published keys.

pub mod admin;
pub mod audit;
pub mod browser;
pub mod cli;
pub mod clients;
pub mod clock;
pub mod configuration;
pub mod domain;
pub mod error;
pub mod keys;
pub mod metrics;
pub mod openapi;
pub mod password;
pub mod routes;
pub mod sessions;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod throttle;
pub mod tokens;
pub mod transfer;
