//! Signing a browser in through Tessera's login page, and recognising it
//! afterwards.
//!
//! The login page sends the browser back to `return_to` with the
//! authorization token in the query (`?token=…`, the default delivery of a
//! `[[clients]]` entry). [`hand_over`] verifies it, keeps it in an HttpOnly
//! cookie and redirects to the same URL without it, so that the token does
//! not stay in the address bar, the history or a `Referer`. [`Caller`] then
//! reads the token from `Authorization: Bearer` or, for a page (GET or
//! HEAD), from that cookie; a browser without a usable one is sent to the
//! login page. A write never takes the cookie, which the browser would send
//! on a forged cross-site request too: it needs the header.
//!
//! Tokens are never logged.

use std::future::Future;
use std::pin::Pin;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::body::BoxBody;
use actix_web::cookie::{Cookie, SameSite, time};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use tessera_verify::actix::{AuthError, Authorized};
use tessera_verify::{Claims, Verifier, VerifyError};

/// The cookie that holds the authorization token.
pub const TOKEN_COOKIE: &str = "notebooks_token";

/// The query parameter the login page hands the token over in.
pub const TOKEN_PARAM: &str = "token";

/// Where a browser without a token goes: Tessera's login page, as the
/// client registered there.
#[derive(Debug, Clone)]
pub struct LoginPage {
    /// `{issuer}/login`.
    url: url::Url,
    client_id: String,
}

impl LoginPage {
    /// The login page of `issuer` for `client_id`, or `None` when `issuer`
    /// is not a URL.
    pub fn new(issuer: &str, client_id: &str) -> Option<Self> {
        let url = url::Url::parse(&format!("{}/login", issuer.trim_end_matches('/'))).ok()?;
        Some(Self {
            url,
            client_id: client_id.to_owned(),
        })
    }

    /// `/login?client_id=…&return_to=…`, back to the page `req` asked for.
    /// Tessera refuses a `return_to` that is not registered for the client,
    /// so the host the request names cannot make this an open redirect.
    fn link(&self, req: &HttpRequest) -> String {
        let info = req.connection_info();
        let return_to = format!(
            "{}://{}{}",
            info.scheme(),
            info.host(),
            path_without_token(req)
        );
        let mut url = self.url.clone();
        url.query_pairs_mut()
            .append_pair("client_id", &self.client_id)
            .append_pair("return_to", &return_to);
        url.into()
    }
}

/// Middleware: a page request with `?token=…`, as the login page sends it
/// back, is answered with the token in a cookie and a 303 to the same URL
/// without it. A token that does not verify is refused with its reason
/// rather than sent to the login page again, which could loop. Other
/// requests pass through; the query is never a way to authorize them.
pub async fn hand_over(
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let token = is_page(req.method())
        .then(|| query_token(req.query_string()))
        .flatten();
    let Some(token) = token else {
        return next.call(req).await;
    };
    let Some(verifier) = req.app_data::<Verifier>().cloned() else {
        return Ok(req.error_response(AuthError::NotConfigured));
    };
    let response = match verifier.verify(&token).await {
        Ok(claims) => {
            tracing::info!(user = %claims.username, "Signed in from the login page");
            let cookie = token_cookie(req.request(), token, &claims);
            HttpResponse::SeeOther()
                .insert_header((header::LOCATION, path_without_token(req.request())))
                .insert_header((header::REFERRER_POLICY, "no-referrer"))
                .cookie(cookie)
                .finish()
        }
        Err(error) => {
            tracing::info!(error = %error, "Refused the token the login page handed over");
            AuthError::InvalidToken(error).error_response()
        }
    };
    Ok(req.into_response(response))
}

/// The caller of a page or an API request: who the verified token is for.
#[derive(Debug, Clone)]
pub struct Caller(pub Claims);

/// Why a request has no caller: an API answer (401, 503), or for a browser
/// the way to the login page.
#[derive(Debug)]
pub enum Refusal {
    Api(AuthError),
    /// 303 to the login page, dropping a token cookie that no longer works.
    SignIn {
        location: String,
        clear_cookie: bool,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Api(error) => error.fmt(f),
            Self::SignIn { .. } => f.write_str("sign in at Tessera's login page"),
        }
    }
}

impl ResponseError for Refusal {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Api(error) => error.status_code(),
            Self::SignIn { .. } => StatusCode::SEE_OTHER,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Api(error) => error.error_response(),
            Self::SignIn {
                location,
                clear_cookie,
            } => {
                let mut response = HttpResponse::SeeOther();
                response.insert_header((header::LOCATION, location.as_str()));
                if *clear_cookie {
                    let mut removal = Cookie::build(TOKEN_COOKIE, "").path("/").finish();
                    removal.make_removal();
                    response.cookie(removal);
                }
                response.finish()
            }
        }
    }
}

impl FromRequest for Caller {
    type Error = Refusal;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Refusal>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            // An API client: the library's extractor, with its answers.
            if req.headers().contains_key(header::AUTHORIZATION) || !is_page(req.method()) {
                return Authorized::extract(&req)
                    .await
                    .map(|auth| Self(auth.into_claims()))
                    .map_err(Refusal::Api);
            }
            let verifier = req
                .app_data::<Verifier>()
                .ok_or(Refusal::Api(AuthError::NotConfigured))?;
            let login = req
                .app_data::<web::Data<LoginPage>>()
                .filter(|_| wants_html(&req));
            let Some(cookie) = req.cookie(TOKEN_COOKIE) else {
                return Err(match login {
                    Some(login) => Refusal::SignIn {
                        location: login.link(&req),
                        clear_cookie: false,
                    },
                    None => Refusal::Api(AuthError::MissingToken),
                });
            };
            match verifier.verify(cookie.value()).await {
                Ok(claims) => Ok(Self(claims)),
                // The issuer's fault, not the token's: a new token would not
                // verify either.
                Err(error @ VerifyError::KeysUnavailable) => Err(Refusal::Api(error.into())),
                Err(error) => {
                    tracing::debug!(error = %error, "Refused the token cookie");
                    Err(match login {
                        // Expired, or of a session that ended: the login page
                        // hands a new one over at once while Tessera's session
                        // lives, else asks for the password.
                        Some(login) => Refusal::SignIn {
                            location: login.link(&req),
                            clear_cookie: true,
                        },
                        None => Refusal::Api(error.into()),
                    })
                }
            }
        })
    }
}

fn is_page(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

/// Whether the request is a browser's navigation, which can follow a
/// redirect to a login page; an API client gets a 401 instead.
fn wants_html(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

fn query_token(query: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == TOKEN_PARAM)
        .map(|(_, value)| value.into_owned())
        .filter(|token| !token.is_empty())
}

/// The request's path and query, without the token parameter. Leading
/// slashes are collapsed: `//evil.example/` as a `Location` would leave
/// this site.
fn path_without_token(req: &HttpRequest) -> String {
    let path = format!("/{}", req.path().trim_start_matches(['/', '\\']));
    let kept: Vec<(String, String)> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .filter(|(name, _)| name != TOKEN_PARAM)
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    if kept.is_empty() {
        return path;
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(kept)
        .finish();
    format!("{path}?{query}")
}

/// The token cookie: HttpOnly (no script reads it), SameSite=Lax (not sent
/// on cross-site subrequests or posts), Secure when the page is https, and
/// gone when the token expires.
fn token_cookie<'c>(req: &HttpRequest, token: String, claims: &Claims) -> Cookie<'c> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        });
    Cookie::build(TOKEN_COOKIE, token)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(req.connection_info().scheme() == "https")
        .max_age(time::Duration::seconds(
            claims.exp.saturating_sub(now).max(0),
        ))
        .finish()
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn the_token_leaves_the_url_and_everything_else_stays() {
        for (uri, expected) in [
            ("/app?token=a.b.c", "/app"),
            ("/app?next=%2Fhome&token=a.b.c&x=1", "/app?next=%2Fhome&x=1"),
            ("/?token=a.b.c", "/"),
            ("//evil.example/x?token=a.b.c", "/evil.example/x"),
            ("/\\evil.example?token=a", "/evil.example"),
        ] {
            let req = TestRequest::with_uri(uri).to_http_request();
            assert_eq!(path_without_token(&req), expected, "{uri}");
        }
    }

    #[test]
    fn only_a_non_empty_token_parameter_is_a_hand_over() {
        assert_eq!(query_token("token=a.b.c&x=1").as_deref(), Some("a.b.c"));
        assert_eq!(query_token("x=1&token=a%2Eb"), Some("a.b".into()));
        assert_eq!(query_token("token="), None);
        assert_eq!(query_token("tokens=a.b.c"), None);
        assert_eq!(query_token(""), None);
    }

    #[test]
    fn the_login_link_names_the_client_and_the_page_to_come_back_to() {
        let login = LoginPage::new("http://localhost:8080/", "notebooks").unwrap();
        let req = TestRequest::with_uri("/app?next=1")
            .insert_header((header::HOST, "localhost:8081"))
            .to_http_request();
        assert_eq!(
            login.link(&req),
            "http://localhost:8080/login?client_id=notebooks\
             &return_to=http%3A%2F%2Flocalhost%3A8081%2Fapp%3Fnext%3D1"
        );
    }
}
