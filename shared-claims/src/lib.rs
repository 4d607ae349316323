//! What the auth server and the APIs it protects must agree on: the access
//! token's claims, the rules that validate it, and the keys it is checked with.
//!
//! Both services depend on this crate so the two sides cannot drift: the auth
//! server signs [`AccessClaims`] and checks its own Bearer endpoints with
//! [`Validator`]; resource APIs do the same with keys fetched by [`jwks`].

pub mod challenge;
mod claims;
mod duration;
pub mod env;
pub mod headers;
pub mod jwks;
mod keys;
pub mod probe;
#[cfg(feature = "actix")]
pub mod service;
mod validate;

pub use claims::{ACCESS_TOKEN_TYP, AccessClaims};
pub use duration::{DurationError, parse_duration};
pub use keys::{KeySet, VerificationKey};
pub use validate::{MAX_TOKEN_BYTES, TokenError, ValidationRules, Validator};
