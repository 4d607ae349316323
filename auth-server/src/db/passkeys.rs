//! Rows of passkeys (`passkeys`) and of the WebAuthn ceremonies in flight
//! (`webauthn_challenges`). A challenge is taken once, in the statement
//! that reads it; a signature counter only moves forward.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::schema::{passkeys, webauthn_challenges};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = passkeys, check_for_backend(diesel::pg::Pg))]
pub struct PasskeyRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub credential_id: Vec<u8>,
    pub name: String,
    /// webauthn-rs's `Passkey`, as JSON.
    pub credential: serde_json::Value,
    pub counter: i64,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Why a ceremony was started: a finish of another kind cannot take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Register,
    Login,
    SecondFactor,
    Reauthenticate,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Login => "login",
            Self::SecondFactor => "second_factor",
            Self::Reauthenticate => "reauthenticate",
        }
    }
}

pub fn of_user(conn: &mut PgConnection, user_id: Uuid) -> QueryResult<Vec<PasskeyRow>> {
    passkeys::table
        .filter(passkeys::user_id.eq(user_id))
        .order((passkeys::created_at.asc(), passkeys::id.asc()))
        .select(PasskeyRow::as_select())
        .load(conn)
}

pub fn count_of_user(conn: &mut PgConnection, user_id: Uuid) -> QueryResult<i64> {
    passkeys::table
        .filter(passkeys::user_id.eq(user_id))
        .count()
        .get_result(conn)
}

pub fn by_credential_id(
    conn: &mut PgConnection,
    credential_id: &[u8],
) -> QueryResult<Option<PasskeyRow>> {
    passkeys::table
        .filter(passkeys::credential_id.eq(credential_id))
        .select(PasskeyRow::as_select())
        .first(conn)
        .optional()
}

/// A new passkey; `None` when the credential is already registered (to
/// anyone).
pub fn insert(
    conn: &mut PgConnection,
    user_id: Uuid,
    credential_id: &[u8],
    name: &str,
    credential: &serde_json::Value,
) -> QueryResult<Option<PasskeyRow>> {
    diesel::insert_into(passkeys::table)
        .values((
            passkeys::id.eq(Uuid::new_v4()),
            passkeys::user_id.eq(user_id),
            passkeys::credential_id.eq(credential_id),
            passkeys::name.eq(name),
            passkeys::credential.eq(credential),
        ))
        .on_conflict(passkeys::credential_id)
        .do_nothing()
        .returning(PasskeyRow::as_returning())
        .get_result(conn)
        .optional()
}

/// Records a use: the credential as it now is, its counter (only ever
/// forward, or staying at 0 for authenticators without one). `false`
/// when another use moved the counter past it meanwhile.
pub fn used(
    conn: &mut PgConnection,
    id: Uuid,
    counter: i64,
    credential: &serde_json::Value,
) -> QueryResult<bool> {
    let updated = diesel::update(passkeys::table.find(id))
        .filter(
            passkeys::counter
                .lt(counter)
                .or(passkeys::counter.eq(0).and(passkeys::counter.eq(counter))),
        )
        .set((
            passkeys::counter.eq(counter),
            passkeys::credential.eq(credential),
            passkeys::last_used_at.eq(Utc::now()),
        ))
        .execute(conn)?;
    Ok(updated > 0)
}

/// Removes the user's passkey; the removed row, or `None`.
pub fn delete(conn: &mut PgConnection, user_id: Uuid, id: Uuid) -> QueryResult<Option<PasskeyRow>> {
    diesel::delete(
        passkeys::table
            .filter(passkeys::id.eq(id))
            .filter(passkeys::user_id.eq(user_id)),
    )
    .returning(PasskeyRow::as_returning())
    .get_result(conn)
    .optional()
}

pub fn delete_all(conn: &mut PgConnection, user_id: Uuid) -> QueryResult<usize> {
    diesel::delete(passkeys::table.filter(passkeys::user_id.eq(user_id))).execute(conn)
}

/// A ceremony in flight, for `ttl`; its id.
pub fn start(
    conn: &mut PgConnection,
    purpose: Purpose,
    user_id: Option<Uuid>,
    state: &serde_json::Value,
    expires_at: DateTime<Utc>,
) -> QueryResult<Uuid> {
    let id = Uuid::new_v4();
    diesel::insert_into(webauthn_challenges::table)
        .values((
            webauthn_challenges::id.eq(id),
            webauthn_challenges::purpose.eq(purpose.as_str()),
            webauthn_challenges::user_id.eq(user_id),
            webauthn_challenges::state.eq(state),
            webauthn_challenges::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    Ok(id)
}

/// Takes the ceremony `id` of this purpose (and user, when it has one):
/// its state, once; `None` when it is unknown, used, expired or another's.
pub fn take(
    conn: &mut PgConnection,
    id: Uuid,
    purpose: Purpose,
    user_id: Option<Uuid>,
) -> QueryResult<Option<serde_json::Value>> {
    diesel::update(webauthn_challenges::table.find(id))
        .filter(webauthn_challenges::purpose.eq(purpose.as_str()))
        .filter(webauthn_challenges::user_id.is_not_distinct_from(user_id))
        .filter(webauthn_challenges::used_at.is_null())
        .filter(webauthn_challenges::expires_at.gt(Utc::now()))
        .set(webauthn_challenges::used_at.eq(Utc::now()))
        .returning(webauthn_challenges::state)
        .get_result(conn)
        .optional()
}
