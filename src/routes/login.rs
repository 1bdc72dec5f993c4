//! The hosted login page for browser single sign-on: `GET`/`POST /login`,
//! `GET`/`POST /logout`, and the stylesheets the pages use. Only a form
//! posted with its CSRF token signs in or out; a link never does.
//!
//! Logging in, handing over and logging out go through the session service
//! ([`crate::sessions::Sessions`]), exactly as `POST /session`,
//! `POST /authorize` and `DELETE /session` do, so every check, record and
//! limit of the API applies here too. A
//! `client_id` or `return_to` the registry does not allow gets a 400 page,
//! never a redirect. Passwords, tokens and cookies are never logged or shown.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::extract;
use crate::browser::{Browser, DEFAULT_STYLESHEET, LoginPage, LogoutPage, PageError};
use crate::clients::{Client, ReturnTo};
use crate::domain::{Password, Username};
use crate::error::ApiError;
use crate::sessions::{AuthorizationRequest, Authorized, LoginAttempt, SessionError};
use crate::state::AppState;

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
    /// An authorization request of `/oauth2/authorize`, instead of
    /// `client_id` and `return_to`.
    authorization: String,
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
    if link.client_id.is_none() && link.return_to.is_none() {
        return own_page(req, state, browser).await;
    }
    let (client, target) = resolve(
        browser,
        link.client_id.as_deref(),
        link.return_to.as_deref(),
    )?;
    tracing::Span::current().record("client_id", client.id.as_str());
    let mut cookies = Vec::new();
    if let Some(token) = browser.session_token(req) {
        // One read: the session, its user and their scopes at once.
        let handed = match state.sessions.verify(&token) {
            Ok(verified) => {
                state
                    .sessions
                    .authorize(&verified, request_for(client))
                    .await
            }
            Err(error) => Err(error),
        };
        match handed {
            Ok(authorized) => {
                tracing::info!("Signed in from the session cookie");
                return Ok(deliver(browser, client, &target, &authorized));
            }
            // Not ours, revoked, expired or of a disabled user: sign in
            // afresh.
            Err(error) if error.is_not_live() => cookies.push(browser.session_cookie_removal()),
            Err(other) => return Err(other.into()),
        }
    }
    login_form(
        browser,
        Some((client, &target)),
        "",
        None,
        StatusCode::OK,
        cookies,
    )
}

/// `GET /login` with no client: Tessera's own sign-in. A signed-in browser
/// is told as whom, with a way to sign out; else the form, which signs in
/// to Tessera alone (every client's login is then single sign-on).
async fn own_page(
    req: &HttpRequest,
    state: &AppState,
    browser: &Browser,
) -> Result<HttpResponse, PageError> {
    let mut cookies = Vec::new();
    if let Some(token) = browser.session_token(req) {
        match state.sessions.check(&token).await {
            Ok(live) => return Ok(browser.signed_in(&live.user.username)),
            Err(error) if error.is_not_live() => cookies.push(browser.session_cookie_removal()),
            Err(other) => return Err(other.into()),
        }
    }
    login_form(browser, None, "", None, StatusCode::OK, cookies)
}

/// The authorization token a client is handed.
fn request_for(client: &Client) -> AuthorizationRequest {
    AuthorizationRequest {
        audience: Some(client.audience.clone()),
        scopes: client.scopes.clone(),
        client_id: Some(client.id.clone()),
        oauth_scopes: None,
    }
}

/// An authorization token for `client`, delivered on a redirect to
/// `target`.
fn deliver(
    browser: &Browser,
    client: &Client,
    target: &ReturnTo,
    authorized: &Authorized,
) -> HttpResponse {
    let cookies = browser
        .token_cookie(&client.delivery, &authorized.token)
        .into_iter()
        .collect();
    browser.redirect(
        &target.with_token(&client.delivery, &authorized.token),
        cookies,
    )
}

/// The form, for `client` and its `target`, or, with `None`, for Tessera
/// itself.
fn login_form(
    browser: &Browser,
    link: Option<(&Client, &ReturnTo)>,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
    mut cookies: Vec<actix_web::cookie::Cookie<'_>>,
) -> Result<HttpResponse, PageError> {
    let (csrf_cookie, csrf_token) = browser.new_csrf()?;
    cookies.push(csrf_cookie);
    // Host and port, so the user can tell where the sign-in leads.
    let host_of = |url: &str| {
        url::Url::parse(url)
            .map(|url| url[url::Position::BeforeHost..url::Position::AfterPort].to_owned())
    };
    let (destination, client_id, return_to, origins) = match link {
        Some((client, target)) => (
            host_of(target.as_str()).unwrap_or_else(|_| client.id.clone()),
            client.id.as_str(),
            target.as_str(),
            Browser::client_origins(client),
        ),
        None => (browser.brand.product_name.clone(), "", "", Vec::new()),
    };
    let page = LoginPage {
        brand: &browser.brand,
        destination: &destination,
        client_id,
        return_to,
        authorization: None,
        csrf_token: &csrf_token,
        username,
        error,
    };
    Ok(browser.page(status, &page, &origins, cookies))
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
    if !form.authorization.is_empty() {
        return super::oauth::submit_login(
            req,
            state,
            browser,
            &form.username,
            form.password.clone(),
            &form.authorization,
        )
        .await;
    }
    let link = if form.client_id.is_empty() && form.return_to.is_empty() {
        None
    } else {
        let (client, target) = resolve(browser, Some(&form.client_id), Some(&form.return_to))?;
        tracing::Span::current().record("client_id", client.id.as_str());
        Some((client, target))
    };

    let failed = |cookies| {
        login_form(
            browser,
            link.as_ref().map(|(client, target)| (*client, target)),
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
        client_id: link
            .as_ref()
            .map(|(client, _)| client.id.clone())
            .unwrap_or_default(),
        origin: extract::origin(req, state),
    };
    let logged_in = match state.sessions.log_in(attempt).await {
        Ok(logged_in) => logged_in,
        Err(SessionError::InvalidCredentials) => return failed(Vec::new()),
        Err(other) => return Err(other.into()),
    };

    let session_cookie = browser.session_cookie(logged_in.token);
    let Some((client, target)) = link else {
        // Signed in to Tessera itself: back to the page, which says so.
        let location = format!("{}/login", browser.brand.issuer);
        return Ok(browser.redirect(
            &location,
            vec![session_cookie, browser.csrf_cookie_removal()],
        ));
    };
    // The login yielded the session and user: only the grants are read.
    let handed = state
        .sessions
        .authorize_live(&logged_in.live, request_for(client))
        .await;
    let mut response = match handed {
        Ok(authorized) => deliver(browser, client, &target, &authorized),
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
    let mut fields = Vec::new();
    if let (Some(client_id), Some(_)) = (link.client_id.as_deref(), &target) {
        fields.push(("client_id", client_id));
    }
    if let Some(target) = &target {
        fields.push(("return_to", target.as_str()));
    }
    let page = LogoutPage {
        brand: &browser.brand,
        csrf_token: &csrf_token,
        action: "/logout",
        fields,
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

/// Revokes the browser's session (the revocation feed carries it, the
/// audit log records it), clears
/// Tessera's cookies and the clients' token cookies, then goes back to an
/// allowed `return_to` or shows the signed-out page. A link that is not
/// allowed changes nothing.
#[tracing::instrument(name = "log out page", skip_all)]
async fn sign_out(
    req: &HttpRequest,
    state: &AppState,
    browser: &Browser,
    link: Link,
) -> Result<HttpResponse, PageError> {
    let target = logout_target(browser, &link)?;
    if let Some(token) = browser.session_token(req) {
        state
            .sessions
            .log_out_token(&token, &extract::origin(req, state))
            .await?;
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
