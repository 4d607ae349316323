//! Revoked sessions, learned in the background from the auth server's feed.
//!
//! The request path is one local lookup ([`Revocations::is_revoked`]) and a
//! freshness check; nothing on it touches the network. Each revoked session
//! is kept until no access token of it can still be valid (`forget_after`),
//! so memory is bounded by the revocations of one access-token lifetime.
//!
//! The state is fresh as of the last answer that said the reader has caught
//! up (`more = false`): a page of a longer read adds what it brings at once,
//! but proves nothing about what is still to come, so a feed that never
//! catches up ends, as it should, in failing closed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use shared_claims::feed::{FeedEntry, UserEntry};
use uuid::Uuid;

use crate::feed_client::{FeedClient, Position};
use crate::jwks::JwksCache;
use crate::settings::RevocationSettings;

/// Longest the auth server is asked to hold a poll.
const MAX_WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, Default)]
pub struct Revocations {
    revoked: RwLock<HashMap<Uuid, DateTime<Utc>>>,
    /// Per user, the roles version tokens must carry at least, and when the
    /// entry may be forgotten.
    users: RwLock<HashMap<Uuid, (i64, DateTime<Utc>)>>,
    last_success: Mutex<Option<Instant>>,
    last_error: Mutex<Option<String>>,
}

/// How current the revocation state is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    Fresh,
    /// `detail` is for the log: it holds the last error and how long ago
    /// the last sync was, which no client is told.
    Stale {
        detail: String,
    },
}

impl Revocations {
    pub fn is_revoked(&self, session_id: &Uuid) -> bool {
        self.revoked
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(session_id)
    }

    /// Whether a token of `user_id` issued under `roles_version` predates
    /// a change of the user's roles (or the user's deletion).
    pub fn is_outdated(&self, user_id: &Uuid, roles_version: i64) -> bool {
        self.users
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(user_id)
            .is_some_and(|&(least, _)| roles_version < least)
    }

    pub fn len(&self) -> usize {
        self.revoked.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Time since the last successful sync; `None` before the first.
    pub fn age(&self) -> Option<Duration> {
        self.last_success
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map(|at| at.elapsed())
    }

    pub fn freshness(&self, max_staleness: Duration) -> Freshness {
        let age = self.age();
        if age.is_some_and(|age| age <= max_staleness) {
            return Freshness::Fresh;
        }
        let error = self
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let cause = error.map(|e| format!(": {e}")).unwrap_or_default();
        Freshness::Stale {
            detail: match age {
                Some(age) => format!(
                    "revocation state is stale: last successful sync {}s ago (limit {}s){cause}",
                    age.as_secs(),
                    max_staleness.as_secs()
                ),
                None => format!("revocation state has not been synced yet{cause}"),
            },
        }
    }

    /// Adds entries; returns how many were new.
    pub(crate) fn apply(&self, entries: &[FeedEntry]) -> usize {
        let mut revoked = self.revoked.write().unwrap_or_else(|p| p.into_inner());
        entries
            .iter()
            .filter(|e| revoked.insert(e.session_id, e.forget_after).is_none())
            .count()
    }

    /// Adds user entries, keeping the highest version per user and the
    /// latest time to forget it; returns how many changed what we hold.
    pub(crate) fn apply_users(&self, entries: &[UserEntry]) -> usize {
        let mut users = self.users.write().unwrap_or_else(|p| p.into_inner());
        let mut changed = 0;
        for e in entries {
            let held = users.entry(e.user_id).or_insert((i64::MIN, e.forget_after));
            if e.roles_version > held.0 {
                held.0 = e.roles_version;
                changed += 1;
            }
            held.1 = held.1.max(e.forget_after);
        }
        changed
    }

    fn forget_expired(&self, now: DateTime<Utc>) {
        self.revoked
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, forget_after| *forget_after > now);
        self.users
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, (_, forget_after)| *forget_after > now);
    }

    pub(crate) fn synced(&self) {
        *self.last_success.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn failed(&self, error: String) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
    }
}

/// How long to ask the auth server to hold a poll: well inside the staleness
/// bound, since a held poll only counts as a sync when it returns.
fn long_poll_wait(max_staleness: Duration) -> Duration {
    (max_staleness / 3).min(MAX_WAIT)
}

/// Feed reads by outcome, for the user's metrics.
#[derive(Debug, Default)]
pub struct SyncCounts {
    /// Caught up: a successful sync.
    pub ok: AtomicU64,
    /// A page of a longer read.
    pub partial: AtomicU64,
    pub failed: AtomicU64,
}

impl SyncCounts {
    fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

pub struct Sync {
    pub revocations: Arc<Revocations>,
    pub counts: Arc<SyncCounts>,
    pub jwks: Arc<JwksCache>,
    /// The auth server's internal listener.
    pub auth_internal_url: String,
    pub token: SecretString,
    pub settings: RevocationSettings,
}

impl Sync {
    /// Pulls the feed until the task is aborted (when the guard is dropped).
    pub fn spawn(self) -> Result<tokio::task::JoinHandle<()>, String> {
        let wait = long_poll_wait(self.settings.max_staleness);
        let feed = FeedClient::new(
            &self.auth_internal_url,
            self.token.clone(),
            wait + Duration::from_secs(5),
        )?;
        Ok(tokio::spawn(async move { self.run(feed, wait).await }))
    }

    async fn run(self, feed: FeedClient, long_poll: Duration) {
        // Where we stand in the feed; `None` until the first answer.
        let mut position: Option<Position> = None;
        // The last answer was a page of a longer read: ask again at once.
        let mut more = false;
        loop {
            let started = Instant::now();
            // Only a reader that has caught up waits for news.
            let wait = if position.is_none() || more {
                Duration::ZERO
            } else {
                long_poll
            };
            let first = position.is_none();
            match feed.read(position.as_ref(), wait).await {
                Ok(answer) => {
                    let learned = self.revocations.apply(&answer.revocations)
                        + self.revocations.apply_users(&answer.users);
                    self.revocations.forget_expired(Utc::now());
                    let keys = self.jwks.keys();
                    if answer.kids.iter().any(|kid| keys.get(kid).is_none()) {
                        self.jwks.request_refetch();
                    }
                    if learned > 0 {
                        tracing::info!(sessions = learned, "learned of revoked sessions");
                    }
                    more = answer.more;
                    position = Some(Position {
                        cursor: answer.cursor,
                        seen: answer.held,
                    });
                    if more {
                        SyncCounts::count(&self.counts.partial);
                        continue;
                    }
                    SyncCounts::count(&self.counts.ok);
                    self.revocations.synced();
                    // After the first read, go straight into a long poll.
                    if learned > 0 || (first && !long_poll.is_zero()) {
                        continue;
                    }
                    // Nothing new, answered quickly (no long poll, or only
                    // entries we knew): keep to the interval.
                    tokio::time::sleep(
                        self.settings
                            .sync_interval
                            .saturating_sub(started.elapsed()),
                    )
                    .await;
                }
                Err(e) => {
                    SyncCounts::count(&self.counts.failed);
                    tracing::warn!(error = %e, "revocation sync failed");
                    if e.refused_cursor() {
                        // Start afresh; the set keeps what it has.
                        position = None;
                        more = false;
                    }
                    self.revocations.failed(e.to_string());
                    tokio::time::sleep(self.settings.sync_interval).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(forget_after: DateTime<Utc>) -> FeedEntry {
        FeedEntry {
            session_id: Uuid::new_v4(),
            revoked_at: Utc::now(),
            forget_after,
        }
    }

    #[test]
    fn entries_are_kept_until_their_tokens_must_have_expired() {
        let revocations = Revocations::default();
        let now = Utc::now();
        let old = entry(now - chrono::Duration::seconds(1));
        let live = entry(now + chrono::Duration::minutes(16));
        assert_eq!(revocations.apply(&[old, live]), 2);
        revocations.forget_expired(now);
        assert_eq!(revocations.len(), 1);
    }

    #[test]
    fn a_users_older_tokens_are_outdated_until_forgotten() {
        let revocations = Revocations::default();
        let now = Utc::now();
        let user = Uuid::new_v4();
        let entry = |roles_version, forget_after| UserEntry {
            user_id: user,
            roles_version,
            changed_at: now,
            forget_after,
        };
        let later = now + chrono::Duration::minutes(16);
        assert_eq!(
            revocations.apply_users(&[entry(2, later), entry(1, later)]),
            1
        );
        assert!(revocations.is_outdated(&user, 0));
        assert!(revocations.is_outdated(&user, 1));
        assert!(
            !revocations.is_outdated(&user, 2),
            "issued after the change"
        );
        assert!(!revocations.is_outdated(&Uuid::new_v4(), 0));
        assert_eq!(
            revocations.apply_users(&[entry(UserEntry::DELETED, later)]),
            1
        );
        assert!(revocations.is_outdated(&user, 2), "deleted: every token");
        revocations.forget_expired(later + chrono::Duration::seconds(1));
        assert!(!revocations.is_outdated(&user, 0));
    }

    #[test]
    fn the_feed_is_a_set() {
        let revocations = Revocations::default();
        let e = entry(Utc::now() + chrono::Duration::minutes(1));
        let again = e.clone();
        assert_eq!(revocations.apply(&[e]), 1);
        assert_eq!(revocations.apply(&[again]), 0);
    }

    #[test]
    fn freshness_follows_the_last_successful_sync() {
        let revocations = Revocations::default();
        assert!(matches!(
            revocations.freshness(Duration::from_secs(30)),
            Freshness::Stale { .. }
        ));
        revocations.synced();
        assert_eq!(
            revocations.freshness(Duration::from_secs(30)),
            Freshness::Fresh
        );
        revocations.failed("down".into());
        assert_eq!(
            revocations.freshness(Duration::from_secs(30)),
            Freshness::Fresh,
            "one failure within the bound"
        );
        match revocations.freshness(Duration::ZERO) {
            Freshness::Stale { detail } => assert!(detail.contains("down")),
            Freshness::Fresh => panic!("past the bound"),
        }
    }

    #[test]
    fn long_polls_stay_inside_the_staleness_bound() {
        assert_eq!(
            long_poll_wait(Duration::from_secs(30)),
            Duration::from_secs(10)
        );
        assert_eq!(long_poll_wait(Duration::from_secs(600)), MAX_WAIT);
        assert_eq!(long_poll_wait(Duration::from_secs(2)).as_secs(), 0);
    }
}
