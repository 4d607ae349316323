//! Thin handlers of `/admin/*`: a Bearer access token whose roles hold
//! `admin` (`401`, or `403 insufficient_scope`); parse, call
//! [`crate::service::admin`], map the result.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::Handled;
use super::bearer::Authenticated;
use super::body::JsonBody;
use super::client::Client;
use super::delivery::{no_content, no_store};
use super::input::{page_cursor, page_limit};
use super::responses::{
    AdminConflict, AdminForbidden, BadRequest, NotFound, PayloadTooLarge, Unauthorized,
    Unavailable, Unprocessable,
};
use super::timestamp::rfc3339;
use crate::db::admin::ListedUser;
use crate::db::models::{Session, User};
use crate::error::ApiError;
use crate::service::admin;
use crate::service::factors;
use crate::state::AppState;

/// An authenticated administrator, from one of its sessions.
pub struct Admin(pub crate::db::admin::Admin);

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let authenticated = Authenticated::from_request(req, payload);
        Box::pin(async move {
            let Authenticated(claims) = authenticated.await?;
            if !claims.has_role(admin::ADMIN_ROLE) {
                return Err(ApiError::InsufficientScope);
            }
            Ok(Self(crate::db::admin::Admin {
                user_id: claims.sub,
                session_id: claims.sid,
            }))
        })
    }
}

/// `?query=&cursor=&limit=`, read as text so a bad value is a `422` naming it.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsersQuery {
    /// Matches the e-mail (a case-insensitive substring).
    #[param(max_length = 254)]
    query: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// 1 to 100; 20 when absent.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    limit: Option<String>,
}

/// `?user_id=&type=&cursor=&limit=`, read as text so a bad value is a `422`
/// naming it.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only the events about this user.
    #[param(value_type = Option<Uuid>)]
    user_id: Option<String>,
    /// Only the events of this type (`login`, `user_disabled`, `roles_changed`, …).
    #[serde(rename = "type")]
    #[param(rename = "type")]
    event_type: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// 1 to 100; 20 when absent.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    limit: Option<String>,
}

/// The user's roles, replacing the ones it has.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolesRequest {
    /// At most 20, each 1 to 64 of `a-z`, `0-9`, `_`, `:` and `-`
    /// (`^[a-z0-9_:-]{1,64}$`); duplicates are kept once.
    #[schema(max_items = 20)]
    roles: Vec<String>,
}

/// A user, as an administrator sees it.
#[derive(Serialize, ToSchema)]
#[schema(as = AdminUser)]
pub struct UserView {
    id: Uuid,
    email: String,
    email_verified: bool,
    roles: Vec<String>,
    disabled: bool,
    /// RFC 3339, UTC.
    created_at: String,
    /// RFC 3339, UTC; `null` before the first login.
    last_login_at: Option<String>,
    /// The user has a second factor (TOTP).
    mfa: bool,
}

#[derive(Serialize, ToSchema)]
pub struct UserPage {
    users: Vec<UserView>,
    /// `null` on the last page.
    next_cursor: Option<String>,
}

/// A user and its live sessions.
#[derive(Serialize, ToSchema)]
pub struct AdminUserDetail {
    id: Uuid,
    email: String,
    email_verified: bool,
    roles: Vec<String>,
    disabled: bool,
    /// RFC 3339, UTC.
    created_at: String,
    /// RFC 3339, UTC; `null` before the first login.
    last_login_at: Option<String>,
    /// The user has a second factor (TOTP).
    mfa: bool,
    sessions: Vec<SessionView>,
}

impl From<ListedUser> for UserView {
    fn from(listed: ListedUser) -> Self {
        Self::new(listed.user, listed.has_second_factor)
    }
}

impl UserView {
    fn new(user: User, mfa: bool) -> Self {
        Self {
            mfa,
            id: user.id,
            email: user.email,
            email_verified: user.email_verified,
            roles: user.roles,
            disabled: user.disabled_at.is_some(),
            created_at: rfc3339(user.created_at),
            last_login_at: user.last_login_at.map(rfc3339),
        }
    }
}

/// One live session of a user.
#[derive(Serialize, ToSchema)]
#[schema(as = AdminSession)]
pub struct SessionView {
    id: Uuid,
    created_at: String,
    last_used_at: String,
    expires_at: String,
    user_agent: Option<String>,
    ip: Option<String>,
}

impl From<Session> for SessionView {
    fn from(s: Session) -> Self {
        Self {
            id: s.id,
            created_at: rfc3339(s.created_at),
            last_used_at: rfc3339(s.last_used_at),
            expires_at: rfc3339(s.expires_at),
            user_agent: s.user_agent,
            ip: s.client_ip,
        }
    }
}

/// One audit event.
#[derive(Serialize, ToSchema)]
#[schema(as = AuditEvent)]
pub struct EventView {
    id: Uuid,
    /// RFC 3339, UTC.
    at: String,
    /// An audit event type (`login`, `user_disabled`, `roles_changed`, …).
    #[serde(rename = "type")]
    event_type: String,
    /// The acting user; `null` for the CLI and the server itself.
    actor_id: Option<Uuid>,
    user_id: Option<Uuid>,
    session_id: Option<Uuid>,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    events: Vec<EventView>,
    /// `null` on the last page.
    next_cursor: Option<String>,
}

fn ok_json(value: impl Serialize) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    no_store(&mut response);
    response.json(value)
}

/// `limit`: 1 to 100, 20 when absent; anything else is a `422`.
fn limit(raw: Option<&str>) -> Result<i64, ApiError> {
    page_limit(raw, admin::DEFAULT_LIMIT, admin::MAX_LIMIT)
}

/// The e-mail substring to search for. No address holds a control
/// character, and PostgreSQL refuses a NUL in text (which would be a `503`),
/// so one is a `422` here rather than a query that cannot run.
fn search_term(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(term) = raw else { return Ok(None) };
    if term.len() > 254 {
        return Err(ApiError::unprocessable("query", "at most 254 characters"));
    }
    if term.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            "query",
            "must not contain control characters",
        ));
    }
    Ok(Some(term.to_owned()))
}

/// A path `{id}` that is not a UUID names no user: `404`, as an unknown one.
fn user_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(raw).map_err(|_| ApiError::NotFound("user"))
}

/// Users, by e-mail, a page at a time.
#[utoipa::path(
    get,
    path = "/admin/users",
    tag = "admin",
    params(UsersQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of users", body = UserPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminForbidden),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn list_users(
    state: web::Data<AppState>,
    _admin: Admin,
    query: web::Query<UsersQuery>,
) -> Handled {
    let limit = limit(query.limit.as_deref())?;
    let search = search_term(query.query.as_deref())?;
    let cursor = page_cursor(query.cursor.as_deref())?;
    let page = admin::list_users(&state.database, search, cursor, limit).await?;
    Ok(ok_json(UserPage {
        users: page.items.into_iter().map(UserView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// A user and its live sessions.
#[utoipa::path(
    get,
    path = "/admin/users/{id}",
    tag = "admin",
    params(("id" = String, Path, description = "The user id (a UUID; anything else is a `404`)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = AdminUserDetail),
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminForbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub async fn get_user(
    state: web::Data<AppState>,
    _admin: Admin,
    path: web::Path<String>,
) -> Handled {
    let id = user_id(&path)?;
    let (user, sessions) = admin::find_user(&state.database, id).await?;
    let user = UserView::from(user);
    Ok(ok_json(AdminUserDetail {
        id: user.id,
        email: user.email,
        email_verified: user.email_verified,
        roles: user.roles,
        disabled: user.disabled,
        created_at: user.created_at,
        last_login_at: user.last_login_at,
        mfa: user.mfa,
        sessions: sessions.into_iter().map(SessionView::from).collect(),
    }))
}

/// Disables the user: every session revoked (at the APIs within a second),
/// its login refused with `403 account_disabled`.
#[utoipa::path(
    post,
    path = "/admin/users/{id}/disable",
    tag = "admin",
    params(("id" = String, Path, description = "The user id (a UUID; anything else is a `404`)")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Disabled (or already so)"),
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminForbidden),
        (status = 404, response = NotFound),
        (status = 409, response = AdminConflict),
        (status = 503, response = Unavailable),
    )
)]
pub async fn disable_user(
    state: web::Data<AppState>,
    client: Client,
    acting: Admin,
    path: web::Path<String>,
) -> Handled {
    let id = user_id(&path)?;
    admin::disable(
        &admin::Context::of(&state),
        Some(acting.0),
        id,
        client.info(),
    )
    .await?;
    Ok(no_content())
}

/// Removes every second factor of the user (TOTP, recovery codes) and
/// revokes every session (at the APIs within a second): for a user who
/// lost them all. The owner is told by mail.
#[utoipa::path(
    delete,
    path = "/admin/users/{id}/mfa",
    tag = "admin",
    params(("id" = String, Path, description = "The user id (a UUID; anything else is a `404`)")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Reset"),
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminForbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub async fn reset_mfa(
    state: web::Data<AppState>,
    client: Client,
    acting: Admin,
    path: web::Path<String>,
) -> Handled {
    let id = user_id(&path)?;
    admin::reset_mfa(
        &admin::Context::of(&state),
        Some(acting.0),
        id,
        client.info(),
    )
    .await?;
    Ok(no_content())
}

/// Enables the user again.
#[utoipa::path(
    post,
    path = "/admin/users/{id}/enable",
    tag = "admin",
    params(("id" = String, Path, description = "The user id (a UUID; anything else is a `404`)")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Enabled (or already so)"),
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminForbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub async fn enable_user(
    state: web::Data<AppState>,
    client: Client,
    acting: Admin,
    path: web::Path<String>,
) -> Handled {
    let id = user_id(&path)?;
    admin::enable(
        &admin::Context::of(&state),
        Some(acting.0),
        id,
        client.info(),
    )
    .await?;
    Ok(no_content())
}

/// Replaces the user's roles; its access tokens issued before are refused
/// (at the APIs within a second), its next refresh carries the new roles.
#[utoipa::path(
    put,
    path = "/admin/users/{id}/roles",
    tag = "admin",
    params(("id" = String, Path, description = "The user id (a UUID; anything else is a `404`)")),
    request_body = RolesRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user, with its new roles", body = UserView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminForbidden),
        (status = 404, response = NotFound),
        (status = 409, response = AdminConflict),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn set_roles(
    state: web::Data<AppState>,
    client: Client,
    acting: Admin,
    path: web::Path<String>,
    body: JsonBody,
) -> Handled {
    let id = user_id(&path)?;
    let input: RolesRequest = body.parse()?;
    let roles = admin::check_roles(input.roles)?;
    let user = admin::change_roles(
        &admin::Context::of(&state),
        Some(acting.0),
        id,
        admin::RolesChange::Set(roles),
        client.info(),
    )
    .await?;
    let mfa = factors::status(&state, id).await?.any();
    Ok(ok_json(UserView::new(user, mfa)))
}

/// Deletes the user, its sessions and tokens (at the APIs within a second);
/// its audit events stay.
#[utoipa::path(
    delete,
    path = "/admin/users/{id}",
    tag = "admin",
    params(("id" = String, Path, description = "The user id (a UUID; anything else is a `404`)")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminForbidden),
        (status = 404, response = NotFound),
        (status = 409, response = AdminConflict),
        (status = 503, response = Unavailable),
    )
)]
pub async fn delete_user(
    state: web::Data<AppState>,
    client: Client,
    acting: Admin,
    path: web::Path<String>,
) -> Handled {
    let id = user_id(&path)?;
    admin::delete(
        &admin::Context::of(&state),
        Some(acting.0),
        id,
        client.info(),
    )
    .await?;
    Ok(no_content())
}

/// The audit log, newest first.
#[utoipa::path(
    get,
    path = "/admin/audit",
    tag = "admin",
    params(AuditQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of audit events", body = AuditPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminForbidden),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn audit(
    state: web::Data<AppState>,
    _admin: Admin,
    query: web::Query<AuditQuery>,
) -> Handled {
    let limit = limit(query.limit.as_deref())?;
    let user_id = match query.user_id.as_deref().filter(|u| !u.is_empty()) {
        None => None,
        Some(raw) => Some(
            Uuid::try_parse(raw)
                .map_err(|_| ApiError::unprocessable("user_id", "is not a UUID"))?,
        ),
    };
    let event_type = match query.event_type.as_deref().filter(|t| !t.is_empty()) {
        None => None,
        Some(raw) => Some(admin::event_type(raw).map_err(ApiError::from)?),
    };
    let cursor = page_cursor(query.cursor.as_deref())?;
    let page = admin::audit(&state.database, user_id, event_type, cursor, limit).await?;
    let events = page
        .items
        .into_iter()
        .map(|e| EventView {
            id: e.id,
            at: rfc3339(e.at),
            event_type: e.event_type,
            actor_id: e.actor_id,
            user_id: e.user_id,
            session_id: e.session_id,
            ip: e.ip,
            user_agent: e.user_agent,
            request_id: e.request_id,
        })
        .collect();
    Ok(ok_json(AuditPage {
        events,
        next_cursor: page.next_cursor,
    }))
}
