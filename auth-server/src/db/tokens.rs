//! Refresh tokens: issuing the first of a session, rotating, and looking one up.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use uuid::Uuid;

use super::audit::{self, Event, EventType};
use super::models::{ClientInfo, RefreshTokenRow, RevocationReason, Session, User};
use super::schema::{refresh_tokens, sessions, users};
use super::{DbError, DbResult, revocations};
use crate::refresh_token::TokenHash;
use crate::rotation::{self, Decision, Policy, Presented, Rejection};

#[derive(Debug)]
pub enum RefreshOutcome {
    /// The presented token was consumed; `successor` is live until `expires_at`.
    Rotated {
        user: User,
        session: Session,
        successor_expires_at: DateTime<Utc>,
    },
    /// Within the reuse grace: an access token, no refresh token.
    Grace {
        user: User,
        session: Session,
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

/// One transaction that locks the presented token's row (and its session's),
/// so concurrent refreshes of one token queue here: the first consumes it,
/// the rest see it consumed and fall under the grace rule.
pub fn refresh(
    conn: &mut PgConnection,
    presented: &TokenHash,
    successor: &TokenHash,
    client: &ClientInfo,
    policy: &Policy,
) -> DbResult<RefreshOutcome> {
    conn.transaction(|conn| {
        let Some((token, session)) = refresh_tokens::table
            .inner_join(sessions::table)
            .filter(refresh_tokens::token_hash.eq(presented.as_bytes()))
            .select((RefreshTokenRow::as_select(), Session::as_select()))
            .for_update()
            .first::<(RefreshTokenRow, Session)>(conn)
            .optional()?
        else {
            return Ok(RefreshOutcome::Unknown);
        };
        // Read the clock only once the lock is ours: a waiter must judge the
        // grace from when the winner consumed the token, not from before.
        let now = Utc::now();
        let state = Presented {
            token_expires_at: token.expires_at,
            token_consumed_at: token.consumed_at,
            session_expires_at: session.expires_at,
            session_revoked: session.revoked_at.is_some(),
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
            Decision::Grace => {
                let session = touch_session(conn, &session, client, now)?;
                let user = load_user(conn, session.user_id)?;
                Ok(RefreshOutcome::Grace { user, session })
            }
            Decision::Rotate {
                successor_expires_at,
            } => {
                let successor_id = Uuid::new_v4();
                insert(
                    conn,
                    successor_id,
                    successor,
                    session.id,
                    now,
                    successor_expires_at,
                )?;
                diesel::update(refresh_tokens::table.find(token.id))
                    .set((
                        refresh_tokens::consumed_at.eq(now),
                        refresh_tokens::successor_id.eq(successor_id),
                    ))
                    .execute(conn)?;
                let session = touch_session(conn, &session, client, now)?;
                let user = load_user(conn, session.user_id)?;
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

pub fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    hash: &TokenHash,
    session_id: Uuid,
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::insert_into(refresh_tokens::table)
        .values(&RefreshTokenRow {
            id,
            token_hash: hash.as_bytes().to_vec(),
            session_id,
            issued_at,
            expires_at,
            consumed_at: None,
            successor_id: None,
        })
        .execute(conn)
        .map(|_| ())
}

/// The session a token belongs to, whatever the token's state.
pub fn session_of(conn: &mut PgConnection, hash: &TokenHash) -> DbResult<Option<Session>> {
    Ok(refresh_tokens::table
        .inner_join(sessions::table)
        .filter(refresh_tokens::token_hash.eq(hash.as_bytes()))
        .select(Session::as_select())
        .first(conn)
        .optional()?)
}

/// Records use: `last_used_at`, and the user agent and address last seen.
fn touch_session(
    conn: &mut PgConnection,
    session: &Session,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> QueryResult<Session> {
    let user_agent = client
        .user_agent
        .clone()
        .or_else(|| session.user_agent.clone());
    let client_ip = client.ip.clone().or_else(|| session.client_ip.clone());
    diesel::update(sessions::table.find(session.id))
        .set((
            sessions::last_used_at.eq(now),
            sessions::user_agent.eq(user_agent),
            sessions::client_ip.eq(client_ip),
        ))
        .returning(Session::as_returning())
        .get_result(conn)
}

fn load_user(conn: &mut PgConnection, user_id: Uuid) -> QueryResult<User> {
    users::table
        .find(user_id)
        .select(User::as_select())
        .first(conn)
}
