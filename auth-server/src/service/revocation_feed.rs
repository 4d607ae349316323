//! The revocation feed resource APIs pull revoked session ids from (how it
//! pages: [`crate::db::revocations`]). With a wait, a long poll: held until
//! a revocation appears or the wait ends, so revocations reach the APIs in
//! milliseconds instead of a polling interval.

use std::time::Duration;

use chrono::Utc;
use shared_claims::feed::{Feed, FeedEntry, UserEntry};

use super::ServiceError;
use crate::db;
use crate::state::AppState;
use crate::tokens::feed_cursor::{Cursor, Span};

/// Longest a long poll is held: below common proxy idle timeouts.
pub const MAX_WAIT: Duration = Duration::from_secs(25);
/// How often a held poll re-reads the database anyway. Revocations wake it
/// at once: this replica's own directly, other replicas' through
/// PostgreSQL's NOTIFY ([`crate::db::notifications`]); the re-read covers a
/// notification lost while the LISTEN connection was down.
const RECHECK: Duration = Duration::from_millis(250);
/// Kept past the last possible access-token expiry: clock skew between the
/// services, and signing that happens just after a concurrent revocation.
const FORGET_MARGIN: Duration = Duration::from_secs(60);

/// The next page from `cursor` (from the start without one). A reader that
/// has caught up (`Cursor::Caught`) and asks to `wait` is held (at most
/// [`MAX_WAIT`]) until the revocations it covers are no longer the `seen`
/// it was told of.
pub async fn read(
    state: &AppState,
    cursor: Option<Cursor>,
    seen: i64,
    wait: Duration,
) -> Result<Feed, ServiceError> {
    let wait = wait.min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    let tokens = &state.settings.tokens;
    let window = chrono::Duration::from_std(tokens.access_ttl + tokens.leeway + FORGET_MARGIN)
        .unwrap_or_else(|_| chrono::Duration::days(1));

    // The answer lists the published keys: a change is news too, whether it
    // comes while the poll is held or came after the reader's last answer
    // (given at its cursor's `since` plus the window).
    let stale_kids =
        |since: &chrono::DateTime<Utc>| state.signing.kids_changed_at() > *since + window;
    if let (Some(Cursor::Caught { span, since }), false) = (&cursor, wait.is_zero())
        && !stale_kids(since)
    {
        let kids = state.signing.published_kids();
        loop {
            // Listen before looking, so a revocation between the two wakes us.
            let revoked = state.revocations.notified();
            let reloaded = state.keys_reloaded.notified();
            let (span, since) = (span.clone(), *since);
            let count = state
                .database
                .run(move |conn| db::revocations::count_since(conn, &span, since))
                .await?;
            if count != seen || state.signing.published_kids() != kids {
                break;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                break;
            }
            tokio::select! {
                () = revoked => {}
                () = reloaded => {}
                () = tokio::time::sleep(RECHECK.min(deadline - now)) => {}
            }
        }
    }

    // Revocations older than an access token's lifetime (and margins) no
    // longer matter: their sessions' tokens have all expired.
    let since = Utc::now() - window;
    let from = cursor.unwrap_or(Cursor::Caught {
        span: Span::everything(),
        since,
    });
    let page = state
        .database
        .run(move |conn| db::revocations::read(conn, &from, since))
        .await?;
    let mut revocations = Vec::new();
    let mut users = Vec::new();
    for r in page.revocations {
        let forget_after = r.revoked_at + window;
        match (r.session_id, r.user_id, r.roles_version) {
            (_, Some(user_id), Some(roles_version)) => users.push(UserEntry {
                user_id,
                roles_version,
                changed_at: r.revoked_at,
                forget_after,
            }),
            (Some(session_id), _, _) => revocations.push(FeedEntry {
                session_id,
                revoked_at: r.revoked_at,
                forget_after,
            }),
            // The table's CHECK makes every row one or the other.
            _ => {}
        }
    }
    Ok(Feed {
        revocations,
        cursor: page.next.encode(),
        more: page.more,
        held: page.held,
        // Every key published, the next one included: an API that lacks one
        // refetches the JWKS now, long before that key signs.
        kids: state.signing.published_kids(),
        users,
    })
}
