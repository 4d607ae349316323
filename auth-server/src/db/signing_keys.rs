//! The signing keys' statements (what they mean: [`crate::keys::keyring`]). A key
//! is created only under a transaction-scoped advisory lock, so replicas
//! deciding at the same moment create one key, not one each; the creating
//! transaction notifies `signing_keys`, so every replica reloads at once.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Bool, Bytea, Nullable, Text, Timestamptz};

use super::DbResult;
use super::notifications::{SIGNING_KEYS, notify};

/// The advisory lock under which keys are created ("authkeys" in ASCII).
const KEYS_LOCK: i64 = 0x6175_7468_6b65_7973;

#[derive(Debug, Clone, QueryableByName)]
pub struct StoredKey {
    #[diesel(sql_type = Text)]
    pub kid: String,
    #[diesel(sql_type = Bytea)]
    pub public_key: Vec<u8>,
    #[diesel(sql_type = Bytea)]
    pub sealed_private_key: Vec<u8>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub publish_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub activate_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub retire_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str =
    "kid, public_key, sealed_private_key, created_at, publish_at, activate_at, retire_at";

/// Every key not retired before `since` (the ones still published, or
/// about to be), oldest first.
pub fn since(conn: &mut PgConnection, since: DateTime<Utc>) -> DbResult<Vec<StoredKey>> {
    Ok(diesel::sql_query(format!(
        "SELECT {COLUMNS} FROM signing_keys WHERE retire_at IS NULL OR retire_at > $1 ORDER BY activate_at"
    ))
    .bind::<Timestamptz, _>(since)
    .load(conn)?)
}

/// Every key stored, oldest first (`auth-server keys list`).
pub fn all(conn: &mut PgConnection) -> DbResult<Vec<StoredKey>> {
    Ok(diesel::sql_query(format!(
        "SELECT {COLUMNS} FROM signing_keys ORDER BY activate_at"
    ))
    .load(conn)?)
}

/// A key ready to be stored: its private half already sealed.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub kid: String,
    pub public_key: Vec<u8>,
    pub sealed_private_key: Vec<u8>,
}

/// How to wait for the keys' lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// Skip when another replica holds it: it is deciding already.
    Try,
    /// Wait for it (a start, an operator's command).
    Wait,
}

/// Stores `candidate` if `decide`, given the database's `now()` and every
/// key's dates, says when it should start signing: published at once, the
/// key signing until then retired at that moment, every replica notified.
/// With `replace_pending`, keys that have not signed yet are dropped first
/// (they signed nothing, so nothing can depend on them). `None` when
/// nothing was stored.
pub fn create_if<F>(
    conn: &mut PgConnection,
    lock: Lock,
    replace_pending: bool,
    candidate: &Candidate,
    decide: F,
) -> DbResult<Option<DateTime<Utc>>>
where
    F: FnOnce(DateTime<Utc>, &[StoredKey]) -> Option<DateTime<Utc>>,
{
    conn.transaction(|conn| {
        #[derive(QueryableByName)]
        struct Locked {
            #[diesel(sql_type = Bool)]
            locked: bool,
            #[diesel(sql_type = Timestamptz)]
            now: DateTime<Utc>,
        }
        let sql = match lock {
            Lock::Try => {
                format!("SELECT pg_try_advisory_xact_lock({KEYS_LOCK}) AS locked, now() AS now")
            }
            Lock::Wait => format!(
                "SELECT pg_advisory_xact_lock({KEYS_LOCK}) IS NOT NULL AS locked, now() AS now"
            ),
        };
        let Locked { locked, now } = diesel::sql_query(sql).get_result(conn)?;
        if !locked {
            return Ok(None);
        }
        if replace_pending {
            diesel::sql_query("DELETE FROM signing_keys WHERE activate_at > now()")
                .execute(conn)?;
            // The key those would have retired signs until the new one does.
            diesel::sql_query("UPDATE signing_keys SET retire_at = NULL WHERE retire_at > now()")
                .execute(conn)?;
        }
        let Some(activate_at) = decide(now, &all(conn)?) else {
            return Ok(None);
        };
        diesel::sql_query(
            "UPDATE signing_keys SET retire_at = greatest($1, activate_at) WHERE retire_at IS NULL",
        )
        .bind::<Timestamptz, _>(activate_at)
        .execute(conn)?;
        diesel::sql_query(
            "INSERT INTO signing_keys \
               (kid, public_key, sealed_private_key, created_at, publish_at, activate_at) \
             VALUES ($1, $2, $3, now(), now(), $4)",
        )
        .bind::<Text, _>(&candidate.kid)
        .bind::<Bytea, _>(&candidate.public_key)
        .bind::<Bytea, _>(&candidate.sealed_private_key)
        .bind::<Timestamptz, _>(activate_at)
        .execute(conn)?;
        notify(conn, SIGNING_KEYS)?;
        Ok(Some(activate_at))
    })
}

/// Deletes keys whose publication ended before `before`: no token they
/// signed is alive, and no API lists them any more.
pub fn forget(conn: &mut PgConnection, before: DateTime<Utc>) -> DbResult<usize> {
    Ok(
        diesel::sql_query("DELETE FROM signing_keys WHERE retire_at < $1")
            .bind::<Timestamptz, _>(before)
            .execute(conn)?,
    )
}
