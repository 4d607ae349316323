//! A small axum service protected by `resource-guard`: the guard is the
//! router's state, and a handler that takes [`Authenticated`] runs only for
//! a request whose bearer token the guard accepted. Refusals (`401`, `403`,
//! `503`) are the guard's, in the contract's shape.

use axum::routing::get;
use axum::{Json, Router};
use resource_guard::axum::Authenticated;
use resource_guard::{Guard, GuardError};
use serde_json::{Value, json};

pub fn router(guard: Guard) -> Router {
    Router::new()
        .route("/hello", get(hello))
        .route("/admin", get(admin))
        .with_state(guard)
}

async fn hello(Authenticated(user): Authenticated) -> Json<Value> {
    Json(json!({ "user_id": user.user_id(), "email": user.email() }))
}

async fn admin(Authenticated(user): Authenticated) -> Result<Json<Value>, GuardError> {
    user.require_role("admin")?;
    Ok(Json(json!({ "message": "welcome, administrator" })))
}
