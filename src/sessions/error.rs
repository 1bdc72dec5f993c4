//! Why a session operation was refused. The ways in translate it, each in
//! one `From`: the JSON API to its error bodies ([`crate::error`]), the
//! login page to its HTML pages ([`crate::browser::PageError`]).

use crate::keys::SigningUnavailable;
use crate::password::HashError;
use crate::store::StoreError;
use crate::tokens::TokenError;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// An unknown user, a wrong password or a disabled account: one answer
    /// for all, so that none tells which.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// Too many failed logins for this user name or address.
    #[error("too many failed logins; retry after {retry_after} s")]
    Throttled { retry_after: u64 },
    /// The hard lockout (`throttle.lockout_after`): only an administrator
    /// lifts it.
    #[error("this account is locked after too many failed logins")]
    Locked,
    /// The token does not verify.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The token verifies but its session is not live, or not its own.
    #[error("{0}")]
    NotLive(&'static str),
    /// No token of this audience is issued here.
    #[error("tokens for audience {0:?} are not issued here")]
    AudienceNotAllowed(String),
    /// A scope asked for that the user does not hold at the audience.
    #[error("the scope {0:?} is not granted for this audience")]
    ScopeNotGranted(String),
    /// A call that needs a scope the token or the user lacks.
    #[error("the scope {0:?} is required")]
    ScopeRequired(String),
    #[error(transparent)]
    Signing(#[from] SigningUnavailable),
    #[error(transparent)]
    Hashing(#[from] HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl SessionError {
    /// Whether this refuses the token or session presented (a client's
    /// matter), rather than telling of a fault.
    pub fn is_not_live(&self) -> bool {
        matches!(self, Self::Token(_) | Self::NotLive(_))
    }
}
