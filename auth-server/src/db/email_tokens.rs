//! Rows of `email_tokens`: reset and verification tokens, stored as hashes
//! (see `crate::tokens::email` for how the tokens themselves are drawn).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::schema::email_tokens;
use crate::tokens::email::Purpose;
use crate::tokens::refresh::TokenHash;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = email_tokens, check_for_backend(diesel::pg::Pg))]
pub struct EmailTokenRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub purpose: String,
    pub email: String,
    pub token_hash: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub spent_at: Option<DateTime<Utc>>,
}

impl EmailTokenRow {
    /// Neither used, nor killed, nor expired.
    pub fn is_usable(&self, now: DateTime<Utc>) -> bool {
        self.spent_at.is_none() && self.expires_at > now
    }
}

/// Puts `hash` in place of the token's hash while the token is usable (not
/// used, killed or expired); the row as it now is, or `None`.
pub fn replace_hash(
    conn: &mut PgConnection,
    id: Uuid,
    hash: &TokenHash,
) -> QueryResult<Option<EmailTokenRow>> {
    diesel::update(email_tokens::table.find(id))
        .filter(email_tokens::spent_at.is_null())
        .filter(email_tokens::expires_at.gt(Utc::now()))
        .set(email_tokens::token_hash.eq(hash.as_bytes()))
        .returning(EmailTokenRow::as_returning())
        .get_result(conn)
        .optional()
}

pub fn insert(conn: &mut PgConnection, row: &EmailTokenRow) -> QueryResult<()> {
    diesel::insert_into(email_tokens::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// Whether a presented token could be used now (no lock: a cheap check
/// before work such as hashing a new password; the change re-checks).
pub fn is_usable(conn: &mut PgConnection, hash: &TokenHash, purpose: Purpose) -> QueryResult<bool> {
    let found = email_tokens::table
        .filter(email_tokens::token_hash.eq(hash.as_bytes()))
        .filter(email_tokens::purpose.eq(purpose.as_str()))
        .filter(email_tokens::spent_at.is_null())
        .filter(email_tokens::expires_at.gt(Utc::now()))
        .select(email_tokens::id)
        .first::<Uuid>(conn)
        .optional()?;
    Ok(found.is_some())
}

/// Locks the presented token's row and spends it, when it is usable: two
/// requests with one token queue on the lock and only the first gets it.
pub fn spend(
    conn: &mut PgConnection,
    hash: &TokenHash,
    purpose: Purpose,
) -> QueryResult<Option<EmailTokenRow>> {
    let Some(row) = email_tokens::table
        .filter(email_tokens::token_hash.eq(hash.as_bytes()))
        .filter(email_tokens::purpose.eq(purpose.as_str()))
        .select(EmailTokenRow::as_select())
        .for_update()
        .first(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let now = Utc::now();
    if !row.is_usable(now) {
        return Ok(None);
    }
    diesel::update(email_tokens::table.find(row.id))
        .set(email_tokens::spent_at.eq(now))
        .execute(conn)?;
    Ok(Some(row))
}

/// Kills the user's live tokens of a purpose: a newer request, a password
/// change or a reset makes older links useless. Returns how many.
pub fn kill(conn: &mut PgConnection, user_id: Uuid, purpose: Purpose) -> QueryResult<usize> {
    diesel::update(email_tokens::table)
        .filter(email_tokens::user_id.eq(user_id))
        .filter(email_tokens::purpose.eq(purpose.as_str()))
        .filter(email_tokens::spent_at.is_null())
        .set(email_tokens::spent_at.eq(Utc::now()))
        .execute(conn)
}
