//! What answers a request no route takes: the contract's JSON `404` for an
//! unknown path and `405` for a known path with another method, rather than
//! actix's empty bodies.

use super::Handled;
use crate::error::ApiError;

pub async fn not_found() -> Handled {
    Err(ApiError::NotFound("resource"))
}

pub async fn method_not_allowed() -> Handled {
    Err(ApiError::MethodNotAllowed)
}
