//! The failed-login throttle around a login (and around the current
//! password of a change, which is as good a guess): checked before the
//! password, charged for a failure, cleared for the client by a success,
//! and for the account's strangers by a completed reset (the rules:
//! [`crate::limits::login_throttle`]; the statements: [`crate::db::login_throttle`]).

use std::sync::Arc;
use std::time::Duration;

use super::ServiceError;
use crate::db;
use crate::db::login_throttle::{Memory, Subject};
use crate::limits::client_key::ClientKey;
use crate::limits::login_throttle::{self, KNOWN_CLIENT_LIFETIME, Limit, STRANGERS_MEMORY};
use crate::state::AppState;
use crate::tokens::keys::TokenKeys;

/// Domain of the account key under the token key ring: the table holds
/// this HMAC, so a copy of it cannot be checked against a list of
/// addresses to learn which were tried.
const ACCOUNT_KEY_DOMAIN: &str = "login-throttle account";

/// A login attempt the throttle let through to the password check.
#[derive(Debug)]
pub struct Admitted {
    subject: Subject,
    limit: Limit,
    known: bool,
}

/// Rule 1, before the password is checked (a refused attempt costs no
/// hashing and reveals nothing): `Throttled` when this client or, for a
/// client the account does not know, the account's strangers have failed
/// too often. `None` when the throttle is off. The same for every address,
/// whether or not a user has it.
pub async fn admit(
    state: &AppState,
    email: &str,
    client: Option<ClientKey>,
) -> Result<Option<Admitted>, ServiceError> {
    let Some(limit) = state.settings.rate_limits.account else {
        return Ok(None);
    };
    let limit = Limit {
        failures: limit.requests,
        window: limit.per,
    };
    let subject = Subjects::new(state, client).of(email);
    let standing = {
        let subject = subject.clone();
        state
            .database
            .run(move |conn| db::login_throttle::standing(conn, &subject, KNOWN_CLIENT_LIFETIME))
            .await?
    };
    login_throttle::check(limit, &standing).map_err(throttled)?;
    Ok(Some(Admitted {
        subject,
        limit,
        known: standing.known,
    }))
}

impl Admitted {
    /// Rule 2: counts the failure (one statement for both buckets).
    /// `Throttled` when the failure came after others had already closed
    /// the door: the guess raced past the check, and gets its answer.
    pub async fn failed(self, state: &AppState) -> Result<(), ServiceError> {
        let Self {
            subject,
            limit,
            known,
        } = self;
        let (after, previous) = state
            .database
            .run(move |conn| {
                let memory = Memory {
                    client: limit.window,
                    strangers: STRANGERS_MEMORY.max(limit.window),
                };
                db::login_throttle::record_failure(conn, &subject, known, memory)
            })
            .await?;
        login_throttle::raced_past(limit, &after, &previous).map_err(throttled)
    }

    /// Rule 3: the client becomes known to the account and its failures are
    /// forgotten; unless failures that raced this attempt closed the door
    /// meanwhile, when the correct password gets the throttle's answer.
    pub async fn succeeded(self, state: &AppState) -> Result<(), ServiceError> {
        let Self { subject, limit, .. } = self;
        state
            .database
            .run(move |conn| {
                let standing = db::login_throttle::standing(conn, &subject, KNOWN_CLIENT_LIFETIME)?;
                match login_throttle::check(limit, &standing) {
                    Ok(()) => db::login_throttle::record_success(conn, &subject).map(Ok),
                    Err(wait) => Ok(Err(wait)),
                }
            })
            .await?
            .map_err(throttled)
    }
}

/// How a client's attempts on any account are keyed, for the throttle's
/// statements (see [`Subject`]).
#[derive(Clone)]
pub struct Subjects {
    token_keys: Arc<TokenKeys>,
    client: String,
}

impl Subjects {
    pub fn new(state: &AppState, client: Option<ClientKey>) -> Self {
        Self {
            token_keys: Arc::clone(&state.token_keys),
            // Without a peer address (not over TCP) every such request is
            // one client: the throttle still holds.
            client: client.map_or_else(|| "unknown".to_owned(), |c| c.to_string()),
        }
    }

    /// The attempt on the account of `email` (normalised).
    pub fn of(&self, email: &str) -> Subject {
        Subject {
            account: self.token_keys.derive(ACCOUNT_KEY_DOMAIN, email.as_bytes()),
            client: self.client.clone(),
        }
    }
}

/// What a completed reset tells the throttle about its client (see
/// [`db::login_throttle::reset_completed`]); `None` when the throttle is
/// off.
pub fn for_reset(state: &AppState, client: Option<ClientKey>) -> Option<Subjects> {
    state
        .settings
        .rate_limits
        .account
        .map(|_| Subjects::new(state, client))
}

fn throttled(wait: Duration) -> ServiceError {
    tracing::info!(
        audit = "login_throttled",
        retry_after_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
        "login refused: too many failures"
    );
    ServiceError::Throttled(wait)
}
