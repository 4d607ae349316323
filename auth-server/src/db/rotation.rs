//! A refresh, against the session's one row.
//!
//! **Version 2 tokens** (the fast path): one statement, no `BEGIN`/`COMMIT`,
//! so one round trip. An `UPDATE` of the session row whose `WHERE` holds
//! every rule a rotation needs (the presented generation is the live one,
//! the token's MAC checks against the row's secret, the session and the
//! token are live, the user is not disabled and, with
//! `REQUIRE_VERIFIED_EMAIL`, verified) moves the generation on and returns
//! the row and what an access token says of the user (never the password
//! hash). The server then mints the successor from the returned secret.
//! Concurrent refreshes of one token queue on the row lock: the loser's
//! `WHERE` is evaluated again on the new version, whose generation has
//! moved, and matches nothing.
//!
//! When it matches nothing, the classifying path reads the row and lets
//! [`rotation::decide`] say why: unknown (no row, or a MAC that does not
//! verify: revoke nothing, a forged token for a real session id must not end
//! it), a rejection, a consumed token within the grace (the successor is
//! minted again from the row), or reuse after it (the session is revoked,
//! guarded by the state read).
//!
//! **Legacy tokens** (stored hashed in `refresh_tokens`): a locked read of
//! the token and its session, as before; a rotation consumes the row and
//! converts the session (a secret, generation 1) in the same transaction,
//! and answers with the version 2 token of generation 1.
//!
//! The fast path's statements have fixed SQL and are prepared when a
//! connection opens ([`prepare`]).

use chrono::{DateTime, Utc};
use diesel::dsl::SqlTypeOf;
use diesel::pg::Pg;
use diesel::prelude::{ExpressionMethods, QueryDsl, QueryResult, Queryable, Selectable};
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{
    BigInt, Bool, Bytea, Nullable, SmallInt, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use futures_util::future::join;
use uuid::Uuid;

use super::audit::{self, Event, EventType};
use super::models::{ClientInfo, RevocationReason, Session, TokenSubject};
use super::schema::{refresh_tokens, sessions};
use super::{DbError, DbResult, revocations};
use crate::tokens::keys::TokenKeys;
use crate::tokens::refresh::{Proof, SessionSecret, TokenHash};
use crate::tokens::rotation::{
    self, Decision, GraceAnswer, Policy, Presented, Rejection, Successor,
};

/// How many consumption times a session row keeps (`consumed_at`); the
/// migration's CHECK says the same.
pub const KEPT_CONSUMPTIONS: usize = 8;

#[derive(Debug)]
pub enum RefreshOutcome {
    /// The presented token was consumed; `successor` is the live one now.
    Rotated {
        user: TokenSubject,
        session: Session,
        successor: Mintable,
    },
    /// Within the reuse grace: an access token, and the successor the
    /// consumption issued when it can be sent again.
    Grace {
        user: TokenSubject,
        session: Session,
        resend: Option<Mintable>,
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

/// A version 2 token the server can mint (with the key `key_id`): the
/// successor of a rotation, or the one a grace answer sends again.
#[derive(Debug)]
pub struct Mintable {
    pub session_id: Uuid,
    pub generation: i64,
    pub key_id: u8,
    pub secret: SessionSecret,
    pub expires_at: DateTime<Utc>,
}

/// A presented refresh token, as the database needs it.
#[derive(Debug)]
pub enum PresentedToken {
    /// A version 2 token whose keyed half the server computed.
    V2(Proof),
    /// A legacy token's hash.
    Legacy(TokenHash),
}

/// One refresh of `presented`. `keys` says which key mints a successor (the
/// current one) and which the grace can still mint with.
///
/// On any error a transaction may still be open: the caller must not use
/// the connection again.
pub async fn refresh(
    conn: &AsyncPgConnection,
    presented: &PresentedToken,
    keys: &TokenKeys,
    client: &ClientInfo,
    policy: &Policy,
) -> DbResult<RefreshOutcome> {
    match presented {
        PresentedToken::V2(proof) => refresh_v2(conn, proof, keys, client, policy).await,
        PresentedToken::Legacy(hash) => refresh_legacy(conn, hash, keys, client, policy).await,
    }
}

/// How many times the classifying path may find the row changed under it
/// (a concurrent rotation or revocation) before the refresh fails (`503`).
const ATTEMPTS: usize = 4;

async fn refresh_v2(
    conn: &AsyncPgConnection,
    proof: &Proof,
    keys: &TokenKeys,
    client: &ClientInfo,
    policy: &Policy,
) -> DbResult<RefreshOutcome> {
    let mut c = conn;
    let key_id = keys.current_id();
    for _ in 0..ATTEMPTS {
        if let Some((session, user, successor)) =
            rotate_only(conn, proof, key_id, client, policy).await?
        {
            return Ok(RefreshOutcome::Rotated {
                user,
                session,
                successor,
            });
        }
        // Matched nothing: say why, from the row as it is now.
        let Some((session, user, state)) = ReadSession {
            columns: row_columns(),
            session_id: proof.session_id,
        }
        .get_results::<Row>(&mut c)
        .await?
        .pop() else {
            return Ok(RefreshOutcome::Unknown);
        };
        // Not a token of this session: nothing is revoked.
        let Some(secret) = state.recognise(proof) else {
            return Ok(RefreshOutcome::Unknown);
        };
        let now = Utc::now();
        let presented = presented_v2(proof.generation, &session, &user, &state, keys, policy);
        match rotation::decide(&presented, now, policy) {
            Decision::Reject(rejection) => {
                return Ok(RefreshOutcome::Rejected {
                    rejection,
                    session_id: session.id,
                });
            }
            Decision::Grace(answer) => {
                let resend = match (answer, state.token_key, state.token_expires_at) {
                    (GraceAnswer::ResendSuccessor, Some(key), Some(expires_at))
                        if state.generation == proof.generation + 1 =>
                    {
                        Some(Mintable {
                            session_id: session.id,
                            generation: state.generation,
                            key_id: u8::try_from(key).unwrap_or_default(),
                            secret,
                            expires_at,
                        })
                    }
                    _ => None,
                };
                return Ok(RefreshOutcome::Grace {
                    user,
                    session,
                    resend,
                });
            }
            Decision::RevokeForReuse => {
                if revoke_for_reuse(conn, &session, Some(state.generation), client).await? {
                    return Ok(RefreshOutcome::ReuseDetected {
                        user_id: session.user_id,
                        session_id: session.id,
                    });
                }
                // The row moved on since it was read: judge again.
            }
            // The row changed between the two statements (the user was
            // verified, say): try the rotation again.
            Decision::Rotate { .. } => {}
        }
    }
    Err(DbError::Unavailable(
        "the session changed under every attempt to refresh it".to_owned(),
    ))
}

/// The fast path alone: the one `UPDATE` that rotates a live version 2
/// token (see the module's documentation), with the successor minted with
/// the key `key_id`. `None` when it matched nothing (then
/// [`refresh`] says why). One statement, one round trip.
pub async fn rotate_only(
    conn: &AsyncPgConnection,
    proof: &Proof,
    key_id: u8,
    client: &ClientInfo,
    policy: &Policy,
) -> DbResult<Option<(Session, TokenSubject, Mintable)>> {
    let mut c = conn;
    let now = Utc::now();
    let rotate = FastRotate {
        columns: row_columns(),
        proof,
        key_id: i16::from(key_id),
        now,
        wanted_expiry: rotation::successor_expiry(
            now,
            DateTime::<Utc>::MAX_UTC,
            policy.refresh_ttl,
        ),
        require_verified: policy.require_verified_email,
        user_agent: client.user_agent.as_deref(),
        client_ip: client.ip.as_deref(),
    };
    let Some((session, user, state)) = rotate.get_results::<Row>(&mut c).await?.pop() else {
        return Ok(None);
    };
    let (Some(secret), Some(expires_at)) = (
        state.token_secret.and_then(SessionSecret::from_stored),
        state.token_expires_at,
    ) else {
        return Err(DbError::Unavailable(
            "a rotated session has no token secret".to_owned(),
        ));
    };
    let successor = Mintable {
        session_id: session.id,
        generation: state.generation,
        key_id,
        secret,
        expires_at,
    };
    Ok(Some((session, user, successor)))
}

/// What [`rotation::decide`] needs of a version 2 token of `generation`,
/// from its session's row.
fn presented_v2(
    generation: i64,
    session: &Session,
    user: &TokenSubject,
    state: &TokenState,
    keys: &TokenKeys,
    policy: &Policy,
) -> Presented {
    let live = state.generation;
    let session_revoked = session.revoked_at.is_some() || user.disabled_at.is_some();
    let base = Presented {
        token_expires_at: state.token_expires_at.unwrap_or(session.expires_at),
        token_consumed_at: None,
        session_expires_at: session.expires_at,
        session_revoked,
        email_verified: user.email_verified,
        successor: None,
    };
    if generation >= live {
        return base;
    }
    // consumed_at[i] is when generation live - 1 - i was consumed, which
    // is also when generation live - i was minted.
    let kept = |back: i64| {
        usize::try_from(back)
            .ok()
            .and_then(|i| state.consumed_at.get(i).copied())
    };
    let back = live - 1 - generation;
    // Not kept: consumed long ago, so past any grace.
    let consumed_at = kept(back).unwrap_or(DateTime::UNIX_EPOCH);
    // The token lived from its minting, when the generation before it was
    // consumed; when that is no longer kept, the session's end bounds it.
    let token_expires_at = kept(back + 1).map_or(session.expires_at, |minted| {
        rotation::successor_expiry(minted, session.expires_at, policy.refresh_ttl)
    });
    let successor_live = generation + 1 == live;
    Presented {
        token_expires_at,
        token_consumed_at: Some(consumed_at),
        successor: Some(Successor {
            reproducible: successor_live
                && state
                    .token_key
                    .and_then(|k| u8::try_from(k).ok())
                    .is_some_and(|k| keys.holds(k)),
            consumed: !successor_live,
            expires_at: if successor_live {
                state.token_expires_at.unwrap_or(session.expires_at)
            } else {
                kept(back - 1).map_or(session.expires_at, |minted| {
                    rotation::successor_expiry(minted, session.expires_at, policy.refresh_ttl)
                })
            },
        }),
        ..base
    }
}

/// Revokes the session for reuse, with the `refresh_reuse_detected` event,
/// in one transaction: only while it is still at `generation` (when given)
/// and not revoked. Whether it did.
async fn revoke_for_reuse(
    conn: &AsyncPgConnection,
    session: &Session,
    generation: Option<i64>,
    client: &ClientInfo,
) -> DbResult<bool> {
    let mut c = conn;
    c.batch_execute("BEGIN").await?;
    let mut update = diesel::update(sessions::table.find(session.id))
        .filter(sessions::revoked_at.is_null())
        .into_boxed();
    if let Some(generation) = generation {
        update = update.filter(sessions::generation.eq(generation));
    }
    let revoked = update
        .set(revocations::columns(RevocationReason::ReuseDetected))
        .execute(&mut c)
        .await?;
    if revoked != 1 {
        c.batch_execute("ROLLBACK").await?;
        return Ok(false);
    }
    let events = [(
        Event::new(EventType::RefreshReuseDetected, session.user_id, client).in_session(session.id),
        None,
    )];
    audit::insert(&events).execute(&mut c).await?;
    c.batch_execute("COMMIT").await?;
    Ok(true)
}

/// Prepares the fast path's two statements on a new connection. Neither
/// changes anything: no session has the nil id.
pub async fn prepare(conn: &AsyncPgConnection) -> QueryResult<()> {
    let mut c = conn;
    let now = Utc::now();
    let nobody = Proof::nobody();
    FastRotate {
        columns: row_columns(),
        proof: &nobody,
        key_id: 0,
        now,
        wanted_expiry: now,
        require_verified: false,
        user_agent: None,
        client_ip: None,
    }
    .get_results::<Row>(&mut c)
    .await?;
    ReadSession {
        columns: row_columns(),
        session_id: Uuid::nil(),
    }
    .get_results::<Row>(&mut c)
    .await?;
    Ok(())
}

/// A session's token state: what the fast path returns and the classifying
/// path reads besides the session and the user.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions, check_for_backend(Pg))]
pub struct TokenState {
    token_secret: Option<Vec<u8>>,
    pub(super) generation: i64,
    token_key: Option<i16>,
    pub(super) token_expires_at: Option<DateTime<Utc>>,
    /// Newest first: `consumed_at[i]` is when generation `generation - 1 - i`
    /// was consumed, and so when generation `generation - i` was minted.
    pub(super) consumed_at: Vec<DateTime<Utc>>,
}

impl TokenState {
    /// The session's secret when `proof` is a token this session minted (a
    /// generation it has reached, whose MAC verifies against the secret, in
    /// constant time); `None` for anything else, forgeries included.
    pub(super) fn recognise(&self, proof: &Proof) -> Option<SessionSecret> {
        let secret = self
            .token_secret
            .clone()
            .and_then(SessionSecret::from_stored)?;
        (proof.generation <= self.generation && proof.verifies(secret.as_bytes())).then_some(secret)
    }
}

type Row = (Session, TokenSubject, TokenState);

/// The columns a `Selectable` type is loaded from.
type Columns<T> = <T as Selectable<Pg>>::SelectExpression;
/// Their SQL types, in the same order.
type ColumnTypes<T> = SqlTypeOf<Columns<T>>;

fn row_columns() -> Columns<Row> {
    <Row as Selectable<Pg>>::construct_selection()
}

/// ```sql
/// UPDATE sessions SET generation = generation + 1,
///        consumed_at = (ARRAY[$now] || consumed_at)[1:8], token_key = $key,
///        token_expires_at = LEAST($wanted, sessions.expires_at),
///        last_used_at = $now, user_agent = COALESCE($ua, …), client_ip = COALESCE($ip, …)
/// FROM users
/// WHERE sessions.id = $sid AND sessions.generation = $gen
///   AND sha256(sha256($u || sessions.token_secret)) = $h
///   AND sessions.revoked_at IS NULL AND sessions.expires_at > $now
///   AND sessions.token_expires_at > $now
///   AND users.id = sessions.user_id AND users.disabled_at IS NULL
///   AND (NOT $require_verified OR users.email_verified)
/// RETURNING <session>, <user>, <token state>
/// ```
/// No column it sets is indexed, so it is a heap-only (HOT) update.
struct FastRotate<'a> {
    columns: Columns<Row>,
    proof: &'a Proof,
    key_id: i16,
    now: DateTime<Utc>,
    /// `now + REFRESH_TOKEN_TTL`; the statement caps it at the session's end.
    wanted_expiry: DateTime<Utc>,
    require_verified: bool,
    user_agent: Option<&'a str>,
    client_ip: Option<&'a str>,
}

impl QueryFragment<Pg> for FastRotate<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "UPDATE sessions SET generation = sessions.generation + 1, consumed_at = (ARRAY[",
        );
        out.push_bind_param::<Timestamptz, _>(&self.now)?;
        out.push_sql("] || sessions.consumed_at)[1:8], token_key = ");
        out.push_bind_param::<SmallInt, _>(&self.key_id)?;
        out.push_sql(", token_expires_at = LEAST(");
        out.push_bind_param::<Timestamptz, _>(&self.wanted_expiry)?;
        out.push_sql(", sessions.expires_at), last_used_at = ");
        out.push_bind_param::<Timestamptz, _>(&self.now)?;
        out.push_sql(", user_agent = COALESCE(");
        out.push_bind_param::<Nullable<Text>, _>(&self.user_agent)?;
        out.push_sql(", sessions.user_agent), client_ip = COALESCE(");
        out.push_bind_param::<Nullable<Text>, _>(&self.client_ip)?;
        out.push_sql(", sessions.client_ip) FROM users WHERE sessions.id = ");
        out.push_bind_param::<SqlUuid, _>(&self.proof.session_id)?;
        out.push_sql(" AND sessions.generation = ");
        out.push_bind_param::<BigInt, _>(&self.proof.generation)?;
        out.push_sql(" AND sha256(sha256(");
        out.push_bind_param::<Bytea, _>(self.proof.keyed())?;
        out.push_sql(" || sessions.token_secret)) = ");
        out.push_bind_param::<Bytea, _>(self.proof.mac_hash_ref())?;
        out.push_sql(" AND sessions.revoked_at IS NULL AND sessions.expires_at > ");
        out.push_bind_param::<Timestamptz, _>(&self.now)?;
        out.push_sql(" AND sessions.token_expires_at > ");
        out.push_bind_param::<Timestamptz, _>(&self.now)?;
        out.push_sql(" AND users.id = sessions.user_id AND users.disabled_at IS NULL AND (NOT ");
        out.push_bind_param::<Bool, _>(&self.require_verified)?;
        out.push_sql(" OR users.email_verified) RETURNING ");
        self.columns.walk_ast(out.reborrow())
    }
}

impl QueryId for FastRotate<'_> {
    type QueryId = FastRotate<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for FastRotate<'_> {
    type SqlType = ColumnTypes<Row>;
}

/// ```sql
/// SELECT <session>, <user>, <token state> FROM sessions JOIN users … WHERE sessions.id = $sid
/// ```
struct ReadSession {
    columns: Columns<Row>,
    session_id: Uuid,
}

impl QueryFragment<Pg> for ReadSession {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("SELECT ");
        self.columns.walk_ast(out.reborrow())?;
        out.push_sql(
            " FROM sessions JOIN users ON users.id = sessions.user_id WHERE sessions.id = ",
        );
        out.push_bind_param::<SqlUuid, _>(&self.session_id)
    }
}

impl QueryId for ReadSession {
    type QueryId = ReadSession;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for ReadSession {
    type SqlType = ColumnTypes<Row>;
}

async fn refresh_legacy(
    conn: &AsyncPgConnection,
    presented: &TokenHash,
    keys: &TokenKeys,
    client: &ClientInfo,
    policy: &Policy,
) -> DbResult<RefreshOutcome> {
    let (mut first, mut second) = (conn, conn);
    // `BEGIN` is sent in its future's first poll, before anything else can
    // be: `join` polls it first, and nothing in it waits before the send.
    // The read, polled next, goes out behind it.
    let (begun, locked) = join(
        first.batch_execute("BEGIN"),
        LockedRead::new(presented.as_bytes()).get_results::<Locked>(&mut second),
    )
    .await;
    begun?;
    let Some((token, session, user, state, xid)) = locked?.pop() else {
        commit(conn).await?;
        return Ok(RefreshOutcome::Unknown);
    };
    // Read the clock only once the lock is ours: a waiter must judge the
    // grace from when the winner consumed the token, not from before.
    let now = Utc::now();
    // The successor of a legacy token consumed by the conversion (no
    // successor row) is the session's generation 1: live while the session
    // is still at it. One consumed before the upgrade had a legacy
    // successor, which no longer is sent again.
    let converted_successor =
        (token.consumed_at.is_some() && token.successor_id.is_none() && state.generation >= 1)
            .then(|| Successor {
                reproducible: state.generation == 1
                    && state.token_secret.is_some()
                    && state
                        .token_key
                        .and_then(|k| u8::try_from(k).ok())
                        .is_some_and(|k| keys.holds(k)),
                consumed: state.generation > 1,
                expires_at: state.token_expires_at.unwrap_or(session.expires_at),
            });
    let presented_state = Presented {
        token_expires_at: token.expires_at,
        token_consumed_at: token.consumed_at,
        session_expires_at: session.expires_at,
        // A disabled user's sessions were all revoked with the disable;
        // the user's row, read in the same statement, says so too.
        session_revoked: session.revoked_at.is_some() || user.disabled_at.is_some(),
        email_verified: user.email_verified,
        successor: converted_successor,
    };
    match rotation::decide(&presented_state, now, policy) {
        Decision::Reject(rejection) => {
            commit(conn).await?;
            Ok(RefreshOutcome::Rejected {
                rejection,
                session_id: session.id,
            })
        }
        Decision::RevokeForReuse => {
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
            let resend = match (
                answer,
                state.token_secret,
                state.token_key,
                state.token_expires_at,
            ) {
                (GraceAnswer::ResendSuccessor, Some(secret), Some(key), Some(expires_at)) => {
                    SessionSecret::from_stored(secret).map(|secret| Mintable {
                        session_id: session.id,
                        generation: 1,
                        key_id: u8::try_from(key).unwrap_or_default(),
                        secret,
                        expires_at,
                    })
                }
                _ => None,
            };
            Ok(RefreshOutcome::Grace {
                user,
                session,
                resend,
            })
        }
        Decision::Rotate {
            successor_expires_at,
        } => {
            let session = touched(session, client, now);
            let fresh = SessionSecret::generate()
                .map_err(|e| DbError::Unavailable(format!("CSPRNG: {e}")))?;
            let key_id = keys.current_id();
            let convert = Convert {
                xid,
                presented_id: token.id,
                session_id: session.id,
                secret: fresh.as_bytes(),
                key_id: i16::from(key_id),
                user_agent: session.user_agent.as_deref(),
                client_ip: session.client_ip.as_deref(),
                now,
                successor_expires_at,
            };
            let mut c = conn;
            let secret = convert.get_results::<Option<Vec<u8>>>(&mut c).await?.pop();
            commit(conn).await?;
            let Some(secret) = secret.flatten().and_then(SessionSecret::from_stored) else {
                return Err(outside_the_locking_transaction());
            };
            Ok(RefreshOutcome::Rotated {
                user,
                successor: Mintable {
                    session_id: session.id,
                    generation: 1,
                    key_id,
                    secret,
                    expires_at: successor_expires_at,
                },
                session,
            })
        }
    }
}

async fn commit(mut conn: &AsyncPgConnection) -> QueryResult<()> {
    conn.batch_execute("COMMIT").await
}

/// The guard of every legacy write, followed by the id of the transaction
/// that read the rows under lock: true only in that transaction.
const GUARD: &str = "pg_current_xact_id()::text::bigint = ";

/// A write that changed nothing because it ran outside the locking
/// transaction: the refresh fails (`503`, to be retried), nothing forks.
fn outside_the_locking_transaction() -> DbError {
    tracing::error!(
        "a rotation's write ran outside the transaction that read under lock; it changed nothing"
    );
    DbError::Unavailable("the rotation's write ran outside its transaction".to_owned())
}

/// What the rotation needs of a presented legacy token.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = refresh_tokens, check_for_backend(Pg))]
struct LockedToken {
    id: Uuid,
    expires_at: DateTime<Utc>,
    consumed_at: Option<DateTime<Utc>>,
    successor_id: Option<Uuid>,
}

/// The locked read's row: the token, its session and user, the session's
/// token state, and the id of the transaction that holds the locks.
type Locked = (LockedToken, Session, TokenSubject, TokenState, i64);

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
/// SELECT <token>, <session>, <user>, <token state>, pg_current_xact_id()
/// FROM refresh_tokens JOIN sessions ON … JOIN users ON …
/// WHERE refresh_tokens.token_hash = $1
/// FOR UPDATE OF refresh_tokens, sessions
/// ```
struct LockedRead<'a> {
    presented: &'a [u8],
    columns: Columns<(LockedToken, Session, TokenSubject, TokenState)>,
}

impl<'a> LockedRead<'a> {
    fn new(presented: &'a [u8]) -> Self {
        Self {
            presented,
            columns: <(LockedToken, Session, TokenSubject, TokenState) as Selectable<Pg>>::construct_selection(),
        }
    }
}

impl QueryFragment<Pg> for LockedRead<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("SELECT ");
        self.columns.walk_ast(out.reborrow())?;
        out.push_sql(
            ", pg_current_xact_id()::text::bigint \
             FROM refresh_tokens \
             JOIN sessions ON sessions.id = refresh_tokens.session_id \
             JOIN users ON users.id = sessions.user_id \
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
        ColumnTypes<TokenState>,
        BigInt,
    );
}

/// ```sql
/// WITH consumed AS (UPDATE refresh_tokens SET consumed_at = $now WHERE id = $token AND <guard>)
/// UPDATE sessions SET token_secret = COALESCE(token_secret, $secret), generation = 1,
///        token_key, token_expires_at, consumed_at = ARRAY[$now], last_used_at, user_agent, client_ip
/// WHERE id = $session AND generation = 0 AND <guard>
/// RETURNING token_secret
/// ```
/// The legacy token is consumed with no successor row: its successor is the
/// session's generation 1, and its consumption is kept as generation 0's
/// (so generation 1's minting time is known).
struct Convert<'a> {
    xid: i64,
    presented_id: Uuid,
    session_id: Uuid,
    secret: &'a [u8],
    key_id: i16,
    user_agent: Option<&'a str>,
    client_ip: Option<&'a str>,
    now: DateTime<Utc>,
    successor_expires_at: DateTime<Utc>,
}

impl Convert<'_> {
    fn push_guard<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(GUARD);
        out.push_bind_param::<BigInt, _>(&self.xid)
    }
}

impl QueryFragment<Pg> for Convert<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH consumed AS (UPDATE refresh_tokens SET consumed_at = ");
        out.push_bind_param::<Timestamptz, _>(&self.now)?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<SqlUuid, _>(&self.presented_id)?;
        out.push_sql(" AND ");
        self.push_guard(&mut out)?;
        out.push_sql(") UPDATE sessions SET token_secret = COALESCE(sessions.token_secret, ");
        out.push_bind_param::<Bytea, _>(self.secret)?;
        out.push_sql("), generation = 1, token_key = ");
        out.push_bind_param::<SmallInt, _>(&self.key_id)?;
        out.push_sql(", token_expires_at = ");
        out.push_bind_param::<Timestamptz, _>(&self.successor_expires_at)?;
        out.push_sql(", consumed_at = ARRAY[");
        out.push_bind_param::<Timestamptz, _>(&self.now)?;
        out.push_sql("], last_used_at = ");
        out.push_bind_param::<Timestamptz, _>(&self.now)?;
        out.push_sql(", user_agent = ");
        out.push_bind_param::<Nullable<Text>, _>(&self.user_agent)?;
        out.push_sql(", client_ip = ");
        out.push_bind_param::<Nullable<Text>, _>(&self.client_ip)?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<SqlUuid, _>(&self.session_id)?;
        out.push_sql(" AND generation = 0 AND ");
        self.push_guard(&mut out)?;
        out.push_sql(" RETURNING token_secret");
        Ok(())
    }
}

impl QueryId for Convert<'_> {
    type QueryId = Convert<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for Convert<'_> {
    type SqlType = Nullable<Bytea>;
}

#[cfg(test)]
mod tests {
    use diesel::{Connection, PgConnection};
    use diesel_async::SimpleAsyncConnection;
    use test_db::TestDatabase;

    use super::*;
    use crate::db::users;
    use crate::tokens::refresh::RefreshToken;

    /// A legacy token's conversion that reached PostgreSQL after its
    /// `COMMIT` (so in a transaction of its own, the lock long released)
    /// must change nothing: that is what keeps a misordered pipeline from
    /// forking a session.
    #[test]
    fn the_conversion_changes_nothing_outside_the_transaction_that_locked() {
        let database = TestDatabase::create();
        let mut sync = PgConnection::establish(&database.url).unwrap();
        let user = users::create(&mut sync, "guard@example.com", "$argon2id$x").unwrap();
        let token = RefreshToken::generate().unwrap();
        let session = Uuid::new_v4();
        let mut execute = |sql: String| {
            diesel::RunQueryDsl::execute(diesel::sql_query(sql), &mut sync).unwrap();
        };
        // A session and its token as the previous version wrote them.
        execute(format!(
            "INSERT INTO sessions (id, user_id, expires_at) VALUES ('{session}', '{}', now() + interval '1 day')",
            user.id
        ));
        let hash: String = token
            .hash()
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        execute(format!(
            "INSERT INTO refresh_tokens (id, token_hash, session_id, expires_at) \
             VALUES ('{}', '\\x{hash}'::bytea, '{session}', now() + interval '1 hour')",
            Uuid::new_v4()
        ));
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
            let now = Utc::now();
            let late = Convert {
                xid,
                presented_id: locked_token.id,
                session_id: session,
                secret: &[7; 32],
                key_id: 1,
                user_agent: Some("late"),
                client_ip: None,
                now,
                successor_expires_at: now + chrono::Duration::hours(1),
            };
            assert!(
                late.get_results::<Option<Vec<u8>>>(&mut c)
                    .await
                    .unwrap()
                    .is_empty()
            );
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
        assert_eq!(
            count("SELECT count(*) AS n FROM refresh_tokens WHERE consumed_at IS NOT NULL"),
            0
        );
        assert_eq!(
            count(
                "SELECT count(*) AS n FROM sessions WHERE user_agent = 'late' OR generation <> 0 OR token_secret IS NOT NULL"
            ),
            0
        );
    }
}
