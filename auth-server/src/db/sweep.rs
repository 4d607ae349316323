//! The janitor's deletions: refresh tokens of the previous version past
//! their expiry (a replay of one is then simply unknown, which it would be
//! refused as anyway; sessions no longer write that table, so it empties as
//! the old tokens expire, and a later release drops it), sessions
//! past retention, failed-login buckets whose window has passed (they would
//! start over anyway), rate buckets whose arrival time has passed (an empty
//! budget's row says no more than no row), login clients not seen for long,
//! audit events past `AUDIT_RETENTION`, e-mail tokens spent or expired, mail
//! sent or dropped, and feed entries of deleted users or roles changes past
//! the sessions' retention, so the tables do not grow without bound.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::Timestamptz;

use super::DbResult;

/// Rows deleted per statement: short transactions, short locks.
const BATCH: usize = 5_000;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub refresh_tokens: usize,
    pub sessions: usize,
    pub failure_buckets: usize,
    pub rate_buckets: usize,
    pub known_login_clients: usize,
    pub audit_events: usize,
    pub email_tokens: usize,
    pub mail_outbox: usize,
    pub feed_events: usize,
    pub mfa_tokens: usize,
    pub webauthn_challenges: usize,
}

/// How long what the janitor deletes stays useful.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Sessions, after they expire or are revoked.
    pub sessions: Duration,
    /// Failed-login buckets, after their last failure.
    pub failure_buckets: Duration,
    /// Login clients, after their last success.
    pub known_login_clients: Duration,
    /// Audit events, after they happened (`AUDIT_RETENTION`).
    pub audit_events: Duration,
}

/// Deletes refresh tokens past their expiry, and what has outlived its
/// [`Retention`].
pub fn expired(conn: &mut PgConnection, retention: &Retention) -> DbResult<Swept> {
    let now = Utc::now();
    let before = |retention: Duration| {
        chrono::Duration::from_std(retention)
            .ok()
            .and_then(|r| now.checked_sub_signed(r))
            .unwrap_or(now)
    };
    // Batched through a LIMITed subquery: short statements, short locks.
    let tokens = format!(
        "DELETE FROM refresh_tokens WHERE id IN (SELECT id FROM refresh_tokens WHERE expires_at <= $1 LIMIT {BATCH})"
    );
    // Revoked sessions are kept for the retention too: the revocation feed
    // and the sessions' audit trail read them.
    let sessions = format!(
        "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE expires_at <= $1 OR revoked_at <= $1 LIMIT {BATCH})"
    );
    let buckets = format!(
        "DELETE FROM failure_buckets WHERE (scope, key) IN (SELECT scope, key FROM failure_buckets WHERE last_failure_at <= $1 LIMIT {BATCH})"
    );
    // No index on `tat` (see the migration): each batch scans the table,
    // which holds at most the clients seen within one limit's window.
    let rate_buckets = format!(
        "DELETE FROM rate_buckets WHERE (scope, key) IN (SELECT scope, key FROM rate_buckets WHERE tat <= $1 LIMIT {BATCH})"
    );
    let clients = format!(
        "DELETE FROM known_login_clients WHERE (account_key, client_key) IN (SELECT account_key, client_key FROM known_login_clients WHERE last_success_at <= $1 LIMIT {BATCH})"
    );
    let audit = format!(
        "DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE at <= $1 LIMIT {BATCH})"
    );
    // Kept as long as ended sessions: the same question (what happened to
    // this session) reads them. Mail first: a row names its token.
    let mail = format!(
        "DELETE FROM mail_outbox WHERE id IN (SELECT id FROM mail_outbox WHERE sent_at <= $1 OR dropped_at <= $1 LIMIT {BATCH})"
    );
    let email_tokens = format!(
        "DELETE FROM email_tokens WHERE id IN (SELECT id FROM email_tokens WHERE expires_at <= $1 OR spent_at <= $1 LIMIT {BATCH})"
    );
    let feed = format!(
        "DELETE FROM feed_events WHERE id IN (SELECT id FROM feed_events WHERE at <= $1 LIMIT {BATCH})"
    );
    let mfa_tokens = format!(
        "DELETE FROM mfa_tokens WHERE id IN (SELECT id FROM mfa_tokens WHERE expires_at <= $1 LIMIT {BATCH})"
    );
    let challenges = format!(
        "DELETE FROM webauthn_challenges WHERE id IN (SELECT id FROM webauthn_challenges WHERE expires_at <= $1 LIMIT {BATCH})"
    );
    let ended = before(retention.sessions);
    Ok(Swept {
        audit_events: delete_in_batches(conn, &audit, before(retention.audit_events))?,
        mail_outbox: delete_in_batches(conn, &mail, ended)?,
        email_tokens: delete_in_batches(conn, &email_tokens, ended)?,
        feed_events: delete_in_batches(conn, &feed, ended)?,
        refresh_tokens: delete_in_batches(conn, &tokens, now)?,
        sessions: delete_in_batches(conn, &sessions, before(retention.sessions))?,
        failure_buckets: delete_in_batches(conn, &buckets, before(retention.failure_buckets))?,
        rate_buckets: delete_in_batches(conn, &rate_buckets, now)?,
        mfa_tokens: delete_in_batches(conn, &mfa_tokens, now)?,
        webauthn_challenges: delete_in_batches(conn, &challenges, now)?,
        known_login_clients: delete_in_batches(
            conn,
            &clients,
            before(retention.known_login_clients),
        )?,
    })
}

fn delete_in_batches(conn: &mut PgConnection, sql: &str, before: DateTime<Utc>) -> DbResult<usize> {
    let mut total = 0;
    loop {
        let n = diesel::sql_query(sql)
            .bind::<Timestamptz, _>(before)
            .execute(conn)?;
        total += n;
        if n < BATCH {
            return Ok(total);
        }
    }
}
