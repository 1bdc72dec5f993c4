//! The actix-web side: an [`Authorized`] extractor and the 401/403/503
//! answers, in Tessera's error shape `{"error": "<code>", "message": "<text>"}`.
//!
//! The extractor takes the token from `Authorization: Bearer <token>` only,
//! never from the query string, where it would reach access logs. It finds
//! the [`Verifier`] in app data, as `Verifier` or `web::Data<Verifier>`. It
//! never logs the token.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, dev::Payload, web};
use serde::Serialize;

use crate::{Claims, Verifier, VerifyError};

/// A request with a valid authorization token for this service.
///
/// ```no_run
/// use actix_web::{HttpResponse, web};
/// use tessera_verify::actix::{AuthError, Authorized};
///
/// async fn delete_notebook(auth: Authorized) -> Result<HttpResponse, AuthError> {
///     auth.require_scope("write")?;
///     Ok(HttpResponse::NoContent().finish())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Authorized {
    claims: Claims,
}

impl Authorized {
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    pub fn into_claims(self) -> Claims {
        self.claims
    }

    /// Whether the token grants `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.claims.has_scope(scope)
    }

    /// `Ok` when the token grants `scope`, else an error that answers 403.
    pub fn require_scope(&self, scope: &str) -> Result<(), AuthError> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(AuthError::MissingScope(scope.to_owned()))
        }
    }
}

/// Why a request was not authorized, as an HTTP answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// 401: no `Authorization: Bearer` header.
    #[error("an Authorization: Bearer token is required")]
    MissingToken,
    /// 401, or 503 for [`VerifyError::KeysUnavailable`].
    #[error(transparent)]
    InvalidToken(#[from] VerifyError),
    /// 403.
    #[error("the scope {0:?} is required")]
    MissingScope(String),
    /// 500: the application registered no [`Verifier`].
    #[error("internal error")]
    NotConfigured,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: String,
}

impl AuthError {
    /// The `error` code of the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidToken(VerifyError::KeysUnavailable) => "unavailable",
            Self::MissingToken | Self::InvalidToken(_) => "invalid_token",
            Self::MissingScope(_) => "forbidden",
            Self::NotConfigured => "internal_error",
        }
    }
}

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidToken(VerifyError::KeysUnavailable) => StatusCode::SERVICE_UNAVAILABLE,
            Self::MissingToken | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::MissingScope(_) => StatusCode::FORBIDDEN,
            Self::NotConfigured => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            Self::InvalidToken(VerifyError::KeysUnavailable) => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("5")));
            }
            Self::MissingToken | Self::InvalidToken(_) => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer error="invalid_token""#),
                ));
            }
            Self::MissingScope(scope) => {
                // RFC 6750 §3.1. Scopes cannot hold `"` or `\` (RFC 6749
                // §3.3), but a handler may pass any string: drop the scope
                // from the header rather than emit a broken one.
                let challenge = if scope
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
                {
                    format!(r#"Bearer error="insufficient_scope", scope="{scope}""#)
                } else {
                    r#"Bearer error="insufficient_scope""#.to_owned()
                };
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    response.insert_header((header::WWW_AUTHENTICATE, value));
                }
            }
            Self::NotConfigured => {
                tracing::error!(
                    "An Authorized extractor ran, but no tessera_verify::Verifier is registered \
                     as app data"
                );
            }
        }
        response.json(ErrorBody {
            error: self.code(),
            message: self.to_string(),
        })
    }
}

impl FromRequest for Authorized {
    type Error = AuthError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AuthError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Cloning the request is a reference count; the token is then
        // borrowed from its headers rather than copied.
        let req = req.clone();
        Box::pin(async move {
            let verifier = verifier(&req).ok_or(AuthError::NotConfigured)?;
            let token = bearer_token(&req).ok_or(AuthError::MissingToken)?;
            match verifier.verify(token).await {
                Ok(claims) => Ok(Self { claims }),
                Err(error) => {
                    tracing::debug!(error = %error, "Refused a request's token");
                    Err(error.into())
                }
            }
        })
    }
}

fn verifier(req: &HttpRequest) -> Option<Verifier> {
    req.app_data::<Verifier>().cloned().or_else(|| {
        req.app_data::<web::Data<Verifier>>()
            .map(|data| data.get_ref().clone())
    })
}

/// The token of an `Authorization: Bearer <token>` header (scheme in any
/// case, RFC 7235 §2.1).
fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn the_bearer_scheme_is_read_in_any_case() {
        for value in ["Bearer abc", "bearer abc", "BEARER  abc "] {
            let req = TestRequest::default()
                .insert_header((header::AUTHORIZATION, value))
                .to_http_request();
            assert_eq!(bearer_token(&req), Some("abc"), "{value}");
        }
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_no_token() {
        for value in ["Basic abc", "Bearer", "Bearer ", "abc", "JWT abc"] {
            let req = TestRequest::default()
                .insert_header((header::AUTHORIZATION, value))
                .to_http_request();
            assert_eq!(bearer_token(&req), None, "{value}");
        }
        assert_eq!(
            bearer_token(&TestRequest::default().to_http_request()),
            None
        );
    }

    #[test]
    fn errors_answer_401_403_and_503_with_their_codes() {
        let cases = [
            (AuthError::MissingToken, 401, "invalid_token"),
            (
                AuthError::InvalidToken(VerifyError::Expired),
                401,
                "invalid_token",
            ),
            (AuthError::MissingScope("write".into()), 403, "forbidden"),
            (
                AuthError::InvalidToken(VerifyError::KeysUnavailable),
                503,
                "unavailable",
            ),
            (AuthError::NotConfigured, 500, "internal_error"),
        ];
        for (error, status, code) in cases {
            let response = error.error_response();
            assert_eq!(response.status().as_u16(), status, "{error:?}");
            assert_eq!(error.code(), code);
        }
        let challenge = AuthError::MissingScope("write".into()).error_response();
        assert_eq!(
            challenge.headers().get(header::WWW_AUTHENTICATE).unwrap(),
            r#"Bearer error="insufficient_scope", scope="write""#
        );
    }
}
