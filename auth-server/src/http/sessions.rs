//! Thin handlers of a user's sessions: logout (the refresh token's
//! session), logout-all, the list of live sessions, and ending one of them.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::Handled;
use super::bearer::Authenticated;
use super::body::JsonBody;
use super::client::Client;
use super::delivery::{Delivery, no_store, removal_cookie};
use super::input::{RefreshRequest, presented_token};
use super::responses::{
    BadRequest, Forbidden, NotFound, PayloadTooLarge, Unauthorized, Unavailable, Unprocessable,
};
use super::timestamp::rfc3339;
use crate::error::ApiError;
use crate::service::sessions;
use crate::state::AppState;

/// Ends the refresh token's session (idempotent: `204` for an unknown
/// token too) and clears the cookie.
#[utoipa::path(
    post,
    path = "/auth/logout",
    tag = "auth",
    request_body(content = Option<RefreshRequest>, description = "Body delivery; empty for the cookie"),
    security((), ("refresh_cookie" = [])),
    responses(
        (status = 204, description = "Logged out"),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    client: Client,
    body: JsonBody,
) -> Handled {
    let (token, delivery) = presented_token(&req, &body)?;
    sessions::logout(&state, token.as_deref(), client.info()).await?;
    let mut response = HttpResponse::NoContent();
    no_store(&mut response);
    if delivery == Delivery::Cookie {
        response.cookie(removal_cookie(state.settings.http.cookie_secure));
    }
    Ok(response.finish())
}

/// Ends every session of the user.
#[utoipa::path(
    post,
    path = "/auth/logout-all",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Every session revoked"),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    )
)]
pub async fn logout_all(
    state: web::Data<AppState>,
    client: Client,
    auth: Authenticated,
) -> Handled {
    sessions::logout_all(&state, auth.0.sub, auth.0.sid, client.info()).await?;
    let mut response = HttpResponse::NoContent();
    no_store(&mut response);
    Ok(response.finish())
}

/// One live session of the user.
#[derive(Serialize, ToSchema)]
pub struct SessionView {
    pub id: Uuid,
    pub created_at: String,
    pub last_used_at: String,
    pub expires_at: String,
    /// The one last seen on this session.
    pub user_agent: Option<String>,
    /// The session of the access token presented.
    pub current: bool,
}

#[derive(Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
}

/// The user's live sessions, newest first.
#[utoipa::path(
    get,
    path = "/auth/sessions",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The live sessions", body = SessionList),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub async fn list_sessions(state: web::Data<AppState>, auth: Authenticated) -> Handled {
    let live = sessions::list(&state.database, auth.0.sub).await?;
    let sessions: Vec<SessionView> = live
        .into_iter()
        .map(|s| SessionView {
            current: s.id == auth.0.sid,
            id: s.id,
            created_at: rfc3339(s.created_at),
            last_used_at: rfc3339(s.last_used_at),
            expires_at: rfc3339(s.expires_at),
            user_agent: s.user_agent,
        })
        .collect();
    let mut response = HttpResponse::Ok();
    no_store(&mut response);
    Ok(response.json(SessionList { sessions }))
}

/// Ends one of the user's sessions.
#[utoipa::path(
    delete,
    path = "/auth/sessions/{id}",
    tag = "auth",
    params(("id" = String, Path, description = "The session id (a UUID)")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The session is revoked"),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub async fn delete_session(
    state: web::Data<AppState>,
    client: Client,
    auth: Authenticated,
    path: web::Path<String>,
) -> Handled {
    // Not a UUID: no session of anybody's, so the same 404.
    let session_id =
        Uuid::parse_str(&path.into_inner()).map_err(|_| ApiError::NotFound("session"))?;
    sessions::delete(&state, auth.0.sub, session_id, client.info()).await?;
    Ok(HttpResponse::NoContent().finish())
}
