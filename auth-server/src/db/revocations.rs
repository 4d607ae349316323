//! The revocation feed that resource APIs pull, so they can reject a revoked
//! session's access tokens without asking the auth server per request.
//!
//! Every revocation records the id of the transaction that made it
//! (`revoked_xid`). A reader goes through the revocations in passes (the
//! cursor: [`crate::tokens::feed_cursor`]), in the total order `(revoked_xid, id)`,
//! one page per request, each page one REPEATABLE READ snapshot:
//!
//! - A pass covers the revocations of the transactions its span names
//!   (every id at or above one, and a few older ones that were in progress),
//!   revoked after its fixed `since`. A full page ends with its last key;
//!   the next page starts after it, however many rows share one
//!   transaction id.
//! - On its last page, the pass counts in the same snapshot every
//!   revocation it covers. If it sent that many, the reader has everything
//!   this snapshot sees (the only answer with `more = false`), and the next
//!   pass covers just what this snapshot could not see: the transactions it
//!   lists as in progress, and those at or above its `xmax`. Every other
//!   transaction had finished, so its revocations were visible, hence sent.
//! - If it sent fewer, a transaction committed behind the resume key during
//!   the pass: the reader starts again from the first page's `xmin`, below
//!   which nothing could commit during the pass (any other difference, such
//!   as a row deleted meanwhile, starts again too: never a silent gap).
//!
//! Unlike a timestamp or a sequence, this cannot skip a revocation that
//! commits after a later one. A transaction held open anywhere in the
//! cluster stays named in the span, so it neither delays later revocations
//! nor makes a reader re-read what it already has; and every pass ends, so
//! it never makes a reader look stale either. Readers treat the feed as a
//! set all the same: a restarted pass, or more long transactions than a
//! cursor names, repeat entries.

use std::cmp::max;

use chrono::{DateTime, Utc};
use diesel::dsl::{self, sql};
use diesel::expression::SqlLiteral;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

use super::DbResult;
use super::models::RevocationReason;
use super::schema::sessions;
use crate::tokens::feed_cursor::{Cursor, MAX_PENDING, Pass, Span};

/// Most revocations in one answer (about 1.3 MB of JSON).
pub const PAGE: usize = 10_000;

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

/// One entry of the feed: a revoked session (`session_id`), or a user's
/// roles version (`roles_version`, about `user_id`): the user's access
/// tokens with an older `rv` are refused.
#[derive(Debug, Clone, QueryableByName)]
pub struct Revocation {
    /// The entry's place in the order `(revoked_xid, key)`: the session's
    /// id for a session row, the `feed_events` row's id otherwise.
    #[diesel(sql_type = SqlUuid)]
    pub key: Uuid,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub session_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub user_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub roles_version: Option<i64>,
    #[diesel(sql_type = Timestamptz)]
    pub revoked_at: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    pub revoked_xid: i64,
}

#[derive(Debug, Clone)]
pub struct Page {
    pub revocations: Vec<Revocation>,
    /// Where the next read goes on from.
    pub next: Cursor,
    /// The reader does not have everything yet: ask again at once.
    pub more: bool,
    /// With `more = false`: what a long poll from `next` compares with
    /// (see [`count_since`]); 0 otherwise.
    pub held: i64,
}

/// What a snapshot tells of the transactions around it.
#[derive(QueryableByName)]
struct Snapshot {
    /// Every transaction below this had finished.
    #[diesel(sql_type = BigInt)]
    xmin: i64,
    /// Every transaction at or above this had not started.
    #[diesel(sql_type = BigInt)]
    xmax: i64,
    /// The oldest of those in progress in between, one more than a cursor
    /// names.
    #[diesel(sql_type = Array<BigInt>)]
    xip: Vec<i64>,
}

impl Snapshot {
    /// What this snapshot could not see: the transactions in progress, and
    /// those not yet started. Past [`MAX_PENDING`] in progress, the newer
    /// ones are covered from the oldest of them on.
    fn unseen(&self) -> Span {
        match self.xip.get(MAX_PENDING) {
            Some(&next) => Span {
                above: next,
                pending: self.xip[..MAX_PENDING].to_vec(),
            },
            None => Span {
                above: self.xmax,
                pending: self.xip.clone(),
            },
        }
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The next page from `from`. A pass that starts here covers revocations
/// after `since`.
pub fn read(conn: &mut PgConnection, from: &Cursor, since: DateTime<Utc>) -> DbResult<Page> {
    let page = conn
        .build_transaction()
        .read_only()
        .repeatable_read()
        .run(|conn| {
            // The first statement takes the snapshot every other one reads.
            let snapshot = diesel::sql_query(format!(
                "SELECT pg_snapshot_xmin(s)::text::bigint AS xmin, \
                 pg_snapshot_xmax(s)::text::bigint AS xmax, \
                 ARRAY(SELECT x::text::bigint AS x FROM pg_snapshot_xip(s) AS x ORDER BY 1 LIMIT {}) AS xip \
                 FROM pg_current_snapshot() AS s",
                MAX_PENDING + 1
            ))
            .get_result::<Snapshot>(conn)?;
            let pass = match from {
                Cursor::Caught { span, .. } => Pass {
                    restart_floor: max(span.floor(), snapshot.xmin),
                    span: span.clone(),
                    since,
                    after: (-1, Uuid::nil()),
                    delivered: 0,
                },
                Cursor::Pass(pass) => pass.clone(),
            };
            next_page(conn, pass, &snapshot)
        })?;
    Ok(page)
}

fn next_page(conn: &mut PgConnection, pass: Pass, snapshot: &Snapshot) -> QueryResult<Page> {
    let mut revocations = rows_after(conn, &pass)?;
    if revocations.len() > PAGE {
        revocations.truncate(PAGE);
        let after = revocations
            .last()
            .map_or(pass.after, |last| (last.revoked_xid, last.key));
        return Ok(Page {
            revocations,
            next: Cursor::Pass(Pass {
                after,
                delivered: pass.delivered + PAGE as i64,
                ..pass
            }),
            more: true,
            held: 0,
        });
    }
    let sent = pass.delivered + revocations.len() as i64;
    // A pass of one page read its rows and would count them in one
    // snapshot: they are the same.
    let covered = if pass.delivered == 0 {
        sent
    } else {
        count_covered(conn, &pass.span, pass.since)?
    };
    if sent != covered {
        return Ok(Page {
            revocations,
            next: Cursor::Caught {
                span: pass.span.from_floor(pass.restart_floor),
                since: pass.since,
            },
            more: true,
            held: 0,
        });
    }
    let span = snapshot.unseen();
    Ok(Page {
        revocations,
        held: count_covered(conn, &span, pass.since)?,
        next: Cursor::Caught {
            span,
            since: pass.since,
        },
        more: false,
    })
}

/// Everything the feed carries, in one relation: revoked sessions, and the
/// `feed_events` that outlive their rows (a deleted user's sessions) or are
/// about a user (roles versions). Keys are random UUIDs of distinct rows,
/// so `(revoked_xid, key)` stays a total order; each branch is read through
/// its own `(xid, id)` index and the two merged in order.
const FEED: &str = "(SELECT id AS key, id AS session_id, NULL::uuid AS user_id, \
     NULL::bigint AS roles_version, revoked_at, revoked_xid FROM sessions \
     UNION ALL \
     SELECT id, session_id, user_id, roles_version, at, xid FROM feed_events) AS feed";

/// The transactions of `span`, as SQL over `revoked_xid` (`$1` the span's
/// floor, which lets the index bound the scan, `$2` above, `$3` pending).
const IN_SPAN: &str =
    "revoked_xid >= $1 AND (revoked_xid >= $2 OR revoked_xid = ANY($3)) AND revoked_at > $4";

/// One row more than a page, so a full page is known to have a successor.
fn rows_after(conn: &mut PgConnection, pass: &Pass) -> QueryResult<Vec<Revocation>> {
    diesel::sql_query(format!(
        "SELECT key, session_id, user_id, roles_version, revoked_at, revoked_xid FROM {FEED} \
         WHERE {IN_SPAN} AND (revoked_xid, key) > ($5, $6) \
         ORDER BY revoked_xid, key LIMIT $7"
    ))
    .bind::<BigInt, _>(pass.span.floor())
    .bind::<BigInt, _>(pass.span.above)
    .bind::<Array<BigInt>, _>(&pass.span.pending)
    .bind::<Timestamptz, _>(pass.since)
    .bind::<BigInt, _>(pass.after.0)
    .bind::<SqlUuid, _>(pass.after.1)
    .bind::<BigInt, _>(PAGE as i64 + 1)
    .load(conn)
}

fn count_covered(conn: &mut PgConnection, span: &Span, since: DateTime<Utc>) -> QueryResult<i64> {
    diesel::sql_query(format!("SELECT count(*) AS n FROM {FEED} WHERE {IN_SPAN}"))
        .bind::<BigInt, _>(span.floor())
        .bind::<BigInt, _>(span.above)
        .bind::<Array<BigInt>, _>(&span.pending)
        .bind::<Timestamptz, _>(since)
        .get_result::<Count>(conn)
        .map(|c| c.n)
}

/// The long poll's measure: the revocations in `span` after `since`, both
/// fixed while a reader waits, so the figure changes only when a
/// revocation commits (or the janitor deletes one). A poll answers once it
/// differs from the `held` the reader was given.
pub fn count_since(conn: &mut PgConnection, span: &Span, since: DateTime<Utc>) -> DbResult<i64> {
    Ok(count_covered(conn, span, since)?)
}
