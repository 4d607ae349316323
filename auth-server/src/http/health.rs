//! Liveness and readiness, for orchestrators and load balancers.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::Handled;
use super::responses::Unavailable;
use crate::service::health;
use crate::state::AppState;

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
