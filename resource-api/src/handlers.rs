//! The example API's endpoints: the guard decides who is calling, the
//! handlers only answer.

use actix_web::{HttpResponse, web};
use chrono::SecondsFormat;
use resource_guard::actix_web::Authenticated;
use resource_guard::{Guard, Readiness, Refusal, StepUp, Unready};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::responses::{Forbidden, StepUpRequired, Unauthorized, Unavailable};

type Handled = Result<HttpResponse, ApiError>;

/// Who the access token speaks for.
#[derive(Serialize, ToSchema)]
pub struct Me<'a> {
    pub user_id: uuid::Uuid,
    pub email: &'a str,
    pub email_verified: bool,
    pub session_id: uuid::Uuid,
    pub roles: &'a [String],
    /// When the access token expires, RFC 3339 UTC.
    pub expires_at: Option<String>,
    /// How the user proved who they are (RFC 8176: `pwd`, `otp`, `hwk`,
    /// `user`, `mfa`); empty when the token does not say.
    pub amr: &'a [String],
    /// `aal1` (one factor) or `aal2` (two, or a passkey that verified its
    /// user); `aal1` when the token does not say.
    #[schema(example = "aal1")]
    pub acr: &'static str,
    /// When the user last proved a factor in this session, Unix seconds;
    /// `null` when the token does not say.
    #[schema(required = true)]
    pub auth_time: Option<i64>,
}

/// The caller, as its access token says.
#[utoipa::path(
    get,
    path = "/api/me",
    tag = "api",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = Me),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub async fn me(Authenticated(user): Authenticated) -> HttpResponse {
    let expires_at = user
        .expires_at()
        .map(|at| at.to_rfc3339_opts(SecondsFormat::Secs, true));
    HttpResponse::Ok().json(Me {
        user_id: user.user_id(),
        email: user.email(),
        email_verified: user.email_verified(),
        session_id: user.session_id(),
        roles: user.roles(),
        expires_at,
        amr: user.amr(),
        acr: user.acr().as_str(),
        auth_time: user.auth_time(),
    })
}

/// A caller who proved a second factor recently.
#[derive(Serialize, ToSchema)]
pub struct SteppedUp<'a> {
    pub user_id: uuid::Uuid,
    /// `aal2`.
    #[schema(example = "aal2")]
    pub acr: &'static str,
    pub amr: &'a [String],
    /// When the user last proved a factor, Unix seconds: within
    /// `STEP_UP_MAX_AGE` of now (never `null` in a `200`).
    #[schema(required = true)]
    pub auth_time: Option<i64>,
}

/// For a token whose `acr` is `aal2` and whose `auth_time` is within
/// `STEP_UP_MAX_AGE` (default 5 minutes).
#[utoipa::path(
    get,
    path = "/api/step-up",
    tag = "api",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller stepped up recently", body = SteppedUp),
        (status = 401, response = StepUpRequired),
        (status = 503, response = Unavailable),
    )
)]
pub async fn step_up(Authenticated(user): Authenticated, rule: web::Data<StepUp>) -> Handled {
    user.require_step_up(**rule)?;
    Ok(HttpResponse::Ok().json(SteppedUp {
        user_id: user.user_id(),
        acr: user.acr().as_str(),
        amr: user.amr(),
        auth_time: user.auth_time(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct Welcome {
    pub message: &'static str,
    pub user_id: uuid::Uuid,
}

/// For a token whose `roles` hold `admin`.
#[utoipa::path(
    get,
    path = "/api/admin",
    tag = "api",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Welcome", body = Welcome),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    )
)]
pub async fn admin(Authenticated(user): Authenticated) -> Handled {
    user.require_role("admin")?;
    Ok(HttpResponse::Ok().json(Welcome {
        message: "welcome, administrator",
        user_id: user.user_id(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct Status {
    /// `ok` (`/healthz`); `ready` or `degraded` (`/readyz`).
    pub status: &'static str,
    /// Why degraded (with `REVOCATION_FAIL_OPEN`), in fixed words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// The process is alive.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "Alive", body = Status))
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Status {
        status: "ok",
        reason: None,
    })
}

/// Ready when the keys are loaded and the revocation state is fresh.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready, or degraded (failing open)", body = Status),
        (status = 503, response = Unavailable),
    )
)]
// With
// `REVOCATION_FAIL_OPEN` a stale state is reported as degraded, not unready:
// taking the API out of rotation would defeat failing open. The answer is
// public, so it says why in fixed words only; figures are on the internal
// listener's `/metrics`, causes in the log.
pub async fn readyz(guard: web::Data<Guard>) -> Handled {
    match guard.readiness() {
        Readiness::Ready => Ok(HttpResponse::Ok().json(Status {
            status: "ready",
            reason: None,
        })),
        Readiness::Degraded { reason, detail } => {
            tracing::warn!(%detail, "ready, degraded (REVOCATION_FAIL_OPEN)");
            Ok(HttpResponse::Ok().json(Status {
                status: "degraded",
                reason: Some(reason.words()),
            }))
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
