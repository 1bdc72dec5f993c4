//! The hosted login page for browser single sign-on: `GET`/`POST /login`,
//! `GET`/`POST /logout`, and the stylesheets the pages use. Only a form
//! posted with its CSRF token signs in or out; a link never does.
//!
//! Logging in goes through [`sessions::log_in`] and tokens through
//! [`sessions::authorize`], exactly as `POST /session` and `POST /authorize`
//! do, so every check, record and limit of the API applies here too. A
//! `client_id` or `return_to` the registry does not allow gets a 400 page,
//! never a redirect. Passwords, tokens and cookies are never logged or shown.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use uuid::Uuid;

use super::extract;
use crate::browser::{Browser, DEFAULT_STYLESHEET, LoginPage, LogoutPage, PageError};
use crate::clients::{Client, ReturnTo};
use crate::domain::{Password, Username};
use crate::error::ApiError;
use crate::sessions::{self, AuthorizationRequest, LoginAttempt};
use crate::state::AppState;
use crate::tokens::SessionClaims;

/// The one message for every failed login: it must not tell an unknown
/// user from a wrong password or a disabled account.
const LOGIN_FAILED: &str = "Incorrect username or password.";

/// Where a login or logout comes from and goes back to.
#[derive(Deserialize, Default)]
struct Link {
    client_id: Option<String>,
    return_to: Option<String>,
}

/// The login form as posted. No `Debug`: it holds the password.
#[derive(Deserialize, Default)]
#[serde(default)]
struct LoginForm {
    username: String,
    password: String,
    csrf_token: String,
    client_id: String,
    return_to: String,
}

fn query_link(req: &HttpRequest) -> Result<Link, PageError> {
    serde_urlencoded::from_str(req.query_string())
        .map_err(|_| PageError::BadLink("unreadable query string"))
}

/// The registered client and the place it may be sent back to.
fn resolve<'b>(
    browser: &'b Browser,
    client_id: Option<&str>,
    return_to: Option<&str>,
) -> Result<(&'b Client, ReturnTo), PageError> {
    let client = client_id
        .and_then(|id| browser.clients.get(id))
        .ok_or(PageError::BadLink("unknown client_id"))?;
    let target = return_to
        .and_then(|raw| client.return_to(raw))
        .ok_or(PageError::BadLink(
            "return_to is not registered for the client",
        ))?;
    Ok((client, target))
}

/// `GET /login?client_id=…&return_to=…`: straight back with a token when the
/// browser holds a live session (single sign-on), else the form.
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    browser: web::Data<Browser>,
) -> HttpResponse {
    show_page(&req, &state, &browser)
        .await
        .unwrap_or_else(|e| browser.error_page(e))
}

#[tracing::instrument(name = "login page", skip_all, fields(client_id = tracing::field::Empty))]
async fn show_page(
    req: &HttpRequest,
    state: &AppState,
    browser: &Browser,
) -> Result<HttpResponse, PageError> {
    let link = query_link(req)?;
    let (client, target) = resolve(
        browser,
        link.client_id.as_deref(),
        link.return_to.as_deref(),
    )?;
    tracing::Span::current().record("client_id", client.id.as_str());
    let mut cookies = Vec::new();
    if let Some(token) = browser.session_token(req) {
        match session_of(state, &token) {
            Some((claims, sid)) => {
                match hand_over(state, browser, client, &target, &claims, sid).await {
                    Ok(response) => {
                        tracing::info!("Signed in from the session cookie");
                        return Ok(response);
                    }
                    // Revoked, expired or of a disabled user: sign in afresh.
                    Err(ApiError::InvalidToken(_)) => {
                        cookies.push(browser.session_cookie_removal());
                    }
                    Err(other) => return Err(other.into()),
                }
            }
            None => cookies.push(browser.session_cookie_removal()),
        }
    }
    login_form(browser, client, &target, "", None, StatusCode::OK, cookies)
}

/// The verified claims and session id of a session token, if it is one of
/// ours.
fn session_of(state: &AppState, token: &str) -> Option<(SessionClaims, Uuid)> {
    let claims = state
        .session_validation
        .verify(token, &state.keys.current())
        .ok()?;
    let sid = Uuid::parse_str(&claims.sid).ok()?;
    Some((claims, sid))
}

/// A fresh authorization token for `client`, delivered on a redirect to
/// `target`.
async fn hand_over(
    state: &AppState,
    browser: &Browser,
    client: &Client,
    target: &ReturnTo,
    claims: &SessionClaims,
    sid: Uuid,
) -> Result<HttpResponse, ApiError> {
    let request = AuthorizationRequest {
        audience: Some(client.audience.clone()),
        scopes: client.scopes.clone(),
        client_id: Some(client.id.clone()),
    };
    let authorized = sessions::authorize(state, claims, sid, request).await?;
    let cookies = browser
        .token_cookie(&client.delivery, &authorized.token)
        .into_iter()
        .collect();
    Ok(browser.redirect(
        &target.with_token(&client.delivery, &authorized.token),
        cookies,
    ))
}

fn login_form(
    browser: &Browser,
    client: &Client,
    target: &ReturnTo,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
    mut cookies: Vec<actix_web::cookie::Cookie<'_>>,
) -> Result<HttpResponse, PageError> {
    let (csrf_cookie, csrf_token) = browser.new_csrf()?;
    cookies.push(csrf_cookie);
    // Host and port, so the user can tell where the sign-in leads.
    let destination = url::Url::parse(target.as_str())
        .map(|url| url[url::Position::BeforeHost..url::Position::AfterPort].to_owned())
        .unwrap_or_else(|_| client.id.clone());
    let page = LoginPage {
        brand: &browser.brand,
        destination: &destination,
        client_id: &client.id,
        return_to: target.as_str(),
        csrf_token: &csrf_token,
        username,
        error,
    };
    Ok(browser.page(status, &page, &Browser::client_origins(client), cookies))
}

/// `POST /login`: the form. CSRF first, then the link, then the credentials.
pub async fn submit(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    browser: web::Data<Browser>,
) -> HttpResponse {
    submit_form(&req, payload, &state, &browser)
        .await
        .unwrap_or_else(|e| browser.error_page(e))
}

#[tracing::instrument(name = "login form", skip_all, fields(client_id = tracing::field::Empty))]
async fn submit_form(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    browser: &Browser,
) -> Result<HttpResponse, PageError> {
    let body = extract::body(req, state, payload)
        .await
        .map_err(|_| PageError::BadLink("unreadable form body"))?;
    let form: LoginForm =
        extract::form(req, &body).map_err(|_| PageError::BadLink("unreadable form body"))?;
    if !browser.csrf_is_valid(req, &form.csrf_token) {
        tracing::info!("Refused a login form with a missing or invalid CSRF token");
        return Err(PageError::Csrf);
    }
    let (client, target) = resolve(browser, Some(&form.client_id), Some(&form.return_to))?;
    tracing::Span::current().record("client_id", client.id.as_str());

    let failed = |cookies| {
        login_form(
            browser,
            client,
            &target,
            &form.username,
            Some(LOGIN_FAILED),
            StatusCode::UNAUTHORIZED,
            cookies,
        )
    };
    let (Ok(username), Ok(password)) = (
        Username::parse(&form.username),
        Password::parse(form.password.clone()),
    ) else {
        return failed(Vec::new());
    };
    let attempt = LoginAttempt {
        username,
        password,
        client_id: client.id.clone(),
        ip: extract::client_ip(req, state),
        user_agent: extract::user_agent(req),
    };
    let logged_in = match sessions::log_in(state, attempt).await {
        Ok(logged_in) => logged_in,
        Err(ApiError::InvalidCredentials) => return failed(Vec::new()),
        Err(other) => return Err(other.into()),
    };

    let session_cookie = browser.session_cookie(logged_in.token.clone());
    let (claims, sid) = session_of(state, &logged_in.token)
        .ok_or_else(|| anyhow::anyhow!("a session token just issued does not verify"))?;
    let mut response = match hand_over(state, browser, client, &target, &claims, sid).await {
        Ok(response) => response,
        // Signed in, but not for this client: the page says so, the session
        // stays.
        Err(other) => browser.error_page(other.into()),
    };
    add_cookie(&mut response, &session_cookie);
    add_cookie(&mut response, &browser.csrf_cookie_removal());
    Ok(response)
}

fn add_cookie(response: &mut HttpResponse, cookie: &actix_web::cookie::Cookie<'_>) {
    if let Err(error) = response.add_cookie(cookie) {
        tracing::error!(error = %error, "Setting a cookie failed");
    }
}

/// The logout form as posted.
#[derive(Deserialize, Default)]
#[serde(default)]
struct LogoutForm {
    csrf_token: String,
    client_id: Option<String>,
    return_to: Option<String>,
}

/// `GET /logout?client_id=…&return_to=…`: asks. Any page can send a browser
/// here, so this revokes nothing: it shows a form that posts to
/// `POST /logout` with a CSRF token, carrying the link along (OpenID Connect
/// RP-Initiated Logout 1.0 §2 likewise asks the user unless the request
/// proves the relying party sent it).
pub async fn log_out(req: HttpRequest, browser: web::Data<Browser>) -> HttpResponse {
    confirmation(&req, &browser).unwrap_or_else(|e| browser.error_page(e))
}

fn confirmation(req: &HttpRequest, browser: &Browser) -> Result<HttpResponse, PageError> {
    let link = query_link(req)?;
    let target = logout_target(browser, &link)?;
    let (csrf_cookie, csrf_token) = browser.new_csrf()?;
    let page = LogoutPage {
        brand: &browser.brand,
        csrf_token: &csrf_token,
        client_id: link.client_id.as_deref().filter(|_| target.is_some()),
        return_to: target.as_ref().map(ReturnTo::as_str),
    };
    // The form's answer redirects to `return_to`, which `form-action`
    // covers in Chromium.
    let form_action: Vec<String> = target.iter().map(ReturnTo::origin).collect();
    Ok(browser.page(StatusCode::OK, &page, &form_action, vec![csrf_cookie]))
}

/// `POST /logout` with form fields `csrf_token` and, both optional,
/// `client_id` and `return_to`: the form of `GET /logout`.
pub async fn log_out_form(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    browser: web::Data<Browser>,
) -> HttpResponse {
    let form = match extract::body(&req, &state, payload).await {
        Ok(body) => extract::form::<LogoutForm>(&req, &body)
            .map_err(|_| PageError::BadLink("unreadable form body")),
        Err(_) => Err(PageError::BadLink("unreadable form body")),
    };
    let result = match form {
        Ok(form) if browser.csrf_is_valid(&req, &form.csrf_token) => {
            let link = Link {
                client_id: form.client_id,
                return_to: form.return_to,
            };
            sign_out(&req, &state, &browser, link).await
        }
        Ok(_) => {
            tracing::info!("Refused a logout form with a missing or invalid CSRF token");
            Err(PageError::Csrf)
        }
        Err(e) => Err(e),
    };
    result.unwrap_or_else(|e| browser.error_page(e))
}

/// Where a logout goes back to: an allowed `return_to`, of the named client
/// or of any; `None` for the signed-out page.
fn logout_target(browser: &Browser, link: &Link) -> Result<Option<ReturnTo>, PageError> {
    Ok(
        match (link.client_id.as_deref(), link.return_to.as_deref()) {
            (_, None) => None,
            (Some(_), Some(_)) => Some(
                resolve(
                    browser,
                    link.client_id.as_deref(),
                    link.return_to.as_deref(),
                )?
                .1,
            ),
            (None, Some(raw)) => Some(browser.clients.return_to(raw).ok_or(PageError::BadLink(
                "return_to is not registered for any client",
            ))?),
        },
    )
}

/// Revokes the browser's session (the revocation feed carries it), clears
/// Tessera's cookies and the clients' token cookies, then goes back to an
/// allowed `return_to` or shows the signed-out page. A link that is not
/// allowed changes nothing.
#[tracing::instrument(name = "log out page", skip_all, fields(session_id = tracing::field::Empty))]
async fn sign_out(
    req: &HttpRequest,
    state: &AppState,
    browser: &Browser,
    link: Link,
) -> Result<HttpResponse, PageError> {
    let target = logout_target(browser, &link)?;
    if let Some(token) = browser.session_token(req)
        && let Some((_, sid)) = session_of(state, &token)
    {
        tracing::Span::current().record("session_id", tracing::field::display(sid));
        if state
            .store
            .revoke_session(sid, chrono::Utc::now())
            .await
            .map_err(ApiError::from)?
        {
            tracing::info!("Session revoked");
        }
    }
    let mut cookies = vec![
        browser.session_cookie_removal(),
        browser.csrf_cookie_removal(),
    ];
    cookies.extend(browser.token_cookie_removals());
    Ok(match target {
        Some(target) => browser.redirect(target.as_str(), cookies),
        None => browser.message(
            StatusCode::OK,
            "Signed out",
            "You have signed out. You can close this window.",
            cookies,
        ),
    })
}

/// `GET /static/tessera.css`: the default look.
pub async fn stylesheet() -> HttpResponse {
    css(Bytes::from_static(DEFAULT_STYLESHEET.as_bytes()))
}

/// `GET /static/brand.css`: the configured `login.stylesheet`.
pub async fn brand_stylesheet(browser: web::Data<Browser>) -> Result<HttpResponse, ApiError> {
    match &browser.brand_stylesheet {
        Some(body) => Ok(css(body.clone())),
        None => Err(ApiError::NotFound(
            "no brand stylesheet is configured".into(),
        )),
    }
}

fn css(body: Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body)
}
