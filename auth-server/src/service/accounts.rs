//! Registering and logging in.

use secrecy::SecretString;

use super::failures::record_login_failed;
use super::issue::{Issued, NewSession};
use super::{ServiceError, login_throttle, mfa_login};
use crate::accounts::email::Email;
use crate::db;
use crate::db::models::{ClientInfo, TokenSubject, User};
use crate::db::sessions::Proven;
use crate::db::users::CreateUserError;
use crate::limits::client_key::ClientKey;
use crate::state::AppState;

/// A new user, with its `register` event and its verification mail queued;
/// the password must already be checked.
pub async fn register(
    state: &AppState,
    email: Email,
    password: SecretString,
    client: ClientInfo,
) -> Result<User, ServiceError> {
    let hash = state.passwords.hash(password).await?;
    let user = state
        .database
        .run(move |conn| Ok(db::accounts::register(conn, &email, &hash, &client)))
        .await?
        .map_err(|e| match e {
            CreateUserError::EmailTaken => ServiceError::EmailTaken,
            CreateUserError::Db(e) => e.into(),
        })?;
    state.metrics.registrations.inc();
    state.mail_queued.notify_one();
    Ok(user)
}

/// A new session for a correct password. An unknown email and a wrong
/// password fail alike, after the same work, and are throttled alike
/// ([`login_throttle`]).
pub async fn login(
    state: &AppState,
    email: Email,
    password: SecretString,
    client: ClientInfo,
    client_key: Option<ClientKey>,
) -> Result<Issued, ServiceError> {
    let throttle = login_throttle::admit(state, email.as_str(), client_key)
        .await
        .inspect_err(|e| count_throttled(state, e))?;
    let user = state
        .database
        .run(move |conn| db::users::find_by_email(conn, &email))
        .await?;
    // Unknown emails are verified against a dummy hash: same work, same time.
    let verified = state
        .passwords
        .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
        .await?;
    let user = match user {
        Some(user) if verified => user,
        user => {
            tracing::info!(audit = "login_failed", "login failed");
            if let Some(throttle) = throttle {
                throttle
                    .failed(state)
                    .await
                    .inspect_err(|e| count_throttled(state, e))?;
            }
            state.metrics.logins.with_label_values(&["failed"]).inc();
            record_login_failed(state, user.map(|u| u.id), client).await?;
            return Err(ServiceError::InvalidCredentials);
        }
    };
    let user_id = user.id;
    let factors = state
        .database
        .run(move |conn| Ok(db::factors::of_user(conn, user_id)?))
        .await?;
    // A user with a second factor: the password alone clears nothing in
    // the throttle, or a stranger who knows it could log in again and
    // again for fresh tries at the code.
    if !factors.any()
        && let Some(throttle) = throttle
    {
        throttle
            .succeeded(state)
            .await
            .inspect_err(|e| count_throttled(state, e))?;
    }
    // Only after the password is known to be right: a wrong one must say
    // nothing about the address.
    if user.disabled_at.is_some() {
        state.metrics.logins.with_label_values(&["failed"]).inc();
        return Err(ServiceError::AccountDisabled);
    }
    if state.settings.accounts.require_verified_email && !user.email_verified {
        return Err(ServiceError::EmailNotVerified);
    }
    if factors.any() {
        return Err(mfa_login::challenge(state, &user, &factors).await?);
    }

    let new_session = NewSession::draw(state)?;
    let verified_hash = user.password_hash.clone();
    let created = {
        let new_session = new_session.clone();
        state
            .database
            .run(move |conn| {
                new_session.create(
                    conn,
                    user_id,
                    Some(&verified_hash),
                    Proven::password(),
                    &client,
                )
            })
            .await?
    };
    // Between the password check and now, the user was deleted or
    // disabled, or the password was reset or changed: the one checked is
    // no longer the user's.
    let Some(created) = created else {
        state.metrics.logins.with_label_values(&["failed"]).inc();
        let user = state
            .database
            .run(move |conn| db::users::find_by_id(conn, user_id))
            .await?;
        return Err(match user {
            Some(user) if user.disabled_at.is_some() => ServiceError::AccountDisabled,
            _ => ServiceError::InvalidCredentials,
        });
    };
    new_session.open(state, &TokenSubject::from(&user), created)
}

fn count_throttled(state: &AppState, error: &ServiceError) {
    if matches!(error, ServiceError::Throttled(_)) {
        state.metrics.logins.with_label_values(&["throttled"]).inc();
    }
}
