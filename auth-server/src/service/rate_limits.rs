//! The per-client limits every replica shares (`LOGIN_RATE_LIMIT` on login,
//! register and password changes; `MAIL_REQUEST_RATE_LIMIT` on the requests
//! that send mail), counted in PostgreSQL ([`crate::db::rate_limits`]) so
//! that N replicas still enforce the configured limit, not N times it.
//!
//! The price is one statement per limited request, on requests that already
//! cost a password hash or a mail. Refresh keeps its per-replica limit in
//! memory ([`crate::rate_limit`]): it is the hot path, and a shared count
//! would add a round trip to every rotation for a limit that only guards
//! against floods (a refresh guesses nothing: its token has 256 bits).
//!
//! A database that does not answer is a `503`, never a request let through
//! uncounted.

use std::net::IpAddr;

use super::ServiceError;
use crate::client_key::ClientKey;
use crate::config::RateLimit;
use crate::db;
use crate::db::rate_limits::Gcra;
use crate::state::AppState;

/// Which shared limit a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Login, register and password changes (`LOGIN_RATE_LIMIT`).
    Login,
    /// Forgot-password and resend-verification (`MAIL_REQUEST_RATE_LIMIT`).
    MailRequests,
}

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::MailRequests => "mail_requests",
        }
    }

    fn limit(self, state: &AppState) -> Option<RateLimit> {
        let limits = &state.settings.rate_limits;
        match self {
            Self::Login => limits.login,
            Self::MailRequests => limits.mail_requests,
        }
    }
}

/// Counts one request of `client` against `scope`'s limit; `RateLimited`
/// with the wait when the client's budget is spent. Without a limit, or
/// without a peer address (not over TCP), nothing is counted.
pub async fn hit(
    state: &AppState,
    scope: Scope,
    client: Option<IpAddr>,
) -> Result<(), ServiceError> {
    let (Some(limit), Some(ip)) = (scope.limit(state), client) else {
        return Ok(());
    };
    let gcra = Gcra::new(limit.requests, limit.per);
    let key = ClientKey::of(ip).to_string();
    state
        .database
        .run(move |conn| db::rate_limits::hit(conn, scope.name(), &key, gcra))
        .await?
        .map_err(ServiceError::RateLimited)
}
