//! Thin handlers: parse, call [`crate::service`], map the result.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::bearer::Authenticated;
use super::body::JsonBody;
use super::client::{client_info, client_ip};
use super::delivery::{Delivery, TokenResponse, no_store, removal_cookie, token_response};
use super::input::{
    LoginRequest, RefreshRequest, RegisterRequest, check_password, parse_email, presented_token,
};
use super::responses::{
    BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, RateLimited, Unauthorized,
    Unavailable, Unprocessable,
};
use std::net::IpAddr;

use service_kit::telemetry::record_identity;

use crate::error::ApiError;
use crate::limits::client_key::ClientKey;
use crate::limits::replica_limiter::RateLimiter;
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
pub async fn register(state: web::Data<AppState>, req: HttpRequest, body: JsonBody) -> Handled {
    let client = client_ip(&req, &state.settings.http.trusted_proxies);
    rate_limits::hit(&state, Scope::Login, client).await?;
    let input: RegisterRequest = body.parse()?;
    let email = parse_email(&input.email)?;
    check_password(&input.password)?;
    let user = accounts::register(&state, email, input.password, client_info(&req, client)).await?;
    tracing::info!(audit = "register", user_id = %user.id, "user registered");
    Ok(HttpResponse::Created().json(Registered {
        user: RegisteredUser {
            id: user.id,
            email: user.email,
            created_at: rfc3339(user.created_at),
        },
    }))
}

/// Logs in with a password: a new session, an access token, and a refresh
/// token in the cookie (default) or in the body (`refresh_token_delivery:
/// "body"`).
#[utoipa::path(
    post,
    path = "/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in; the refresh token in the body or in a cookie, as asked",
            body = TokenResponse,
            headers(
                ("Cache-Control" = String, description = "`no-store`"),
                ("Set-Cookie" = String, description = "`refresh_token=…; HttpOnly; Secure; SameSite=Strict; Path=/auth` in cookie delivery"),
            ),
            links(
                ("Refresh" = (operation_id = "refresh", request_body = json!({"refresh_token": "$response.body#/refresh_token"}))),
                ("Logout" = (operation_id = "logout", request_body = json!({"refresh_token": "$response.body#/refresh_token"}))),
                ("TokenEndpoint" = (operation_id = "token", request_body = json!({"grant_type": "refresh_token", "refresh_token": "$response.body#/refresh_token"}))),
                ("Revoke" = (operation_id = "revoke", request_body = json!({"token": "$response.body#/refresh_token"}))),
            )),
        (status = 400, response = BadRequest),
        (status = 401, description = "`invalid_credentials`: the same for an unknown e-mail and a wrong password", body = super::responses::ErrorBody),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = Unprocessable),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    )
)]
pub async fn login(state: web::Data<AppState>, req: HttpRequest, body: JsonBody) -> Handled {
    let client = client_ip(&req, &state.settings.http.trusted_proxies);
    rate_limits::hit(&state, Scope::Login, client).await?;
    let input: LoginRequest = body.parse()?;
    let email = parse_email(&input.email)?;
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

/// Rotates the refresh token (cookie, or `refresh_token` in the JSON body):
/// a new access token and the next refresh token, delivered as the
/// presented one came. Within the reuse grace a consumed token gets the very
/// successor again; after it, the session is revoked.
#[utoipa::path(
    post,
    path = "/auth/refresh",
    tag = "auth",
    request_body(content = Option<RefreshRequest>, description = "Body delivery; empty for the cookie"),
    security((), ("refresh_cookie" = [])),
    responses(
        (status = 200, description = "Rotated", body = TokenResponse,
            headers(("Cache-Control" = String, description = "`no-store`")),
            links(
                ("Refresh" = (operation_id = "refresh", request_body = json!({"refresh_token": "$response.body#/refresh_token"}))),
                ("Logout" = (operation_id = "logout", request_body = json!({"refresh_token": "$response.body#/refresh_token"}))),
                ("TokenEndpoint" = (operation_id = "token", request_body = json!({"grant_type": "refresh_token", "refresh_token": "$response.body#/refresh_token"}))),
                ("Revoke" = (operation_id = "revoke", request_body = json!({"token": "$response.body#/refresh_token"}))),
            )),
        (status = 400, response = BadRequest),
        (status = 401, description = "`invalid_grant`: missing, unknown, expired, revoked or reused", body = super::responses::ErrorBody),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = Unprocessable),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    )
)]
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

/// A public key of the JWKS (RFC 7517): Ed25519 (`OKP`). The document's
/// description of what `jsonwebtoken`'s `JwkSet` serialises (the schema
/// checks in CI hold the two together).
#[derive(Serialize, ToSchema)]
pub struct JwkView {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
}

#[derive(Serialize, ToSchema)]
pub struct JwksView {
    pub keys: Vec<JwkView>,
}

/// The keys that verify access tokens: the signing key and any retired
/// key whose tokens may still be alive.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "operations",
    responses((status = 200, description = "The JWKS", body = JwksView))
)]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=60"))
        .json(state.signing.jwks())
}

#[derive(Serialize, ToSchema)]
pub struct Status {
    /// `ok` (`/healthz`), `ready` (`/readyz`).
    pub status: &'static str,
}

/// The process is alive.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "Alive", body = Status))
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

/// Ready when the database answers.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Status),
        (status = 503, response = Unavailable),
    )
)]
pub async fn readyz(state: web::Data<AppState>) -> Handled {
    health::ready(&state.database).await?;
    Ok(HttpResponse::Ok().json(Status { status: "ready" }))
}

pub async fn not_found() -> Handled {
    Err(ApiError::NotFound("resource"))
}

pub async fn method_not_allowed() -> Handled {
    Err(ApiError::MethodNotAllowed)
}
