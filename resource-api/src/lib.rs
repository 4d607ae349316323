//! An example API protected by the auth server's access tokens through
//! `resource-guard`: the guard validates them locally (keys from the JWKS,
//! revocations from a background sync); this crate adds only its routes,
//! its listeners and its metrics.

pub mod config;
pub mod error;
pub mod handlers;
pub mod metrics;
pub mod openapi;
pub mod responses;
pub mod startup;
