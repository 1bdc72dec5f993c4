//! `/admin`: users, grants, sessions and keys, for callers holding an
//! authorization token with scope `tessera:admin` at audience `tessera`.
//! Every change goes through [`crate::admin::Admin`], as the command line's
//! do, and lands in the audit log naming the administrator.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::extract;
use crate::admin::Admin;
use crate::domain::{Audience, Email, Password, Scope, Username};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{Session, User};

/// The scope an administrator's token must hold at audience `tessera`.
pub const ADMIN_SCOPE: &str = "tessera:admin";

/// The administrator behind the request, as of now.
async fn admin<'a>(req: &HttpRequest, state: &'a AppState) -> Result<Admin<'a>, ApiError> {
    let caller = extract::authorized_caller(req, state, ADMIN_SCOPE).await?;
    Ok(Admin::new(state.store.as_ref(), caller.user.username)
        .with_clock(state.sessions.clock())
        .in_session(caller.user.id, caller.session.id))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UserView {
    id: Uuid,
    username: String,
    email: Option<String>,
    is_active: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            username: u.username,
            email: u.email,
            is_active: u.is_active,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct SessionView {
    id: Uuid,
    client_id: String,
    ip: Option<String>,
    user_agent: Option<String>,
    kid: String,
    created_at: DateTime<Utc>,
    last_used_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<Session> for SessionView {
    fn from(s: Session) -> Self {
        Self {
            id: s.id,
            client_id: s.client_id,
            ip: s.ip,
            user_agent: s.user_agent,
            kid: s.kid,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.expires_at,
            revoked_at: s.revoked_at,
        }
    }
}

#[derive(Deserialize)]
pub struct Page {
    #[serde(default)]
    offset: i64,
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    50
}

#[utoipa::path(
    get,
    path = "/admin/users",
    tag = "admin",
    params(("offset" = Option<i64>, Query, description = "Users to skip; default 0"), ("limit" = Option<i64>, Query, description = "At most this many, 1 to 500; default 50")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of users", body = shapes::UserPage),
        (status = 400, description = "The request or the username is malformed", body = crate::error::ErrorBody),
        (status = 401, description = "The bearer token is missing, invalid, expired or its session has ended", body = crate::error::ErrorBody),
        (status = 403, description = "The token lacks `tessera:admin` at audience `tessera`", body = crate::error::ErrorBody),
        (status = 503, description = "The database or the password hasher is busy or unreachable; see `Retry-After`", body = crate::error::ErrorBody),
    ),
)]
pub async fn list_users(
    req: HttpRequest,
    page: web::Query<Page>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let admin = admin(&req, &state).await?;
    if page.offset < 0 || !(1..=500).contains(&page.limit) {
        return Err(ApiError::InvalidRequest(
            "offset must be at least 0 and limit between 1 and 500".into(),
        ));
    }
    let users: Vec<UserView> = admin
        .list_users_page(page.offset, page.limit)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "users": users,
        "offset": page.offset,
        "limit": page.limit,
    })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    username: String,
    #[serde(default)]
    email: Option<String>,
    password: String,
}

#[utoipa::path(
    post,
    path = "/admin/users",
    tag = "admin",
    request_body(content = NewUserBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The user is created", body = UserView),
        (status = 400, description = "The request or the username is malformed", body = crate::error::ErrorBody),
        (status = 401, description = "The bearer token is missing, invalid, expired or its session has ended", body = crate::error::ErrorBody),
        (status = 403, description = "The token lacks `tessera:admin` at audience `tessera`", body = crate::error::ErrorBody),
        (status = 409, description = "A user has that name", body = crate::error::ErrorBody),
        (status = 413, description = "The body is larger than 16 KiB", body = crate::error::ErrorBody),
        (status = 503, description = "The database or the password hasher is busy or unreachable; see `Retry-After`", body = crate::error::ErrorBody),
    ),
)]
pub async fn create_user(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let admin = admin(&req, &state).await?;
    let body = extract::body(&req, &state, payload).await?;
    let body: NewUserBody = extract::json(&req, &body)?;
    let username = Username::parse_new(&body.username)?;
    let email = body.email.as_deref().map(Email::parse).transpose()?;
    let password = Password::parse_new(body.password)?;
    let hash = state.hasher.hash(password).await?;
    let user = admin.create_user(&username, email.as_ref(), &hash).await?;
    Ok(HttpResponse::Created().json(UserView::from(user)))
}

/// The user named in the path.
async fn named(admin: &Admin<'_>, name: &str) -> Result<User, ApiError> {
    Ok(admin.find_user(&Username::parse(name)?).await?)
}

#[utoipa::path(
    get,
    path = "/admin/users/{name}",
    tag = "admin",
    params(("name" = String, Path, description = "A username")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user and their grants", body = shapes::UserDetail),
        (status = 400, description = "The request or the username is malformed", body = crate::error::ErrorBody),
        (status = 401, description = "The bearer token is missing, invalid, expired or its session has ended", body = crate::error::ErrorBody),
        (status = 403, description = "The token lacks `tessera:admin` at audience `tessera`", body = crate::error::ErrorBody),
        (status = 404, description = "No such user", body = crate::error::ErrorBody),
        (status = 503, description = "The database or the password hasher is busy or unreachable; see `Retry-After`", body = crate::error::ErrorBody),
    ),
)]
pub async fn show_user(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let admin = admin(&req, &state).await?;
    let user = named(&admin, &path).await?;
    let grants = grants_json(&admin, &user).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "user": UserView::from(user),
        "grants": grants,
    })))
}

#[utoipa::path(
    delete,
    path = "/admin/users/{name}",
    tag = "admin",
    params(("name" = String, Path, description = "A username")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The user, their grants and sessions are deleted"),
        (status = 400, description = "The request or the username is malformed", body = crate::error::ErrorBody),
        (status = 401, description = "The bearer token is missing, invalid, expired or its session has ended", body = crate::error::ErrorBody),
        (status = 403, description = "The token lacks `tessera:admin` at audience `tessera`", body = crate::error::ErrorBody),
        (status = 404, description = "No such user", body = crate::error::ErrorBody),
        (status = 503, description = "The database or the password hasher is busy or unreachable; see `Retry-After`", body = crate::error::ErrorBody),
    ),
)]
pub async fn delete_user(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let admin = admin(&req, &state).await?;
    let user = named(&admin, &path).await?;
    admin.delete_user(&user).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    post,
    path = "/admin/users/{name}/disable",
    tag = "admin",
    params(("name" = String, Path, description = "A username")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The user can no longer log in; their tokens stop working"),
        (status = 400, description = "The request or the username is malformed", body = crate::error::ErrorBody),
        (status = 401, description = "The bearer token is missing, invalid, expired or its session has ended", body = crate::error::ErrorBody),
        (status = 403, description = "The token lacks `tessera:admin` at audience `tessera`", body = crate::error::ErrorBody),
        (status = 404, description = "No such user", body = crate::error::ErrorBody),
        (status = 503, description = "The database or the password hasher is busy or unreachable; see `Retry-After`", body = crate::error::ErrorBody),
    ),
)]
pub async fn disable_user(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    set_active(req, path, state, false).await
}

#[utoipa::path(
    post,
    path = "/admin/users/{name}/enable",
    tag = "admin",
    params(("name" = String, Path, description = "A username")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The user can log in again"),
        (status = 400, description = "The request or the username is malformed", body = crate::error::ErrorBody),
        (status = 401, description = "The bearer token is missing, invalid, expired or its session has ended", body = crate::error::ErrorBody),
        (status = 403, description = "The token lacks `tessera:admin` at audience `tessera`", body = crate::error::ErrorBody),
        (status = 404, description = "No such user", body = crate::error::ErrorBody),
        (status = 503, description = "The database or the password hasher is busy or unreachable; see `Retry-After`", body = crate::error::ErrorBody),
    ),
)]
pub async fn enable_user(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    set_active(req, path, state, true).await
}

async fn set_active(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    active: bool,
) -> Result<HttpResponse, ApiError> {
    let admin = admin(&req, &state).await?;
    let user = named(&admin, &path).await?;
    admin.set_active(&user, active).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    password: String,
}

#[utoipa::path(
    put,
    path = "/admin/users/{name}/password",
    tag = "admin",
    params(("name" = String, Path, description = "A username")),
    request_body(content = PasswordBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The password is replaced"),
        (status = 400, description = "The request or the username is malformed", body = crate::error::ErrorBody),
        (status = 401, description = "The bearer token is missing, invalid, expired or its session has ended", body = crate::error::ErrorBody),
        (status = 403, description = "The token lacks `tessera:admin` at audience `tessera`", body = crate::error::ErrorBody),
        (status = 404, description = "No such user", body = crate::error::ErrorBody),
        (status = 413, description = "The body is larger than 16 KiB", body = crate::error::ErrorBody),
        (status = 503, description = "The database or the password hasher is busy or unreachable; see `Retry-After`", body = crate::error::ErrorBody),
    ),
)]
pub async fn set_password(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let admin = admin(&req, &state).await?;
    let user = named(&admin, &path).await?;
    let body = extract::body(&req, &state, payload).await?;
    let body: PasswordBody = extract::json(&req, &body)?;
    let hash = state
        .hasher
        .hash(Password::parse_new(body.password)?)
        .await?;
    admin.set_password_hash(&user, &hash).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn grants_json(admin: &Admin<'_>, user: &User) -> Result<serde_json::Value, ApiError> {
    let grants: Vec<serde_json::Value> = admin
        .grants(user)
        .await?
        .into_iter()
        .map(|g| serde_json::json!({"audience": g.audience, "scope": g.scope}))
        .collect();
    Ok(serde_json::Value::Array(grants))
}

#[utoipa::path(
    get,
    path = "/admin/users/{name}/grants",
    tag = "admin",
    params(("name" = String, Path, description = "A username")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user's grants", body = shapes::GrantList),
        (status = 400, description = "The request or the username is malformed", body = crate::error::ErrorBody),
        (status = 401, description = "The bearer token is missing, invalid, expired or its session has ended", body = crate::error::ErrorBody),
        (status = 403, description = "The token lacks `tessera:admin` at audience `tessera`", body = crate::error::ErrorBody),
        (status = 404, description = "No such user", body = crate::error::ErrorBody),
        (status = 503, description = "The database or the password hasher is busy or unreachable; see `Retry-After`", body = crate::error::ErrorBody),
    ),
)]
pub async fn list_grants(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let admin = admin(&req, &state).await?;
    let user = named(&admin, &path).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"grants": grants_json(&admin, &user).await?})))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct GrantsBody {
    audience: String,
    scopes: Vec<String>,
}

fn parse_grants(req: &HttpRequest, body: &[u8]) -> Result<(Audience, Vec<Scope>), ApiError> {
    let body: GrantsBody = extract::json(req, body)?;
    let audience = Audience::parse(&body.audience)?;
    if body.scopes.is_empty() {
        return Err(ApiError::InvalidRequest("scopes: name at least one".into()));
    }
    let scopes = body
        .scopes
        .iter()
        .map(|s| Scope::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((audience, scopes))
}

#[utoipa::path(
    post,
    path = "/admin/users/{name}/grants",
    tag = "admin",
    params(("name" = String, Path, description = "A username")),
    request_body(content = GrantsBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The scopes are granted at the audience"),
        (status = 400, description = "The request or the username is malformed", body = crate::error::ErrorBody),
        (status = 401, description = "The bearer token is missing, invalid, expired or its session has ended", body = crate::error::ErrorBody),
        (status = 403, description = "The token lacks `tessera:admin` at audience `tessera`", body = crate::error::ErrorBody),
        (status = 404, description = "No such user", body = crate::error::ErrorBody),
        (status = 413, description = "The body is larger than 16 KiB", body = crate::error::ErrorBody),
        (status = 503, description = "The database or the password hasher is busy or unreachable; see `Retry-After`", body = crate::error::ErrorBody),
    ),
)]
pub async fn add_grants(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let admin = admin(&req, &state).await?;
    let user = named(&admin, &path).await?;
    let (audience, scopes) = parse_grants(&req, &extract::body(&req, &state, payload).await?)?;
    admin.add_grants(&user, &audience, &scopes).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    delete,
    path = "/admin/users/{name}/grants",
    tag = "admin",
    params(("name" = String, Path, description = "A username")),
    request_body(content = GrantsBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "How many of the grants were removed", body = shapes::GrantsRemoved),
        (status = 400, description = "The request or the username is malformed", body = crate::error::ErrorBody),
        (status = 401, description = "The bearer token is missing, invalid, expired or its session has ended", body = crate::error::ErrorBody),
        (status = 403, description = "The token lacks `tessera:admin` at audience `tessera`", body = crate::error::ErrorBody),
        (status = 404, description = "No such user", body = crate::error::ErrorBody),
        (status = 413, description = "The body is larger than 16 KiB", body = crate::error::ErrorBody),
        (status = 503, description = "The database or the password hasher is busy or unreachable; see `Retry-After`", body = crate::error::ErrorBody),
    ),
)]
pub async fn remove_grants(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let admin = admin(&req, &state).await?;
    let user = named(&admin, &path).await?;
    let (audience, scopes) = parse_grants(&req, &extract::body(&req, &state, payload).await?)?;
    let removed = admin.remove_grants(&user, &audience, &scopes).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"removed": removed})))
}

#[utoipa::path(
    get,
    path = "/admin/users/{name}/sessions",
    tag = "admin",
    params(("name" = String, Path, description = "A username")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user's sessions", body = shapes::SessionList),
        (status = 400, description = "The request or the username is malformed", body = crate::error::ErrorBody),
        (status = 401, description = "The bearer token is missing, invalid, expired or its session has ended", body = crate::error::ErrorBody),
        (status = 403, description = "The token lacks `tessera:admin` at audience `tessera`", body = crate::error::ErrorBody),
        (status = 404, description = "No such user", body = crate::error::ErrorBody),
        (status = 503, description = "The database or the password hasher is busy or unreachable; see `Retry-After`", body = crate::error::ErrorBody),
    ),
)]
pub async fn list_sessions(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let admin = admin(&req, &state).await?;
    let user = named(&admin, &path).await?;
    let sessions: Vec<SessionView> = admin
        .sessions(&user)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({"sessions": sessions})))
}

#[utoipa::path(
    delete,
    path = "/admin/users/{name}/sessions",
    tag = "admin",
    params(("name" = String, Path, description = "A username")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "How many live sessions were revoked", body = shapes::SessionsRevoked),
        (status = 400, description = "The request or the username is malformed", body = crate::error::ErrorBody),
        (status = 401, description = "The bearer token is missing, invalid, expired or its session has ended", body = crate::error::ErrorBody),
        (status = 403, description = "The token lacks `tessera:admin` at audience `tessera`", body = crate::error::ErrorBody),
        (status = 404, description = "No such user", body = crate::error::ErrorBody),
        (status = 503, description = "The database or the password hasher is busy or unreachable; see `Retry-After`", body = crate::error::ErrorBody),
    ),
)]
pub async fn revoke_all_sessions(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let admin = admin(&req, &state).await?;
    let user = named(&admin, &path).await?;
    let revoked = admin.revoke_all_sessions(&user).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"revoked": revoked})))
}

#[utoipa::path(
    delete,
    path = "/admin/users/{name}/sessions/{session}",
    tag = "admin",
    params(("name" = String, Path, description = "A username"), ("session" = String, Path, description = "A session id (UUID)")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The session is revoked"),
        (status = 400, description = "The request or the username is malformed", body = crate::error::ErrorBody),
        (status = 401, description = "The bearer token is missing, invalid, expired or its session has ended", body = crate::error::ErrorBody),
        (status = 403, description = "The token lacks `tessera:admin` at audience `tessera`", body = crate::error::ErrorBody),
        (status = 404, description = "No such user, or no live session of theirs has that id", body = crate::error::ErrorBody),
        (status = 503, description = "The database or the password hasher is busy or unreachable; see `Retry-After`", body = crate::error::ErrorBody),
    ),
)]
pub async fn revoke_session(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let admin = admin(&req, &state).await?;
    let (name, session) = path.into_inner();
    let user = named(&admin, &name).await?;
    let session = Uuid::parse_str(&session)
        .map_err(|_| ApiError::InvalidRequest("session: not a session id".into()))?;
    if !admin.revoke_session(&user, session).await? {
        return Err(ApiError::NotFound(
            "no live session of that user has that id".into(),
        ));
    }
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    get,
    path = "/admin/keys",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every key and its lifecycle state, whether this server can sign, and the key files it does not use and why", body = shapes::KeyList),
        (status = 401, description = "The bearer token is missing, invalid, expired or its session has ended", body = crate::error::ErrorBody),
        (status = 403, description = "The token lacks `tessera:admin` at audience `tessera`", body = crate::error::ErrorBody),
        (status = 503, description = "The database or the password hasher is busy or unreachable; see `Retry-After`", body = crate::error::ErrorBody),
    ),
)]
pub async fn list_keys(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    admin(&req, &state).await?;
    let current = state.keys.current();
    let keys: Vec<serde_json::Value> = current
        .statuses(state.keys.now())
        .into_iter()
        .map(|k| {
            serde_json::json!({
                "kid": k.kid,
                "state": k.state.to_string(),
                "loaded": k.loaded,
                "created": k.created,
                "activates": k.activates,
                "retires": k.retires,
                "verifies_until": k.verifies_until,
            })
        })
        .collect();
    // What `/readyz` keeps to itself: file paths and why they failed.
    let problems: Vec<serde_json::Value> = current
        .problems()
        .iter()
        .map(|p| {
            serde_json::json!({
                "file": p.file.display().to_string(),
                "reason": p.reason,
                "kept": p.kept,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "keys": keys,
        "signing_kid": current.signing_kid(),
        "signing": current.signing().is_ok(),
        "problems": problems,
    })))
}

/// The shapes of bodies built with `serde_json::json!` or serialized from
/// elsewhere, for the OpenAPI document; only described, never built.
mod shapes {
    #![expect(
        dead_code,
        reason = "these types only describe bodies; nothing builds them"
    )]

    use chrono::{DateTime, Utc};
    use utoipa::ToSchema;

    /// One grant: a scope at an audience.
    #[derive(ToSchema)]
    pub(crate) struct Grant {
        audience: String,
        scope: String,
    }

    /// `GET /admin/users`.
    #[derive(ToSchema)]
    pub(crate) struct UserPage {
        users: Vec<super::UserView>,
        offset: i64,
        limit: i64,
    }

    /// `GET /admin/users/{name}`.
    #[derive(ToSchema)]
    pub(crate) struct UserDetail {
        user: super::UserView,
        grants: Vec<Grant>,
    }

    /// `GET /admin/users/{name}/grants`.
    #[derive(ToSchema)]
    pub(crate) struct GrantList {
        grants: Vec<Grant>,
    }

    /// `DELETE /admin/users/{name}/grants`.
    #[derive(ToSchema)]
    pub(crate) struct GrantsRemoved {
        /// How many of the named grants the user held.
        removed: u64,
    }

    /// `GET /admin/users/{name}/sessions`.
    #[derive(ToSchema)]
    pub(crate) struct SessionList {
        sessions: Vec<super::SessionView>,
    }

    /// `DELETE /admin/users/{name}/sessions`.
    #[derive(ToSchema)]
    pub(crate) struct SessionsRevoked {
        /// How many live sessions ended.
        revoked: u64,
    }

    /// One signing key and where it stands in its lifecycle.
    #[derive(ToSchema)]
    pub(crate) struct KeyStatus {
        kid: String,
        /// `published`, `active`, `retired` or `revoked`.
        state: String,
        /// Whether this server holds the key. One whose file it cannot
        /// load keeps its place in the lifecycle; when that is `active`,
        /// this server signs nothing.
        loaded: bool,
        created: Option<DateTime<Utc>>,
        activates: Option<DateTime<Utc>>,
        retires: Option<DateTime<Utc>>,
        verifies_until: Option<DateTime<Utc>>,
    }

    /// A file of the key directory that this server does not use.
    #[derive(ToSchema)]
    pub(crate) struct KeyFileProblem {
        /// The file's path on this server.
        file: String,
        /// Why it is not used.
        reason: String,
        /// The file had loaded before: its last good copy is still in use.
        kept: bool,
    }

    /// `GET /admin/keys`.
    #[derive(ToSchema)]
    pub(crate) struct KeyList {
        keys: Vec<KeyStatus>,
        /// The key whose turn it is to sign, by the lifecycle.
        signing_kid: String,
        /// Whether this server can sign with it; when not, `/readyz`
        /// answers 503.
        signing: bool,
        problems: Vec<KeyFileProblem>,
    }
}
