//! Protect your own API with the auth server's access tokens.
//!
//! A [`Guard`] is started once with its [`GuardSettings`] (from the same
//! environment variables as the contract's resource API). It keeps the auth
//! server's signing keys (from its JWKS) and the revoked sessions (from its
//! revocation feed, long-polled) in memory, refreshed by two background
//! tasks, so [`Guard::authenticate`] makes no network call: the token is
//! validated locally with `shared-claims` (algorithm pinned to the key,
//! `typ` `at+jwt`, issuer, audience, `exp`/`nbf` with leeway), or found in a
//! bounded cache of tokens already verified; its session must not be
//! revoked; and the revocation state must be fresh, else the guard fails
//! closed (`503`) unless set to fail open.
//!
//! The guard knows no web framework. With the `actix-web` feature,
//! [`actix_web::Authenticated`] is an extractor; with `axum`,
//! [`axum::Authenticated`] is one. Both answer a refusal the same way
//! ([`GuardError::answer`]): `401` with an RFC 6750 challenge, `403
//! insufficient_scope` for a missing role, `503 unavailable` with
//! `Retry-After`, and the contract's body `{"error", "error_description"}`.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use resource_guard::{Guard, GuardSettings};
//!
//! let guard = Guard::start(GuardSettings::from_env()?)?;
//! // For each request, with the token of its `Authorization: Bearer` header:
//! match guard.authenticate(Some("eyJ…")) {
//!     Ok(user) => tracing::info!(user = %user.user_id(), session = %user.session_id(), "allowed"),
//!     Err(refused) => tracing::info!(status = refused.status(), "refused"),
//! }
//! # Ok(())
//! # }
//! ```

mod bearer;
mod error;
pub mod feed_client;
mod fetch;
mod guard;
pub mod jwks;
mod principal;
mod revocations;
mod settings;
mod verified;

#[cfg(feature = "actix-web")]
pub mod actix_web;
#[cfg(feature = "axum")]
pub mod axum;

pub use error::{Answer, GuardError, Refusal, Unready};
pub use guard::{Guard, GuardStats, Readiness, StartError};
pub use principal::Principal;
pub use service_kit::env::ConfigError;
pub use settings::{DEFAULT_VERIFIED_TOKENS, GuardSettings, JwksRefresh, RevocationSettings};
pub use shared_claims::{AccessClaims, TokenError};
