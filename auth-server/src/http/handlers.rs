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

use crate::client_key::ClientKey;
use crate::error::ApiError;
use crate::rate_limit::RateLimiter;
use crate::service::rate_limits::{self, Scope};
use crate::service::{accounts, health, refresh, sessions};
use crate::state::AppState;

pub(super) type Handled = Result<HttpResponse, ApiError>;

pub(super) fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The per-client budget (an IPv4 address or an IPv6 /64) of an in-memory
/// limit (refresh's; the others are shared: [`rate_limits`]).
pub(super) fn limit_client(
    limiter: Option<&RateLimiter>,
    client: Option<IpAddr>,
) -> Result<(), ApiError> {
    match (limiter, client) {
        (Some(limiter), Some(ip)) => limiter
            .check(ClientKey::of(ip))
            .map_err(ApiError::rate_limited),
        _ => Ok(()),
    }
}

/// Registration has the per-client limit only: it already tells whether an
/// address has an account (`409 email_taken`), so a per-account limit would
/// hide nothing and only let strangers block a sign-up.
pub async fn register(state: web::Data<AppState>, req: HttpRequest, body: JsonBody) -> Handled {
    let client = client_ip(&req, &state.settings.http.trusted_proxies);
    rate_limits::hit(&state, Scope::Login, client).await?;
    let input: RegisterRequest = body.parse()?;
    let email = normalize_email(&input.email)?;
    check_password(&input.password)?;
    let user = accounts::register(&state, email, input.password, client_info(&req, client)).await?;
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
    let client = client_ip(&req, &state.settings.http.trusted_proxies);
    rate_limits::hit(&state, Scope::Login, client).await?;
    let input: LoginRequest = body.parse()?;
    let email = normalize_email(&input.email)?;
    check_password(&input.password)?;
    let delivery = input.refresh_token_delivery.unwrap_or(Delivery::Cookie);
    let issued = accounts::login(
        &state,
        email,
        input.password,
        client_info(&req, client),
        client.map(ClientKey::of),
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
    let client = client_ip(&req, &state.settings.http.trusted_proxies);
    limit_client(state.refresh_limiter.as_deref(), client)?;
    let (token, delivery) = presented_token(&req, &body)?;
    let secure = state.settings.http.cookie_secure;
    match refresh::refresh(&state, token.as_deref(), client_info(&req, client)).await {
        Ok(issued) => Ok(token_response(
            &issued,
            delivery,
            state.settings.tokens.access_ttl.as_secs(),
            secure,
        )),
        // Only the refusal that itself revoked the session (reuse after the
        // grace) clears the cookie: a lost race, a grace answer or a late
        // refusal for a session already over must not wipe a cookie that a
        // newer rotation or login has set meanwhile.
        Err(refused) if refused.revoked_session && delivery == Delivery::Cookie => {
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
        client_info(&req, client_ip(&req, &state.settings.http.trusted_proxies)),
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
        client_info(&req, client_ip(&req, &state.settings.http.trusted_proxies)),
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
        client_info(&req, client_ip(&req, &state.settings.http.trusted_proxies)),
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
