//! The OpenID Connect endpoints, under `/oauth2/`: authorization
//! (`/oauth2/authorize`, on the hosted login page and its single-sign-on
//! cookie), token (`/oauth2/token`), revocation (`/oauth2/revoke`,
//! RFC 7009) and end-session (`/oauth2/logout`, RP-Initiated Logout 1.0).
//! The checks and grants are the provider's ([`crate::oauth::provider`]);
//! this file reads requests and writes answers.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use super::extract;
use crate::browser::{Browser, LoginPage, LogoutPage, PageError};
use crate::domain::{Password, Username};
use crate::error::ApiError;
use crate::oauth::error::{Code, OAuthError};
use crate::oauth::provider::{
    AuthorizationParams, ClientAuth, Next, Refused, TokenParams, ValidRequest,
};
use crate::sessions::{LiveSession, LoginAttempt, SessionError};
use crate::state::AppState;

/// The one message for every failed login, as on the login page.
const LOGIN_FAILED: &str = "Incorrect username or password.";

// --- Authorization endpoint ------------------------------------------------

/// `GET /oauth2/authorize`: OpenID Connect Core §3.1.2.1.
pub async fn authorize_get(
    req: HttpRequest,
    state: web::Data<AppState>,
    browser: web::Data<Browser>,
) -> HttpResponse {
    match serde_urlencoded::from_str::<AuthorizationParams>(req.query_string()) {
        Ok(params) => authorize(&req, &state, &browser, params).await,
        Err(_) => browser.error_page(PageError::BadLink("unreadable or repeated parameters")),
    }
}

/// `POST /oauth2/authorize`: the same, form-encoded (Core §3.1.2.1).
pub async fn authorize_post(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    browser: web::Data<Browser>,
) -> HttpResponse {
    match posted_form::<AuthorizationParams>(&req, &state, payload).await {
        Some(params) => authorize(&req, &state, &browser, params).await,
        None => browser.error_page(PageError::BadLink("unreadable or repeated parameters")),
    }
}

/// A form body, or `None` when it cannot be read (the page says so).
async fn posted_form<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
) -> Option<T> {
    let body = extract::body(req, state, payload).await.ok()?;
    extract::form(req, &body).ok()
}

#[tracing::instrument(name = "oauth authorize", skip_all, fields(client_id = tracing::field::Empty))]
async fn authorize(
    req: &HttpRequest,
    state: &AppState,
    browser: &Browser,
    params: AuthorizationParams,
) -> HttpResponse {
    let valid = match state.provider.check_request(&params).await {
        Ok(valid) => valid,
        Err(refused) => return refusal(state, browser, refused),
    };
    tracing::Span::current().record("client_id", valid.client.id.as_str());
    let mut cookies = Vec::new();
    let live = match browser_session(req, state, browser).await {
        Ok(live) => live,
        Err(Some(error)) => return error_back(state, &valid, server_error(error)),
        Err(None) => {
            cookies.push(browser.session_cookie_removal());
            None
        }
    };
    match state
        .provider
        .authorize(&state.sessions, &valid, live.as_ref())
        .await
    {
        Ok(Next::Code(code)) => browser.redirect(
            &with_params(
                &valid.redirect_uri,
                &[
                    ("code", Some(code.as_str())),
                    ("state", valid.state.as_deref()),
                    ("iss", Some(state.issuer())),
                ],
            ),
            cookies,
        ),
        Ok(Next::SignIn) => {
            let username = valid.login_hint.as_deref().unwrap_or("");
            // After the form, the same request again, minus `prompt=login`
            // and `max_age`: the user has just signed in.
            let continuation = AuthorizationParams {
                prompt: None,
                max_age: None,
                ..params
            };
            login_form(
                browser,
                &valid,
                &continuation,
                username,
                None,
                StatusCode::OK,
                cookies,
            )
            .unwrap_or_else(|e| browser.error_page(e))
        }
        Err(error) => error_back(state, &valid, error),
    }
}

/// The browser's live session: `Ok(None)` without one, `Err(None)` when
/// its cookie names one that has ended (the cookie is then removed),
/// `Err(Some(_))` when Tessera cannot tell.
async fn browser_session(
    req: &HttpRequest,
    state: &AppState,
    browser: &Browser,
) -> Result<Option<LiveSession>, Option<SessionError>> {
    let Some(token) = browser.session_token(req) else {
        return Ok(None);
    };
    match state.sessions.check(&token).await {
        Ok(live) => Ok(Some(live)),
        Err(error) if error.is_not_live() => Err(None),
        Err(error) => Err(Some(error)),
    }
}

fn server_error(error: SessionError) -> OAuthError {
    OAuthError::Session(error)
}

fn refusal(state: &AppState, browser: &Browser, refused: Refused) -> HttpResponse {
    match refused {
        Refused::NoRedirect(reason) => browser.error_page(PageError::BadLink(reason)),
        Refused::Redirect {
            redirect_uri,
            state: client_state,
            error,
        } => browser.redirect(
            &error_location(state, &redirect_uri, client_state.as_deref(), &error),
            Vec::new(),
        ),
    }
}

fn error_back(state: &AppState, valid: &ValidRequest, error: OAuthError) -> HttpResponse {
    let location = error_location(state, &valid.redirect_uri, valid.state.as_deref(), &error);
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .finish()
}

/// RFC 6749 §4.1.2.1: the error, its description, the client's `state`
/// and (RFC 9207) the issuer, on the redirect URI.
fn error_location(
    state: &AppState,
    redirect_uri: &str,
    client_state: Option<&str>,
    error: &OAuthError,
) -> String {
    let (code, description) = match error {
        OAuthError::Protocol { code, description } => (code.as_str(), description.to_string()),
        OAuthError::Session(SessionError::Store(crate::store::StoreError::Unavailable))
        | OAuthError::Session(SessionError::Signing(_))
        | OAuthError::Throttled { .. } => (
            "temporarily_unavailable",
            "the service is busy; try again".to_owned(),
        ),
        OAuthError::Session(other) => {
            tracing::error!(error = ?other, "The authorization endpoint failed");
            ("server_error", "an error on the server".to_owned())
        }
    };
    with_params(
        redirect_uri,
        &[
            ("error", Some(code)),
            ("error_description", Some(description.as_str())),
            ("state", client_state),
            ("iss", Some(state.issuer())),
        ],
    )
}

/// `uri` with `params` added to its query (RFC 6749 §3.1.2: the
/// registered URI's own query is kept).
fn with_params(uri: &str, params: &[(&str, Option<&str>)]) -> String {
    let Ok(mut url) = url::Url::parse(uri) else {
        return uri.to_owned();
    };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            if let Some(value) = value {
                query.append_pair(name, value);
            }
        }
    }
    url.into()
}

fn login_form(
    browser: &Browser,
    valid: &ValidRequest,
    continuation: &AuthorizationParams,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
    mut cookies: Vec<actix_web::cookie::Cookie<'_>>,
) -> Result<HttpResponse, PageError> {
    let (csrf_cookie, csrf_token) = browser.new_csrf()?;
    cookies.push(csrf_cookie);
    let redirect = url::Url::parse(&valid.redirect_uri).map_err(anyhow::Error::from)?;
    let destination = redirect[url::Position::BeforeHost..url::Position::AfterPort].to_owned();
    let continuation = serde_urlencoded::to_string(continuation).map_err(anyhow::Error::from)?;
    let page = LoginPage {
        brand: &browser.brand,
        destination: &destination,
        client_id: "",
        return_to: "",
        authorization: Some(&continuation),
        csrf_token: &csrf_token,
        username,
        error,
    };
    // The form's answer redirects, through `/oauth2/authorize`, to the
    // client: Chromium holds that to `form-action` as well.
    let origin = redirect.origin().ascii_serialization();
    Ok(browser.page(status, &page, &[origin], cookies))
}

/// The login form's submission for an authorization request: `POST /login`
/// with an `authorization` field. On success the browser goes back to the
/// authorization endpoint with the request, now signed in.
pub(super) async fn submit_login(
    req: &HttpRequest,
    state: &AppState,
    browser: &Browser,
    username: &str,
    password: String,
    authorization: &str,
) -> Result<HttpResponse, PageError> {
    let params: AuthorizationParams = serde_urlencoded::from_str(authorization)
        .map_err(|_| PageError::BadLink("unreadable authorization request"))?;
    let valid = match state.provider.check_request(&params).await {
        Ok(valid) => valid,
        Err(refused) => return Ok(refusal(state, browser, refused)),
    };
    let failed = || {
        login_form(
            browser,
            &valid,
            &params,
            username,
            Some(LOGIN_FAILED),
            StatusCode::UNAUTHORIZED,
            Vec::new(),
        )
    };
    let (Ok(name), Ok(password)) = (Username::parse(username), Password::parse(password)) else {
        return failed();
    };
    let attempt = LoginAttempt {
        username: name,
        password,
        client_id: valid.client.id.clone(),
        origin: extract::origin(req, state),
    };
    let logged_in = match state.sessions.log_in(attempt).await {
        Ok(logged_in) => logged_in,
        Err(SessionError::InvalidCredentials) => return failed(),
        Err(other) => return Err(other.into()),
    };
    // Rebuilt from what was read, never the raw field.
    let query = serde_urlencoded::to_string(&params).map_err(anyhow::Error::from)?;
    let again = format!("{}/oauth2/authorize?{query}", state.issuer());
    Ok(browser.redirect(
        &again,
        vec![
            browser.session_cookie(logged_in.token),
            browser.csrf_cookie_removal(),
        ],
    ))
}

// --- Token endpoint ----------------------------------------------------

/// The body of a token or revocation request: the grant's parameters,
/// the revocation's `token` (RFC 7009 §2.1; its `token_type_hint` is not
/// needed, a refresh token is looked up first anyway), and the client's,
/// if it authenticates in the body.
#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenForm {
    client_id: Option<String>,
    client_secret: Option<String>,
    token: Option<String>,
    #[serde(flatten)]
    params: TokenParams,
}

/// An OAuth error as JSON (RFC 6749 §5.2), or Tessera's own for a failure
/// of its own (503 with `Retry-After`, 500).
fn oauth_error(error: OAuthError, basic: bool) -> HttpResponse {
    let (code, description) = match error {
        OAuthError::Protocol { code, description } => (code, description),
        OAuthError::Throttled { retry_after } => {
            return ApiError::TooManyRequests { retry_after }.error_response();
        }
        OAuthError::Session(error) => return ApiError::from(error).error_response(),
    };
    let status = match code {
        Code::InvalidClient => StatusCode::UNAUTHORIZED,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut response = HttpResponse::build(status);
    response
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    // §5.2: a client that tried `Authorization` gets the scheme back.
    if code == Code::InvalidClient && basic {
        response.insert_header((header::WWW_AUTHENTICATE, r#"Basic realm="tessera""#));
    }
    response.json(serde_json::json!({
        "error": code.as_str(),
        "error_description": description,
    }))
}

/// The client's credentials from `Authorization: Basic`, whose two halves
/// are form-encoded (RFC 6749 §2.3.1).
fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || OAuthError::new(Code::InvalidClient, "malformed Basic credentials");
    let value = value.to_str().map_err(|_| malformed())?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(malformed());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::new(
            Code::InvalidClient,
            "the token endpoint takes Basic client credentials",
        ));
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    Ok(Some((form_decode(id), form_decode(secret))))
}

fn form_decode(part: &str) -> String {
    url::form_urlencoded::parse(
        format!("v={}", part.replace('&', "%26").replace('=', "%3D")).as_bytes(),
    )
    .next()
    .map(|(_, value)| value.into_owned())
    .unwrap_or_default()
}

/// Reads a token-endpoint style request and authenticates its client.
async fn authenticated(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<(crate::store::OAuthClient, TokenForm), (OAuthError, bool)> {
    let basic = basic_credentials(req).map_err(|e| (e, true))?;
    let has_basic = basic.is_some();
    let body = extract::body(req, state, payload).await.map_err(|e| {
        (
            OAuthError::new(Code::InvalidRequest, e.to_string()),
            has_basic,
        )
    })?;
    let mut form: TokenForm = match extract::form(req, &body) {
        Ok(form) => form,
        Err(error) => {
            return Err((
                OAuthError::new(Code::InvalidRequest, error.to_string()),
                has_basic,
            ));
        }
    };
    let auth = ClientAuth {
        basic,
        client_id: form.client_id.clone(),
        client_secret: form.client_secret.take(),
    };
    let client = state
        .provider
        .authenticate(&state.sessions, &auth, &extract::origin(req, state))
        .await
        .map_err(|e| (e, has_basic))?;
    Ok((client, form))
}

/// `POST /oauth2/token`.
#[tracing::instrument(name = "oauth token", skip_all, fields(client_id = tracing::field::Empty))]
#[utoipa::path(
    post,
    path = "/oauth2/token",
    tag = "oauth",
    request_body(description = "RFC 6749 §4.1.3, §4.4.2, §6 and RFC 8693 §2.1: `grant_type` and its parameters; the client authenticates with `Authorization: Basic` or with `client_id` and `client_secret` in the form", content((shapes::TokenRequest = "application/x-www-form-urlencoded"))),
    security(("client" = [])),
    responses(
        (status = 200, description = "The tokens (`Cache-Control: no-store`)", body = shapes::Tokens),
        (status = 400, description = "An RFC 6749 error: `invalid_request`, `invalid_grant`, `unauthorized_client`, `unsupported_grant_type`, `invalid_scope`, `invalid_target`", body = shapes::OAuthErrorBody),
        (status = 401, description = "`invalid_client`: the client did not authenticate", body = shapes::OAuthErrorBody),
        (status = 429, description = "Too many failed client authentications from this address; see `Retry-After`", body = crate::error::ErrorBody),
        (status = 503, description = "The database or the keys are unavailable; see `Retry-After`", body = crate::error::ErrorBody),
    ),
)]
pub async fn token(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (client, form) = match authenticated(&req, payload, &state).await {
        Ok(found) => found,
        Err((error, basic)) => return oauth_error(error, basic),
    };
    tracing::Span::current().record("client_id", client.id.as_str());
    match state
        .provider
        .token(&state.sessions, &client, form.params)
        .await
    {
        Ok(response) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"))
            .json(response),
        Err(error) => oauth_error(error, false),
    }
}

/// `POST /oauth2/revoke` (RFC 7009): form field `token`, the client
/// authenticated as at the token endpoint. 200 whether or not the token
/// was known.
#[utoipa::path(
    post,
    path = "/oauth2/revoke",
    tag = "oauth",
    request_body(description = "RFC 7009 §2.1: `token` and optionally `token_type_hint`; the client authenticates as at the token endpoint", content((shapes::RevocationRequest = "application/x-www-form-urlencoded"))),
    security(("client" = [])),
    responses(
        (status = 200, description = "Revoked, or not a refresh token of this client (RFC 7009 §2.2)"),
        (status = 400, description = "`invalid_request`, or `unsupported_token_type` for an access token", body = shapes::OAuthErrorBody),
        (status = 401, description = "`invalid_client`", body = shapes::OAuthErrorBody),
        (status = 429, description = "Too many failed client authentications; see `Retry-After`", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unavailable; see `Retry-After`", body = crate::error::ErrorBody),
    ),
)]
pub async fn revoke(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (client, form) = match authenticated(&req, payload, &state).await {
        Ok(found) => found,
        Err((error, basic)) => return oauth_error(error, basic),
    };
    let Some(token) = form.token else {
        return oauth_error(
            OAuthError::new(Code::InvalidRequest, "token is required"),
            false,
        );
    };
    match state
        .provider
        .revoke(&state.sessions, &client, &token)
        .await
    {
        Ok(()) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        Err(error) => oauth_error(error, false),
    }
}

// --- End session (RP-Initiated Logout 1.0) -----------------------------

#[derive(Deserialize, Default, serde::Serialize)]
#[serde(default)]
struct EndSessionParams {
    id_token_hint: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    client_id: Option<String>,
    logout_hint: Option<String>,
    ui_locales: Option<String>,
    /// Set by Tessera's own confirmation form.
    csrf_token: Option<String>,
}

/// `GET /oauth2/logout`.
pub async fn end_session_get(
    req: HttpRequest,
    state: web::Data<AppState>,
    browser: web::Data<Browser>,
) -> HttpResponse {
    match serde_urlencoded::from_str::<EndSessionParams>(req.query_string()) {
        Ok(params) => end_session(&req, &state, &browser, params)
            .await
            .unwrap_or_else(|e| browser.error_page(e)),
        Err(_) => browser.error_page(PageError::BadLink("unreadable or repeated parameters")),
    }
}

/// `POST /oauth2/logout`: the same parameters as a form (§2), or
/// Tessera's confirmation form.
pub async fn end_session_post(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    browser: web::Data<Browser>,
) -> HttpResponse {
    match posted_form::<EndSessionParams>(&req, &state, payload).await {
        // A relying party's form from another site arrives without the
        // session cookie (`SameSite=Lax`): the same request as a top-level
        // `GET` carries it.
        Some(params) if params.csrf_token.is_none() && browser.session_token(&req).is_none() => {
            match serde_urlencoded::to_string(&params) {
                Ok(query) => browser.redirect(
                    &format!("{}/oauth2/logout?{query}", state.issuer()),
                    Vec::new(),
                ),
                Err(_) => browser.error_page(PageError::BadLink("unreadable parameters")),
            }
        }
        Some(params) => end_session(&req, &state, &browser, params)
            .await
            .unwrap_or_else(|e| browser.error_page(e)),
        None => browser.error_page(PageError::BadLink("unreadable or repeated parameters")),
    }
}

/// Ends the browser's Tessera session when the request proves the relying
/// party sent it (an `id_token_hint` for this very session) or the user
/// confirmed on Tessera's form; else asks (§2: the OP SHOULD ask). Then
/// back to a registered `post_logout_redirect_uri` with `state`, or the
/// signed-out page. A redirect URI that is not registered for the client
/// is an error page, never a redirect.
#[tracing::instrument(name = "end session", skip_all)]
async fn end_session(
    req: &HttpRequest,
    state: &AppState,
    browser: &Browser,
    params: EndSessionParams,
) -> Result<HttpResponse, PageError> {
    let provider = &state.provider;
    let hint = match params.id_token_hint.as_deref() {
        Some(raw) => Some(
            provider
                .hint(&state.sessions, raw)
                .ok_or(PageError::BadLink(
                    "id_token_hint is not an ID token of ours",
                ))?,
        ),
        None => None,
    };
    let client_id = match (params.client_id.as_deref(), &hint) {
        (Some(id), Some(hint)) if id != hint.client_id => {
            return Err(PageError::BadLink(
                "client_id differs from the id_token_hint's",
            ));
        }
        (Some(id), _) => Some(id.to_owned()),
        (None, Some(hint)) => Some(hint.client_id.clone()),
        (None, None) => None,
    };
    let target = match params.post_logout_redirect_uri.as_deref() {
        None => None,
        Some(uri) => {
            let client = match client_id.as_deref() {
                Some(id) => provider.client(id).await.map_err(|e| {
                    PageError::Unexpected(anyhow::anyhow!("reading the client: {e}"))
                })?,
                None => None,
            }
            .ok_or(PageError::BadLink(
                "post_logout_redirect_uri needs the client (client_id or id_token_hint)",
            ))?;
            if !client.post_logout_redirect_uris.iter().any(|u| u == uri) {
                return Err(PageError::BadLink(
                    "post_logout_redirect_uri is not registered for the client",
                ));
            }
            Some(with_params(uri, &[("state", params.state.as_deref())]))
        }
    };
    let token = browser.session_token(req);
    let confirmed = params
        .csrf_token
        .as_deref()
        .is_some_and(|csrf| browser.csrf_is_valid(req, csrf));
    let proven = match (&token, &hint) {
        (Some(token), Some(hint)) => state
            .sessions
            .verify(token)
            .is_ok_and(|verified| verified.sid.to_string() == hint.sid),
        _ => false,
    };
    if token.is_some() && !(confirmed || proven) {
        // Ask first: any page could have sent the browser here.
        let (csrf_cookie, csrf_token) = browser.new_csrf()?;
        let mut fields: Vec<(&str, &str)> = Vec::new();
        for (name, value) in [
            ("id_token_hint", &params.id_token_hint),
            ("post_logout_redirect_uri", &params.post_logout_redirect_uri),
            ("state", &params.state),
            ("client_id", &client_id),
        ] {
            if let Some(value) = value {
                fields.push((name, value));
            }
        }
        let page = LogoutPage {
            brand: &browser.brand,
            csrf_token: &csrf_token,
            action: "/oauth2/logout",
            fields,
        };
        let form_action: Vec<String> = target
            .iter()
            .filter_map(|t| url::Url::parse(t).ok())
            .map(|u| u.origin().ascii_serialization())
            .collect();
        return Ok(browser.page(StatusCode::OK, &page, &form_action, vec![csrf_cookie]));
    }
    if let Some(token) = &token {
        state
            .sessions
            .log_out_token(token, &extract::origin(req, state))
            .await?;
    }
    let mut cookies = vec![
        browser.session_cookie_removal(),
        browser.csrf_cookie_removal(),
    ];
    cookies.extend(browser.token_cookie_removals());
    Ok(match target {
        Some(target) => browser.redirect(&target, cookies),
        None => browser.message(
            StatusCode::OK,
            "Signed out",
            "You have signed out. You can close this window.",
            cookies,
        ),
    })
}

/// The shapes of the OAuth bodies, for the OpenAPI document; only
/// described, never built.
mod shapes {
    #![expect(
        dead_code,
        reason = "these types only describe bodies; nothing builds them"
    )]

    use utoipa::ToSchema;

    /// A token request: `grant_type` and the grant's parameters.
    #[derive(ToSchema)]
    pub(crate) struct TokenRequest {
        /// `authorization_code`, `refresh_token`, `client_credentials` or
        /// `urn:ietf:params:oauth:grant-type:token-exchange`.
        grant_type: String,
        code: Option<String>,
        redirect_uri: Option<String>,
        code_verifier: Option<String>,
        refresh_token: Option<String>,
        scope: Option<String>,
        /// A Tessera session token, of type
        /// `urn:ietf:params:oauth:token-type:jwt`.
        subject_token: Option<String>,
        subject_token_type: Option<String>,
        audience: Option<String>,
        resource: Option<String>,
        client_id: Option<String>,
        client_secret: Option<String>,
    }

    /// RFC 6749 §5.1 and RFC 8693 §2.2.1.
    #[derive(ToSchema)]
    pub(crate) struct Tokens {
        access_token: String,
        /// `Bearer`.
        token_type: String,
        expires_in: u64,
        scope: String,
        refresh_token: Option<String>,
        id_token: Option<String>,
        issued_token_type: Option<String>,
    }

    /// RFC 7009 §2.1.
    #[derive(ToSchema)]
    pub(crate) struct RevocationRequest {
        token: String,
        token_type_hint: Option<String>,
        client_id: Option<String>,
        client_secret: Option<String>,
    }

    /// RFC 6749 §5.2.
    #[derive(ToSchema)]
    pub(crate) struct OAuthErrorBody {
        error: String,
        error_description: Option<String>,
    }
}
