//! The revocation feed that resource APIs pull, so they can reject a revoked
//! session's access tokens without asking the auth server per request.
//!
//! The cursor is a transaction id. Every revocation records the id of the
//! transaction that made it; a read returns revocations with an id at or
//! above the cursor, and moves the cursor to its snapshot's `xmin`. Every
//! transaction below `xmin` has finished, so nothing can still appear there:
//! unlike a timestamp or a sequence, this cursor cannot skip a revocation
//! that commits after a later one. Revocations visible above `xmin` are sent
//! too (a long transaction elsewhere must not delay them) and will be sent
//! again until `xmin` passes them: readers treat the feed as a set.

use chrono::{DateTime, Utc};
use diesel::dsl::{self, sql};
use diesel::expression::SqlLiteral;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

use super::DbResult;
use super::models::RevocationReason;
use super::schema::sessions;

/// Most revocations in one answer; a reader that gets this many asks again.
pub const PAGE: i64 = 10_000;

type RevocationColumns = (
    dsl::Eq<sessions::revoked_at, DateTime<Utc>>,
    dsl::Eq<sessions::revoked_reason, &'static str>,
    dsl::Eq<sessions::revoked_xid, SqlLiteral<Nullable<BigInt>>>,
);

/// What every revocation of a session sets: when, why, and which transaction
/// did it (the feed's cursor).
pub(super) fn columns(reason: RevocationReason) -> RevocationColumns {
    (
        sessions::revoked_at.eq(Utc::now()),
        sessions::revoked_reason.eq(reason.as_str()),
        sessions::revoked_xid.eq(sql::<Nullable<BigInt>>(
            "pg_current_xact_id()::text::bigint",
        )),
    )
}

#[derive(Debug, Clone, QueryableByName)]
pub struct Revocation {
    #[diesel(sql_type = SqlUuid)]
    pub session_id: Uuid,
    #[diesel(sql_type = Timestamptz)]
    pub revoked_at: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    pub revoked_xid: i64,
}

#[derive(Debug, Clone)]
pub struct Page {
    pub revocations: Vec<Revocation>,
    pub cursor: i64,
    /// More are waiting: ask again at once.
    pub more: bool,
    /// How many of `revocations` are at or past `cursor`: they will be sent
    /// again, and a long poll passing this back as `seen` waits for more.
    pub held: i64,
}

#[derive(QueryableByName)]
struct Horizon {
    #[diesel(sql_type = BigInt)]
    xmin: i64,
}

/// Revocations from `cursor` on, of those recent enough that the session's
/// access tokens may still be valid (revoked after `since`).
pub fn read(conn: &mut PgConnection, cursor: Option<i64>, since: DateTime<Utc>) -> DbResult<Page> {
    // One snapshot for both statements: the horizon must describe exactly
    // what the select sees.
    let page = conn
        .build_transaction()
        .read_only()
        .repeatable_read()
        .run(|conn| {
            let horizon: Horizon = diesel::sql_query(
                "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin",
            )
            .get_result(conn)?;
            let revocations: Vec<Revocation> = match cursor {
                Some(cursor) => diesel::sql_query(
                    "SELECT id AS session_id, revoked_at, revoked_xid FROM sessions \
                 WHERE revoked_xid >= $1 AND revoked_at > $2 ORDER BY revoked_xid LIMIT $3",
                )
                .bind::<BigInt, _>(cursor)
                .bind::<Timestamptz, _>(since)
                .bind::<BigInt, _>(PAGE)
                .load(conn)?,
                None => diesel::sql_query(
                    "SELECT id AS session_id, revoked_at, revoked_xid FROM sessions \
                 WHERE revoked_at > $1 ORDER BY revoked_xid LIMIT $2",
                )
                .bind::<Timestamptz, _>(since)
                .bind::<BigInt, _>(PAGE)
                .load(conn)?,
            };
            diesel::QueryResult::Ok((horizon.xmin, revocations))
        })?;
    let (xmin, revocations) = page;
    let more = revocations.len() as i64 >= PAGE;
    let cursor = match (more, revocations.last()) {
        // A full page: resume from its last id (re-reading that id's rows).
        (true, Some(last)) => last.revoked_xid.min(xmin),
        _ => xmin.max(cursor.unwrap_or(0)),
    };
    let held = revocations
        .iter()
        .filter(|r| r.revoked_xid >= cursor)
        .count() as i64;
    Ok(Page {
        revocations,
        cursor,
        more,
        held,
    })
}

/// How many revocations at or past the cursor are visible: the long poll
/// answers once this exceeds what the reader already holds.
pub fn count_since(conn: &mut PgConnection, cursor: i64) -> DbResult<i64> {
    Ok(sessions::table
        .filter(sessions::revoked_xid.ge(cursor))
        .count()
        .get_result(conn)?)
}
