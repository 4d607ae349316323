//! An example API protected by the auth server's access tokens, validated
//! locally: keys from the JWKS, revocations from a background sync.

pub mod auth;
pub mod config;
pub mod error;
pub mod feed_client;
pub mod handlers;
pub mod metrics;
pub mod revocations;
pub mod startup;
pub mod state;
pub mod verified;
