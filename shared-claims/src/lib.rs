//! What the auth server and the APIs it protects must agree on: the access
//! token's claims, the rules that validate it, the keys it is checked with
//! (and how a JWKS document becomes them), the RFC 6750 challenge, the error
//! body and its codes, and the revocation feed's wire types.
//!
//! Both sides depend on this crate so they cannot drift: the auth server
//! signs [`AccessClaims`] and checks its own Bearer endpoints with
//! [`Validator`]; resource APIs do the same through `resource-guard`, which
//! fetches the keys and the feed. It carries no web framework and does no
//! I/O; the `openapi` feature makes the error body a `utoipa` schema for the
//! services that publish an OpenAPI document.

pub mod assurance;
pub mod challenge;
mod claims;
pub mod error;
pub mod feed;
mod keys;
mod validate;

pub use claims::{ACCESS_TOKEN_TYP, AccessClaims};
pub use keys::{KeySet, VerificationKey};
pub use validate::{MAX_TOKEN_BYTES, TokenError, ValidationRules, Validator};
