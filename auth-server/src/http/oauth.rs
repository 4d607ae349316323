//! Thin handlers of the standard endpoints (what they mean:
//! [`crate::service::oauth`]): RFC 8414 metadata, the token endpoint's
//! `refresh_token` grant, RFC 7009 revocation and RFC 7662 introspection.
//! Their errors are RFC 6749 §5.2 bodies, which are the contract's.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};

use super::client::{client_info, client_ip};
use super::delivery::{Delivery, no_store, token_response};
use super::form::FormBody;
use super::handlers::{Handled, limit_client};
use super::internal::authorized;
use crate::error::ApiError;
use crate::service::oauth;
use crate::state::AppState;

pub async fn metadata(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=60"))
        .json(oauth::metadata(&state))
}

/// `POST /oauth/token`: the `refresh_token` grant, under the refresh
/// endpoint's per-client limit.
pub async fn token(state: web::Data<AppState>, req: HttpRequest, form: FormBody) -> Handled {
    let client = client_ip(&req, &state.settings.http.trusted_proxies);
    limit_client(state.refresh_limiter.as_deref(), client)?;
    if form.required("grant_type")? != "refresh_token" {
        return Err(ApiError::UnsupportedGrantType);
    }
    let refresh_token = form.required("refresh_token")?;
    let issued = oauth::refresh_grant(&state, refresh_token, client_info(&req, client))
        .await
        .map_err(|refused| ApiError::from_token_grant(refused.error))?;
    Ok(token_response(
        &issued,
        Delivery::Body,
        state.settings.tokens.access_ttl.as_secs(),
        state.settings.http.cookie_secure,
    ))
}

/// `POST /oauth/revoke`: `200` for any well-formed request, whatever the
/// token was (RFC 7009 §2.2).
pub async fn revoke(state: web::Data<AppState>, req: HttpRequest, form: FormBody) -> Handled {
    let token = form.required("token")?;
    let client = client_ip(&req, &state.settings.http.trusted_proxies);
    oauth::revoke(&state, token, client_info(&req, client)).await?;
    let mut response = HttpResponse::Ok();
    no_store(&mut response);
    Ok(response.finish())
}

/// A resource server, authenticated by `INTERNAL_API_TOKEN` as a Bearer
/// token (compared in constant time). Extracted before the form, so a
/// stranger learns nothing about what it sent.
pub struct ResourceServer;

impl FromRequest for ResourceServer {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(state) = req.app_data::<web::Data<AppState>>() else {
            return ready(Err(ApiError::Internal(anyhow::anyhow!("no app state"))));
        };
        if authorized(req, state) {
            return ready(Ok(Self));
        }
        let token_sent = req
            .headers()
            .contains_key(actix_web::http::header::AUTHORIZATION);
        ready(Err(ApiError::InvalidToken {
            description: if token_sent {
                "the resource server's token is invalid".to_owned()
            } else {
                "missing bearer token".to_owned()
            },
            token_sent,
        }))
    }
}

/// `POST /oauth/introspect`, for resource servers.
pub async fn introspect(
    state: web::Data<AppState>,
    _caller: ResourceServer,
    form: FormBody,
) -> Handled {
    let token = form.required("token")?;
    let answer = oauth::introspect(&state, token).await?;
    let mut response = HttpResponse::Ok();
    no_store(&mut response);
    Ok(response.json(answer))
}
