//! `Authorization: Bearer` for the auth server's own endpoints, validated by
//! the same `shared-claims` routine the resource APIs use, plus a check that
//! the session is still live (the auth server sees revocations at once).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::http::header::Header as _;
use actix_web::{FromRequest, HttpRequest, web};
use actix_web_httpauth::headers::authorization::{Authorization, Bearer};
use shared_claims::AccessClaims;

use service_kit::telemetry::record_identity;

use crate::error::ApiError;
use crate::service::sessions;
use crate::state::AppState;

/// The validated claims of the request's access token.
pub struct Authenticated(pub AccessClaims);

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token_sent = req.headers().contains_key(header::AUTHORIZATION);
        let token = Authorization::<Bearer>::parse(req)
            .ok()
            .map(|a| a.into_scheme().token().to_string());
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no app state")))?;
            let invalid = |description: &str| ApiError::InvalidToken {
                description: description.to_owned(),
                token_sent,
            };
            let Some(token) = token else {
                return Err(invalid(if token_sent {
                    "the Authorization header is not a Bearer token"
                } else {
                    "missing bearer token"
                }));
            };
            let keys = state.signing.ring();
            let claims = state
                .validator
                .validate(&token, keys.verification_keys())
                .map_err(|e| invalid(&e.to_string()))?;
            if !sessions::is_live(&state.database, claims.sid, claims.roles_version()).await? {
                return Err(invalid(&shared_claims::TokenError::Revoked.to_string()));
            }
            record_identity(claims.sub, claims.sid);
            Ok(Self(claims))
        })
    }
}
