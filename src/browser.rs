//! What the hosted login pages share: their settings and branding, the
//! cookies (the session cookie, the CSRF cookie, token cookies of clients),
//! CSRF tokens, the security headers, and rendering pages from the
//! templates in `templates/`.
//!
//! Never log a cookie's value, a token or a CSRF token here. Every page and
//! redirect leaves through [`Browser::page`] or [`Browser::redirect`], which
//! set the security headers.

use std::sync::Arc;

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use anyhow::Context;
use askama::Template;
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::ExposeSecret;

use crate::clients::{Client, ClientRegistry, TokenDelivery};
use crate::clock::Clock;
use crate::configuration::{Settings, logo_origin};
use crate::error::{DATABASE_RETRY_AFTER, HASHING_RETRY_AFTER, SIGNING_RETRY_AFTER};
use crate::password::HashError;
use crate::sessions::SessionError;
use crate::store::StoreError;

/// How long a login or logout form may be submitted after it was shown, in
/// seconds.
const CSRF_LIFETIME_SECS: i64 = 3600;

/// The default look, served at `/static/tessera.css`.
pub const DEFAULT_STYLESHEET: &str = include_str!("../static/tessera.css");

/// What the pages show of the configuration.
pub struct Brand {
    pub product_name: String,
    pub logo_url: Option<String>,
    pub issuer: String,
    pub custom_stylesheet: bool,
}

/// The login pages' state, built once at start-up.
pub struct Browser {
    pub clients: ClientRegistry,
    pub brand: Brand,
    pub brand_stylesheet: Option<Bytes>,
    csrf_key: hmac::Key,
    img_src: String,
    /// Cookies get `Secure` (and the `__Host-` prefix) when the issuer is
    /// https.
    secure: bool,
    session_lifetime: Option<std::time::Duration>,
    authorization_lifetime: std::time::Duration,
    /// When a CSRF token expires.
    clock: Arc<dyn Clock>,
}

impl Browser {
    pub fn new(settings: &Settings, issuer: &str, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let clients = ClientRegistry::from_settings(
            &settings.clients,
            &settings.tokens.allowed_audiences,
            issuer,
        )?;
        let login = &settings.login;
        let secret = match &login.csrf_secret {
            Some(secret) => secret.expose_secret().as_bytes().to_vec(),
            None => {
                let mut bytes = vec![0u8; 32];
                aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow::anyhow!("no randomness"))?;
                bytes
            }
        };
        let brand_stylesheet = login
            .stylesheet
            .as_ref()
            .map(|path| {
                std::fs::read(path)
                    .with_context(|| format!("reading login.stylesheet {}", path.display()))
            })
            .transpose()?
            .map(Bytes::from);
        let img_src = match &login.logo_url {
            Some(logo) => format!("'self' {}", logo_origin(logo)?),
            None => "'self'".into(),
        };
        Ok(Self {
            clients,
            brand: Brand {
                product_name: login.product_name.clone(),
                logo_url: login.logo_url.clone(),
                issuer: issuer.to_owned(),
                custom_stylesheet: brand_stylesheet.is_some(),
            },
            brand_stylesheet,
            csrf_key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            img_src,
            secure: issuer.starts_with("https://"),
            session_lifetime: settings.tokens.session_lifetime,
            authorization_lifetime: settings.tokens.authorization_lifetime,
            clock,
        })
    }

    // --- Cookies -----------------------------------------------------------

    /// `__Host-` pins a secure cookie to this host and path `/`: a sibling
    /// subdomain cannot plant or shadow it.
    fn cookie_name(&self, name: &'static str) -> String {
        if self.secure {
            format!("__Host-{name}")
        } else {
            name.to_owned()
        }
    }

    fn cookie<'c>(&self, name: String, value: String) -> Cookie<'c> {
        Cookie::build(name, value)
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .finish()
    }

    fn removal<'c>(&self, name: String) -> Cookie<'c> {
        let mut cookie = self.cookie(name, String::new());
        cookie.make_removal();
        cookie
    }

    /// The session token the browser holds, if any.
    pub fn session_token(&self, req: &HttpRequest) -> Option<String> {
        req.cookie(&self.cookie_name("tessera_session"))
            .map(|c| c.value().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// The session cookie: it lasts as long as the session, or as long as
    /// the browser session when sessions do not expire.
    pub fn session_cookie<'c>(&self, token: String) -> Cookie<'c> {
        let mut cookie = self.cookie(self.cookie_name("tessera_session"), token);
        if let Some(lifetime) = self.session_lifetime {
            cookie.set_max_age(cookie_age(lifetime));
        }
        cookie
    }

    pub fn session_cookie_removal<'c>(&self) -> Cookie<'c> {
        self.removal(self.cookie_name("tessera_session"))
    }

    /// The cookie carrying an authorization token to a `cookie` client.
    pub fn token_cookie<'c>(&self, delivery: &TokenDelivery, token: &str) -> Option<Cookie<'c>> {
        let TokenDelivery::Cookie { name, domain } = delivery else {
            return None;
        };
        let mut cookie = self.cookie(name.clone(), token.to_owned());
        cookie.set_max_age(cookie_age(self.authorization_lifetime));
        if let Some(domain) = domain {
            cookie.set_domain(domain.clone());
        }
        Some(cookie)
    }

    /// Removals of every client's token cookie, for logout.
    pub fn token_cookie_removals<'c>(&self) -> Vec<Cookie<'c>> {
        self.clients
            .iter()
            .filter_map(|client| {
                let mut cookie = self.token_cookie(&client.delivery, "")?;
                cookie.make_removal();
                Some(cookie)
            })
            .collect()
    }

    // --- CSRF --------------------------------------------------------------

    /// A fresh CSRF pair: the cookie holds a random nonce, the form a MAC of
    /// it with an expiry. A forger can neither read the cookie nor compute
    /// the MAC without the server's key (double-submit, signed).
    pub fn new_csrf(&self) -> anyhow::Result<(Cookie<'static>, String)> {
        let mut nonce = [0u8; 32];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| anyhow::anyhow!("no randomness"))?;
        let nonce = URL_SAFE_NO_PAD.encode(nonce);
        let expires = self.clock.now().timestamp() + CSRF_LIFETIME_SECS;
        let tag = hmac::sign(&self.csrf_key, csrf_message(&nonce, expires).as_bytes());
        let field = format!("{expires}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
        let mut cookie = self.cookie(self.cookie_name("tessera_csrf"), nonce);
        cookie.set_max_age(CookieDuration::seconds(CSRF_LIFETIME_SECS));
        Ok((cookie, field))
    }

    /// Whether the form's CSRF token is the MAC of the request's CSRF cookie
    /// and has not expired. The comparison is constant-time.
    pub fn csrf_is_valid(&self, req: &HttpRequest, field: &str) -> bool {
        let Some(cookie) = req.cookie(&self.cookie_name("tessera_csrf")) else {
            return false;
        };
        let Some((expires, tag)) = field.split_once('.') else {
            return false;
        };
        let (Ok(expires), Ok(tag)) = (expires.parse::<i64>(), URL_SAFE_NO_PAD.decode(tag)) else {
            return false;
        };
        expires >= self.clock.now().timestamp()
            && hmac::verify(
                &self.csrf_key,
                csrf_message(cookie.value(), expires).as_bytes(),
                &tag,
            )
            .is_ok()
    }

    pub fn csrf_cookie_removal<'c>(&self) -> Cookie<'c> {
        self.removal(self.cookie_name("tessera_csrf"))
    }

    // --- Responses ---------------------------------------------------------

    /// The security headers every page and redirect carries. `form_action`
    /// lists origins besides Tessera's a form on the page may end up at:
    /// Chromium applies `form-action` to the redirects after a submission
    /// too, so the login form must allow its client's origins.
    fn secure_headers(&self, response: &mut HttpResponseBuilder, form_action: &[String]) {
        let mut form_action_sources = String::from("'self'");
        for origin in form_action {
            form_action_sources.push(' ');
            form_action_sources.push_str(origin);
        }
        let policy = format!(
            "default-src 'none'; style-src 'self'; img-src {}; form-action {}; \
             frame-ancestors 'none'; base-uri 'none'",
            self.img_src, form_action_sources
        );
        response
            .insert_header((header::CONTENT_SECURITY_POLICY, policy))
            .insert_header((header::X_FRAME_OPTIONS, "DENY"))
            .insert_header((header::REFERRER_POLICY, "no-referrer"))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    }

    /// A page: a template rendered with the security headers.
    pub fn page(
        &self,
        status: StatusCode,
        template: &impl Template,
        form_action: &[String],
        cookies: Vec<Cookie<'_>>,
    ) -> HttpResponse {
        let body = match template.render() {
            Ok(body) => body,
            Err(error) => {
                tracing::error!(error = %error, "Rendering a page failed");
                return HttpResponse::InternalServerError().finish();
            }
        };
        let mut response = HttpResponse::build(status);
        self.secure_headers(&mut response, form_action);
        for cookie in cookies {
            response.cookie(cookie);
        }
        response.content_type("text/html; charset=utf-8").body(body)
    }

    /// A `303 See Other` to `location`, with the security headers.
    pub fn redirect(&self, location: &str, cookies: Vec<Cookie<'_>>) -> HttpResponse {
        let mut response = HttpResponse::SeeOther();
        self.secure_headers(&mut response, &[]);
        for cookie in cookies {
            response.cookie(cookie);
        }
        response
            .insert_header((header::LOCATION, location))
            .finish()
    }

    /// A message page.
    pub fn message(
        &self,
        status: StatusCode,
        title: &str,
        message: &str,
        cookies: Vec<Cookie<'_>>,
    ) -> HttpResponse {
        let page = MessagePage {
            brand: &self.brand,
            title,
            message,
            sign_out_link: false,
        };
        self.page(status, &page, &[], cookies)
    }

    /// Tessera's own page for a browser that is signed in: as whom, and a
    /// way to sign out.
    pub fn signed_in(&self, username: &str) -> HttpResponse {
        let message = format!(
            "You are signed in as {username}: every site that signs in through here will let you in without asking again."
        );
        let page = MessagePage {
            brand: &self.brand,
            title: "Signed in",
            message: &message,
            sign_out_link: true,
        };
        self.page(StatusCode::OK, &page, &[], Vec::new())
    }

    /// The page for a failure; what went wrong inside stays in the log.
    pub fn error_page(&self, error: PageError) -> HttpResponse {
        let (status, title, message) = match &error {
            PageError::BadLink(_) => (
                StatusCode::BAD_REQUEST,
                "This sign-in link is not valid",
                "The application that sent you here asked for something Tessera does not \
                 allow. Go back and try again, or ask its administrator.",
            ),
            PageError::Csrf => (
                StatusCode::FORBIDDEN,
                "This form has expired",
                "For your security, the sign-in form could not be accepted. Go back, reload \
                 the page and sign in again.",
            ),
            PageError::NoAccess => (
                StatusCode::FORBIDDEN,
                "No access",
                "Your account does not have access to this application. Ask its \
                 administrator, or sign out and sign in with another account.",
            ),
            PageError::TooManyRequests { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                "There have been too many sign-in attempts. Wait a moment and try again.",
            ),
            PageError::SignedOut => (
                StatusCode::UNAUTHORIZED,
                "Signed out",
                "Your session ended before you could be sent on. Go back and sign in again.",
            ),
            PageError::Locked => (
                StatusCode::FORBIDDEN,
                "Account locked",
                "This account is locked after too many failed sign-in attempts. Ask an \
                 administrator to unlock it.",
            ),
            PageError::Unavailable { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Busy right now",
                "The service is busy. Wait a moment and try again.",
            ),
            PageError::Unexpected(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Signing in failed because of an error on our side. Try again later.",
            ),
        };
        match &error {
            PageError::Unexpected(cause) => {
                tracing::error!(error = ?cause, "A login page failed unexpectedly");
            }
            PageError::BadLink(reason) => tracing::info!(reason, "Refused a login link"),
            _ => {}
        }
        let page = MessagePage {
            brand: &self.brand,
            title,
            message,
            sign_out_link: matches!(error, PageError::NoAccess),
        };
        let mut response = self.page(status, &page, &[], Vec::new());
        if let PageError::TooManyRequests { retry_after } | PageError::Unavailable { retry_after } =
            error
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        response
    }

    /// The origins a client's redirect URIs point at.
    pub fn client_origins(client: &Client) -> Vec<String> {
        let mut origins: Vec<String> = client
            .redirect_uris
            .iter()
            .map(|uri| uri.origin())
            .collect();
        origins.sort();
        origins.dedup();
        origins
    }
}

fn csrf_message(nonce: &str, expires: i64) -> String {
    format!("tessera login csrf\n{nonce}\n{expires}")
}

/// A cookie's `Max-Age`: configured lifetimes are whole seconds.
fn cookie_age(lifetime: std::time::Duration) -> CookieDuration {
    CookieDuration::seconds(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX / 1000))
}

/// Why a login page cannot do what was asked.
#[derive(Debug)]
pub enum PageError {
    /// An unknown client or a `return_to` it may not be sent to; never a
    /// redirect. The reason is for the log.
    BadLink(&'static str),
    /// A missing, forged or expired CSRF token.
    Csrf,
    /// The user holds no access to the client's audience or scopes.
    NoAccess,
    TooManyRequests {
        retry_after: u64,
    },
    /// The hard lockout: only an administrator lifts it.
    Locked,
    /// The session ended (revoked, its user disabled or deleted) between
    /// signing in and the hand-over.
    SignedOut,
    Unavailable {
        retry_after: u64,
    },
    Unexpected(anyhow::Error),
}

impl From<SessionError> for PageError {
    fn from(error: SessionError) -> Self {
        match error {
            SessionError::AudienceNotAllowed(_)
            | SessionError::ScopeNotGranted(_)
            | SessionError::ScopeRequired(_) => Self::NoAccess,
            SessionError::Throttled { retry_after } => Self::TooManyRequests { retry_after },
            SessionError::Locked => Self::Locked,
            SessionError::Token(_)
            | SessionError::NotLive(_)
            | SessionError::InvalidCredentials => Self::SignedOut,
            SessionError::Store(StoreError::UserNotFound) => Self::SignedOut,
            SessionError::Store(StoreError::Unavailable) => Self::Unavailable {
                retry_after: DATABASE_RETRY_AFTER,
            },
            SessionError::Store(StoreError::Unexpected(cause)) => Self::Unexpected(cause),
            SessionError::Store(
                other @ (StoreError::UsernameTaken | StoreError::ClientIdTaken),
            ) => Self::Unexpected(anyhow::anyhow!("{other}")),
            SessionError::Hashing(HashError::Busy) => Self::Unavailable {
                retry_after: HASHING_RETRY_AFTER,
            },
            SessionError::Hashing(HashError::Unexpected(cause))
            | SessionError::Unexpected(cause) => Self::Unexpected(cause),
            SessionError::Signing(_) => Self::Unavailable {
                retry_after: SIGNING_RETRY_AFTER,
            },
        }
    }
}

impl From<anyhow::Error> for PageError {
    fn from(error: anyhow::Error) -> Self {
        Self::Unexpected(error)
    }
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub brand: &'a Brand,
    /// Where the user is going, shown so they can tell.
    pub destination: &'a str,
    pub client_id: &'a str,
    pub return_to: &'a str,
    /// For the authorization endpoint: its request, made again once the
    /// user has signed in.
    pub authorization: Option<&'a str>,
    pub csrf_token: &'a str,
    pub username: &'a str,
    pub error: Option<&'a str>,
}

/// Asks before signing out; the form posts to `POST /logout`.
#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage<'a> {
    pub brand: &'a Brand,
    pub csrf_token: &'a str,
    /// The path the form posts to: `/logout` or `/oauth2/logout`.
    pub action: &'a str,
    /// Hidden fields the form carries along.
    pub fields: Vec<(&'a str, &'a str)>,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub brand: &'a Brand,
    pub title: &'a str,
    pub message: &'a str,
    /// Offer to sign out, to sign in as someone else.
    pub sign_out_link: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configuration::LoginSettings;
    use secrecy::SecretString;

    #[test]
    fn the_csrf_secret_never_shows_in_debug_output_and_must_be_long() {
        let settings = LoginSettings {
            csrf_secret: Some(SecretString::from("s3cret-s3cret-s3cret-s3cret-s3cret")),
            ..LoginSettings::default()
        };
        assert!(!format!("{settings:?}").contains("s3cret"));
        settings.validate().unwrap();
        let short = LoginSettings {
            csrf_secret: Some(SecretString::from("short")),
            ..LoginSettings::default()
        };
        assert!(short.validate().is_err());
    }

    #[test]
    fn throttled_and_busy_logins_get_a_page_with_their_status_and_retry_after() {
        let browser = Browser::new(
            &Settings::default(),
            "http://127.0.0.1:8080",
            Arc::new(crate::clock::SystemClock),
        )
        .unwrap();
        for (error, status) in [
            (PageError::TooManyRequests { retry_after: 7 }, 429),
            (PageError::Unavailable { retry_after: 7 }, 503),
        ] {
            let response = browser.error_page(error);
            assert_eq!(response.status().as_u16(), status);
            let headers = response.headers();
            assert_eq!(headers.get(header::RETRY_AFTER).unwrap(), "7");
            assert_eq!(headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
            let content_type = headers.get(header::CONTENT_TYPE).unwrap();
            assert!(content_type.to_str().unwrap().starts_with("text/html"));
        }
    }

    #[test]
    fn the_logo_must_be_an_absolute_http_url() {
        assert_eq!(
            logo_origin("https://cdn.example.com:8443/a/logo.svg").unwrap(),
            "https://cdn.example.com:8443"
        );
        for bad in [
            "/static/logo.svg",
            "javascript:alert(1)",
            "data:image/png;base64,AA",
        ] {
            assert!(logo_origin(bad).is_err(), "{bad}");
        }
    }
}
