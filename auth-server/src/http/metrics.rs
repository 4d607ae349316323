//! `GET /metrics`, in Prometheus's text format.

use actix_web::{HttpResponse, web};

use crate::error::ApiError;
use crate::state::AppState;

pub async fn endpoint(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let text = state
        .metrics
        .render(
            state.database.stats(),
            state.database.rotation_stats(),
            state.listen.connected(),
        )
        .map_err(|e| ApiError::unavailable(format!("rendering metrics: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(text))
}
