//! Bearer authentication: local validation through `shared-claims`, then the
//! revocation check, with no network call.

use actix_web::dev::ServiceRequest;
use actix_web::http::header;
use actix_web::{Error, HttpMessage, web};
use actix_web_httpauth::extractors::bearer::BearerAuth;
use shared_claims::{AccessClaims, TokenError};

use crate::error::{ApiError, Unready};
use crate::revocations::Freshness;
use crate::state::ApiState;

/// Who a request's token says is calling, or why it is refused.
pub fn authenticate(
    state: &ApiState,
    token: Option<&str>,
    header_sent: bool,
) -> Result<AccessClaims, ApiError> {
    let invalid = |description: String| ApiError::InvalidToken {
        description,
        token_sent: header_sent,
    };
    let Some(token) = token else {
        return Err(invalid(
            if header_sent {
                "the Authorization header is not a Bearer token"
            } else {
                "missing bearer token"
            }
            .to_owned(),
        ));
    };
    let keys = state.jwks.keys();
    if keys.is_empty() {
        return Err(ApiError::Unavailable {
            reason: Unready::KeysNotLoaded,
            detail: "no JWKS fetched yet".to_owned(),
        });
    }
    let now = chrono::Utc::now().timestamp();
    let claims = match state.verified.get(token, &keys, now) {
        Some(claims) => claims,
        None => {
            let claims = state.validator.validate(token, &keys).map_err(|e| {
                if matches!(e, TokenError::UnknownKey { .. }) {
                    // Maybe a new key: the background task refetches (rate-limited).
                    state.jwks.request_refetch();
                }
                invalid(e.to_string())
            })?;
            state
                .verified
                .insert(token, std::sync::Arc::clone(&keys), claims.clone());
            claims
        }
    };
    let revocation = &state.settings.revocation;
    if let Freshness::Stale { detail } = state.revocations.freshness(revocation.max_staleness) {
        if !revocation.fail_open {
            return Err(ApiError::Unavailable {
                reason: Unready::RevocationsStale,
                detail,
            });
        }
        tracing::warn!(%detail, "accepting a token without fresh revocation state (REVOCATION_FAIL_OPEN)");
    }
    if state.revocations.is_revoked(&claims.sid) {
        return Err(invalid(TokenError::Revoked.to_string()));
    }
    Ok(claims)
}

/// The validator of actix-web-httpauth's middleware: puts the claims in the
/// request's extensions for handlers to take as `ReqData<AccessClaims>`.
/// `Option` so that a missing header reaches us and gets the contract's body.
pub async fn bearer_validator(
    req: ServiceRequest,
    credentials: Option<BearerAuth>,
) -> Result<ServiceRequest, (Error, ServiceRequest)> {
    let Some(state) = req.app_data::<web::Data<ApiState>>().cloned() else {
        return Err((
            ApiError::Unavailable {
                reason: Unready::Internal,
                detail: "the application state is not configured".to_owned(),
            }
            .into(),
            req,
        ));
    };
    let header_sent = req.headers().contains_key(header::AUTHORIZATION);
    match authenticate(
        &state,
        credentials.as_ref().map(BearerAuth::token),
        header_sent,
    ) {
        Ok(claims) => {
            service_kit::telemetry::record_identity(claims.sub, claims.sid);
            req.extensions_mut().insert(claims);
            Ok(req)
        }
        Err(e) => Err((e.into(), req)),
    }
}
