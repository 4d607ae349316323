//! What an account goes through beyond logging in, each as one transaction
//! with its audit event: registering, changing the password, resetting it
//! with an e-mail token, verifying the address, and minting the token of a
//! queued mail.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use uuid::Uuid;

use super::audit::{self, Event, EventType};
use super::email_tokens::{self, EmailTokenRow};
use super::models::{ClientInfo, RevocationReason, User};
use super::outbox;
use super::schema::users;
use super::users::CreateUserError;
use super::{DbError, DbResult, login_throttle, sessions};
use crate::accounts::email::Email;
use crate::limits::RateLimit;
use crate::tokens::email::Purpose;
use crate::tokens::refresh::TokenHash;

/// A new user, its `register` event and its verification mail, together.
pub fn register(
    conn: &mut PgConnection,
    email: &Email,
    password_hash: &str,
    client: &ClientInfo,
) -> Result<User, CreateUserError> {
    conn.transaction(|conn| {
        let user = super::users::create(conn, email.as_str(), password_hash)?;
        audit::record(conn, Event::new(EventType::Register, user.id, client))
            .map_err(DbError::from)?;
        outbox::enqueue(conn, Purpose::EmailVerify, email, Some(user.id), client)
            .map_err(DbError::from)?;
        Ok(user)
    })
}

/// The user behind a Bearer token, for checking the current password.
pub fn find_user(conn: &mut PgConnection, user_id: Uuid) -> DbResult<Option<User>> {
    super::users::find_by_id(conn, user_id)
}

/// A password change from session `session_id`: the new hash (only if the
/// hash the current password was checked against is still the stored one),
/// every other session revoked, reset links killed, the event. `None` when
/// the password changed meanwhile; otherwise how many sessions ended.
pub fn change_password(
    conn: &mut PgConnection,
    user_id: Uuid,
    session_id: Uuid,
    checked_hash: &str,
    new_hash: &str,
    client: &ClientInfo,
) -> DbResult<Option<usize>> {
    Ok(conn.transaction(|conn| {
        let Some(email) = set_password_hash(conn, user_id, Some(checked_hash), new_hash)? else {
            return QueryResult::Ok(None);
        };
        let revoked = sessions::revoke_all_except(
            conn,
            user_id,
            Some(session_id),
            RevocationReason::PasswordChanged,
        )?;
        email_tokens::kill(conn, user_id, Purpose::PasswordReset)?;
        outbox::drop_unminted_resets(conn, &email, "password_changed")?;
        audit::record(
            conn,
            Event::new(EventType::PasswordChanged, user_id, client).in_session(session_id),
        )?;
        Ok(Some(revoked))
    })?)
}

/// What a reset did: whose password, and how many sessions ended.
#[derive(Debug, Clone, Copy)]
pub struct Reset {
    pub user_id: Uuid,
    pub revoked: usize,
}

/// A reset: the token spent, the new hash, every session revoked, other
/// reset links killed (queued ones too), the event. `None` for an unusable
/// token. Following the link proves the address too, so it becomes
/// verified; and it proves the mailbox is the owner's, so with the
/// failed-login throttle on (`throttle` keys the account of an address),
/// the account's strangers' failures are forgotten and the client that
/// completed the reset becomes known to it.
pub fn reset_password(
    conn: &mut PgConnection,
    token: &TokenHash,
    new_hash: &str,
    client: &ClientInfo,
    throttle: Option<&dyn Fn(&str) -> login_throttle::Subject>,
) -> DbResult<Option<Reset>> {
    Ok(conn.transaction(|conn| {
        let Some(row) = email_tokens::spend(conn, token, Purpose::PasswordReset)? else {
            return QueryResult::Ok(None);
        };
        let Some(email) = set_password_hash(conn, row.user_id, None, new_hash)? else {
            return Ok(None);
        };
        if email == row.email {
            diesel::update(users::table.find(row.user_id))
                .set(users::email_verified.eq(true))
                .execute(conn)?;
        }
        let revoked =
            sessions::revoke_all_except(conn, row.user_id, None, RevocationReason::PasswordReset)?;
        email_tokens::kill(conn, row.user_id, Purpose::PasswordReset)?;
        outbox::drop_unminted_resets(conn, &email, "password_reset")?;
        if let Some(subject_of) = throttle {
            login_throttle::reset_completed(conn, &subject_of(&email))?;
        }
        audit::record(
            conn,
            Event::new(EventType::PasswordReset, row.user_id, client),
        )?;
        Ok(Some(Reset {
            user_id: row.user_id,
            revoked,
        }))
    })?)
}

/// Whether a presented token could be used now: checked before hashing a
/// new password, so junk tokens cost no argon2 work.
pub fn email_token_usable(
    conn: &mut PgConnection,
    token: &TokenHash,
    purpose: Purpose,
) -> DbResult<bool> {
    Ok(email_tokens::is_usable(conn, token, purpose)?)
}

/// Verification: the token spent and the address it was sent to marked
/// verified, with the event. `None` for an unusable token, or one sent to
/// an address the account no longer has.
pub fn verify_email(
    conn: &mut PgConnection,
    token: &TokenHash,
    client: &ClientInfo,
) -> DbResult<Option<Uuid>> {
    Ok(conn.transaction(|conn| {
        let Some(row) = email_tokens::spend(conn, token, Purpose::EmailVerify)? else {
            return QueryResult::Ok(None);
        };
        let verified = diesel::update(users::table.find(row.user_id))
            .filter(users::email.eq(&row.email))
            .set((
                users::email_verified.eq(true),
                users::updated_at.eq(Utc::now()),
            ))
            .execute(conn)?;
        if verified == 0 {
            return Ok(None);
        }
        email_tokens::kill(conn, row.user_id, Purpose::EmailVerify)?;
        audit::record(
            conn,
            Event::new(EventType::EmailVerified, row.user_id, client),
        )?;
        Ok(Some(row.user_id))
    })?)
}

/// Queues another verification mail for a user whose address is not
/// verified yet; `None` when it already is.
pub fn request_verification(
    conn: &mut PgConnection,
    user_id: Uuid,
    client: &ClientInfo,
) -> DbResult<Option<()>> {
    conn.transaction(|conn| {
        let Some(user) = super::users::find_by_id(conn, user_id)? else {
            return Ok(None);
        };
        if user.email_verified {
            return Ok(None);
        }
        // Stored before addresses were checked as they are now: no mail to
        // what is not a bare address (the worker would refuse it too).
        match Email::parse(&user.email) {
            Ok(email) => {
                outbox::enqueue(conn, Purpose::EmailVerify, &email, Some(user.id), client)?;
            }
            Err(_) => tracing::warn!(user_id = %user.id, "no verification mail: the stored address is not a bare address"),
        }
        Ok::<_, DbError>(Some(()))
    })
}

/// Queues a reset mail for whatever account has the address, if any: the
/// same single insert whether or not one does, so the request's answer and
/// timing tell nothing. The worker finds the account.
pub fn request_reset(conn: &mut PgConnection, email: &Email, client: &ClientInfo) -> DbResult<()> {
    outbox::enqueue(conn, Purpose::PasswordReset, email, None, client)?;
    Ok(())
}

/// The outcome of minting a queued mail's token.
#[derive(Debug)]
pub enum Minted {
    /// Send it: the token row, which holds the hash of the caller's token.
    Token(EmailTokenRow),
    /// Nothing to send (with the reason recorded on the row).
    Dropped(&'static str),
    /// The row was gone or taken meanwhile.
    Gone,
}

/// The advisory-lock namespace of minting ("mint" in ASCII).
const MINT_LOCK: i32 = 0x6d69_6e74;

/// What minting needs from the caller: the new row's id and the hash of
/// the token the caller drew (the token itself never reaches this layer).
pub struct NewToken {
    pub id: Uuid,
    pub hash: TokenHash,
    pub ttl: Duration,
}

/// Mints the token of a queued mail in one transaction: finds the account,
/// applies the per-address and per-account limit, kills the account's older
/// tokens of the purpose, inserts the new one, and for a reset writes the
/// `password_reset_requested` event.
pub fn mint(
    conn: &mut PgConnection,
    outbox_id: Uuid,
    purpose: Purpose,
    token: &NewToken,
    limit: Option<RateLimit>,
) -> DbResult<Minted> {
    conn.transaction(|conn| {
        let Some(row) = outbox::lock_for_minting(conn, outbox_id)? else {
            return Ok(Minted::Gone);
        };
        // Mail to one address is minted one at a time (workers send
        // concurrently, on every replica), so the limit counts what the
        // others minted.
        diesel::sql_query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind::<diesel::sql_types::Integer, _>(MINT_LOCK)
            .bind::<diesel::sql_types::Text, _>(&row.recipient)
            .execute(conn)?;
        let user = match purpose {
            Purpose::PasswordReset => match Email::parse(&row.recipient) {
                Ok(email) => super::users::find_by_email(conn, &email)?,
                Err(_) => None,
            },
            Purpose::EmailVerify => match row.user_id {
                Some(id) => super::users::find_by_id(conn, id)?,
                None => None,
            },
        };
        let Some(user) = user else {
            // No account: keep nothing of the address.
            outbox::forget(conn, row.id)?;
            return Ok(Minted::Dropped("no_account"));
        };
        if purpose == Purpose::EmailVerify && (user.email_verified || user.email != row.recipient) {
            outbox::drop_mail(conn, row.id, "already_verified")?;
            return Ok(Minted::Dropped("already_verified"));
        }
        if let Some(limit) = limit
            && outbox::recent_count(conn, &row.recipient, user.id, limit.per, row.id)?
                >= i64::from(limit.requests)
        {
            outbox::drop_mail(conn, row.id, "recipient_limit")?;
            return Ok(Minted::Dropped("recipient_limit"));
        }
        email_tokens::kill(conn, user.id, purpose)?;
        let now = Utc::now();
        let minted = EmailTokenRow {
            id: token.id,
            user_id: user.id,
            purpose: purpose.as_str().to_owned(),
            email: user.email.clone(),
            token_hash: token.hash.as_bytes().to_vec(),
            created_at: now,
            expires_at: add(now, token.ttl),
            spent_at: None,
        };
        email_tokens::insert(conn, &minted)?;
        outbox::attach_token(conn, row.id, user.id, minted.id)?;
        if purpose == Purpose::PasswordReset {
            audit::record_by_server(
                conn,
                Event::new(EventType::PasswordResetRequested, user.id, &row.requester()),
            )?;
        }
        Ok(Minted::Token(minted))
    })
    .map_err(|e: DbError| e)
}

/// Stores a new password hash, only over `expected` when given (the hash
/// the current password was checked against); the user's address, or
/// `None` when there is no such user (or the hash changed meanwhile).
fn set_password_hash(
    conn: &mut PgConnection,
    user_id: Uuid,
    expected: Option<&str>,
    new_hash: &str,
) -> QueryResult<Option<String>> {
    let mut update = diesel::update(users::table.find(user_id)).into_boxed();
    if let Some(expected) = expected {
        update = update.filter(users::password_hash.eq(expected));
    }
    update
        .set((
            users::password_hash.eq(new_hash),
            users::updated_at.eq(Utc::now()),
        ))
        .returning(users::email)
        .get_result::<String>(conn)
        .optional()
}

fn add(now: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(duration)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl From<DieselError> for CreateUserError {
    fn from(error: DieselError) -> Self {
        match error {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => Self::EmailTaken,
            other => Self::Db(other.into()),
        }
    }
}
