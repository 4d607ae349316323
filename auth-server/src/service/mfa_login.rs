//! A login's second step. A correct password of a user with a second
//! factor opens no session: it gets an mfa token ([`challenge`]), which
//! `/auth/login/mfa` trades with a correct code for the session
//! ([`finish`]).
//!
//! Guessing is bounded three ways: each mfa token allows five tries
//! (counted before the code is checked, on any replica); a wrong code
//! counts in the failed-login throttle of the account and client like a
//! wrong password, and a correct password does not clear that throttle
//! for such a user until the second factor is right too (so logging in
//! again for fresh tries gains nothing); and a TOTP step or recovery code,
//! once accepted, is never accepted again.

use chrono::Utc;
use diesel::Connection;
use diesel::result::Error as DieselError;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::factors::{SecondFactor, Verifiers, check_second_factor};
use super::failures::record_failed;
use super::issue::{Issued, NewSession, after};
use super::{MfaChallenge, ServiceError, login_throttle};
use crate::db::audit::Failure;
use crate::db::factors::Factors;
use crate::db::models::{ClientInfo, TokenSubject, User};
use crate::db::passkeys::Purpose;
use crate::db::sessions::Created;
use crate::db::{self, DbError, mfa_tokens};
use crate::limits::client_key::ClientKey;
use crate::state::AppState;
use crate::tokens::opaque::OpaqueToken;

const UNUSABLE: &str = "the mfa_token is unknown, expired, used or out of tries: log in again";

/// SHA-256 of the password hash a login verified: what the mfa token
/// remembers of it.
fn password_check(hash: &str) -> [u8; 32] {
    Sha256::digest(hash.as_bytes()).into()
}

/// The `mfa_required` answer for `user`, whose password was right.
pub(super) async fn challenge(
    state: &AppState,
    user: &User,
    factors: &Factors,
) -> Result<ServiceError, ServiceError> {
    let token = OpaqueToken::generate()
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("CSPRNG: {e}")))?;
    let hash = token.hash();
    let check = password_check(&user.password_hash);
    let expires_at = after(Utc::now(), state.settings.accounts.mfa_token_ttl);
    let user_id = user.id;
    state
        .database
        .run(move |conn| {
            Ok(mfa_tokens::insert(
                conn, &hash, user_id, &check, expires_at,
            )?)
        })
        .await?;
    Ok(ServiceError::MfaRequired(MfaChallenge {
        mfa_token: token,
        methods: factors.methods(),
    }))
}

/// `POST /auth/login/mfa`: the session, for a correct second factor.
pub async fn finish(
    state: &AppState,
    presented: &str,
    factor: SecondFactor,
    client: ClientInfo,
    client_key: Option<ClientKey>,
) -> Result<Issued, ServiceError> {
    let token = OpaqueToken::parse(presented).ok_or(ServiceError::InvalidGrant(UNUSABLE))?;
    let hash = token.hash();
    let attempt = state
        .database
        .run(move |conn| Ok(mfa_tokens::try_token(conn, &hash)?))
        .await?
        .ok_or(ServiceError::InvalidGrant(UNUSABLE))?;
    let user_id = attempt.user_id;
    let user = state
        .database
        .run(move |conn| db::users::find_by_id(conn, user_id))
        .await?
        .ok_or(ServiceError::InvalidGrant(UNUSABLE))?;
    // The password was changed or reset since it was checked.
    let same_password: bool = password_check(&user.password_hash)
        .ct_eq(attempt.password_check.as_slice())
        .into();
    if !same_password {
        return Err(ServiceError::InvalidGrant(UNUSABLE));
    }
    let throttle = login_throttle::admit(state, &user.email, client_key).await?;

    let new_session = NewSession::draw(state)?;
    let opening = new_session.clone();
    let verifiers = Verifiers::of(state);
    let (verified_hash, email, audit_client) = (
        user.password_hash.clone(),
        user.email.clone(),
        client.clone(),
    );
    let outcome = state
        .database
        .run(move |conn| {
            let outcome = conn.transaction::<_, DbError, _>(|conn| {
                let Some(proven) = check_second_factor(
                    conn,
                    &verifiers,
                    user_id,
                    &email,
                    &factor,
                    Purpose::SecondFactor,
                    &client,
                )?
                else {
                    return Ok(Outcome::WrongFactor);
                };
                if !mfa_tokens::finish(conn, attempt.id)? {
                    // Another request had the token's one success: undo the
                    // factor's use.
                    return Err(DbError::Query(DieselError::RollbackTransaction));
                }
                let created =
                    opening.create(conn, user_id, Some(&verified_hash), proven, &client)?;
                match created {
                    Some(created) => Ok(Outcome::Created(Box::new(created))),
                    // Disabled, deleted, or the password changed meanwhile.
                    None => Err(DbError::Query(DieselError::RollbackTransaction)),
                }
            });
            match outcome {
                Err(DbError::Query(DieselError::RollbackTransaction)) => Ok(Outcome::Gone),
                other => other,
            }
        })
        .await?;
    let created = match outcome {
        Outcome::Created(created) => *created,
        Outcome::Gone => return Err(ServiceError::InvalidGrant(UNUSABLE)),
        Outcome::WrongFactor => {
            tracing::info!(audit = "mfa_failed", user_id = %user.id, "second factor failed");
            state.metrics.logins.with_label_values(&["failed"]).inc();
            record_failed(state, Failure::SecondFactor, Some(user_id), audit_client).await?;
            if let Some(throttle) = throttle {
                throttle.failed(state).await?;
            }
            return Err(ServiceError::InvalidCredentials);
        }
    };
    state.mail_queued.notify_one();
    if let Some(throttle) = throttle {
        throttle.succeeded(state).await?;
    }
    new_session.open(state, &TokenSubject::from(&user), created)
}

/// `POST /auth/login/mfa/passkey`: a ceremony for the user's passkeys, as
/// the second step of the login this token carries.
pub async fn passkey_start(
    state: &AppState,
    presented: &str,
) -> Result<super::passkeys::Started, ServiceError> {
    let token = OpaqueToken::parse(presented).ok_or(ServiceError::InvalidGrant(UNUSABLE))?;
    let hash = token.hash();
    let user_id = state
        .database
        .run(move |conn| Ok(mfa_tokens::peek(conn, &hash)?))
        .await?
        .ok_or(ServiceError::InvalidGrant(UNUSABLE))?;
    super::passkeys::start_for_user(state, user_id, Purpose::SecondFactor)
        .await
        .map_err(|e| match e {
            ServiceError::NotFound(_) => ServiceError::InvalidGrant("the user has no passkey"),
            other => other,
        })
}

enum Outcome {
    Created(Box<Created>),
    WrongFactor,
    Gone,
}
