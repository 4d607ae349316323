//! The per-client limits every replica shares (`LOGIN_RATE_LIMIT` on login,
//! register and password changes; `MAIL_REQUEST_RATE_LIMIT` on the requests
//! that send mail; [`RESOURCE_SERVER_FAILURES`] on failed authentications
//! at `/oauth/introspect`), counted in PostgreSQL ([`crate::db::rate_limits`]) so
//! that N replicas still enforce the configured limit, not N times it.
//!
//! The price is one statement per limited request, on requests that already
//! cost a password hash or a mail. Refresh keeps its per-replica limit in
//! memory ([`crate::limits::replica_limiter`]): it is the hot path, and a shared count
//! would add a round trip to every rotation for a limit that only guards
//! against floods (a refresh guesses nothing: its token has 256 bits).
//!
//! A database that does not answer is a `503`, never a request let through
//! uncounted.

use std::net::IpAddr;
use std::time::Duration;

use super::ServiceError;
use crate::db;
use crate::db::rate_limits::Gcra;
use crate::limits::RateLimit;
use crate::limits::client_key::ClientKey;
use crate::state::AppState;

/// Failed authentications at `/oauth/introspect` per client and minute
/// (the contract's figure): resource servers hold the right token, so only
/// a guesser or a misconfigured server fails, and neither needs more.
pub const RESOURCE_SERVER_FAILURES: RateLimit = RateLimit {
    requests: 20,
    per: Duration::from_secs(60),
};

/// Which shared limit a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Login, register and password changes (`LOGIN_RATE_LIMIT`).
    Login,
    /// Forgot-password and resend-verification (`MAIL_REQUEST_RATE_LIMIT`).
    MailRequests,
    /// Wrong or missing `INTERNAL_API_TOKEN` at introspection
    /// ([`RESOURCE_SERVER_FAILURES`]).
    ResourceServerFailures,
}

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::MailRequests => "mail_requests",
            Self::ResourceServerFailures => "resource_server_failures",
        }
    }

    fn limit(self, state: &AppState) -> Option<RateLimit> {
        let limits = &state.settings.rate_limits;
        match self {
            Self::Login => limits.login,
            Self::MailRequests => limits.mail_requests,
            Self::ResourceServerFailures => Some(RESOURCE_SERVER_FAILURES),
        }
    }
}

/// A resource server's authentication at introspection, `authenticated`
/// or not, under [`RESOURCE_SERVER_FAILURES`]: a failure is counted, and a
/// client past the limit is refused, whatever it sends, until its wait is
/// over (remembered in this process: [`crate::limits::replica_limiter::Refusals`]), so
/// guesses stop being checked at all. A success costs no round trip.
pub async fn resource_server(
    state: &AppState,
    client: Option<IpAddr>,
    authenticated: bool,
) -> Result<(), ServiceError> {
    let Some(ip) = client else {
        return Ok(());
    };
    let key = ClientKey::of(ip);
    if let Some(wait) = state.resource_server_refusals.wait(key) {
        return Err(ServiceError::RateLimited(wait));
    }
    if authenticated {
        return Ok(());
    }
    hit(state, Scope::ResourceServerFailures, client)
        .await
        .inspect_err(|e| {
            if let ServiceError::RateLimited(wait) = e {
                tracing::warn!(client = %key, "introspection: too many failed authentications from one client");
                state.resource_server_refusals.refuse(key, *wait);
            }
        })
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
