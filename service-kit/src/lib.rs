//! What the two actix-web services share beyond the token rules, so they
//! cannot drift in what they log, send, measure, or allow across origins, nor
//! in how they read their configuration.
//!
//! The token rules themselves (claims, validation, keys, the revocation
//! feed's wire types) live in `shared-claims`, which carries no web
//! framework: a resource server on another framework needs only that.

pub mod cors;
pub mod duration;
pub mod env;
pub mod http_metrics;
pub mod probe;
pub mod security_headers;
pub mod shutdown;
pub mod telemetry;
