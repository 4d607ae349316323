//! The refusals every endpoint may answer with: the reusable error
//! responses of the OpenAPI document, each the contract's error body
//! (`shared_claims::error::ErrorBody`, the schema `Error`). Apart from
//! `openapi.rs`, which gathers the handlers, so that the handlers and the
//! document do not import each other.

use shared_claims::error::ErrorBody;
use utoipa::ToResponse;

#[derive(ToResponse)]
#[response(
    description = "No token, or a token that is malformed, badly signed, expired, for another audience or issuer, of a revoked session (a disabled or deleted user's included), or issued before a change of its user's roles (`invalid_token`)",
    headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"resource-api\"`, with `error=\"invalid_token\"` when a token was sent"))
)]
pub struct Unauthorized(pub ErrorBody<'static>);

#[derive(ToResponse)]
#[response(
    description = "No token or an invalid one (`invalid_token`, as on every route), or a token whose authentication is too weak or too old for this route (`insufficient_user_authentication`, RFC 9470): reauthenticate at the auth server and retry",
    headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"resource-api\"`, with `error=\"invalid_token\"` when a token was sent; for a step-up `error=\"insufficient_user_authentication\"`, `max_age=<STEP_UP_MAX_AGE in seconds>` and, when `aal2` is what is missing, `acr_values=\"aal2\"`"))
)]
pub struct StepUpRequired(pub ErrorBody<'static>);

#[derive(ToResponse)]
#[response(
    description = "The token lacks a role (`insufficient_scope`)",
    headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"resource-api\", error=\"insufficient_scope\"`"))
)]
pub struct Forbidden(pub ErrorBody<'static>);

#[derive(ToResponse)]
#[response(
    description = "Keys not loaded, or revocation state stale past `REVOCATION_MAX_STALENESS` (`unavailable`): the API fails closed",
    headers(("Retry-After" = String, description = "Seconds to wait"))
)]
pub struct Unavailable(pub ErrorBody<'static>);
