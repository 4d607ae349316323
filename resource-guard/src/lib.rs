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
//! insufficient_scope` for a missing role, `401
//! insufficient_user_authentication` with RFC 9470's challenge for a
//! missing step-up, `503 unavailable` with `Retry-After`, and the
//! contract's body `{"error", "error_description"}`.
//!
//! A route demands more of the caller in its handler, whichever the
//! framework: [`Principal::require_role`] (`403` without the role), and
//! [`Principal::require_step_up`] with a [`StepUp`] (an [`Aal`] and a max
//! age since the user last proved a factor, `auth_time`): a token below
//! the level, or older than the max age, is answered with the challenge
//! that tells the client to reauthenticate (`max_age=…`, and
//! `acr_values="aal2"` when the level is what is missing).
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//!
//! use resource_guard::{Aal, Guard, GuardSettings, StepUp};
//!
//! let guard = Guard::start(GuardSettings::from_env()?)?;
//! // For each request, with the token of its `Authorization: Bearer` header:
//! match guard.authenticate(Some("eyJ…")) {
//!     Ok(user) => tracing::info!(user = %user.user_id(), session = %user.session_id(), "allowed"),
//!     Err(refused) => tracing::info!(status = refused.status(), "refused"),
//! }
//!
//! // A route for a second factor proven in the last five minutes:
//! const RECENT_AAL2: StepUp = StepUp {
//!     acr: Some(Aal::Aal2),
//!     max_age: Some(Duration::from_secs(300)),
//! };
//! let user = guard.authenticate(Some("eyJ…"))?;
//! if let Err(refused) = user.require_step_up(RECENT_AAL2) {
//!     // 401, `WWW-Authenticate: Bearer realm="…",
//!     // error="insufficient_user_authentication", …, max_age=300`.
//!     tracing::info!(status = refused.status(), "step-up needed");
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
pub use shared_claims::assurance::{Aal, Insufficient, StepUp};
pub use shared_claims::{AccessClaims, TokenError};
