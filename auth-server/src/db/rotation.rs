//! The rotation transaction, in two round trips on a pipelining connection
//! ([`super::rotation_pool::RotationPool`]): `BEGIN` with the locked read, then the write
//! with `COMMIT`.
//!
//! 1. The locked read joins the presented token, its session, what an
//!    access token says of the user (never the password hash) and the
//!    token's successor (if it has one), and locks the token's and the
//!    session's rows (`FOR UPDATE OF`, never the user's: rotations of one
//!    user's sessions must not queue behind each other). Concurrent
//!    refreshes of one token queue on that lock. It also returns the id of
//!    the transaction that holds the locks.
//! 2. With the lock held, the clock is read and [`rotation::decide`] applies
//!    the rules.
//! 3. A rotation is one statement: a data-modifying `WITH` that inserts the
//!    successor, consumes the presented token and touches the session. A
//!    grace answer writes nothing (the consuming request touched the
//!    session at most `REFRESH_REUSE_GRACE` ago). Reuse revokes the session.
//!
//! Every write is guarded by the locking transaction's id: it changes
//! nothing anywhere else. Pipelining relies on each statement going out in
//! the order its future is first polled; the guard makes a mistake there a
//! failed refresh, never a forked session.
//!
//! Both statements have fixed SQL and are prepared when a connection opens
//! ([`prepare`]): PostgreSQL parses and plans them once per connection.

use chrono::{DateTime, Utc};
use diesel::dsl::SqlTypeOf;
use diesel::pg::Pg;
use diesel::prelude::{
    OptionalExtension, QueryDsl, QueryResult, Queryable, Selectable, SelectableHelper,
};
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Bool, Bytea, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use futures_util::future::join;
use uuid::Uuid;

use super::audit::{self, Event, EventType};
use super::models::{ClientInfo, RevocationReason, Session, TokenSubject};
use super::schema::{refresh_tokens, sessions};
use super::{DbError, DbResult, revocations};
use crate::refresh_token::{KeyIndex, SuccessorHashes, TokenHash};
use crate::rotation::{self, Decision, GraceAnswer, Policy, Presented, Rejection, Successor};

#[derive(Debug)]
pub enum RefreshOutcome {
    /// The presented token was consumed; the current key's successor is live
    /// until `successor_expires_at`.
    Rotated {
        user: TokenSubject,
        session: Session,
        successor_expires_at: DateTime<Utc>,
    },
    /// Within the reuse grace: an access token, and the successor the
    /// consumption issued when `resend` names the key that derived it.
    Grace {
        user: TokenSubject,
        session: Session,
        resend: Option<Resend>,
    },
    /// Reuse after the grace: the session is now revoked.
    ReuseDetected {
        user_id: Uuid,
        session_id: Uuid,
    },
    Rejected {
        rejection: Rejection,
        session_id: Uuid,
    },
    Unknown,
}

/// The successor a grace answer sends again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resend {
    pub key: KeyIndex,
    pub expires_at: DateTime<Utc>,
}

/// One rotation of the token whose hash is `presented`, in one transaction.
/// `successors` are the hashes of the token's successor as the server's
/// keys derive it: a rotation stores the current one, and the grace
/// recognises any.
///
/// Two round trips: `BEGIN` goes out with the locked read, and `COMMIT`
/// with the write. On any error the transaction may still be open: the
/// caller must not use the connection again.
pub async fn refresh(
    conn: &AsyncPgConnection,
    presented: &TokenHash,
    successors: &SuccessorHashes,
    client: &ClientInfo,
    policy: &Policy,
) -> DbResult<RefreshOutcome> {
    let (mut first, mut second) = (conn, conn);
    // `BEGIN` is sent in its future's first poll, before anything else can
    // be: `join` polls it first, and nothing in it waits before the send.
    // The read, polled next, goes out behind it, in the same write when
    // nothing delays it.
    let (begun, locked) = join(
        first.batch_execute("BEGIN"),
        LockedRead::new(presented.as_bytes()).get_results::<Locked>(&mut second),
    )
    .await;
    begun?;
    let Some((token, session, user, stored_successor, xid)) = locked?.pop() else {
        commit(conn).await?;
        return Ok(RefreshOutcome::Unknown);
    };
    let stored_successor = match (stored_successor, token.successor_id) {
        // The lock was waited for: the row was consumed by the
        // transaction we queued behind, after this statement's snapshot
        // was taken. PostgreSQL hands us the locked rows as that
        // transaction left them, but the join's other rows as the
        // snapshot saw them, so not the successor it inserted. A new
        // statement sees it (or finds it deleted, expired, as before).
        (None, Some(id)) => successor_row(conn, id).await?,
        (found, _) => found,
    };
    // Read the clock only once the lock is ours: a waiter must judge the
    // grace from when the winner consumed the token, not from before.
    let now = Utc::now();
    let recognised = stored_successor
        .as_ref()
        .and_then(|s| successors.recognise(&s.token_hash));
    let state = Presented {
        token_expires_at: token.expires_at,
        token_consumed_at: token.consumed_at,
        session_expires_at: session.expires_at,
        // A disabled user's sessions were all revoked with the disable;
        // the user's row, read in the same statement, says so too.
        session_revoked: session.revoked_at.is_some() || user.disabled_at.is_some(),
        email_verified: user.email_verified,
        successor: stored_successor.as_ref().map(|s| Successor {
            reproducible: recognised.is_some(),
            consumed: s.consumed_at.is_some(),
            expires_at: s.expires_at,
        }),
    };
    match rotation::decide(&state, now, policy) {
        Decision::Reject(rejection) => {
            commit(conn).await?;
            Ok(RefreshOutcome::Rejected {
                rejection,
                session_id: session.id,
            })
        }
        Decision::RevokeForReuse => {
            // Rare: each statement waits for the one before.
            let mut c = conn;
            let revoked = diesel::update(
                sessions::table
                    .find(session.id)
                    .filter(diesel::dsl::sql::<Bool>(GUARD).bind::<BigInt, _>(xid)),
            )
            .set(revocations::columns(RevocationReason::ReuseDetected))
            .execute(&mut c)
            .await?;
            if revoked != 1 {
                return Err(outside_the_locking_transaction());
            }
            let events = [(
                Event::new(EventType::RefreshReuseDetected, session.user_id, client)
                    .in_session(session.id),
                None,
            )];
            audit::insert(&events).execute(&mut c).await?;
            commit(conn).await?;
            Ok(RefreshOutcome::ReuseDetected {
                user_id: session.user_id,
                session_id: session.id,
            })
        }
        Decision::Grace(answer) => {
            commit(conn).await?;
            Ok(RefreshOutcome::Grace {
                resend: match (answer, recognised, stored_successor) {
                    (GraceAnswer::ResendSuccessor, Some(key), Some(s)) => Some(Resend {
                        key,
                        expires_at: s.expires_at,
                    }),
                    _ => None,
                },
                user,
                session,
            })
        }
        Decision::Rotate {
            successor_expires_at,
        } => {
            let session = touched(session, client, now);
            let rotate = Rotate {
                xid,
                successor_id: Uuid::new_v4(),
                successor_hash: successors.current().as_bytes(),
                presented_id: token.id,
                session_id: session.id,
                user_agent: session.user_agent.as_deref(),
                client_ip: session.client_ip.as_deref(),
                now,
                successor_expires_at,
            };
            // The write and `COMMIT` go out together. Should the write ever
            // reach PostgreSQL after the `COMMIT` (it is polled first, but
            // has more to do before its send), it runs in a transaction of
            // its own, where its guard makes it change nothing: then it
            // touched no session, and the rotation fails whole.
            let (mut a, mut b) = (conn, conn);
            let (written, committed) =
                join(rotate.execute(&mut a), b.batch_execute("COMMIT")).await;
            let touched_sessions = written?;
            committed?;
            if touched_sessions != 1 {
                return Err(outside_the_locking_transaction());
            }
            Ok(RefreshOutcome::Rotated {
                user,
                session,
                successor_expires_at,
            })
        }
    }
}

/// Prepares the rotation's two statements on a new connection, so that a
/// rotation's write never waits for a prepare while its `COMMIT` goes out.
/// Neither changes anything: no token's hash is all zeros, and no
/// transaction's id is 0 (the write's guard).
pub async fn prepare(conn: &AsyncPgConnection) -> QueryResult<()> {
    let mut c = conn;
    LockedRead::new(&[0; 32])
        .get_results::<Locked>(&mut c)
        .await?;
    let nobody = Uuid::nil();
    let now = Utc::now();
    Rotate {
        xid: 0,
        successor_id: nobody,
        successor_hash: &[0; 32],
        presented_id: nobody,
        session_id: nobody,
        user_agent: None,
        client_ip: None,
        now,
        successor_expires_at: now,
    }
    .execute(&mut c)
    .await?;
    Ok(())
}

async fn commit(mut conn: &AsyncPgConnection) -> QueryResult<()> {
    conn.batch_execute("COMMIT").await
}

/// The guard of every write, followed by the id of the transaction that
/// read the rows under lock: true only in that transaction.
const GUARD: &str = "pg_current_xact_id()::text::bigint = ";

/// A write that changed nothing because it ran outside the locking
/// transaction: the refresh fails (`503`, to be retried), nothing forks.
fn outside_the_locking_transaction() -> DbError {
    tracing::error!(
        "a rotation's write ran outside the transaction that read under lock; it changed nothing"
    );
    DbError::Unavailable("the rotation's write ran outside its transaction".to_owned())
}

/// What the rotation needs of the presented token.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = refresh_tokens, check_for_backend(Pg))]
struct LockedToken {
    id: Uuid,
    expires_at: DateTime<Utc>,
    consumed_at: Option<DateTime<Utc>>,
    successor_id: Option<Uuid>,
}

/// What the grace needs of the successor.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = refresh_tokens, check_for_backend(Pg))]
struct StoredSuccessor {
    token_hash: Vec<u8>,
    consumed_at: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
}

/// The locked read's row: the token, its session and user, its successor
/// if any, and the id of the transaction that holds the locks.
type Locked = (
    LockedToken,
    Session,
    TokenSubject,
    Option<StoredSuccessor>,
    i64,
);

async fn successor_row(
    mut conn: &AsyncPgConnection,
    id: Uuid,
) -> QueryResult<Option<StoredSuccessor>> {
    refresh_tokens::table
        .find(id)
        .select(StoredSuccessor::as_select())
        .first(&mut conn)
        .await
        .optional()
}

/// The session as the rotation leaves it: used now, by this client (the
/// last user agent and address seen stay when the request had none).
fn touched(mut session: Session, client: &ClientInfo, now: DateTime<Utc>) -> Session {
    session.last_used_at = now;
    if client.user_agent.is_some() {
        session.user_agent.clone_from(&client.user_agent);
    }
    if client.ip.is_some() {
        session.client_ip.clone_from(&client.ip);
    }
    session
}

/// ```sql
/// SELECT <token>, <session>, <user>, successor.token_hash, …,
///        pg_current_xact_id()
/// FROM refresh_tokens
///   JOIN sessions ON … JOIN users ON …
///   LEFT JOIN refresh_tokens AS successor ON successor.id = refresh_tokens.successor_id
/// WHERE refresh_tokens.token_hash = $1
/// FOR UPDATE OF refresh_tokens, sessions
/// ```
/// The column lists are rendered from the same `Selectable` types the row is
/// loaded into, so they cannot disagree.
struct LockedRead<'a> {
    presented: &'a [u8],
    columns: Columns<(LockedToken, Session, TokenSubject)>,
}

/// The columns a `Selectable` type is loaded from.
type Columns<T> = <T as Selectable<Pg>>::SelectExpression;
/// Their SQL types, in the same order.
type ColumnTypes<T> = SqlTypeOf<Columns<T>>;

impl<'a> LockedRead<'a> {
    fn new(presented: &'a [u8]) -> Self {
        Self {
            presented,
            columns: <(LockedToken, Session, TokenSubject) as Selectable<Pg>>::construct_selection(
            ),
        }
    }
}

impl QueryFragment<Pg> for LockedRead<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("SELECT ");
        self.columns.walk_ast(out.reborrow())?;
        out.push_sql(
            ", successor.token_hash, successor.consumed_at, successor.expires_at, \
             pg_current_xact_id()::text::bigint \
             FROM refresh_tokens \
             JOIN sessions ON sessions.id = refresh_tokens.session_id \
             JOIN users ON users.id = sessions.user_id \
             LEFT JOIN refresh_tokens AS successor ON successor.id = refresh_tokens.successor_id \
             WHERE refresh_tokens.token_hash = ",
        );
        out.push_bind_param::<Bytea, _>(self.presented)?;
        out.push_sql(" FOR UPDATE OF refresh_tokens, sessions");
        Ok(())
    }
}

impl QueryId for LockedRead<'_> {
    type QueryId = LockedRead<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for LockedRead<'_> {
    type SqlType = (
        ColumnTypes<LockedToken>,
        ColumnTypes<Session>,
        ColumnTypes<TokenSubject>,
        Nullable<ColumnTypes<StoredSuccessor>>,
        BigInt,
    );
}

/// ```sql
/// WITH successor AS (INSERT INTO refresh_tokens … SELECT … WHERE <guard>),
///      consumed AS (UPDATE refresh_tokens SET consumed_at, successor_id … AND <guard>)
/// UPDATE sessions SET last_used_at, user_agent, client_ip … AND <guard>
/// ```
/// One statement, so one round trip. Its parts run on one snapshot and
/// touch different rows (the successor's session's foreign key is checked
/// at the statement's end). Neither column the consumption sets is indexed,
/// so it is a HOT update: no index gets a new entry for it.
///
/// The guard, `pg_current_xact_id() = xid`, holds only in the transaction
/// that read the rows under lock: anywhere else every part does nothing,
/// and the statement reports no session touched.
struct Rotate<'a> {
    xid: i64,
    successor_id: Uuid,
    successor_hash: &'a [u8],
    presented_id: Uuid,
    session_id: Uuid,
    user_agent: Option<&'a str>,
    client_ip: Option<&'a str>,
    now: DateTime<Utc>,
    successor_expires_at: DateTime<Utc>,
}

impl Rotate<'_> {
    fn push_guard<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(GUARD);
        out.push_bind_param::<BigInt, _>(&self.xid)
    }
}

impl QueryFragment<Pg> for Rotate<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "WITH successor AS (\
             INSERT INTO refresh_tokens (id, token_hash, session_id, issued_at, expires_at) SELECT ",
        );
        out.push_bind_param::<SqlUuid, _>(&self.successor_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Bytea, _>(self.successor_hash)?;
        out.push_sql(", ");
        out.push_bind_param::<SqlUuid, _>(&self.session_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamptz, _>(&self.now)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamptz, _>(&self.successor_expires_at)?;
        out.push_sql(" WHERE ");
        self.push_guard(&mut out)?;
        out.push_sql(
            "), consumed AS (\
             UPDATE refresh_tokens SET consumed_at = ",
        );
        out.push_bind_param::<Timestamptz, _>(&self.now)?;
        out.push_sql(", successor_id = ");
        out.push_bind_param::<SqlUuid, _>(&self.successor_id)?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<SqlUuid, _>(&self.presented_id)?;
        out.push_sql(" AND ");
        self.push_guard(&mut out)?;
        out.push_sql(") UPDATE sessions SET last_used_at = ");
        out.push_bind_param::<Timestamptz, _>(&self.now)?;
        out.push_sql(", user_agent = ");
        out.push_bind_param::<Nullable<Text>, _>(&self.user_agent)?;
        out.push_sql(", client_ip = ");
        out.push_bind_param::<Nullable<Text>, _>(&self.client_ip)?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<SqlUuid, _>(&self.session_id)?;
        out.push_sql(" AND ");
        self.push_guard(&mut out)
    }
}

impl QueryId for Rotate<'_> {
    type QueryId = Rotate<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

#[cfg(test)]
mod tests {
    use diesel::{Connection, PgConnection};
    use diesel_async::SimpleAsyncConnection;
    use test_db::TestDatabase;

    use super::*;
    use crate::db::{sessions, users};
    use crate::refresh_token::RefreshToken;

    /// A write that reached PostgreSQL after its `COMMIT` (so in a
    /// transaction of its own, the lock long released) must change
    /// nothing: that is what keeps a misordered pipeline from forking a
    /// session.
    #[test]
    fn the_write_changes_nothing_outside_the_transaction_that_locked() {
        let database = TestDatabase::create();
        let mut sync = PgConnection::establish(&database.url).unwrap();
        let user = users::create(&mut sync, "guard@example.com", "$argon2id$x").unwrap();
        let token = RefreshToken::generate().unwrap();
        let now = Utc::now();
        let session = sessions::create(
            &mut sync,
            user.id,
            &ClientInfo::default(),
            &token.hash(),
            now + chrono::Duration::days(1),
            now + chrono::Duration::hours(1),
        )
        .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (client, connection) = database
                .url
                .parse::<tokio_postgres::Config>()
                .unwrap()
                .connect(tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            let conn = AsyncPgConnection::try_from(client).await.unwrap();
            let mut c = &conn;
            c.batch_execute("BEGIN").await.unwrap();
            let (locked_token, .., xid) = LockedRead::new(token.hash().as_bytes())
                .get_results::<Locked>(&mut c)
                .await
                .unwrap()
                .pop()
                .unwrap();
            c.batch_execute("COMMIT").await.unwrap();
            let write = Rotate {
                xid,
                successor_id: Uuid::new_v4(),
                successor_hash: &[7; 32],
                presented_id: locked_token.id,
                session_id: session.id,
                user_agent: Some("late"),
                client_ip: None,
                now: Utc::now(),
                successor_expires_at: Utc::now() + chrono::Duration::hours(1),
            };
            assert_eq!(write.execute(&mut c).await.unwrap(), 0);
        });
        let mut count = |sql: &str| {
            #[derive(diesel::QueryableByName)]
            struct N {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            diesel::RunQueryDsl::get_result::<N>(diesel::sql_query(sql), &mut sync)
                .unwrap()
                .n
        };
        assert_eq!(count("SELECT count(*) AS n FROM refresh_tokens"), 1);
        assert_eq!(
            count("SELECT count(*) AS n FROM refresh_tokens WHERE consumed_at IS NOT NULL"),
            0
        );
        assert_eq!(
            count("SELECT count(*) AS n FROM sessions WHERE user_agent = 'late'"),
            0
        );
    }
}
