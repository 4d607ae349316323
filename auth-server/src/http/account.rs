//! Thin handlers of the account lifecycle: registration, password change,
//! forgot and reset, address verification, and the user's own security
//! events.

use actix_web::{HttpResponse, web};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::Handled;
use super::bearer::Authenticated;
use super::body::JsonBody;
use super::client::Client;
use super::delivery::{no_content, no_store};
use super::input::{
    ChangePasswordRequest, ForgotPasswordRequest, RegisterRequest, ResetPasswordRequest,
    VerifyEmailRequest, check_password, check_password_field, page_cursor, page_limit, parse_email,
};
use super::responses::{
    BadRequest, Conflict, Empty, Forbidden, PayloadTooLarge, RateLimited, Unauthorized,
    Unavailable, Unprocessable,
};
use super::timestamp::rfc3339;
use crate::service::rate_limits::{self, Scope};
use crate::service::{accounts, events, passwords, verification};
use crate::state::AppState;

fn accepted() -> HttpResponse {
    let mut response = HttpResponse::Accepted();
    no_store(&mut response);
    response.json(Empty {})
}

/// A registered user, as `POST /auth/register` answers.
#[derive(Serialize, ToSchema)]
pub struct Registered {
    pub user: RegisteredUser,
}

#[derive(Serialize, ToSchema)]
pub struct RegisteredUser {
    pub id: Uuid,
    /// Trimmed and lower-cased.
    pub email: String,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// Creates an account and sends a verification e-mail.
// Registration has the per-client limit only: it already tells whether an
// address has an account (`409 email_taken`), so a per-account limit would
// hide nothing and only let strangers block a sign-up.
#[utoipa::path(
    post,
    path = "/auth/register",
    tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "The account exists", body = Registered,
            links(("Login" = (
                operation_id = "login",
                request_body = json!({
                    "email": "$request.body#/email",
                    "password": "$request.body#/password",
                    "refresh_token_delivery": "body"
                }),
                description = "Log in as the new user, the refresh token in the body"
            )))),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = Unprocessable),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    )
)]
pub async fn register(state: web::Data<AppState>, client: Client, body: JsonBody) -> Handled {
    rate_limits::hit(&state, Scope::Login, client.ip).await?;
    let input: RegisterRequest = body.parse()?;
    let email = parse_email(&input.email)?;
    check_password(&input.password)?;
    let user = accounts::register(&state, email, input.password, client.info()).await?;
    tracing::info!(audit = "register", user_id = %user.id, "user registered");
    Ok(HttpResponse::Created().json(Registered {
        user: RegisteredUser {
            id: user.id,
            email: user.email,
            created_at: rfc3339(user.created_at),
        },
    }))
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
    client: Client,
    auth: Authenticated,
    body: JsonBody,
) -> Handled {
    // Guessing the current password with a stolen access token is guessing
    // a password: the login budget applies, and the failed-login throttle.
    rate_limits::hit(&state, Scope::Login, client.ip).await?;
    let input: ChangePasswordRequest = body.parse()?;
    check_password_field("current_password", &input.current_password)?;
    check_password_field("new_password", &input.new_password)?;
    passwords::change(
        &state,
        &auth.0,
        input.current_password,
        input.new_password,
        client.info(),
        client.key(),
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
    client: Client,
    body: JsonBody,
) -> Handled {
    rate_limits::hit(&state, Scope::MailRequests, client.ip).await?;
    let input: ForgotPasswordRequest = body.parse()?;
    let email = parse_email(&input.email)?;
    passwords::forgot(&state, email, client.info()).await?;
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
pub async fn reset_password(state: web::Data<AppState>, client: Client, body: JsonBody) -> Handled {
    let input: ResetPasswordRequest = body.parse()?;
    check_password_field("new_password", &input.new_password)?;
    passwords::reset(
        &state,
        input.token.expose_secret(),
        input.new_password,
        client.info(),
        client.key(),
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
pub async fn verify_email(state: web::Data<AppState>, client: Client, body: JsonBody) -> Handled {
    let input: VerifyEmailRequest = body.parse()?;
    verification::verify(&state, input.token.expose_secret(), client.info()).await?;
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
    client: Client,
    auth: Authenticated,
) -> Handled {
    rate_limits::hit(&state, Scope::MailRequests, client.ip).await?;
    verification::resend(&state, auth.0.sub, client.info()).await?;
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
    let cursor = page_cursor(query.cursor.as_deref())?;
    let page = events::list(&state.database, auth.0.sub, cursor, limit).await?;
    let views: Vec<EventView> = page
        .items
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
        next_cursor: page.next_cursor,
    }))
}
