//! Thin handlers: parse, call [`crate::service`], map the result.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::bearer::Authenticated;
use super::body::JsonBody;
use super::client::{client_info, client_ip};
use super::delivery::{Delivery, no_store, removal_cookie, token_response};
use super::input::{
    LoginRequest, RegisterRequest, check_password, normalize_email, presented_token,
};
use std::net::IpAddr;

use service_kit::telemetry::record_identity;

use crate::error::ApiError;
use crate::rate_limit::RateLimiter;
use crate::service::{accounts, health, refresh, sessions};
use crate::state::AppState;

pub(super) type Handled = Result<HttpResponse, ApiError>;

pub(super) fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn rate_limited(wait: std::time::Duration) -> ApiError {
    ApiError::RateLimited {
        retry_after_secs: wait.as_secs().max(1),
    }
}

/// The per-address budget of the request's client.
pub(super) fn limit_client(
    limiter: Option<&RateLimiter<IpAddr>>,
    req: &HttpRequest,
    state: &AppState,
) -> Result<(), ApiError> {
    match (
        limiter,
        client_ip(req, &state.settings.http.trusted_proxies),
    ) {
        (Some(limiter), Some(ip)) => limiter.check(ip).map_err(rate_limited),
        _ => Ok(()),
    }
}

/// The per-account budget, known once the email is parsed. Unknown emails
/// are limited alike, so the limit tells nothing about which exist.
fn limit_account(state: &AppState, email: &str) -> Result<(), ApiError> {
    match state.account_limiter.as_deref() {
        Some(limiter) => limiter.check(email.to_owned()).map_err(rate_limited),
        None => Ok(()),
    }
}

pub async fn register(state: web::Data<AppState>, req: HttpRequest, body: JsonBody) -> Handled {
    limit_client(state.login_limiter.as_deref(), &req, &state)?;
    let input: RegisterRequest = body.parse()?;
    let email = normalize_email(&input.email)?;
    limit_account(&state, &email)?;
    check_password(&input.password)?;
    let user = accounts::register(
        &state,
        email,
        input.password,
        client_info(&req, &state.settings.http.trusted_proxies),
    )
    .await?;
    tracing::info!(audit = "register", user_id = %user.id, "user registered");

    #[derive(Serialize)]
    struct Registered {
        id: Uuid,
        email: String,
        created_at: String,
    }
    Ok(HttpResponse::Created().json(serde_json::json!({
        "user": Registered { id: user.id, email: user.email, created_at: rfc3339(user.created_at) }
    })))
}

pub async fn login(state: web::Data<AppState>, req: HttpRequest, body: JsonBody) -> Handled {
    limit_client(state.login_limiter.as_deref(), &req, &state)?;
    let input: LoginRequest = body.parse()?;
    let email = normalize_email(&input.email)?;
    limit_account(&state, &email)?;
    check_password(&input.password)?;
    let delivery = input.refresh_token_delivery.unwrap_or(Delivery::Cookie);
    let issued = accounts::login(
        &state,
        email,
        input.password,
        client_info(&req, &state.settings.http.trusted_proxies),
    )
    .await?;
    record_identity(issued.user_id, issued.session_id);
    Ok(token_response(
        &issued,
        delivery,
        state.settings.tokens.access_ttl.as_secs(),
        state.settings.http.cookie_secure,
    ))
}

pub async fn refresh(state: web::Data<AppState>, req: HttpRequest, body: JsonBody) -> Handled {
    limit_client(state.refresh_limiter.as_deref(), &req, &state)?;
    let (token, delivery) = presented_token(&req, &body)?;
    let secure = state.settings.http.cookie_secure;
    match refresh::refresh(
        &state,
        token.as_deref(),
        client_info(&req, &state.settings.http.trusted_proxies),
    )
    .await
    {
        Ok(issued) => Ok(token_response(
            &issued,
            delivery,
            state.settings.tokens.access_ttl.as_secs(),
            secure,
        )),
        // Only a refusal that ended the session clears the cookie: a lost
        // race or a grace answer must not wipe the winner's fresh token.
        Err(refused) if refused.session_ended && delivery == Delivery::Cookie => {
            let error = ApiError::from(refused.error);
            let mut response = actix_web::ResponseError::error_response(&error);
            response
                .add_cookie(&removal_cookie(secure))
                .map_err(|e| ApiError::Internal(e.into()))?;
            Ok(response)
        }
        Err(refused) => Err(refused.error.into()),
    }
}

pub async fn logout(state: web::Data<AppState>, req: HttpRequest, body: JsonBody) -> Handled {
    let (token, delivery) = presented_token(&req, &body)?;
    sessions::logout(
        &state,
        token.as_deref(),
        client_info(&req, &state.settings.http.trusted_proxies),
    )
    .await?;
    let mut response = HttpResponse::NoContent();
    no_store(&mut response);
    if delivery == Delivery::Cookie {
        response.cookie(removal_cookie(state.settings.http.cookie_secure));
    }
    Ok(response.finish())
}

pub async fn logout_all(
    state: web::Data<AppState>,
    req: HttpRequest,
    auth: Authenticated,
) -> Handled {
    sessions::logout_all(
        &state,
        auth.0.sub,
        auth.0.sid,
        client_info(&req, &state.settings.http.trusted_proxies),
    )
    .await?;
    let mut response = HttpResponse::NoContent();
    no_store(&mut response);
    Ok(response.finish())
}

#[derive(Serialize)]
struct SessionView {
    id: Uuid,
    created_at: String,
    last_used_at: String,
    expires_at: String,
    user_agent: Option<String>,
    current: bool,
}

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
    Ok(response.json(serde_json::json!({ "sessions": sessions })))
}

pub async fn delete_session(
    state: web::Data<AppState>,
    req: HttpRequest,
    auth: Authenticated,
    path: web::Path<String>,
) -> Handled {
    // Not a UUID: no session of anybody's, so the same 404.
    let session_id =
        Uuid::parse_str(&path.into_inner()).map_err(|_| ApiError::NotFound("session"))?;
    sessions::delete(
        &state,
        auth.0.sub,
        session_id,
        client_info(&req, &state.settings.http.trusted_proxies),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=60"))
        .json(state.signing.jwks())
}

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

pub async fn readyz(state: web::Data<AppState>) -> Handled {
    health::ready(&state.database).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })))
}

pub async fn not_found() -> Handled {
    Err(ApiError::NotFound("resource"))
}

pub async fn method_not_allowed() -> Handled {
    Err(ApiError::MethodNotAllowed)
}
