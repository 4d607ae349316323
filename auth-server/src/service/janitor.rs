//! The janitor: deletes what can no longer matter, so the tables do not grow
//! without bound (the deletions themselves are [`crate::db::sweep`]).

use std::time::Duration;

use crate::db::sweep::{self, Retention, Swept};
use crate::db::{Database, DbError};

/// Sweeps every `interval` on the blocking pool until the process ends.
pub fn spawn(database: Database, interval: Duration, retention: Retention) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let result = database
                .run(move |conn| sweep::expired(conn, &retention))
                .await;
            match result {
                Ok(swept) if swept != Swept::default() => {
                    tracing::info!(
                        refresh_tokens = swept.refresh_tokens,
                        sessions = swept.sessions,
                        failure_buckets = swept.failure_buckets,
                        rate_buckets = swept.rate_buckets,
                        known_login_clients = swept.known_login_clients,
                        audit_events = swept.audit_events,
                        email_tokens = swept.email_tokens,
                        mail_outbox = swept.mail_outbox,
                        mfa_tokens = swept.mfa_tokens,
                        webauthn_challenges = swept.webauthn_challenges,
                        feed_events = swept.feed_events,
                        "janitor swept expired rows"
                    );
                }
                Ok(_) => {}
                Err(DbError::Stopped) => return,
                Err(e) => tracing::warn!(error = %e, "janitor sweep failed; will retry"),
            }
        }
    });
}
