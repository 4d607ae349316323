//! Revoked sessions, learned in the background from the auth server's feed.
//!
//! The request path is one local lookup ([`Revocations::is_revoked`]) and a
//! freshness check; nothing on it touches the network. Each revoked session
//! is kept until no access token of it can still be valid (`forget_after`),
//! so memory is bounded by the revocations of one access-token lifetime.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use shared_claims::feed::{FEED_PATH, Feed, FeedEntry};
use shared_claims::jwks::JwksCache;
use uuid::Uuid;

use crate::config::RevocationSettings;

/// Largest feed answer accepted (10 000 entries are about 1.5 MB).
const MAX_FEED_BYTES: usize = 4 * 1024 * 1024;
/// Longest the auth server is asked to hold a poll.
const MAX_WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, Default)]
pub struct Revocations {
    revoked: RwLock<HashMap<Uuid, DateTime<Utc>>>,
    last_success: Mutex<Option<Instant>>,
    last_error: Mutex<Option<String>>,
}

/// How current the revocation state is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    Fresh,
    Stale { why: String },
}

impl Revocations {
    pub fn is_revoked(&self, session_id: &Uuid) -> bool {
        self.revoked
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(session_id)
    }

    pub fn len(&self) -> usize {
        self.revoked.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Time since the last successful sync; `None` before the first.
    pub fn age(&self) -> Option<Duration> {
        self.last_success
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map(|at| at.elapsed())
    }

    pub fn freshness(&self, max_staleness: Duration) -> Freshness {
        let error = self
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let cause = error.map(|e| format!(": {e}")).unwrap_or_default();
        match self.age() {
            Some(age) if age <= max_staleness => Freshness::Fresh,
            Some(age) => Freshness::Stale {
                why: format!(
                    "revocation state is stale: last successful sync {}s ago (limit {}s){cause}",
                    age.as_secs(),
                    max_staleness.as_secs()
                ),
            },
            None => Freshness::Stale {
                why: format!("revocation state has not been synced yet{cause}"),
            },
        }
    }

    /// Adds entries; returns how many were new.
    fn apply(&self, entries: &[FeedEntry]) -> usize {
        let mut revoked = self.revoked.write().unwrap_or_else(|p| p.into_inner());
        entries
            .iter()
            .filter(|e| revoked.insert(e.session_id, e.forget_after).is_none())
            .count()
    }

    fn forget_expired(&self, now: DateTime<Utc>) {
        self.revoked
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, forget_after| *forget_after > now);
    }

    fn synced(&self) {
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

pub struct Sync {
    pub revocations: Arc<Revocations>,
    /// `revocation_syncs_total`, by outcome.
    pub outcomes: prometheus::IntCounterVec,
    pub jwks: Arc<JwksCache>,
    pub auth_url: String,
    pub token: SecretString,
    pub settings: RevocationSettings,
}

impl Sync {
    /// Pulls the feed until the process ends.
    pub fn spawn(self) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        let wait = long_poll_wait(self.settings.max_staleness);
        let client = reqwest::Client::builder()
            .timeout(wait + Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(2))
            .build()?;
        Ok(tokio::spawn(async move { self.run(client, wait).await }))
    }

    async fn run(self, client: reqwest::Client, wait: Duration) {
        // The feed's cursor, and how many entries at or past it we hold.
        let mut cursor: Option<(String, i64)> = None;
        loop {
            let started = Instant::now();
            // The first read returns at once (there is nothing to wait for);
            // later ones are long polls.
            let wait_secs = if cursor.is_some() { wait.as_secs() } else { 0 };
            match self.fetch(&client, cursor.as_ref(), wait_secs).await {
                Ok(feed)
                    if !feed.cursor.bytes().all(|b| b.is_ascii_digit())
                        || feed.cursor.is_empty() =>
                {
                    self.revocations
                        .failed("the revocation feed sent a malformed cursor".to_owned());
                    tokio::time::sleep(self.settings.sync_interval).await;
                }
                Ok(feed) => {
                    self.outcomes.with_label_values(&["ok"]).inc();
                    let learned = self.revocations.apply(&feed.revocations);
                    self.revocations.synced();
                    self.revocations.forget_expired(Utc::now());
                    let keys = self.jwks.keys();
                    if feed.kids.iter().any(|kid| keys.get(kid).is_none()) {
                        self.jwks.request_refetch();
                    }
                    if learned > 0 {
                        tracing::info!(sessions = learned, "learned of revoked sessions");
                    }
                    // After the first read, go straight into a long poll.
                    let first = cursor.is_none() && !wait.is_zero();
                    cursor = Some((feed.cursor, feed.held));
                    if feed.more || learned > 0 || first {
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
                    self.outcomes.with_label_values(&["failed"]).inc();
                    tracing::warn!(error = %e, "revocation sync failed");
                    self.revocations.failed(e);
                    tokio::time::sleep(self.settings.sync_interval).await;
                }
            }
        }
    }

    async fn fetch(
        &self,
        client: &reqwest::Client,
        cursor: Option<&(String, i64)>,
        wait_secs: u64,
    ) -> Result<Feed, String> {
        let mut url = format!("{}{FEED_PATH}?wait={wait_secs}", self.auth_url);
        if let Some((cursor, seen)) = cursor {
            url.push_str(&format!("&cursor={cursor}&seen={seen}"));
        }
        let response = client
            .get(&url)
            .bearer_auth(self.token.expose_secret())
            .send()
            .await
            .map_err(|e| format!("the auth server did not answer: {}", e.without_url()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("the auth server answered {status}"));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("reading the feed: {}", e.without_url()))?;
        if body.len() > MAX_FEED_BYTES {
            return Err("the revocation feed answer is too large".to_owned());
        }
        serde_json::from_slice(&body)
            .map_err(|e| format!("the revocation feed does not parse: {e}"))
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
        assert!(!revocations.is_empty());
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
            Freshness::Stale { why } => assert!(why.contains("down")),
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
