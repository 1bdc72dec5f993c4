//! OAuth 2.0 and OpenID Connect: the clients the operator registers, and
//! the flows they use. Every client is registered by the operator,
//! so there is no dynamic registration and no consent screen.

pub mod clients;
pub mod error;
pub mod provider;
