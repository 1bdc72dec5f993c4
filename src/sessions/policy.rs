//! What the session service issues, read once from the settings at start-up:
//! audiences as domain types, every lifetime as one duration type. Nothing
//! on the request path parses or converts a setting again.

use std::collections::BTreeMap;

use anyhow::Context;
use chrono::TimeDelta;

use crate::configuration::{Settings, ThrottleSettings, UserAttribute, time_delta};
use crate::domain::Audience;

pub struct Policy {
    /// `iss` of every token, without a trailing slash.
    pub issuer: String,
    /// `aud` of session tokens: as configured, else the issuer.
    pub session_audience: Vec<String>,
    /// `None`: sessions last until revoked.
    pub session_lifetime: Option<TimeDelta>,
    pub authorization_lifetime: TimeDelta,
    /// Clock skew tolerated when checking `exp` and `nbf`.
    pub leeway: TimeDelta,
    pub allowed_audiences: Vec<Audience>,
    /// The audience of `/authorize` when it names none.
    pub default_audience: Audience,
    /// Claims copied from user attributes into authorization tokens.
    pub extra_claims: BTreeMap<String, UserAttribute>,
    pub throttle: ThrottleSettings,
}

impl Policy {
    /// The policy of `settings`, for tokens issued as `issuer` (the
    /// configured one, or the address the server bound).
    pub fn from_settings(settings: &Settings, issuer: String) -> anyhow::Result<Self> {
        let tokens = &settings.tokens;
        let session_audience = if tokens.session_audience.is_empty() {
            vec![issuer.clone()]
        } else {
            tokens.session_audience.clone()
        };
        let allowed_audiences = tokens
            .allowed_audiences
            .iter()
            .map(|audience| Audience::parse(audience))
            .collect::<Result<_, _>>()
            .context("tokens.allowed_audiences")?;
        Ok(Self {
            issuer,
            session_audience,
            session_lifetime: tokens.session_lifetime.map(time_delta),
            authorization_lifetime: time_delta(tokens.authorization_lifetime),
            leeway: time_delta(tokens.leeway),
            allowed_audiences,
            default_audience: Audience::parse(&tokens.default_audience)
                .context("tokens.default_audience")?,
            extra_claims: tokens.extra_claims.clone(),
            throttle: settings.throttle.clone(),
        })
    }

    pub fn allows(&self, audience: &Audience) -> bool {
        self.allowed_audiences.contains(audience)
    }
}
