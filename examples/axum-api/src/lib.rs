//! A small axum service protected by `resource-guard`: the guard is the
//! router's state, and a handler that takes [`Authenticated`] runs only for
//! a request whose bearer token the guard accepted; a route that demands
//! more (a role, a recent second factor) says so in one line. Refusals
//! (`401`, `403`, `503`) are the guard's, in the contract's shape.

use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use resource_guard::axum::Authenticated;
use resource_guard::{Aal, Guard, GuardError, StepUp};
use serde_json::{Value, json};

/// What `/step-up` demands: a second factor, proven in the last five
/// minutes.
const RECENT_AAL2: StepUp = StepUp {
    acr: Some(Aal::Aal2),
    max_age: Some(Duration::from_secs(300)),
};

pub fn router(guard: Guard) -> Router {
    Router::new()
        .route("/hello", get(hello))
        .route("/admin", get(admin))
        .route("/step-up", get(step_up))
        .with_state(guard)
}

async fn hello(Authenticated(user): Authenticated) -> Json<Value> {
    Json(json!({ "user_id": user.user_id(), "email": user.email() }))
}

async fn admin(Authenticated(user): Authenticated) -> Result<Json<Value>, GuardError> {
    user.require_role("admin")?;
    Ok(Json(json!({ "message": "welcome, administrator" })))
}

/// `401 insufficient_user_authentication`, with RFC 9470's challenge, for
/// a token below `aal2` or proven longer than five minutes ago.
async fn step_up(Authenticated(user): Authenticated) -> Result<Json<Value>, GuardError> {
    user.require_step_up(RECENT_AAL2)?;
    Ok(Json(
        json!({ "acr": user.acr().as_str(), "auth_time": user.auth_time() }),
    ))
}
