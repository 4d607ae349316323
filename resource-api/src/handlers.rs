//! The example API's endpoints.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, SecondsFormat};
use shared_claims::AccessClaims;

use crate::error::{ApiError, Unready};
use crate::metrics::Gauges;
use crate::revocations::Freshness;
use crate::state::ApiState;

type Handled = Result<HttpResponse, ApiError>;

pub async fn me(claims: web::ReqData<AccessClaims>) -> HttpResponse {
    let expires_at = DateTime::from_timestamp(claims.exp, 0)
        .map(|at| at.to_rfc3339_opts(SecondsFormat::Secs, true));
    HttpResponse::Ok().json(serde_json::json!({
        "user_id": claims.sub,
        "email": claims.email,
        "email_verified": claims.email_verified,
        "session_id": claims.sid,
        "roles": claims.roles,
        "expires_at": expires_at,
    }))
}

pub async fn admin(claims: web::ReqData<AccessClaims>) -> Handled {
    if !claims.has_role("admin") {
        return Err(ApiError::InsufficientScope("admin"));
    }
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({ "message": "welcome, administrator", "user_id": claims.sub })))
}

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// Ready when the keys are loaded and the revocation state is fresh. With
/// `REVOCATION_FAIL_OPEN` a stale state is reported as degraded, not unready:
/// taking the API out of rotation would defeat failing open. The answer is
/// public, so it says why in fixed words only; figures are on the internal
/// listener's `/metrics`, causes in the log.
pub async fn readyz(state: web::Data<ApiState>) -> Handled {
    if !state.jwks.is_loaded() {
        return Err(ApiError::Unavailable {
            reason: Unready::KeysNotLoaded,
            detail: "no JWKS fetched yet".to_owned(),
        });
    }
    let revocation = &state.settings.revocation;
    match state.revocations.freshness(revocation.max_staleness) {
        Freshness::Fresh => Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ready" }))),
        Freshness::Stale { detail } if revocation.fail_open => {
            tracing::warn!(%detail, "ready, degraded (REVOCATION_FAIL_OPEN)");
            Ok(HttpResponse::Ok().json(serde_json::json!({
                "status": "degraded",
                "reason": Unready::RevocationsStale.words(),
            })))
        }
        Freshness::Stale { detail } => Err(ApiError::Unavailable {
            reason: Unready::RevocationsStale,
            detail,
        }),
    }
}

/// `GET /metrics`, in Prometheus's text format.
pub async fn metrics(state: web::Data<ApiState>) -> Handled {
    let now = Gauges {
        sync_age: state.revocations.age(),
        revoked_sessions: state.revocations.len(),
        jwks_keys: state.jwks.keys().len(),
    };
    let text = state
        .metrics
        .render(now)
        .map_err(|e| ApiError::Unavailable {
            reason: Unready::Internal,
            detail: format!("rendering metrics: {e}"),
        })?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(text))
}

pub async fn not_found() -> Handled {
    Err(ApiError::NotFound)
}

pub async fn method_not_allowed() -> Handled {
    Err(ApiError::MethodNotAllowed)
}
