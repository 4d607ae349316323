//! The example API's endpoints: the guard decides who is calling, the
//! handlers only answer.

use actix_web::{HttpResponse, web};
use chrono::SecondsFormat;
use resource_guard::actix_web::Authenticated;
use resource_guard::{Guard, Readiness, Refusal, Unready};

use crate::error::ApiError;
use crate::metrics::Metrics;

type Handled = Result<HttpResponse, ApiError>;

pub async fn me(Authenticated(user): Authenticated) -> HttpResponse {
    let expires_at = user
        .expires_at()
        .map(|at| at.to_rfc3339_opts(SecondsFormat::Secs, true));
    HttpResponse::Ok().json(serde_json::json!({
        "user_id": user.user_id(),
        "email": user.email(),
        "email_verified": user.email_verified(),
        "session_id": user.session_id(),
        "roles": user.roles(),
        "expires_at": expires_at,
    }))
}

pub async fn admin(Authenticated(user): Authenticated) -> Handled {
    user.require_role("admin")?;
    Ok(HttpResponse::Ok().json(
        serde_json::json!({ "message": "welcome, administrator", "user_id": user.user_id() }),
    ))
}

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// Ready when the keys are loaded and the revocation state is fresh. With
/// `REVOCATION_FAIL_OPEN` a stale state is reported as degraded, not unready:
/// taking the API out of rotation would defeat failing open. The answer is
/// public, so it says why in fixed words only; figures are on the internal
/// listener's `/metrics`, causes in the log.
pub async fn readyz(guard: web::Data<Guard>) -> Handled {
    match guard.readiness() {
        Readiness::Ready => Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ready" }))),
        Readiness::Degraded { reason, detail } => {
            tracing::warn!(%detail, "ready, degraded (REVOCATION_FAIL_OPEN)");
            Ok(HttpResponse::Ok().json(serde_json::json!({
                "status": "degraded",
                "reason": reason.words(),
            })))
        }
        Readiness::NotReady { reason, detail } => {
            Err(guard.refuse(Refusal::Unavailable { reason, detail }).into())
        }
    }
}

/// `GET /metrics`, in Prometheus's text format.
pub async fn metrics(guard: web::Data<Guard>, metrics: web::Data<Metrics>) -> Handled {
    let text = metrics.render(guard.stats()).map_err(|e| {
        guard.refuse(Refusal::Unavailable {
            reason: Unready::Internal,
            detail: format!("rendering metrics: {e}"),
        })
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
