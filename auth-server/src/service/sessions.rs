//! A user's sessions: logging out of one or all, listing them, ending one,
//! and whether one is still live.

use service_kit::telemetry::record_identity;
use uuid::Uuid;

use super::ServiceError;
use crate::db::models::{ClientInfo, RevocationReason, Session};
use crate::db::{self, Database};
use crate::state::AppState;

/// Revokes the token's session, whatever state the token is in: the holder
/// of even a consumed token may end the session. Unknown tokens are no-ops.
pub async fn logout(
    state: &AppState,
    presented: Option<&str>,
    client: ClientInfo,
) -> Result<(), ServiceError> {
    let Some(token) = presented.and_then(|p| super::refresh::presented_token(&state.token_keys, p))
    else {
        return Ok(());
    };
    let revoked = state
        .database
        .run(move |conn| db::sessions::logout(conn, &token, &client))
        .await?;
    if let Some((session, changed)) = revoked {
        record_identity(session.user_id, session.id);
        if changed {
            state.revoked(RevocationReason::Logout, 1);
            tracing::info!(audit = "logout", user_id = %session.user_id, session_id = %session.id, "logout");
        }
    }
    Ok(())
}

/// Revokes every live session of the user (asked from `session_id`);
/// returns how many.
pub async fn logout_all(
    state: &AppState,
    user_id: Uuid,
    session_id: Uuid,
    client: ClientInfo,
) -> Result<usize, ServiceError> {
    let count = state
        .database
        .run(move |conn| db::sessions::logout_all(conn, user_id, session_id, &client))
        .await?;
    if count > 0 {
        state.revoked(RevocationReason::LogoutAll, count);
    }
    tracing::info!(audit = "logout_all", %user_id, sessions = count, "logout everywhere");
    Ok(count)
}

/// The user's sessions that can still be used, newest first.
pub async fn list(database: &Database, user_id: Uuid) -> Result<Vec<Session>, ServiceError> {
    Ok(database
        .run(move |conn| db::sessions::list_live(conn, user_id))
        .await?)
}

/// Revokes one of the user's sessions; another user's session is not found,
/// exactly like one that does not exist.
pub async fn delete(
    state: &AppState,
    user_id: Uuid,
    session_id: Uuid,
    client: ClientInfo,
) -> Result<(), ServiceError> {
    let revoked = state
        .database
        .run(move |conn| db::sessions::delete_owned(conn, user_id, session_id, &client))
        .await?;
    match revoked {
        None => Err(ServiceError::NotFound("session")),
        Some(changed) => {
            if changed {
                state.revoked(RevocationReason::SessionDeleted, 1);
                tracing::info!(audit = "session_deleted", %user_id, %session_id, "session revoked by its user");
            }
            Ok(())
        }
    }
}

/// Whether the session can still be used: the auth server's own Bearer
/// endpoints check it on every request, so they see revocations at once.
/// A token issued before a change of the user's roles (`roles_version`
/// older than the user's) is not.
pub async fn is_live(
    database: &Database,
    session_id: Uuid,
    roles_version: i64,
) -> Result<bool, ServiceError> {
    Ok(database
        .run(move |conn| db::sessions::is_live(conn, session_id, roles_version))
        .await?)
}
