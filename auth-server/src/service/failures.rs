//! A wrong password or second factor, recorded as a bounded event
//! (`login_failed`, `mfa_failed`: see [`db::audit::record_failure`]); what
//! is not stored is counted in `/metrics`.

use super::ServiceError;
use crate::db;
use crate::db::audit::Failure;
use crate::db::models::ClientInfo;
use crate::state::AppState;

/// The bounded `login_failed` event (see [`db::audit::record_login_failed`]);
/// what is not stored is counted.
pub(super) async fn record_login_failed(
    state: &AppState,
    user_id: Option<uuid::Uuid>,
    client: ClientInfo,
) -> Result<(), ServiceError> {
    record_failed(state, Failure::Password, user_id, client).await
}

/// A bounded `login_failed` or `mfa_failed` event (see
/// [`db::audit::record_failure`]); what is not stored is counted.
pub(super) async fn record_failed(
    state: &AppState,
    failure: Failure,
    user_id: Option<uuid::Uuid>,
    client: ClientInfo,
) -> Result<(), ServiceError> {
    let stored = state
        .database
        .run(move |conn| db::audit::record_failure(conn, failure, user_id, &client))
        .await?;
    if !stored {
        state.metrics.login_failures_unrecorded.inc();
    }
    Ok(())
}
