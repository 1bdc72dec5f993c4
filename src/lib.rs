//! Tessera: an SSO token service. Users log in once for a long-lived session
//! token, exchange it for short-lived RS256 authorization tokens carrying
//! their scopes, and downstream services verify those offline with the
//! published keys.
//!
//! The modules form layers, and every `use crate::…` points down or
//! sideways: the ways in (`startup`, `cli`) build the rest; the HTTP layer
//! (`routes`, `browser`, `error`, `state`, `openapi`) translates requests
//! into calls of the services (`sessions`, `admin`, `clients`, `oauth`,
//! `throttle`, `audit`, `tokens`, `keys`, `password`, `transfer`), which
//! answer their own errors and never an HTTP type; the services reach the
//! database through `store`. `scripts/check_layers.py` checks it in CI. Beside them all stand `configuration` (plain settings
//! structs), `domain`, `clock`, `metrics` and `telemetry`, which import
//! only each other.

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
pub mod oauth;
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
