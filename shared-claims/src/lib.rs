//! What the auth server and the APIs it protects must agree on: the access
//! token's claims, the rules that validate it, the keys it is checked with,
//! the RFC 6750 challenge and error body, the revocation feed, and how
//! either is fetched from the auth server.
//!
//! Both services depend on this crate so the two sides cannot drift: the auth
//! server signs [`AccessClaims`] and checks its own Bearer endpoints with
//! [`Validator`]; resource APIs do the same with keys fetched by [`jwks`].
//! It carries no web framework.

pub mod challenge;
mod claims;
pub mod feed;
pub mod fetch;
pub mod jwks;
mod keys;
mod validate;

pub use claims::{ACCESS_TOKEN_TYP, AccessClaims};
pub use keys::{KeySet, VerificationKey};
pub use validate::{MAX_TOKEN_BYTES, TokenError, ValidationRules, Validator};
