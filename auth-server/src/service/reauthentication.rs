//! `POST /auth/reauthenticate`: a signed-in user proves their factors again,
//! and their session records it (`auth_time` now, `amr` what was proven),
//! so the sensitive actions and the APIs that demand a recent or stronger
//! authentication accept it. The answer is an access token for the same
//! session; the refresh token is untouched, and later refreshes carry the
//! new values because they come from the session's row.
//!
//! The proof is the password (with a second factor when the user has one),
//! or a passkey alone, which is two factors by itself. A wrong password or
//! factor is `403` and counts in the failed-login throttle, exactly as at
//! login: a stolen access token is no way around it.

use diesel::Connection;
use secrecy::SecretString;
use shared_claims::AccessClaims;

use super::factors::{SecondFactor, Verifiers, check_second_factor};
use super::failures::record_failed;
use super::issue::Issued;
use super::passkeys::{self, Assertion, PASSKEY, Verdict};
use super::{ServiceError, login_throttle};
use crate::db::audit::{self, Event, EventType, Failure};
use crate::db::models::{ClientInfo, TokenSubject};
use crate::db::passkeys::Purpose;
use crate::db::sessions::Proven;
use crate::db::{self, DbError};
use crate::limits::client_key::ClientKey;
use crate::state::AppState;

/// What the user presents.
#[derive(Debug)]
pub enum Proof {
    Password {
        password: SecretString,
        /// Required when the user has a second factor, ignored otherwise.
        second: Option<SecondFactor>,
    },
    /// A passkey alone (from `POST /auth/reauthenticate/passkey`).
    Passkey(Assertion),
}

pub async fn reauthenticate(
    state: &AppState,
    claims: &AccessClaims,
    proof: Proof,
    client: ClientInfo,
    client_key: Option<ClientKey>,
) -> Result<Issued, ServiceError> {
    let user_id = claims.sub;
    let user = state
        .database
        .run(move |conn| db::users::find_by_id(conn, user_id))
        .await?
        .ok_or(ServiceError::SessionEnded)?;
    let throttle = login_throttle::admit(state, &user.email, client_key).await?;
    let check = match proof {
        Proof::Password { password, second } => {
            let verified = state
                .passwords
                .verify(password, Some(user.password_hash.clone()))
                .await?;
            if !verified {
                return failed(state, throttle, Failure::Password, user_id, client).await;
            }
            let factors = state
                .database
                .run(move |conn| Ok(db::factors::of_user(conn, user_id)?))
                .await?;
            match (factors.any(), second) {
                (false, _) => Check::PasswordOnly,
                (true, Some(second)) => Check::Second(second),
                // The password was right; the factor is missing, not wrong.
                (true, None) => return Err(ServiceError::WrongFactor),
            }
        }
        Proof::Passkey(assertion) => Check::Passkey(assertion),
    };
    let verifiers = Verifiers::of(state);
    let (session_id, email, event_client) = (claims.sid, user.email.clone(), client.clone());
    let outcome = state
        .database
        .run(move |conn| {
            conn.transaction::<_, DbError, _>(|conn| {
                let proven = match &check {
                    Check::PasswordOnly => Proven::password(),
                    Check::Second(factor) => match check_second_factor(
                        conn,
                        &verifiers,
                        user_id,
                        &email,
                        factor,
                        Purpose::Reauthenticate,
                        &client,
                    )? {
                        Some(proven) => proven,
                        None => return Ok(Err(Failure::SecondFactor)),
                    },
                    Check::Passkey(assertion) => match passkeys::verify_assertion(
                        conn,
                        &verifiers.webauthn,
                        assertion,
                        Purpose::Reauthenticate,
                        Some(user_id),
                        &client,
                    )? {
                        Verdict::Verified(passkey) => Proven {
                            amr: &PASSKEY,
                            passkey_id: Some(passkey.id),
                        },
                        _ => return Ok(Err(Failure::SecondFactor)),
                    },
                };
                let Some(session) =
                    db::sessions::reauthenticated(conn, session_id, user_id, proven.amr)?
                else {
                    return Ok(Ok(None));
                };
                let event = Event::new(EventType::Reauthenticated, user_id, &client);
                audit::record(conn, event.in_session(session_id))?;
                Ok(Ok(Some(session)))
            })
        })
        .await?;
    let session = match outcome {
        Ok(Some(session)) => session,
        Ok(None) => return Err(ServiceError::SessionEnded),
        Err(failure) => return failed(state, throttle, failure, user_id, event_client).await,
    };
    state.mail_queued.notify_one();
    if let Some(throttle) = throttle {
        throttle.succeeded(state).await?;
    }
    tracing::info!(audit = "reauthenticated", user_id = %user_id, session_id = %session_id, amr = ?session.amr, "reauthenticated");
    Issued::sign(state, &TokenSubject::from(&user), &session, None)
}

/// What is left to check once the password (if any) was right.
enum Check {
    PasswordOnly,
    Second(SecondFactor),
    Passkey(Assertion),
}

async fn failed<T>(
    state: &AppState,
    throttle: Option<login_throttle::Admitted>,
    failure: Failure,
    user_id: uuid::Uuid,
    client: ClientInfo,
) -> Result<T, ServiceError> {
    tracing::info!(user_id = %user_id, ?failure, "reauthentication failed");
    record_failed(state, failure, Some(user_id), client).await?;
    if let Some(throttle) = throttle {
        throttle.failed(state).await?;
    }
    Err(ServiceError::WrongFactor)
}
