//! Verifying the address with the link's token, and sending the link again.

use uuid::Uuid;

use super::ServiceError;
use crate::db::accounts;
use crate::db::models::ClientInfo;
use crate::state::AppState;
use crate::tokens::email::EmailToken;

const UNUSABLE_VERIFY_TOKEN: &str =
    "the verification link is invalid, has expired or was already used";

pub async fn verify(
    state: &AppState,
    presented: &str,
    client: ClientInfo,
) -> Result<(), ServiceError> {
    let token = EmailToken::parse(presented)
        .ok_or(ServiceError::InvalidEmailToken(UNUSABLE_VERIFY_TOKEN))?;
    let hash = token.hash();
    let user_id = state
        .database
        .run(move |conn| accounts::verify_email(conn, &hash, &client))
        .await?
        .ok_or(ServiceError::InvalidEmailToken(UNUSABLE_VERIFY_TOKEN))?;
    tracing::info!(audit = "email_verified", %user_id, "e-mail address verified");
    Ok(())
}

/// Queues another verification mail (the per-address and per-account
/// limits apply in the mail worker, silently).
pub async fn resend(
    state: &AppState,
    user_id: Uuid,
    client: ClientInfo,
) -> Result<(), ServiceError> {
    state
        .database
        .run(move |conn| accounts::request_verification(conn, user_id, &client))
        .await?
        .ok_or(ServiceError::AlreadyVerified)?;
    state.mail_queued.notify_one();
    Ok(())
}
