//! What the two actix-web services share beyond the token rules, so they
//! cannot drift in what they log, send, measure, or allow across origins, nor
//! in how they read their configuration.
//!
//! The token rules themselves (claims, validation, keys, the revocation
//! feed's wire types) live in `shared-claims`, which carries no web
//! framework. The configuration readers (`env`, `duration`) and the health
//! probe carry none either, so `resource-guard` reads the same variables the
//! same way without pulling in actix-web; the rest needs the `actix`
//! feature.

pub mod duration;
pub mod env;
pub mod probe;
pub mod secret_strength;

#[cfg(feature = "actix")]
pub mod cors;
#[cfg(feature = "actix")]
pub mod http_metrics;
#[cfg(feature = "actix")]
pub mod security_headers;
#[cfg(feature = "actix")]
pub mod shutdown;
#[cfg(feature = "actix")]
pub mod telemetry;
