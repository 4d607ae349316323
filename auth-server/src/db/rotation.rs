//! The rotation transaction: four round trips, `BEGIN`, one locked read,
//! one write, `COMMIT`.
//!
//! 1. The locked read joins the presented token, its session, the user and
//!    the token's successor (if it has one), and locks the token's and the
//!    session's rows (`FOR UPDATE OF`, never the user's: rotations of one
//!    user's sessions must not queue behind each other). Concurrent
//!    refreshes of one token queue on that lock.
//! 2. With the lock held, the clock is read and [`rotation::decide`] applies
//!    the rules.
//! 3. A rotation is one statement: a data-modifying `WITH` that inserts the
//!    successor, consumes the presented token and touches the session. A
//!    grace answer writes nothing (the consuming request touched the
//!    session at most `REFRESH_REUSE_GRACE` ago). Reuse revokes the session.
//!
//! Both statements have fixed SQL, so Diesel keeps them prepared on each
//! pooled connection: PostgreSQL parses and plans them once per connection.

use chrono::{DateTime, Utc};
use diesel::dsl::SqlTypeOf;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::result::Error as DieselError;
use diesel::sql_types::{Bytea, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

use super::audit::{self, Event, EventType};
use super::models::{ClientInfo, RevocationReason, Session, User};
use super::schema::{refresh_tokens, sessions};
use super::{DbError, DbResult, revocations};
use crate::refresh_token::{KeyIndex, SuccessorHashes, TokenHash};
use crate::rotation::{self, Decision, GraceAnswer, Policy, Presented, Rejection, Successor};

#[derive(Debug)]
pub enum RefreshOutcome {
    /// The presented token was consumed; the current key's successor is live
    /// until `successor_expires_at`.
    Rotated {
        user: User,
        session: Session,
        successor_expires_at: DateTime<Utc>,
    },
    /// Within the reuse grace: an access token, and the successor the
    /// consumption issued when `resend` names the key that derived it.
    Grace {
        user: User,
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
pub fn refresh(
    conn: &mut PgConnection,
    presented: &TokenHash,
    successors: &SuccessorHashes,
    client: &ClientInfo,
    policy: &Policy,
) -> DbResult<RefreshOutcome> {
    conn.transaction(|conn| {
        let Some((token, session, user, stored_successor)) = LockedRead::new(presented)
            .get_result::<Locked>(conn)
            .optional()?
        else {
            return Ok(RefreshOutcome::Unknown);
        };
        let stored_successor = match (stored_successor, token.successor_id) {
            // The lock was waited for: the row was consumed by the
            // transaction we queued behind, after this statement's snapshot
            // was taken. PostgreSQL hands us the locked rows as that
            // transaction left them, but the join's other rows as the
            // snapshot saw them, so not the successor it inserted. A new
            // statement sees it (or finds it deleted, expired, as before).
            (None, Some(id)) => successor_row(conn, id)?,
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
            successor: stored_successor.as_ref().map(|s| Successor {
                reproducible: recognised.is_some(),
                consumed: s.consumed_at.is_some(),
                expires_at: s.expires_at,
            }),
        };
        match rotation::decide(&state, now, policy) {
            Decision::Reject(rejection) => Ok(RefreshOutcome::Rejected {
                rejection,
                session_id: session.id,
            }),
            Decision::RevokeForReuse => {
                diesel::update(sessions::table.find(session.id))
                    .set(revocations::columns(RevocationReason::ReuseDetected))
                    .execute(conn)?;
                audit::record_by_server(
                    conn,
                    Event::new(EventType::RefreshReuseDetected, session.user_id, client)
                        .in_session(session.id),
                )?;
                Ok(RefreshOutcome::ReuseDetected {
                    user_id: session.user_id,
                    session_id: session.id,
                })
            }
            Decision::Grace(answer) => Ok(RefreshOutcome::Grace {
                resend: match (answer, recognised, stored_successor) {
                    (GraceAnswer::ResendSuccessor, Some(key), Some(s)) => Some(Resend {
                        key,
                        expires_at: s.expires_at,
                    }),
                    _ => None,
                },
                user,
                session,
            }),
            Decision::Rotate {
                successor_expires_at,
            } => {
                let session = touched(session, client, now);
                Rotate {
                    successor_id: Uuid::new_v4(),
                    successor_hash: successors.current(),
                    presented_id: token.id,
                    session: &session,
                    now,
                    successor_expires_at,
                }
                .execute(conn)?;
                Ok(RefreshOutcome::Rotated {
                    user,
                    session,
                    successor_expires_at,
                })
            }
        }
    })
    .map_err(|e: DieselError| DbError::from(e))
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

type Locked = (LockedToken, Session, User, Option<StoredSuccessor>);

fn successor_row(conn: &mut PgConnection, id: Uuid) -> QueryResult<Option<StoredSuccessor>> {
    refresh_tokens::table
        .find(id)
        .select(StoredSuccessor::as_select())
        .first(conn)
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
/// SELECT <token>, <session>, <user>, successor.token_hash, …
/// FROM refresh_tokens
///   JOIN sessions ON … JOIN users ON …
///   LEFT JOIN refresh_tokens AS successor ON successor.id = refresh_tokens.successor_id
/// WHERE refresh_tokens.token_hash = $1
/// FOR UPDATE OF refresh_tokens, sessions
/// ```
/// The column lists are rendered from the same `Selectable` types the row is
/// loaded into, so they cannot disagree.
struct LockedRead<'a> {
    presented: &'a TokenHash,
    columns: Columns<(LockedToken, Session, User)>,
}

/// The columns a `Selectable` type is loaded from.
type Columns<T> = <T as Selectable<Pg>>::SelectExpression;
/// Their SQL types, in the same order.
type ColumnTypes<T> = SqlTypeOf<Columns<T>>;

impl<'a> LockedRead<'a> {
    fn new(presented: &'a TokenHash) -> Self {
        Self {
            presented,
            columns: <(LockedToken, Session, User) as Selectable<Pg>>::construct_selection(),
        }
    }
}

impl QueryFragment<Pg> for LockedRead<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("SELECT ");
        self.columns.walk_ast(out.reborrow())?;
        out.push_sql(
            ", successor.token_hash, successor.consumed_at, successor.expires_at \
             FROM refresh_tokens \
             JOIN sessions ON sessions.id = refresh_tokens.session_id \
             JOIN users ON users.id = sessions.user_id \
             LEFT JOIN refresh_tokens AS successor ON successor.id = refresh_tokens.successor_id \
             WHERE refresh_tokens.token_hash = ",
        );
        out.push_bind_param::<Bytea, _>(self.presented.as_bytes())?;
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
        ColumnTypes<User>,
        Nullable<ColumnTypes<StoredSuccessor>>,
    );
}

impl RunQueryDsl<PgConnection> for LockedRead<'_> {}

/// ```sql
/// WITH successor AS (INSERT INTO refresh_tokens …),
///      consumed AS (UPDATE refresh_tokens SET consumed_at, successor_id …)
/// UPDATE sessions SET last_used_at, user_agent, client_ip …
/// ```
/// One statement, so one round trip. Its parts run on one snapshot and
/// touch different rows (the successor's session's foreign key is checked
/// at the statement's end). Neither column the consumption sets is indexed,
/// so it is a HOT update: no index gets a new entry for it.
struct Rotate<'a> {
    successor_id: Uuid,
    successor_hash: &'a TokenHash,
    presented_id: Uuid,
    session: &'a Session,
    now: DateTime<Utc>,
    successor_expires_at: DateTime<Utc>,
}

impl QueryFragment<Pg> for Rotate<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "WITH successor AS (\
             INSERT INTO refresh_tokens (id, token_hash, session_id, issued_at, expires_at) VALUES (",
        );
        out.push_bind_param::<SqlUuid, _>(&self.successor_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Bytea, _>(self.successor_hash.as_bytes())?;
        out.push_sql(", ");
        out.push_bind_param::<SqlUuid, _>(&self.session.id)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamptz, _>(&self.now)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamptz, _>(&self.successor_expires_at)?;
        out.push_sql(
            ")), consumed AS (\
             UPDATE refresh_tokens SET consumed_at = ",
        );
        out.push_bind_param::<Timestamptz, _>(&self.now)?;
        out.push_sql(", successor_id = ");
        out.push_bind_param::<SqlUuid, _>(&self.successor_id)?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<SqlUuid, _>(&self.presented_id)?;
        out.push_sql(") UPDATE sessions SET last_used_at = ");
        out.push_bind_param::<Timestamptz, _>(&self.now)?;
        out.push_sql(", user_agent = ");
        out.push_bind_param::<Nullable<Text>, _>(&self.session.user_agent)?;
        out.push_sql(", client_ip = ");
        out.push_bind_param::<Nullable<Text>, _>(&self.session.client_ip)?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<SqlUuid, _>(&self.session.id)?;
        Ok(())
    }
}

impl QueryId for Rotate<'_> {
    type QueryId = Rotate<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl RunQueryDsl<PgConnection> for Rotate<'_> {}
