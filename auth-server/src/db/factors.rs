//! Rows of the second factors: a user's TOTP authenticator
//! (`totp_factors`) and recovery codes (`recovery_codes`). Every use of a
//! factor is one conditional `UPDATE`, so two replicas can never both
//! accept the same code.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::schema::{recovery_codes, totp_factors};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = totp_factors, check_for_backend(diesel::pg::Pg))]
pub struct TotpRow {
    pub user_id: Uuid,
    /// Sealed (see `crate::factors::totp`).
    pub secret: Vec<u8>,
    pub seal_key: i16,
    pub created_at: DateTime<Utc>,
    /// `None` while the enrolment waits for its first code.
    pub confirmed_at: Option<DateTime<Utc>>,
    pub last_step: Option<i64>,
}

/// What a user has as second factors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Factors {
    /// When TOTP was confirmed, if it is on.
    pub totp_since: Option<DateTime<Utc>>,
    /// How many passkeys the user has.
    pub passkeys: i64,
    pub recovery_codes_remaining: i64,
}

impl Factors {
    /// Whether the user has a second factor (recovery codes exist only
    /// beside one).
    pub fn any(&self) -> bool {
        self.totp_since.is_some() || self.passkeys > 0
    }

    /// The contract's `methods`: what a login's second step may use.
    pub fn methods(&self) -> Vec<&'static str> {
        let mut methods = Vec::new();
        if self.totp_since.is_some() {
            methods.push("totp");
        }
        if self.passkeys > 0 {
            methods.push("passkey");
        }
        if self.recovery_codes_remaining > 0 {
            methods.push("recovery_code");
        }
        methods
    }
}

pub fn of_user(conn: &mut PgConnection, user_id: Uuid) -> QueryResult<Factors> {
    let totp_since = totp_factors::table
        .find(user_id)
        .select(totp_factors::confirmed_at)
        .first::<Option<DateTime<Utc>>>(conn)
        .optional()?
        .flatten();
    let recovery_codes_remaining = recovery_codes::table
        .filter(recovery_codes::user_id.eq(user_id))
        .filter(recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)?;
    let passkeys = super::passkeys::count_of_user(conn, user_id)?;
    Ok(Factors {
        totp_since,
        passkeys,
        recovery_codes_remaining,
    })
}

pub fn totp(conn: &mut PgConnection, user_id: Uuid) -> QueryResult<Option<TotpRow>> {
    totp_factors::table
        .find(user_id)
        .select(TotpRow::as_select())
        .first(conn)
        .optional()
}

/// A pending enrolment with this sealed secret, replacing any pending one;
/// `false` when TOTP is already on.
pub fn start_totp(
    conn: &mut PgConnection,
    user_id: Uuid,
    sealed: &[u8],
    seal_key: u8,
) -> QueryResult<bool> {
    use diesel::sql_types::{Bytea, SmallInt, Uuid as SqlUuid};
    let written = diesel::sql_query(
        "INSERT INTO totp_factors (user_id, secret, seal_key) VALUES ($1, $2, $3) \
         ON CONFLICT (user_id) DO UPDATE SET secret = EXCLUDED.secret, \
           seal_key = EXCLUDED.seal_key, created_at = now(), last_step = NULL \
         WHERE totp_factors.confirmed_at IS NULL",
    )
    .bind::<SqlUuid, _>(user_id)
    .bind::<Bytea, _>(sealed)
    .bind::<SmallInt, _>(i16::from(seal_key))
    .execute(conn)?;
    Ok(written > 0)
}

/// Turns on the pending enrolment created at `pending_since` (the one the
/// code was checked against, not a newer one), `step` used.
pub fn confirm_totp(
    conn: &mut PgConnection,
    user_id: Uuid,
    pending_since: DateTime<Utc>,
    step: i64,
) -> QueryResult<bool> {
    let confirmed = diesel::update(totp_factors::table.find(user_id))
        .filter(totp_factors::confirmed_at.is_null())
        .filter(totp_factors::created_at.eq(pending_since))
        .set((
            totp_factors::confirmed_at.eq(Utc::now()),
            totp_factors::last_step.eq(step),
        ))
        .execute(conn)?;
    Ok(confirmed > 0)
}

/// Accepts `step` for the user's TOTP when it is later than the last one
/// accepted: the one statement that makes a code single use everywhere.
pub fn use_totp_step(conn: &mut PgConnection, user_id: Uuid, step: i64) -> QueryResult<bool> {
    let used = diesel::update(totp_factors::table.find(user_id))
        .filter(totp_factors::confirmed_at.is_not_null())
        .filter(
            totp_factors::last_step
                .is_null()
                .or(totp_factors::last_step.lt(step)),
        )
        .set(totp_factors::last_step.eq(step))
        .execute(conn)?;
    Ok(used > 0)
}

/// Removes the user's TOTP (pending or on); `true` when it was on.
pub fn delete_totp(conn: &mut PgConnection, user_id: Uuid) -> QueryResult<bool> {
    let removed: Vec<Option<DateTime<Utc>>> =
        diesel::delete(totp_factors::table.filter(totp_factors::user_id.eq(user_id)))
            .returning(totp_factors::confirmed_at)
            .get_results(conn)?;
    Ok(removed.iter().any(Option::is_some))
}

/// The user's recovery codes become these (hashes); the old ones die.
pub fn replace_recovery_codes(
    conn: &mut PgConnection,
    user_id: Uuid,
    hashes: &[[u8; 32]],
) -> QueryResult<()> {
    delete_recovery_codes(conn, user_id)?;
    let rows: Vec<_> = hashes
        .iter()
        .map(|hash| {
            (
                recovery_codes::id.eq(Uuid::new_v4()),
                recovery_codes::user_id.eq(user_id),
                recovery_codes::code_hash.eq(hash.as_slice()),
            )
        })
        .collect();
    diesel::insert_into(recovery_codes::table)
        .values(rows)
        .execute(conn)?;
    Ok(())
}

pub fn delete_recovery_codes(conn: &mut PgConnection, user_id: Uuid) -> QueryResult<usize> {
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id))).execute(conn)
}

/// Uses the unused code with this hash; `false` when there is none.
pub fn use_recovery_code(
    conn: &mut PgConnection,
    user_id: Uuid,
    hash: &[u8; 32],
) -> QueryResult<bool> {
    let used = diesel::update(recovery_codes::table)
        .filter(recovery_codes::user_id.eq(user_id))
        .filter(recovery_codes::code_hash.eq(hash.as_slice()))
        .filter(recovery_codes::used_at.is_null())
        .set(recovery_codes::used_at.eq(Utc::now()))
        .execute(conn)?;
    Ok(used > 0)
}
