//! The rotation as it was before it was cut to four round trips (commit
//! b5d5c55, `auth_server::db::tokens::refresh`), kept here as the old
//! ceiling: `BEGIN`, the locking read, insert the successor, consume the
//! token, touch the session (`RETURNING`), read the user, `COMMIT`. Seven
//! round trips, statement for statement as it ran then; only a live token is
//! ever presented here, so the other branches are left out.

use anyhow::bail;
use chrono::Utc;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use uuid::Uuid;

use auth_server::db::DbError;
use auth_server::db::models::{ClientInfo, RefreshTokenRow, Session, User};
use auth_server::db::schema::{refresh_tokens, sessions, users};
use auth_server::tokens::refresh::TokenHash;
use auth_server::tokens::rotation::{self, Decision, Policy, Presented};

/// One rotation of a live token the seven-statement way.
pub fn seven_statement_rotation(
    conn: &mut PgConnection,
    presented: &TokenHash,
    successor: &TokenHash,
    client: &ClientInfo,
    policy: &Policy,
) -> anyhow::Result<()> {
    let rotated = conn
        .transaction(|conn| {
            let Some((token, session)) = refresh_tokens::table
                .inner_join(sessions::table)
                .filter(refresh_tokens::token_hash.eq(presented.as_bytes()))
                .select((RefreshTokenRow::as_select(), Session::as_select()))
                .for_update()
                .first::<(RefreshTokenRow, Session)>(conn)
                .optional()?
            else {
                return Ok(false);
            };
            let now = Utc::now();
            let state = Presented {
                token_expires_at: token.expires_at,
                token_consumed_at: token.consumed_at,
                session_expires_at: session.expires_at,
                session_revoked: session.revoked_at.is_some(),
                // The seven-statement rotation read the user only after.
                email_verified: true,
                successor: None,
            };
            let Decision::Rotate {
                successor_expires_at,
            } = rotation::decide(&state, now, policy)
            else {
                return Ok(false);
            };
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
            let _user = load_user(conn, session.user_id)?;
            Ok(true)
        })
        .map_err(|e: DieselError| DbError::from(e))?;
    if !rotated {
        bail!("old rotation SQL: the token did not rotate");
    }
    Ok(())
}

/// The previous version's `db::tokens::insert`: a token row, unconsumed.
pub fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    hash: &TokenHash,
    session_id: Uuid,
    issued_at: chrono::DateTime<Utc>,
    expires_at: chrono::DateTime<Utc>,
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

fn touch_session(
    conn: &mut PgConnection,
    session: &Session,
    client: &ClientInfo,
    now: chrono::DateTime<Utc>,
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
