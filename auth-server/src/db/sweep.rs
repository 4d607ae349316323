//! The janitor's deletions: refresh tokens past their expiry (a replay of one
//! is then simply unknown, which it would be refused as anyway) and sessions
//! past retention, so the tables do not grow without bound.

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
}

/// Deletes refresh tokens past their expiry and sessions that ended (expired
/// or revoked) more than `session_retention` ago.
pub fn expired(conn: &mut PgConnection, session_retention: Duration) -> DbResult<Swept> {
    let now = Utc::now();
    let horizon = chrono::Duration::from_std(session_retention)
        .ok()
        .and_then(|r| now.checked_sub_signed(r))
        .unwrap_or(now);
    // Batched through a LIMITed subquery: short statements, short locks.
    let tokens = format!(
        "DELETE FROM refresh_tokens WHERE id IN (SELECT id FROM refresh_tokens WHERE expires_at <= $1 LIMIT {BATCH})"
    );
    // Revoked sessions are kept for the retention too: the revocation feed
    // and the sessions' audit trail read them.
    let sessions = format!(
        "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE expires_at <= $1 OR revoked_at <= $1 LIMIT {BATCH})"
    );
    Ok(Swept {
        refresh_tokens: delete_in_batches(conn, &tokens, now)?,
        sessions: delete_in_batches(conn, &sessions, horizon)?,
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
