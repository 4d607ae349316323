//! `POST /auth/reauthenticate`: a signed-in user proves their factors again,
//! and their session records it (`auth_time` now, `amr` what was proven),
//! so the sensitive actions and the APIs that demand a recent or stronger
//! authentication accept it. The answer is an access token for the same
//! session; the refresh token is untouched, and later refreshes carry the
//! new values because they come from the session's row.
//!
//! A wrong password or code is `403` and counts in the failed-login
//! throttle, exactly as at login: a stolen access token is no way around
//! it.

use diesel::Connection;
use secrecy::SecretString;
use shared_claims::AccessClaims;

use super::factors::{PASSWORD_AND_OTP, SecondFactor, check_second_factor};
use super::issue::Issued;
use super::mfa_login::PASSWORD_ONLY;
use super::{ServiceError, login_throttle};
use crate::db::audit::{self, Event, EventType, Failure};
use crate::db::models::{ClientInfo, TokenSubject};
use crate::db::{self, DbError};
use crate::limits::client_key::ClientKey;
use crate::state::AppState;

/// What the user presents.
#[derive(Debug)]
pub struct Proof {
    pub password: SecretString,
    /// Required when the user has a second factor, ignored otherwise.
    pub second: Option<SecondFactor>,
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
    let verified = state
        .passwords
        .verify(proof.password, Some(user.password_hash.clone()))
        .await?;
    if !verified {
        return failed(state, throttle, Failure::Password, user_id, client).await;
    }
    let factors = state
        .database
        .run(move |conn| Ok(db::factors::of_user(conn, user_id)?))
        .await?;
    let second = match (factors.any(), proof.second) {
        (false, _) => None,
        (true, Some(second)) => Some(second),
        // The password was right; the factor is missing, not wrong.
        (true, None) => return Err(ServiceError::WrongFactor),
    };
    let keys = std::sync::Arc::clone(&state.token_keys);
    let (session_id, email, event_client) = (claims.sid, user.email.clone(), client.clone());
    let outcome = state
        .database
        .run(move |conn| {
            conn.transaction::<_, DbError, _>(|conn| {
                let amr: &[&str] = match &second {
                    None => &PASSWORD_ONLY,
                    Some(factor) => {
                        if !check_second_factor(conn, &keys, user_id, &email, factor, &client)? {
                            return Ok(Err(Failure::SecondFactor));
                        }
                        &PASSWORD_AND_OTP
                    }
                };
                let Some(session) = db::sessions::reauthenticated(conn, session_id, user_id, amr)?
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

async fn failed<T>(
    state: &AppState,
    throttle: Option<login_throttle::Admitted>,
    failure: Failure,
    user_id: uuid::Uuid,
    client: ClientInfo,
) -> Result<T, ServiceError> {
    tracing::info!(user_id = %user_id, ?failure, "reauthentication failed");
    let stored = state
        .database
        .run(move |conn| audit::record_failure(conn, failure, Some(user_id), &client))
        .await?;
    if !stored {
        state.metrics.login_failures_unrecorded.inc();
    }
    if let Some(throttle) = throttle {
        throttle.failed(state).await?;
    }
    Err(ServiceError::WrongFactor)
}
