//! The HTTP error type. Every error answers JSON
//! `{"error": "<code>", "message": "<text>"}`; a 500 says nothing of its
//! cause to the client and logs it instead.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::domain::InvalidInput;
use crate::keys::SigningUnavailable;
use crate::oauth::clients::ClientError;
use crate::password::HashError;
use crate::sessions::SessionError;
use crate::store::StoreError;
use crate::tokens::TokenError;

/// `Retry-After` when no key can sign: about one key rescan.
pub const SIGNING_RETRY_AFTER: u64 = 5;
/// `Retry-After` when the database is unavailable.
pub const DATABASE_RETRY_AFTER: u64 = 2;
/// `Retry-After` when every password hashing slot is busy.
pub const HASHING_RETRY_AFTER: u64 = 1;

#[derive(thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("{0}")]
    InvalidToken(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request body did not arrive within {limit_ms} ms")]
    RequestTimeout { limit_ms: u64 },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("too many requests; retry after {retry_after} s")]
    TooManyRequests { retry_after: u64 },
    #[error("the service is busy; retry after {retry_after} s")]
    Unavailable { retry_after: u64 },
    #[error("the database is unavailable; retry after {retry_after} s")]
    DatabaseUnavailable { retry_after: u64 },
    /// The hard lockout (`throttle.lockout_after`): no wait ends it, only
    /// `tessera user unlock`, so it is not a 429.
    #[error("this account is locked after too many failed logins; an administrator can unlock it")]
    AccountLocked,
    /// This server cannot sign now; another replica, or this one after its
    /// next key rescan, can.
    #[error("{0}; retry after {retry} s", retry = SIGNING_RETRY_AFTER)]
    SigningUnavailable(#[from] SigningUnavailable),
    #[error("internal error")]
    Unexpected(#[from] anyhow::Error),
}

impl std::fmt::Debug for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // `{:?}` of anyhow prints the whole cause chain.
            Self::Unexpected(e) => write!(f, "Unexpected({e:?})"),
            other => write!(f, "{other}"),
        }
    }
}

/// Every error: `{"error": "<code>", "message": "<text>"}`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"error": "invalid_token", "message": "the session has ended"}))]
pub struct ErrorBody<'a> {
    /// A stable code: `invalid_request`, `invalid_credentials`,
    /// `invalid_token`, `forbidden`, `not_found`, `conflict`,
    /// `method_not_allowed`, `payload_too_large`, `request_timeout`,
    /// `unsupported_media_type`, `too_many_requests`, `account_locked`,
    /// `unavailable`, `internal_error`.
    error: &'a str,
    /// For people; may change.
    message: String,
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidToken(_) => "invalid_token",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::RequestTimeout { .. } => "request_timeout",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::TooManyRequests { .. } => "too_many_requests",
            Self::Unavailable { .. }
            | Self::DatabaseUnavailable { .. }
            | Self::SigningUnavailable(_) => "unavailable",
            Self::AccountLocked => "account_locked",
            Self::Unexpected(_) => "internal_error",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::InvalidCredentials | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::AccountLocked => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable { .. }
            | Self::DatabaseUnavailable { .. }
            | Self::SigningUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Unexpected(cause) = self {
            tracing::error!(error = ?cause, "Request failed unexpectedly");
        }
        let mut response = HttpResponse::build(self.status_code());
        match self {
            Self::InvalidToken(_) => {
                response
                    .insert_header((header::WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#));
            }
            Self::TooManyRequests { retry_after }
            | Self::Unavailable { retry_after }
            | Self::DatabaseUnavailable { retry_after } => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from(*retry_after)));
            }
            // The rest of the body may still come; the connection cannot
            // carry another request (RFC 9110 §15.5.9).
            Self::RequestTimeout { .. } => {
                response.force_close();
            }
            Self::SigningUnavailable(_) => {
                response
                    .insert_header((header::RETRY_AFTER, HeaderValue::from(SIGNING_RETRY_AFTER)));
            }
            _ => {}
        }
        response.json(ErrorBody {
            error: self.code(),
            message: self.to_string(),
        })
    }
}

impl From<InvalidInput> for ApiError {
    fn from(e: InvalidInput) -> Self {
        Self::InvalidRequest(e.to_string())
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        Self::InvalidToken(e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unexpected(e) => Self::Unexpected(e),
            StoreError::Unavailable => Self::DatabaseUnavailable {
                retry_after: DATABASE_RETRY_AFTER,
            },
            // A user deleted while a request about them was under way.
            StoreError::UserNotFound => Self::NotFound(e.to_string()),
            StoreError::UsernameTaken | StoreError::ClientIdTaken => Self::Conflict(e.to_string()),
        }
    }
}

impl From<crate::admin::AdminError> for ApiError {
    fn from(e: crate::admin::AdminError) -> Self {
        use crate::admin::AdminError;
        match e {
            AdminError::UnknownUser(_) => Self::NotFound(e.to_string()),
            AdminError::UsernameTaken(_) => Self::Conflict(e.to_string()),
            AdminError::Store(e) => e.into(),
        }
    }
}

impl From<HashError> for ApiError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => Self::Unavailable {
                retry_after: HASHING_RETRY_AFTER,
            },
            HashError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::InvalidCredentials => Self::InvalidCredentials,
            SessionError::Throttled { retry_after } => Self::TooManyRequests { retry_after },
            SessionError::Locked => Self::AccountLocked,
            SessionError::Token(e) => e.into(),
            SessionError::NotLive(reason) => Self::InvalidToken(reason.into()),
            // Named for the operator who reads the answer: the setting
            // that decides.
            SessionError::AudienceNotAllowed(audience) => Self::Forbidden(format!(
                "tokens for audience {audience:?} are not issued here: it is not in \
                 tokens.allowed_audiences"
            )),
            SessionError::ScopeNotGranted(_) | SessionError::ScopeRequired(_) => {
                Self::Forbidden(e.to_string())
            }
            SessionError::Signing(e) => e.into(),
            SessionError::Hashing(e) => e.into(),
            SessionError::Store(e) => e.into(),
            SessionError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Invalid(_) => Self::InvalidRequest(e.to_string()),
            ClientError::Taken(_) | ClientError::Public(_) => Self::Conflict(e.to_string()),
            ClientError::Unknown(_) => Self::NotFound(e.to_string()),
            ClientError::Store(e) => e.into(),
            ClientError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}
