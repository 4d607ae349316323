//! Finding the session of a presented refresh token, in either form, for
//! what is not a rotation (logout, revocation, introspection; the rotation
//! is [`super::rotation`]). Sessions no longer write `refresh_tokens`:
//! legacy tokens are read there until they expire.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::DbResult;
use super::models::{RefreshTokenRow, Session};
use super::rotation::{PresentedToken, TokenState};
use super::schema::{refresh_tokens, sessions};

/// A presented token's session, and the token's own state.
#[derive(Debug)]
pub struct Found {
    pub session: Session,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Not consumed: the session's live token.
    pub live: bool,
}

/// The session of a presented token, whatever the token's state (consumed
/// or not): `None` for a token of no session, or a version 2 token whose
/// MAC does not verify against its session's secret.
pub fn find(conn: &mut PgConnection, presented: &PresentedToken) -> DbResult<Option<Found>> {
    match presented {
        PresentedToken::Legacy(hash) => Ok(refresh_tokens::table
            .inner_join(sessions::table)
            .filter(refresh_tokens::token_hash.eq(hash.as_bytes()))
            .select((RefreshTokenRow::as_select(), Session::as_select()))
            .first::<(RefreshTokenRow, Session)>(conn)
            .optional()?
            .map(|(row, session)| Found {
                session,
                issued_at: row.issued_at,
                expires_at: row.expires_at,
                live: row.consumed_at.is_none(),
            })),
        PresentedToken::V2(proof) => {
            let Some((session, state)) = sessions::table
                .find(proof.session_id)
                .select((Session::as_select(), TokenState::as_select()))
                .first::<(Session, TokenState)>(conn)
                .optional()?
            else {
                return Ok(None);
            };
            if state.recognise(proof).is_none() {
                return Ok(None);
            }
            Ok(Some(Found {
                // The live generation was minted when the one before it was
                // consumed (or with the session).
                issued_at: state
                    .consumed_at
                    .first()
                    .copied()
                    .unwrap_or(session.created_at),
                expires_at: state.token_expires_at.unwrap_or(session.expires_at),
                live: proof.generation == state.generation,
                session,
            }))
        }
    }
}
