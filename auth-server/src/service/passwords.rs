//! Changing a password, asking for a reset link, and resetting with it.

use secrecy::SecretString;
use uuid::Uuid;

use super::ServiceError;
use crate::db::accounts;
use crate::db::models::{ClientInfo, RevocationReason};
use crate::email::Email;
use crate::email_token::{EmailToken, Purpose};
use crate::state::AppState;

const UNUSABLE_RESET_TOKEN: &str = "the reset link is invalid, has expired or was already used";

/// A change from session `session_id`: the current password checked and the
/// new one hashed on the password pool, then one transaction (see
/// [`accounts::change_password`]). Every other session of the user ends.
pub async fn change(
    state: &AppState,
    user_id: Uuid,
    session_id: Uuid,
    current: SecretString,
    new: SecretString,
    client: ClientInfo,
) -> Result<(), ServiceError> {
    let user = state
        .database
        .run(move |conn| accounts::find_user(conn, user_id))
        .await?
        .ok_or(ServiceError::WrongPassword)?;
    let checked_hash = user.password_hash;
    if !state
        .passwords
        .verify(current, Some(checked_hash.clone()))
        .await?
    {
        tracing::info!(%user_id, "password change refused: wrong current password");
        return Err(ServiceError::WrongPassword);
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

/// A reset with the link's token: every session of the user ends.
pub async fn reset(
    state: &AppState,
    presented: &str,
    new: SecretString,
    client: ClientInfo,
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
    let reset = state
        .database
        .run(move |conn| accounts::reset_password(conn, &hash, &new_hash, &client))
        .await?
        .ok_or(ServiceError::InvalidEmailToken(UNUSABLE_RESET_TOKEN))?;
    state.revoked(RevocationReason::PasswordReset, reset.revoked);
    tracing::info!(audit = "password_reset", user_id = %reset.user_id, sessions_revoked = reset.revoked, "password reset by e-mail");
    Ok(())
}
