//! Sessions: creating one at login (within the per-user cap), listing and
//! revoking them.

use std::num::NonZeroU32;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use uuid::Uuid;

use super::audit::{self, Event, EventType};
use super::models::{ClientInfo, RevocationReason, Session};
use super::rotation::PresentedToken;
use super::schema::{sessions, users};
use super::{DbError, DbResult, revocations, tokens};
use crate::tokens::refresh::SessionSecret;
use shared_claims::assurance::method;

/// How a new session's user proved who they are.
#[derive(Debug, Clone, Copy)]
pub struct Proven<'a> {
    /// RFC 8176 methods.
    pub amr: &'a [&'a str],
    /// The passkey used, if one was: removing it ends the session.
    pub passkey_id: Option<Uuid>,
}

impl Proven<'static> {
    pub fn password() -> Self {
        Self {
            amr: &[method::PASSWORD],
            passkey_id: None,
        }
    }
}

/// A session just created, and the sessions it evicted.
#[derive(Debug)]
pub struct Created {
    pub session: Session,
    /// Live sessions of the user revoked to keep within the cap.
    pub evicted: Vec<Uuid>,
}

/// What a new session's first token (generation 1) is minted from: the
/// session's secret and the id of the key that mints it.
#[derive(Debug, Clone, Copy)]
pub struct FirstToken<'a> {
    pub secret: &'a SessionSecret,
    pub key_id: u8,
}

/// A new session, its first refresh token live, with no cap on the user's
/// sessions.
pub fn create(
    conn: &mut PgConnection,
    user_id: Uuid,
    client: &ClientInfo,
    token: FirstToken<'_>,
    session_expires_at: DateTime<Utc>,
    token_expires_at: DateTime<Utc>,
) -> DbResult<Session> {
    let expiry = (session_expires_at, token_expires_at);
    let proven = Proven::password();
    insert(conn, user_id, None, proven, client, token, expiry, None)?
        .map(|created| created.session)
        .ok_or(DbError::Query(DieselError::NotFound))
}

/// A new session and its first refresh token, in one transaction, for a
/// login: the transaction holds the user's row, so concurrent logins of
/// one user take turns, and with `max_live` each leaves at most that many
/// live sessions (the newest, this one always among them), revoking the
/// others (`session_evicted`) as every revocation is, so the feed carries
/// them. Writes the `login` event, and a `session_evicted` event for each
/// session evicted, in one statement. `expiry` is the session's, then its
/// first token's. `verified_hash` is the password hash the login checked
/// the password against. `None` when the user no longer exists, is
/// disabled, or no longer has that hash (a reset or change committed while
/// the login was hashing: the password it checked is not the current one);
/// sets the user's `last_login_at`. `proven` is what the user proved.
#[allow(clippy::too_many_arguments)]
pub fn create_within_cap(
    conn: &mut PgConnection,
    user_id: Uuid,
    verified_hash: Option<&str>,
    proven: Proven<'_>,
    client: &ClientInfo,
    token: FirstToken<'_>,
    expiry: (DateTime<Utc>, DateTime<Utc>),
    max_live: Option<NonZeroU32>,
) -> DbResult<Option<Created>> {
    insert(
        conn,
        user_id,
        verified_hash,
        proven,
        client,
        token,
        expiry,
        max_live,
    )
}

/// [`create_within_cap`], with the hash check only when `verified_hash`
/// is given.
#[allow(clippy::too_many_arguments)]
fn insert(
    conn: &mut PgConnection,
    user_id: Uuid,
    verified_hash: Option<&str>,
    proven: Proven<'_>,
    client: &ClientInfo,
    token: FirstToken<'_>,
    (session_expires_at, token_expires_at): (DateTime<Utc>, DateTime<Utc>),
    max_live: Option<NonZeroU32>,
) -> DbResult<Option<Created>> {
    let now = Utc::now();
    conn.transaction(|conn| {
        // Locks the user's row (as a disable, delete, reset or change
        // does) and notes the login, in the one statement: no session of a
        // disabled user, nor for a password that is no longer the user's
        // (the lock makes a reset or change either commit first, and be
        // seen here, or wait for this session and revoke it).
        let mut lock = diesel::update(users::table.find(user_id))
            .filter(users::disabled_at.is_null())
            .into_boxed();
        if let Some(verified_hash) = verified_hash {
            lock = lock.filter(users::password_hash.eq(verified_hash));
        }
        let user = lock
            .set(users::last_login_at.eq(now))
            .returning(users::id)
            .get_result::<Uuid>(conn)
            .optional()?;
        if user.is_none() {
            return Ok(None);
        }
        // Generation 1 is live: the token minted from these is the first.
        let session: Session = diesel::insert_into(sessions::table)
            .values((
                &Session {
                    id: Uuid::new_v4(),
                    user_id,
                    created_at: now,
                    last_used_at: now,
                    expires_at: session_expires_at,
                    revoked_at: None,
                    revoked_reason: None,
                    user_agent: client.user_agent.clone(),
                    client_ip: client.ip.clone(),
                    revoked_xid: None,
                    amr: proven.amr.iter().map(|m| (*m).to_owned()).collect(),
                    auth_time: Some(now),
                    passkey_id: proven.passkey_id,
                },
                sessions::token_secret.eq(token.secret.as_bytes()),
                sessions::generation.eq(1_i64),
                sessions::token_key.eq(i16::from(token.key_id)),
                sessions::token_expires_at.eq(token_expires_at),
            ))
            .returning(Session::as_returning())
            .get_result(conn)?;
        let evicted = match max_live {
            Some(max) => evict_beyond(conn, &session, max)?,
            None => Vec::new(),
        };
        // The login, and the evictions the server made for it (no acting
        // user), in one statement.
        let login = Event::new(EventType::Login, user_id, client).in_session(session.id);
        let mut events = vec![(login, Some(user_id))];
        events.extend(evicted.iter().map(|&evicted_id| {
            let event = Event::new(EventType::SessionEvicted, user_id, client);
            (event.in_session(evicted_id), None)
        }));
        audit::record_all(conn, &events)?;
        Ok(Some(Created { session, evicted }))
    })
    .map_err(|e: DieselError| DbError::from(e))
}

/// Revokes the user's live sessions other than `newest`, past the `max - 1`
/// most recent of them; returns their ids.
fn evict_beyond(
    conn: &mut PgConnection,
    newest: &Session,
    max: NonZeroU32,
) -> QueryResult<Vec<Uuid>> {
    let beyond: Vec<Uuid> = sessions::table
        .filter(sessions::user_id.eq(newest.user_id))
        .filter(sessions::id.ne(newest.id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(newest.created_at))
        .order((sessions::created_at.desc(), sessions::id.desc()))
        .offset(i64::from(max.get() - 1))
        .select(sessions::id)
        .load(conn)?;
    if beyond.is_empty() {
        return Ok(beyond);
    }
    diesel::update(sessions::table.filter(sessions::id.eq_any(&beyond)))
        .filter(sessions::revoked_at.is_null())
        .set(revocations::columns(RevocationReason::SessionEvicted))
        .returning(sessions::id)
        .get_results(conn)
}

/// The user's sessions that can still be used, newest first.
pub fn list_live(conn: &mut PgConnection, user_id: Uuid) -> DbResult<Vec<Session>> {
    Ok(sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(Utc::now()))
        .order(sessions::created_at.desc())
        .select(Session::as_select())
        .load(conn)?)
}

/// Revokes one session; a session already revoked keeps its first reason.
pub fn revoke(
    conn: &mut PgConnection,
    session_id: Uuid,
    reason: RevocationReason,
) -> DbResult<bool> {
    let changed = diesel::update(sessions::table.find(session_id))
        .filter(sessions::revoked_at.is_null())
        .set(revocations::columns(reason))
        .execute(conn)?;
    Ok(changed > 0)
}

/// Revokes the session when it belongs to `user_id`. `None` when the user has
/// no such session, so that another user's session looks the same as none.
pub fn revoke_owned(
    conn: &mut PgConnection,
    user_id: Uuid,
    session_id: Uuid,
    reason: RevocationReason,
) -> DbResult<Option<bool>> {
    let owned = sessions::table
        .filter(sessions::id.eq(session_id))
        .filter(sessions::user_id.eq(user_id))
        .select(sessions::id)
        .first::<Uuid>(conn)
        .optional()?;
    match owned {
        None => Ok(None),
        Some(id) => revoke(conn, id, reason).map(Some),
    }
}

/// Revokes every live session of the user; returns how many.
pub fn revoke_all(
    conn: &mut PgConnection,
    user_id: Uuid,
    reason: RevocationReason,
) -> DbResult<usize> {
    Ok(diesel::update(sessions::table)
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .set(revocations::columns(reason))
        .execute(conn)?)
}

/// Whether the session can still be used: for Bearer endpoints of the auth
/// server itself, which see revocations at once.
/// A token issued under an older roles version than the user's is not.
pub fn is_live(conn: &mut PgConnection, session_id: Uuid, roles_version: i64) -> DbResult<bool> {
    let found = sessions::table
        .inner_join(users::table)
        .filter(sessions::id.eq(session_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(Utc::now()))
        .filter(users::roles_version.le(roles_version))
        .select(sessions::id)
        .first::<Uuid>(conn)
        .optional()?;
    Ok(found.is_some())
}

/// Revokes every live session of the user but `keep` (the one a password
/// change was made from); returns how many.
pub fn revoke_all_except(
    conn: &mut PgConnection,
    user_id: Uuid,
    keep: Option<Uuid>,
    reason: RevocationReason,
) -> QueryResult<usize> {
    let mut query = diesel::update(sessions::table)
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .into_boxed();
    if let Some(keep) = keep {
        query = query.filter(sessions::id.ne(keep));
    }
    query.set(revocations::columns(reason)).execute(conn)
}

/// Logout: revokes the session of a refresh token (in any state) and writes
/// the `logout` event, together. `None` for an unknown token; otherwise the
/// session and whether this call revoked it.
pub fn logout(
    conn: &mut PgConnection,
    token: &PresentedToken,
    client: &ClientInfo,
) -> DbResult<Option<(Session, bool)>> {
    conn.transaction(|conn| {
        let Some(tokens::Found { session, .. }) = tokens::find(conn, token)? else {
            return Ok(None);
        };
        let changed = revoke(conn, session.id, RevocationReason::Logout)?;
        if changed {
            audit::record(
                conn,
                Event::new(EventType::Logout, session.user_id, client).in_session(session.id),
            )?;
        }
        Ok(Some((session, changed)))
    })
}

/// Logout by an access token's session id (OAuth revocation of an access
/// token): as [`logout`], for a session that exists. `None` for no such
/// session; otherwise the session's user and whether this call revoked it.
pub fn logout_session(
    conn: &mut PgConnection,
    session_id: Uuid,
    client: &ClientInfo,
) -> DbResult<Option<(Uuid, bool)>> {
    conn.transaction(|conn| {
        let Some(user_id) = sessions::table
            .find(session_id)
            .select(sessions::user_id)
            .first::<Uuid>(conn)
            .optional()?
        else {
            return Ok(None);
        };
        let changed = revoke(conn, session_id, RevocationReason::Logout)?;
        if changed {
            audit::record(
                conn,
                Event::new(EventType::Logout, user_id, client).in_session(session_id),
            )?;
        }
        Ok(Some((user_id, changed)))
    })
}

/// Logout everywhere, asked from `session_id`: every live session revoked
/// and the `logout_all` event, together; returns how many.
pub fn logout_all(
    conn: &mut PgConnection,
    user_id: Uuid,
    session_id: Uuid,
    client: &ClientInfo,
) -> DbResult<usize> {
    conn.transaction(|conn| {
        let count = revoke_all(conn, user_id, RevocationReason::LogoutAll)?;
        audit::record(
            conn,
            Event::new(EventType::LogoutAll, user_id, client).in_session(session_id),
        )?;
        Ok(count)
    })
}

/// A user ending one of their sessions, with the `session_deleted` event
/// (about the session that ended); as [`revoke_owned`].
pub fn delete_owned(
    conn: &mut PgConnection,
    user_id: Uuid,
    session_id: Uuid,
    client: &ClientInfo,
) -> DbResult<Option<bool>> {
    conn.transaction(|conn| {
        let revoked = revoke_owned(conn, user_id, session_id, RevocationReason::SessionDeleted)?;
        if revoked == Some(true) {
            audit::record(
                conn,
                Event::new(EventType::SessionDeleted, user_id, client).in_session(session_id),
            )?;
        }
        Ok(revoked)
    })
}

/// The user proved `amr` again in this live session: it records them, with
/// `auth_time` now. `None` when the session is no longer live.
pub fn reauthenticated(
    conn: &mut PgConnection,
    session_id: Uuid,
    user_id: Uuid,
    amr: &[&str],
) -> QueryResult<Option<Session>> {
    let now = Utc::now();
    diesel::update(sessions::table.find(session_id))
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .set((
            sessions::amr.eq(amr.iter().map(|m| (*m).to_owned()).collect::<Vec<_>>()),
            sessions::auth_time.eq(now),
        ))
        .returning(Session::as_returning())
        .get_result(conn)
        .optional()
}

/// Revokes the live sessions that signed in with this passkey; how many.
pub fn revoke_signed_in_with(
    conn: &mut PgConnection,
    passkey_id: Uuid,
    reason: RevocationReason,
) -> QueryResult<usize> {
    diesel::update(sessions::table)
        .filter(sessions::passkey_id.eq(passkey_id))
        .filter(sessions::revoked_at.is_null())
        .set(revocations::columns(reason))
        .execute(conn)
}
