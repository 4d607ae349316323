//! Thin handlers of the standard endpoints (what they mean:
//! [`crate::service::oauth`]): RFC 8414 metadata, the token endpoint's
//! `refresh_token` grant, RFC 7009 revocation and RFC 7662 introspection.
//! Their errors are RFC 6749 §5.2 bodies, which are the contract's.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;
use utoipa::ToSchema;

use super::Handled;
use super::client::{Client, limit_client};
use super::delivery::{Delivery, issued_response, no_store};
use super::form::{FormBody, required};
use super::internal::authorized;
use super::responses::{BadRequest, PayloadTooLarge, RateLimited, Unauthorized, Unavailable};
use crate::error::ApiError;
use crate::service::oauth::{self, Introspection, Metadata};
use crate::service::rate_limits;
use crate::state::AppState;

/// The authorization server metadata (RFC 8414).
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "oauth",
    responses((status = 200, description = "The metadata", body = Metadata))
)]
pub async fn metadata(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=60"))
        .json(oauth::metadata(&state))
}

/// The token request (RFC 6749 §6), form-encoded.
#[derive(Deserialize, ToSchema)]
pub struct TokenRequest {
    /// `refresh_token`, the only grant here.
    #[schema(required = true, value_type = String, example = "refresh_token")]
    pub grant_type: Option<String>,
    #[schema(required = true, value_type = String)]
    pub refresh_token: Option<String>,
    /// A public client may name itself; not checked.
    pub client_id: Option<String>,
    /// Ignored: access tokens carry the user's roles.
    pub scope: Option<String>,
}

/// The `refresh_token` grant: the rotation of `/auth/refresh` (grace and
/// reuse detection alike), the next refresh token always in the body,
/// errors as RFC 6749 §5.2 (`400`), under the refresh endpoint's
/// per-client limit.
#[utoipa::path(
    post,
    path = "/oauth/token",
    tag = "oauth",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Rotated (RFC 6749 §5.1)", body = super::delivery::TokenResponse,
            headers(("Cache-Control" = String, description = "`no-store`")),
            links(
                ("Refresh" = (operation_id = "refresh", request_body = json!({"refresh_token": "$response.body#/refresh_token"}))),
                ("Logout" = (operation_id = "logout", request_body = json!({"refresh_token": "$response.body#/refresh_token"}))),
                ("TokenEndpoint" = (operation_id = "token", request_body = json!({"grant_type": "refresh_token", "refresh_token": "$response.body#/refresh_token"}))),
                ("Revoke" = (operation_id = "revoke", request_body = json!({"token": "$response.body#/refresh_token"}))),
            )),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    )
)]
pub async fn token(state: web::Data<AppState>, client: Client, form: FormBody) -> Handled {
    limit_client(state.refresh_limiter.as_deref(), &client)?;
    let input: TokenRequest = form.parse()?;
    if required(input.grant_type, "grant_type")? != "refresh_token" {
        return Err(ApiError::UnsupportedGrantType);
    }
    let refresh_token = required(input.refresh_token, "refresh_token")?;
    let issued = oauth::refresh_grant(&state, &refresh_token, client.info())
        .await
        .map_err(|refused| ApiError::from_token_grant(refused.error))?;
    Ok(issued_response(&state, &issued, Delivery::Body))
}

/// A revocation or introspection request (RFC 7009 §2.1, RFC 7662 §2.1),
/// form-encoded.
#[derive(Deserialize, ToSchema)]
pub struct TokenHintRequest {
    /// A refresh token or an access token.
    #[schema(required = true, value_type = String)]
    pub token: Option<String>,
    /// `refresh_token` or `access_token`; not needed (the two cannot be
    /// mistaken for each other), accepted.
    pub token_type_hint: Option<String>,
    /// A public client may name itself; not checked.
    pub client_id: Option<String>,
}

/// Revocation (RFC 7009): a refresh token ends its session (as a logout);
/// an access token too, when its signature verifies. `200` for any
/// well-formed request, whatever the token was.
#[utoipa::path(
    post,
    path = "/oauth/revoke",
    tag = "oauth",
    request_body(content = TokenHintRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Done (or nothing to do)"),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 503, response = Unavailable),
    )
)]
pub async fn revoke(state: web::Data<AppState>, client: Client, form: FormBody) -> Handled {
    let input: TokenHintRequest = form.parse()?;
    let token = required(input.token, "token")?;
    oauth::revoke(&state, &token, client.info()).await?;
    let mut response = HttpResponse::Ok();
    no_store(&mut response);
    Ok(response.finish())
}

/// A resource server, authenticated by `INTERNAL_API_TOKEN` as a Bearer
/// token (compared in constant time), failures limited per client
/// ([`rate_limits::resource_server`]). Extracted before the form, so a
/// stranger learns nothing about what it sent.
pub struct ResourceServer;

impl FromRequest for ResourceServer {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let Some(state) = req.app_data::<web::Data<AppState>>() else {
                return Err(ApiError::Internal(anyhow::anyhow!("no app state")));
            };
            let authenticated = authorized(&req, state);
            let client = Client::of(&req, &state.settings.http.trusted_proxies);
            rate_limits::resource_server(state, client.ip, authenticated).await?;
            if authenticated {
                return Ok(Self);
            }
            let token_sent = req
                .headers()
                .contains_key(actix_web::http::header::AUTHORIZATION);
            Err(ApiError::InvalidToken {
                description: if token_sent {
                    "the resource server's token is invalid".to_owned()
                } else {
                    "missing bearer token".to_owned()
                },
                token_sent,
            })
        })
    }
}

/// Introspection (RFC 7662), for resource servers: `{"active": false}`
/// alone for a revoked, expired or unknown token; revocations show at once.
/// Past 20 failed authentications a minute, a client is answered `429`.
#[utoipa::path(
    post,
    path = "/oauth/introspect",
    tag = "oauth",
    request_body(content = TokenHintRequest, content_type = "application/x-www-form-urlencoded"),
    security(("resource_server" = [])),
    responses(
        (status = 200, description = "What the token is", body = Introspection,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 413, response = PayloadTooLarge),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    )
)]
pub async fn introspect(
    state: web::Data<AppState>,
    _caller: ResourceServer,
    req: HttpRequest,
    payload: web::Payload,
) -> Handled {
    // Read only once the caller is known: extractors are polled together,
    // and a bad body must not answer before a failed authentication does.
    let form = FormBody::from_request(&req, &mut payload.into_inner()).await?;
    let input: TokenHintRequest = form.parse()?;
    let token = required(input.token, "token")?;
    let answer = oauth::introspect(&state, &token).await?;
    let mut response = HttpResponse::Ok();
    no_store(&mut response);
    Ok(response.json(answer))
}
