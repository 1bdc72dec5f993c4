//! The errors of the OAuth 2.0 / OpenID Connect endpoints: the codes of
//! RFC 6749 §4.1.2.1 and §5.2, OpenID Connect Core §3.1.2.6, RFC 7009
//! §2.2.1 and RFC 8693 §2.2.2, with a description that is safe to show the
//! client. Never a token, a secret or whether a user exists.

use std::borrow::Cow;

use crate::sessions::SessionError;
use crate::store::StoreError;

/// An error code of the specifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    AccessDenied,
    LoginRequired,
    RequestNotSupported,
    RequestUriNotSupported,
    InvalidTarget,
    UnsupportedTokenType,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::LoginRequired => "login_required",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::InvalidTarget => "invalid_target",
            Self::UnsupportedTokenType => "unsupported_token_type",
        }
    }
}

/// Why an OAuth request failed.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// An error the client is told, by its code.
    #[error("{}: {description}", code.as_str())]
    Protocol {
        code: Code,
        description: Cow<'static, str>,
    },
    /// Too many failed client authentications from this address.
    #[error("too many failed client authentications")]
    Throttled { retry_after: u64 },
    /// Tessera cannot answer now: the database, the keys, the hasher.
    #[error(transparent)]
    Session(SessionError),
}

impl OAuthError {
    pub fn new(code: Code, description: impl Into<Cow<'static, str>>) -> Self {
        Self::Protocol {
            code,
            description: description.into(),
        }
    }

    pub fn code(&self) -> Option<Code> {
        match self {
            Self::Protocol { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl From<StoreError> for OAuthError {
    fn from(error: StoreError) -> Self {
        Self::Session(SessionError::Store(error))
    }
}

impl From<SessionError> for OAuthError {
    /// A grant whose session ended, whose user was disabled or who lost
    /// access is `invalid_grant` (RFC 6749 §5.2: "revoked"); the rest are
    /// Tessera's own failures.
    fn from(error: SessionError) -> Self {
        match error {
            SessionError::NotLive(_) | SessionError::Token(_) => {
                Self::new(Code::InvalidGrant, "the session has ended")
            }
            SessionError::AudienceNotAllowed(_) => Self::new(
                Code::InvalidTarget,
                "tokens for that audience are not issued here",
            ),
            SessionError::ScopeNotGranted(_) | SessionError::ScopeRequired(_) => {
                Self::new(Code::InvalidScope, "a scope asked for is not granted")
            }
            other => Self::Session(other),
        }
    }
}

impl From<anyhow::Error> for OAuthError {
    fn from(error: anyhow::Error) -> Self {
        Self::Session(SessionError::Unexpected(error))
    }
}
