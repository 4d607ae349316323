//! Thin handlers of the account lifecycle: password change, forgot and
//! reset, address verification, and the user's own security events.

use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::bearer::Authenticated;
use super::body::JsonBody;
use super::client::{client_info, client_ip};
use super::delivery::no_store;
use super::handlers::{Handled, rfc3339};
use super::input::{
    ChangePasswordRequest, ForgotPasswordRequest, ResetPasswordRequest, VerifyEmailRequest,
    check_password_field, normalize_email,
};
use crate::error::ApiError;
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
    response.json(serde_json::json!({}))
}

pub async fn change_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    auth: Authenticated,
    body: JsonBody,
) -> Handled {
    // Guessing the current password with a stolen access token is guessing
    // a password: the login budget applies.
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
    )
    .await?;
    Ok(no_content())
}

pub async fn forgot_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody,
) -> Handled {
    let client = client_ip(&req, &state.settings.http.trusted_proxies);
    rate_limits::hit(&state, Scope::MailRequests, client).await?;
    let input: ForgotPasswordRequest = body.parse()?;
    let email = normalize_email(&input.email)?;
    passwords::forgot(&state, email, client_info(&req, client)).await?;
    Ok(accepted())
}

pub async fn reset_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody,
) -> Handled {
    let input: ResetPasswordRequest = body.parse()?;
    check_password_field("new_password", &input.new_password)?;
    passwords::reset(
        &state,
        input.token.expose_secret(),
        input.new_password,
        client_info(&req, client_ip(&req, &state.settings.http.trusted_proxies)),
    )
    .await?;
    Ok(no_content())
}

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
#[derive(Deserialize)]
pub struct EventsQuery {
    cursor: Option<String>,
    limit: Option<String>,
}

#[derive(Serialize)]
struct EventView {
    id: Uuid,
    at: String,
    #[serde(rename = "type")]
    event_type: String,
    session_id: Option<Uuid>,
    ip: Option<String>,
    user_agent: Option<String>,
}

pub async fn list_events(
    state: web::Data<AppState>,
    auth: Authenticated,
    query: web::Query<EventsQuery>,
) -> Handled {
    let limit = match query.limit.as_deref().map(str::trim) {
        None | Some("") => events::DEFAULT_LIMIT,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=events::MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::unprocessable("limit", "must be a whole number from 1 to 100")
            })?,
    };
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
    Ok(response.json(serde_json::json!({
        "events": views,
        "next_cursor": page.next.as_ref().map(events::encode_cursor),
    })))
}
