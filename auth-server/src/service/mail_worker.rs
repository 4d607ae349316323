//! The mail worker: a background task on every replica that takes due rows
//! of `mail_outbox` (`FOR UPDATE SKIP LOCKED`, so replicas share the work),
//! mints each mail's token on its first attempt (a fresh one, in place of
//! the last, on every later attempt), renders the link and sends it. The
//! token lives in memory for one attempt only; the database has its hash.
//!
//! Failed sends are retried with exponential backoff (1 s, doubling, at most
//! [`MAX_BACKOFF`]) until the link would be dead anyway (the token expired),
//! when the mail is dropped and the reason recorded on its row. The worker
//! is woken at once by a request that queued mail in this process, and
//! otherwise looks every [`POLL`] (mail queued by other replicas, retries
//! that fell due, leases that ran out).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures_util::future::join_all;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::accounts::email::Email;
use crate::config::{AccountSettings, MailSettings};
use crate::db::accounts::{self, Minted, NewToken};
use crate::db::email_tokens::{self, EmailTokenRow};
use crate::db::outbox::{self, OutboxRow};
use crate::db::{Database, DbError};
use crate::mail::message;
use crate::mail::notice::Notice;
use crate::mail::transport::Transport;
use crate::metrics::Metrics;
use crate::tokens::email::{EmailToken, Purpose};
use crate::tokens::refresh::TokenHash;

/// The longest sleep between looks at the queue.
pub const POLL: Duration = Duration::from_secs(5);
/// The first retry's delay; each later one doubles, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How long a notice is retried before it is dropped as stale.
const NOTICE_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Rows taken at once; they are sent concurrently.
const BATCH: i64 = 16;

pub struct MailWorker {
    pub database: Database,
    pub transport: Transport,
    pub mail: MailSettings,
    pub accounts: AccountSettings,
    pub wake: Arc<Notify>,
    pub metrics: Arc<Metrics>,
}

/// What became of one attempt, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Sent,
    Retrying,
    Dropped,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Retrying => "retrying",
            Self::Dropped => "dropped",
        }
    }
}

impl MailWorker {
    /// Runs until the runtime stops.
    pub fn spawn(self) {
        let worker = Arc::new(self);
        tokio::spawn(async move { worker.run().await });
    }

    async fn run(self: Arc<Self>) {
        loop {
            // Listen before looking, so mail queued meanwhile wakes us.
            let woken = self.wake.notified();
            match self.round().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(DbError::Stopped) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "mail worker: the queue could not be read; will retry")
                }
            }
            let sleep = self.until_next_due().await;
            tokio::select! {
                () = woken => {}
                () = tokio::time::sleep(sleep) => {}
            }
        }
    }

    /// One batch; `true` when it was full (more may be due).
    async fn round(&self) -> Result<bool, DbError> {
        let lease = self.mail.smtp_timeout * 3 + Duration::from_secs(60);
        let rows = self
            .database
            .run(move |conn| outbox::claim(conn, BATCH, lease))
            .await?;
        let full = rows.len() as i64 >= BATCH;
        for outcome in join_all(rows.into_iter().map(|row| self.deliver(row))).await {
            self.metrics
                .mail
                .with_label_values(&[outcome.as_str()])
                .inc();
        }
        Ok(full)
    }

    async fn until_next_due(&self) -> Duration {
        let next = self.database.run(outbox::next_due).await;
        match next {
            Ok(Some(due)) => (due - Utc::now()).to_std().unwrap_or_default().min(POLL),
            _ => POLL,
        }
    }

    async fn deliver(&self, row: OutboxRow) -> Outcome {
        let id = row.id;
        match self.attempt(&row).await {
            Ok(outcome) => outcome,
            Err(e) => {
                // The database failed mid-way: the lease brings the row back.
                tracing::warn!(outbox_id = %id, error = %e, "mail worker: attempt failed on the database");
                Outcome::Retrying
            }
        }
    }

    async fn attempt(&self, row: &OutboxRow) -> Result<Outcome, DbError> {
        // Queued only as an `Email`; a row from before addresses were
        // checked as they are now is not sent.
        let Ok(recipient) = Email::parse(&row.recipient) else {
            return self.drop_mail(row.id, "invalid_recipient").await;
        };
        if let Some(notice) = Notice::parse(&row.kind) {
            return self.send_notice(row, notice, &recipient).await;
        }
        let Some(purpose) = Purpose::parse(&row.kind) else {
            return self.drop_mail(row.id, "unknown_kind").await;
        };
        let Ok(token) = EmailToken::generate() else {
            // No randomness: send nothing; the row's lease brings it back.
            tracing::error!(outbox_id = %row.id, "mail not sent: the CSPRNG failed");
            return Ok(Outcome::Retrying);
        };
        let hash = token.hash();
        let token_row = match row.token_id {
            None => match self.mint(row, purpose, hash).await? {
                Minted::Token(token_row) => token_row,
                Minted::Dropped(reason) => {
                    tracing::info!(outbox_id = %row.id, kind = %row.kind, reason, "mail not sent");
                    return Ok(Outcome::Dropped);
                }
                Minted::Gone => return Ok(Outcome::Dropped),
            },
            // Another attempt: the fresh token replaces the last one, which
            // may have gone out before that attempt failed.
            Some(token_id) => {
                let reissued = self
                    .database
                    .run(move |conn| Ok(email_tokens::replace_hash(conn, token_id, &hash)?))
                    .await?;
                match reissued {
                    Some(token_row) => token_row,
                    // Used, superseded by a newer request, killed by a
                    // password change, or expired while the mail server
                    // was down.
                    None => return self.drop_mail(row.id, "token_unusable").await,
                }
            }
        };
        let link = message::link(&self.mail.public_url, purpose, &token);
        let ttl = self.ttl(purpose);
        let sent = match message::render(&self.mail.from, &recipient, purpose, &link, ttl) {
            Ok(message) => self.transport.send(message).await,
            Err(e) => Err(e),
        };
        match sent {
            Ok(()) => {
                let id = row.id;
                self.database
                    .run(move |conn| outbox::mark_sent(conn, id))
                    .await?;
                tracing::info!(outbox_id = %row.id, kind = %row.kind, "mail sent");
                Ok(Outcome::Sent)
            }
            Err(e) => self.retry(row, &token_row, &format!("{e:#}")).await,
        }
    }

    /// A notice has no token: sent as it is, retried with backoff for up to
    /// [`NOTICE_LIFETIME`] (past it the news is stale).
    async fn send_notice(
        &self,
        row: &OutboxRow,
        notice: Notice,
        recipient: &Email,
    ) -> Result<Outcome, DbError> {
        let sent = match notice.render(&self.mail.from, recipient) {
            Ok(message) => self.transport.send(message).await,
            Err(e) => Err(e),
        };
        let id = row.id;
        match sent {
            Ok(()) => {
                self.database
                    .run(move |conn| outbox::mark_sent(conn, id))
                    .await?;
                tracing::info!(outbox_id = %id, kind = %row.kind, "mail sent");
                Ok(Outcome::Sent)
            }
            Err(e) => {
                let due = Utc::now()
                    + chrono::Duration::from_std(backoff(row.attempts)).unwrap_or_default();
                let stale = row.created_at
                    + chrono::Duration::from_std(NOTICE_LIFETIME).unwrap_or_default();
                if due >= stale {
                    tracing::warn!(outbox_id = %id, attempts = row.attempts, error = %format!("{e:#}"), "notice given up");
                    return self.drop_mail(id, "undeliverable").await;
                }
                tracing::warn!(outbox_id = %id, attempts = row.attempts, error = %format!("{e:#}"), retry_at = %due, "mail not sent; will retry");
                let error = format!("{e:#}");
                self.database
                    .run(move |conn| outbox::retry_at(conn, id, due, &error))
                    .await?;
                Ok(Outcome::Retrying)
            }
        }
    }

    async fn mint(
        &self,
        row: &OutboxRow,
        purpose: Purpose,
        hash: TokenHash,
    ) -> Result<Minted, DbError> {
        let token = NewToken {
            id: Uuid::new_v4(),
            hash,
            ttl: self.ttl(purpose),
        };
        let outbox_id = row.id;
        let limit = self.mail.recipient_limit;
        self.database
            .run(move |conn| accounts::mint(conn, outbox_id, purpose, &token, limit))
            .await
    }

    async fn retry(
        &self,
        row: &OutboxRow,
        token: &EmailTokenRow,
        error: &str,
    ) -> Result<Outcome, DbError> {
        let due =
            Utc::now() + chrono::Duration::from_std(backoff(row.attempts)).unwrap_or_default();
        if due >= token.expires_at {
            tracing::warn!(outbox_id = %row.id, attempts = row.attempts, error, "mail given up: its link expires before another attempt");
            return self.drop_mail(row.id, "undeliverable").await;
        }
        tracing::warn!(outbox_id = %row.id, attempts = row.attempts, error, retry_at = %due, "mail not sent; will retry");
        let (id, error) = (row.id, error.to_owned());
        self.database
            .run(move |conn| outbox::retry_at(conn, id, due, &error))
            .await?;
        Ok(Outcome::Retrying)
    }

    async fn drop_mail(&self, id: Uuid, reason: &'static str) -> Result<Outcome, DbError> {
        self.database
            .run(move |conn| Ok(outbox::drop_mail(conn, id, reason)?))
            .await?;
        Ok(Outcome::Dropped)
    }

    fn ttl(&self, purpose: Purpose) -> Duration {
        match purpose {
            Purpose::PasswordReset => self.accounts.password_reset_ttl,
            Purpose::EmailVerify => self.accounts.email_verify_ttl,
        }
    }
}

/// The delay after the `attempts`-th failed attempt: 1 s, 2 s, 4 s, …, at
/// most [`MAX_BACKOFF`].
pub fn backoff(attempts: i32) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(16);
    (FIRST_BACKOFF * 2u32.pow(doublings)).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        let secs: Vec<u64> = (1..=12).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(backoff(0), FIRST_BACKOFF);
        assert_eq!(backoff(i32::MAX), MAX_BACKOFF);
    }
}
