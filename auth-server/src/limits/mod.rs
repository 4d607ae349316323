//! What slows a client down: who the client is ([`proxies`] decide its
//! address, [`client_key`] what counts as one client), the configured
//! rate ([`rate`]), the per-replica limit kept in memory
//! ([`replica_limiter`]) and the failed-login throttle's rules
//! ([`login_throttle`]). The limits every replica shares are counted in
//! PostgreSQL: [`crate::db::rate_limits`], [`crate::service::rate_limits`].

pub mod client_key;
pub mod login_throttle;
pub mod proxies;
pub mod rate;
pub mod replica_limiter;

pub use rate::{RateLimit, parse_rate_limit};
