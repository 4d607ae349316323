//! The answers every handler may give besides its own: the reusable error
//! responses of the OpenAPI document, each the contract's error body
//! (`shared_claims::error::ErrorBody`, the schema `Error`). Apart from
//! `openapi.rs`, which gathers the handlers, so that handlers and the
//! document do not import each other.

use serde::Serialize;
pub use shared_claims::error::ErrorBody;
use utoipa::{ToResponse, ToSchema};

/// The request is malformed (RFC 6749 §5.2 `invalid_request`,
/// `invalid_grant`, `unsupported_grant_type` on the OAuth endpoints).
#[derive(ToResponse)]
#[response(
    description = "Malformed request (`invalid_request`), or on the OAuth endpoints a refused grant (`invalid_grant`) or another grant type (`unsupported_grant_type`)"
)]
pub struct BadRequest(pub ErrorBody<'static>);

#[derive(ToResponse)]
#[response(
    description = "Missing, invalid or revoked credentials (`invalid_token` for a Bearer token)",
    headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"auth-server\"`, with `error=\"invalid_token\"` when a token was sent"))
)]
pub struct Unauthorized(pub ErrorBody<'static>);

#[derive(ToResponse)]
#[response(
    description = "Refused: `forbidden_origin`, `invalid_credentials` (password change), `email_not_verified`, `account_disabled` (login: the right password of a disabled account), `mfa_required` (login: the right password of a user with a second factor; the body adds `mfa_token` and `methods`)"
)]
pub struct Forbidden(pub ErrorBody<'static>);

/// An administration endpoint refused.
#[derive(ToResponse)]
#[response(
    description = "Refused: `insufficient_scope` (the token's roles do not hold `admin`), `forbidden_origin`",
    headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"auth-server\", error=\"insufficient_scope\"` for `insufficient_scope`"))
)]
pub struct AdminForbidden(pub ErrorBody<'static>);

#[derive(ToResponse)]
#[response(description = "`not_found`")]
pub struct NotFound(pub ErrorBody<'static>);

#[derive(ToResponse)]
#[response(description = "`email_taken`, `already_verified`")]
pub struct Conflict(pub ErrorBody<'static>);

/// The change would leave no enabled administrator.
#[derive(ToResponse)]
#[response(
    description = "`last_admin`: the last enabled admin cannot be disabled, deleted or lose `admin`"
)]
pub struct AdminConflict(pub ErrorBody<'static>);

#[derive(ToResponse)]
#[response(description = "The body is over 64 KiB (`payload_too_large`)")]
pub struct PayloadTooLarge(pub ErrorBody<'static>);

#[derive(ToResponse)]
#[response(description = "A field is wrong (`invalid_request`, the field named)")]
pub struct Unprocessable(pub ErrorBody<'static>);

#[derive(ToResponse)]
#[response(
    description = "Too many requests from this client (`rate_limited`)",
    headers(("Retry-After" = String, description = "Seconds to wait"))
)]
pub struct RateLimited(pub ErrorBody<'static>);

#[derive(ToResponse)]
#[response(
    description = "The database or a dependency is down (`unavailable`)",
    headers(("Retry-After" = String, description = "Seconds to wait"))
)]
pub struct Unavailable(pub ErrorBody<'static>);

/// `{}`: accepted, nothing to say.
#[derive(Serialize, ToSchema)]
pub struct Empty {}
