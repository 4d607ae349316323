//! Rows of `mfa_tokens`: a login between its password and its second
//! factor. Each try is counted before its code is checked, in the statement
//! that finds the token, so no number of concurrent requests gets more
//! than [`MAX_TRIES`] checks of one token.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::schema::mfa_tokens;
use crate::tokens::refresh::TokenHash;

/// Tries one mfa token allows (the contract's 5).
pub const MAX_TRIES: i32 = 5;

/// A try the token allowed: whose login it is, and which password hash the
/// login checked (SHA-256 of it).
#[derive(Debug, Clone, Queryable)]
pub struct Attempt {
    pub id: Uuid,
    pub user_id: Uuid,
    pub password_check: Vec<u8>,
}

pub fn insert(
    conn: &mut PgConnection,
    hash: &TokenHash,
    user_id: Uuid,
    password_check: &[u8; 32],
    expires_at: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::insert_into(mfa_tokens::table)
        .values((
            mfa_tokens::id.eq(Uuid::new_v4()),
            mfa_tokens::token_hash.eq(hash.as_bytes()),
            mfa_tokens::user_id.eq(user_id),
            mfa_tokens::password_check.eq(password_check.as_slice()),
            mfa_tokens::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// Counts a try of the token with this hash; `None` when it is unknown,
/// expired, used, or out of tries.
pub fn try_token(conn: &mut PgConnection, hash: &TokenHash) -> QueryResult<Option<Attempt>> {
    diesel::update(mfa_tokens::table)
        .filter(mfa_tokens::token_hash.eq(hash.as_bytes()))
        .filter(mfa_tokens::used_at.is_null())
        .filter(mfa_tokens::expires_at.gt(Utc::now()))
        .filter(mfa_tokens::tries.lt(MAX_TRIES))
        .set(mfa_tokens::tries.eq(mfa_tokens::tries + 1))
        .returning((
            mfa_tokens::id,
            mfa_tokens::user_id,
            mfa_tokens::password_check,
        ))
        .get_result(conn)
        .optional()
}

/// The token's one success; `false` when another request had it.
pub fn finish(conn: &mut PgConnection, id: Uuid) -> QueryResult<bool> {
    let done = diesel::update(mfa_tokens::table.find(id))
        .filter(mfa_tokens::used_at.is_null())
        .set(mfa_tokens::used_at.eq(Utc::now()))
        .execute(conn)?;
    Ok(done > 0)
}

/// Every pending second step of the user ends (a factor reset, say).
pub fn delete_for_user(conn: &mut PgConnection, user_id: Uuid) -> QueryResult<usize> {
    diesel::delete(mfa_tokens::table.filter(mfa_tokens::user_id.eq(user_id))).execute(conn)
}

/// Whose login the token carries, while it is usable, without counting a
/// try (starting a passkey ceremony checks nothing yet).
pub fn peek(conn: &mut PgConnection, hash: &TokenHash) -> QueryResult<Option<Uuid>> {
    mfa_tokens::table
        .filter(mfa_tokens::token_hash.eq(hash.as_bytes()))
        .filter(mfa_tokens::used_at.is_null())
        .filter(mfa_tokens::expires_at.gt(Utc::now()))
        .filter(mfa_tokens::tries.lt(MAX_TRIES))
        .select(mfa_tokens::user_id)
        .first(conn)
        .optional()
}
