//! Refresh tokens: storing the first of a session and looking one up (the
//! rotation is [`super::rotation`]).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::DbResult;
use super::models::{RefreshTokenRow, Session};
use super::schema::{refresh_tokens, sessions};
use crate::refresh_token::TokenHash;

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

/// A refresh token with its session, whatever their states (introspection
/// decides what they mean).
pub fn with_session(
    conn: &mut PgConnection,
    hash: &TokenHash,
) -> DbResult<Option<(RefreshTokenRow, Session)>> {
    Ok(refresh_tokens::table
        .inner_join(sessions::table)
        .filter(refresh_tokens::token_hash.eq(hash.as_bytes()))
        .select((RefreshTokenRow::as_select(), Session::as_select()))
        .first(conn)
        .optional()?)
}
