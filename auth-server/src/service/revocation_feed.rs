//! The revocation feed resource APIs pull revoked session ids from (the
//! cursor's design is in [`crate::db::revocations`]). With a wait, a long
//! poll: held until a revocation appears or the wait ends, so revocations
//! reach the APIs in milliseconds instead of a polling interval.

use std::time::Duration;

use chrono::Utc;
use shared_claims::feed::{Feed, FeedEntry};

use super::ServiceError;
use crate::db;
use crate::state::AppState;

/// Longest a long poll is held: below common proxy idle timeouts.
pub const MAX_WAIT: Duration = Duration::from_secs(25);
/// How often a held poll re-reads the database, for revocations made by
/// other replicas (this replica's own wake it at once).
const RECHECK: Duration = Duration::from_millis(250);
/// Kept past the last possible access-token expiry: clock skew between the
/// services, and signing that happens just after a concurrent revocation.
const FORGET_MARGIN: Duration = Duration::from_secs(60);

/// The revocations from `cursor` on. With a `cursor` and a `wait`, waits
/// (at most [`MAX_WAIT`]) until more than `seen` of them are visible.
pub async fn read(
    state: &AppState,
    cursor: Option<i64>,
    seen: i64,
    wait: Duration,
) -> Result<Feed, ServiceError> {
    let wait = wait.min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    let tokens = &state.settings.tokens;
    let window = tokens.access_ttl + tokens.leeway + FORGET_MARGIN;

    if let (Some(cursor), false) = (cursor, wait.is_zero()) {
        loop {
            // Listen before looking, so a revocation between the two wakes us.
            let revoked = state.revocations.notified();
            if state
                .database
                .run(move |conn| db::revocations::count_since(conn, cursor))
                .await?
                > seen
            {
                break;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                break;
            }
            tokio::select! {
                () = revoked => {}
                () = tokio::time::sleep(RECHECK.min(deadline - now)) => {}
            }
        }
    }

    let since = Utc::now()
        - chrono::Duration::from_std(window).unwrap_or_else(|_| chrono::Duration::days(1));
    let page = state
        .database
        .run(move |conn| db::revocations::read(conn, cursor, since))
        .await?;
    let forget = chrono::Duration::from_std(window).unwrap_or_else(|_| chrono::Duration::days(1));
    Ok(Feed {
        revocations: page
            .revocations
            .into_iter()
            .map(|r| FeedEntry {
                session_id: r.session_id,
                revoked_at: r.revoked_at,
                forget_after: r.revoked_at + forget,
            })
            .collect(),
        cursor: page.cursor.to_string(),
        more: page.more,
        held: page.held,
        kids: vec![state.signing.kid().to_owned()],
    })
}
