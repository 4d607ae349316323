//! Thin handlers that issue a user's tokens: login with a password, and the
//! refresh token's rotation (the OAuth `refresh_token` grant is the same
//! rotation, in `oauth.rs`).

use actix_web::{HttpRequest, web};
use service_kit::telemetry::record_identity;

use super::Handled;
use super::body::JsonBody;
use super::client::{Client, limit_client};
use super::delivery::{Delivery, TokenResponse, issued_response, removal_cookie};
use super::input::{LoginRequest, RefreshRequest, check_password, parse_email, presented_token};
use super::responses::{
    BadRequest, Forbidden, PayloadTooLarge, RateLimited, Unavailable, Unprocessable,
};
use crate::error::ApiError;
use crate::service::rate_limits::{self, Scope};
use crate::service::{accounts, refresh};
use crate::state::AppState;

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
pub async fn login(state: web::Data<AppState>, client: Client, body: JsonBody) -> Handled {
    rate_limits::hit(&state, Scope::Login, client.ip).await?;
    let input: LoginRequest = body.parse()?;
    let email = parse_email(&input.email)?;
    check_password(&input.password)?;
    let delivery = input.refresh_token_delivery.unwrap_or(Delivery::Cookie);
    let issued =
        accounts::login(&state, email, input.password, client.info(), client.key()).await?;
    record_identity(issued.user_id, issued.session_id);
    Ok(issued_response(&state, &issued, delivery))
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
pub async fn refresh(
    state: web::Data<AppState>,
    req: HttpRequest,
    client: Client,
    body: JsonBody,
) -> Handled {
    limit_client(state.refresh_limiter.as_deref(), &client)?;
    let (token, delivery) = presented_token(&req, &body)?;
    let secure = state.settings.http.cookie_secure;
    match refresh::refresh(&state, token.as_deref(), client.info()).await {
        Ok(issued) => Ok(issued_response(&state, &issued, delivery)),
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
