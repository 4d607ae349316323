//! Thin handlers of the account lifecycle: password change, forgot and
//! reset, address verification, and the user's own security events.

use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::bearer::Authenticated;
use super::body::JsonBody;
use super::client::{client_info, client_ip};
use super::delivery::no_store;
use super::handlers::{Handled, rfc3339};
use super::input::{
    ChangePasswordRequest, ForgotPasswordRequest, ResetPasswordRequest, VerifyEmailRequest,
    check_password_field, page_limit, parse_email,
};
use super::responses::{
    BadRequest, Conflict, Empty, Forbidden, PayloadTooLarge, RateLimited, Unauthorized,
    Unavailable, Unprocessable,
};
use crate::error::ApiError;
use crate::limits::client_key::ClientKey;
use crate::service::rate_limits::{self, Scope};
use crate::service::{events, passwords, verification};
use crate::state::AppState;

fn no_content() -> HttpResponse {
    let mut response = HttpResponse::NoContent();
    no_store(&mut response);
    response.finish()
}

fn accepted() -> HttpResponse {
    let mut response = HttpResponse::Accepted();
    no_store(&mut response);
    response.json(Empty {})
}

/// Changes the password; every other session of the user ends, this one
/// stays.
#[utoipa::path(
    post,
    path = "/auth/password",
    tag = "account",
    request_body = ChangePasswordRequest,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Changed"),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, description = "`invalid_credentials`: the current password is wrong (not 401, which clients read as \"refresh and retry\"; counted in the failed-login throttle and recorded as `login_failed`, as at login); or `forbidden_origin`", body = super::responses::ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = Unprocessable),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    )
)]
pub async fn change_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    auth: Authenticated,
    body: JsonBody,
) -> Handled {
    // Guessing the current password with a stolen access token is guessing
    // a password: the login budget applies, and the failed-login throttle.
    let client = client_ip(&req, &state.settings.http.trusted_proxies);
    rate_limits::hit(&state, Scope::Login, client).await?;
    let input: ChangePasswordRequest = body.parse()?;
    check_password_field("current_password", &input.current_password)?;
    check_password_field("new_password", &input.new_password)?;
    passwords::change(
        &state,
        auth.0.sub,
        auth.0.sid,
        input.current_password,
        input.new_password,
        client_info(&req, client),
        client.map(ClientKey::of),
    )
    .await?;
    Ok(no_content())
}

/// Sends a reset link when the address has an account; the same answer,
/// in about the same time, when it has none.
#[utoipa::path(
    post,
    path = "/auth/password/forgot",
    tag = "account",
    request_body = ForgotPasswordRequest,
    responses(
        (status = 202, description = "Accepted", body = Empty),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = Unprocessable),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    )
)]
pub async fn forgot_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody,
) -> Handled {
    let client = client_ip(&req, &state.settings.http.trusted_proxies);
    rate_limits::hit(&state, Scope::MailRequests, client).await?;
    let input: ForgotPasswordRequest = body.parse()?;
    let email = parse_email(&input.email)?;
    passwords::forgot(&state, email, client_info(&req, client)).await?;
    Ok(accepted())
}

/// Sets a new password with the token of a reset link; every session of
/// the user ends.
#[utoipa::path(
    post,
    path = "/auth/password/reset",
    tag = "account",
    request_body = ResetPasswordRequest,
    responses(
        (status = 204, description = "The password is reset"),
        (status = 400, description = "`invalid_grant` (unknown, expired or used token) or `invalid_request`", body = super::responses::ErrorBody),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn reset_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody,
) -> Handled {
    let input: ResetPasswordRequest = body.parse()?;
    check_password_field("new_password", &input.new_password)?;
    let client = client_ip(&req, &state.settings.http.trusted_proxies);
    passwords::reset(
        &state,
        input.token.expose_secret(),
        input.new_password,
        client_info(&req, client),
        client.map(ClientKey::of),
    )
    .await?;
    Ok(no_content())
}

/// Verifies the address with the token of a verification link.
#[utoipa::path(
    post,
    path = "/auth/email/verify",
    tag = "account",
    request_body = VerifyEmailRequest,
    responses(
        (status = 204, description = "The address is verified"),
        (status = 400, description = "`invalid_grant` (unknown, expired or used token) or `invalid_request`", body = super::responses::ErrorBody),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn verify_email(state: web::Data<AppState>, req: HttpRequest, body: JsonBody) -> Handled {
    let input: VerifyEmailRequest = body.parse()?;
    verification::verify(
        &state,
        input.token.expose_secret(),
        client_info(&req, client_ip(&req, &state.settings.http.trusted_proxies)),
    )
    .await?;
    Ok(no_content())
}

/// Sends the verification link again.
#[utoipa::path(
    post,
    path = "/auth/email/verify/resend",
    tag = "account",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Accepted", body = Empty),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    )
)]
pub async fn resend_verification(
    state: web::Data<AppState>,
    req: HttpRequest,
    auth: Authenticated,
) -> Handled {
    let client = client_ip(&req, &state.settings.http.trusted_proxies);
    rate_limits::hit(&state, Scope::MailRequests, client).await?;
    verification::resend(&state, auth.0.sub, client_info(&req, client)).await?;
    Ok(accepted())
}

/// `?cursor=&limit=`, read as text so a bad value is a `422` naming it.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// 1 to 100; 20 when absent.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    limit: Option<String>,
}

/// One of the user's own security events.
#[derive(Serialize, ToSchema)]
pub struct EventView {
    pub id: Uuid,
    /// RFC 3339, UTC.
    pub at: String,
    /// An audit event type (`login`, `logout`, `password_changed`, …).
    #[serde(rename = "type")]
    pub event_type: String,
    pub session_id: Option<Uuid>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct EventPage {
    pub events: Vec<EventView>,
    /// `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The user's own security events, newest first.
#[utoipa::path(
    get,
    path = "/auth/events",
    tag = "account",
    params(EventsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of events", body = EventPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn list_events(
    state: web::Data<AppState>,
    auth: Authenticated,
    query: web::Query<EventsQuery>,
) -> Handled {
    let limit = page_limit(
        query.limit.as_deref(),
        events::DEFAULT_LIMIT,
        events::MAX_LIMIT,
    )?;
    let cursor =
        match query.cursor.as_deref().filter(|c| !c.is_empty()) {
            None => None,
            Some(raw) => Some(events::decode_cursor(raw).ok_or_else(|| {
                ApiError::unprocessable("cursor", "is not a cursor this API gave")
            })?),
        };
    let page = events::list(&state.database, auth.0.sub, cursor, limit).await?;
    let views: Vec<EventView> = page
        .events
        .into_iter()
        .map(|e| EventView {
            id: e.id,
            at: rfc3339(e.at),
            event_type: e.event_type,
            session_id: e.session_id,
            ip: e.ip,
            user_agent: e.user_agent,
        })
        .collect();
    let mut response = HttpResponse::Ok();
    no_store(&mut response);
    Ok(response.json(EventPage {
        events: views,
        next_cursor: page.next.as_ref().map(events::encode_cursor),
    }))
}
