//! Changing a password, asking for a reset link, and resetting with it.

use secrecy::SecretString;
use shared_claims::AccessClaims;

use super::failures::record_login_failed;
use super::{ServiceError, login_throttle, recent};
use crate::accounts::email::Email;
use crate::db::accounts;
use crate::db::login_throttle::Subject;
use crate::db::models::{ClientInfo, RevocationReason};
use crate::limits::client_key::ClientKey;
use crate::state::AppState;
use crate::tokens::email::{EmailToken, Purpose};

const UNUSABLE_RESET_TOKEN: &str = "the reset link is invalid, has expired or was already used";

/// A change from session `session_id`: the current password checked and the
/// new one hashed on the password pool, then one transaction (see
/// [`accounts::change_password`]). Every other session of the user ends.
///
/// Checking the current password is checking a guess, as a login does
/// (with a stolen access token, it would otherwise be a guessing oracle
/// that no throttle watches): the failed-login throttle of the account and
/// client admits it, counts a wrong one and clears the client's failures
/// for a right one, and a wrong one is recorded as `login_failed`.
///
/// Like every sensitive action it needs a recent authentication
/// ([`recent::require`]).
pub async fn change(
    state: &AppState,
    claims: &AccessClaims,
    current: SecretString,
    new: SecretString,
    client: ClientInfo,
    client_key: Option<ClientKey>,
) -> Result<(), ServiceError> {
    recent::require(state, claims).await?;
    let (user_id, session_id) = (claims.sub, claims.sid);
    let user = state
        .database
        .run(move |conn| accounts::find_user(conn, user_id))
        .await?
        .ok_or(ServiceError::WrongPassword)?;
    let throttle = login_throttle::admit(state, &user.email, client_key).await?;
    let checked_hash = user.password_hash;
    if !state
        .passwords
        .verify(current, Some(checked_hash.clone()))
        .await?
    {
        tracing::info!(audit = "login_failed", %user_id, "password change refused: wrong current password");
        if let Some(throttle) = throttle {
            throttle.failed(state).await?;
        }
        record_login_failed(state, Some(user_id), client).await?;
        return Err(ServiceError::WrongPassword);
    }
    if let Some(throttle) = throttle {
        throttle.succeeded(state).await?;
    }
    let new_hash = state.passwords.hash(new).await?;
    let changed = state
        .database
        .run(move |conn| {
            accounts::change_password(conn, user_id, session_id, &checked_hash, &new_hash, &client)
        })
        .await?;
    // The hash changed between the check and the update: the password
    // presented is no longer the current one.
    let revoked = changed.ok_or(ServiceError::WrongPassword)?;
    state.revoked(RevocationReason::PasswordChanged, revoked);
    tracing::info!(audit = "password_changed", %user_id, %session_id, other_sessions_revoked = revoked, "password changed");
    Ok(())
}

/// Queues a reset mail for the address. The same single insert whether or
/// not an account has it: the answer and its timing tell nothing, and no
/// request waits for SMTP (the mail worker finds the account, applies the
/// per-address limits, and sends).
pub async fn forgot(
    state: &AppState,
    email: Email,
    client: ClientInfo,
) -> Result<(), ServiceError> {
    state
        .database
        .run(move |conn| accounts::request_reset(conn, &email, &client))
        .await?;
    state.mail_queued.notify_one();
    Ok(())
}

/// A reset with the link's token: every session of the user ends, and the
/// client that completed it is let in at once by the failed-login
/// throttle (the account's strangers' failures forgotten, the client
/// known: [`accounts::reset_password`]).
pub async fn reset(
    state: &AppState,
    presented: &str,
    new: SecretString,
    client: ClientInfo,
    client_key: Option<ClientKey>,
) -> Result<(), ServiceError> {
    let token = EmailToken::parse(presented)
        .ok_or(ServiceError::InvalidEmailToken(UNUSABLE_RESET_TOKEN))?;
    let hash = token.hash();
    // Cheap first: junk tokens must cost no argon2 work. The transaction
    // checks again under the row lock.
    let probe = hash.clone();
    if !state
        .database
        .run(move |conn| accounts::email_token_usable(conn, &probe, Purpose::PasswordReset))
        .await?
    {
        return Err(ServiceError::InvalidEmailToken(UNUSABLE_RESET_TOKEN));
    }
    let new_hash = state.passwords.hash(new).await?;
    let throttle = login_throttle::for_reset(state, client_key);
    let reset = state
        .database
        .run(move |conn| {
            let subject_of = throttle.map(|subjects| move |email: &str| subjects.of(email));
            let subject_of = subject_of.as_ref().map(|f| f as &dyn Fn(&str) -> Subject);
            accounts::reset_password(conn, &hash, &new_hash, &client, subject_of)
        })
        .await?
        .ok_or(ServiceError::InvalidEmailToken(UNUSABLE_RESET_TOKEN))?;
    state.revoked(RevocationReason::PasswordReset, reset.revoked);
    tracing::info!(audit = "password_reset", user_id = %reset.user_id, sessions_revoked = reset.revoked, "password reset by e-mail");
    Ok(())
}
