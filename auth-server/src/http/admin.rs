//! Thin handlers of `/admin/*`: a Bearer access token whose roles hold
//! `admin` (`401`, or `403 insufficient_scope`); parse, call
//! [`crate::service::admin`], map the result.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::bearer::Authenticated;
use super::body::JsonBody;
use super::client::{client_info, client_ip};
use super::delivery::no_store;
use super::handlers::{Handled, rfc3339};
use crate::db::models::{ClientInfo, Session, User};
use crate::error::ApiError;
use crate::service::{admin, events};
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

#[derive(Deserialize)]
pub struct UsersQuery {
    query: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

#[derive(Deserialize)]
pub struct AuditQuery {
    user_id: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolesRequest {
    roles: Vec<String>,
}

#[derive(Serialize)]
struct UserView {
    id: Uuid,
    email: String,
    email_verified: bool,
    roles: Vec<String>,
    disabled: bool,
    created_at: String,
    last_login_at: Option<String>,
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        Self {
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

#[derive(Serialize)]
struct SessionView {
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

#[derive(Serialize)]
struct EventView {
    id: Uuid,
    at: String,
    #[serde(rename = "type")]
    event_type: String,
    actor_id: Option<Uuid>,
    user_id: Option<Uuid>,
    session_id: Option<Uuid>,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<Uuid>,
}

fn ok_json(value: serde_json::Value) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    no_store(&mut response);
    response.json(value)
}

fn no_content() -> HttpResponse {
    let mut response = HttpResponse::NoContent();
    no_store(&mut response);
    response.finish()
}

/// `limit`: 1 to 100, 20 when absent; anything else is a `422`.
fn limit(raw: Option<&str>) -> Result<i64, ApiError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(admin::DEFAULT_LIMIT),
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=admin::MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::unprocessable("limit", "must be a whole number from 1 to 100")
            }),
    }
}

fn bad_cursor() -> ApiError {
    ApiError::unprocessable("cursor", "is not a cursor this API gave")
}

/// A path `{id}` that is not a UUID names no user: `404`, as an unknown one.
fn user_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(raw).map_err(|_| ApiError::NotFound("user"))
}

fn client(state: &AppState, req: &HttpRequest) -> ClientInfo {
    client_info(req, client_ip(req, &state.settings.http.trusted_proxies))
}

pub async fn list_users(
    state: web::Data<AppState>,
    _admin: Admin,
    query: web::Query<UsersQuery>,
) -> Handled {
    let limit = limit(query.limit.as_deref())?;
    if query.query.as_deref().is_some_and(|q| q.len() > 254) {
        return Err(ApiError::unprocessable("query", "at most 254 characters"));
    }
    let cursor = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(raw) => Some(admin::decode_user_cursor(raw).ok_or_else(bad_cursor)?),
    };
    let page = admin::list_users(&state.database, query.query.clone(), cursor, limit).await?;
    let users: Vec<UserView> = page.users.into_iter().map(UserView::from).collect();
    Ok(ok_json(serde_json::json!({
        "users": users,
        "next_cursor": page.next,
    })))
}

pub async fn get_user(
    state: web::Data<AppState>,
    _admin: Admin,
    path: web::Path<String>,
) -> Handled {
    let id = user_id(&path)?;
    let (user, sessions) = admin::find_user(&state.database, id).await?;
    let mut view =
        serde_json::to_value(UserView::from(user)).map_err(|e| ApiError::Internal(e.into()))?;
    let sessions: Vec<SessionView> = sessions.into_iter().map(SessionView::from).collect();
    view["sessions"] = serde_json::to_value(sessions).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(ok_json(view))
}

pub async fn disable_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    acting: Admin,
    path: web::Path<String>,
) -> Handled {
    let id = user_id(&path)?;
    admin::disable(
        &admin::Context::of(&state),
        Some(acting.0),
        id,
        client(&state, &req),
    )
    .await?;
    Ok(no_content())
}

pub async fn enable_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    acting: Admin,
    path: web::Path<String>,
) -> Handled {
    let id = user_id(&path)?;
    admin::enable(
        &admin::Context::of(&state),
        Some(acting.0),
        id,
        client(&state, &req),
    )
    .await?;
    Ok(no_content())
}

pub async fn set_roles(
    state: web::Data<AppState>,
    req: HttpRequest,
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
        client(&state, &req),
    )
    .await?;
    Ok(ok_json(
        serde_json::to_value(UserView::from(user)).map_err(|e| ApiError::Internal(e.into()))?,
    ))
}

pub async fn delete_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    acting: Admin,
    path: web::Path<String>,
) -> Handled {
    let id = user_id(&path)?;
    admin::delete(
        &admin::Context::of(&state),
        Some(acting.0),
        id,
        client(&state, &req),
    )
    .await?;
    Ok(no_content())
}

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
    let cursor = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(raw) => Some(events::decode_cursor(raw).ok_or_else(bad_cursor)?),
    };
    let page = admin::audit(&state.database, user_id, event_type, cursor, limit).await?;
    let events: Vec<EventView> = page
        .events
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
    Ok(ok_json(serde_json::json!({
        "events": events,
        "next_cursor": page.next.as_ref().map(events::encode_cursor),
    })))
}
