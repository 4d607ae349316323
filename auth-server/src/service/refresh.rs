//! Refreshing: one rotation of the presented refresh token (see
//! [`crate::db::rotation::refresh`] and [`crate::rotation`]). The successor
//! is derived from the presented token with the server's token key
//! ([`RefreshToken::successors`]), so a retry within the grace is sent the
//! very token the lost answer carried.

use service_kit::telemetry::record_identity;

use super::ServiceError;
use super::issue::Issued;
use crate::db::models::{ClientInfo, RevocationReason};
use crate::db::rotation::RefreshOutcome;
use crate::refresh_token::{KeyIndex, RefreshToken};
use crate::rotation::Rejection;
use crate::state::AppState;

/// Why a refresh was refused, and whether this very refusal revoked the
/// session (reuse after the grace). Only then may a cookie be cleared: a
/// refusal for a session that had already ended may come late, after the
/// browser has logged in again, and must not wipe the new cookie.
#[derive(Debug)]
pub struct RefreshRefused {
    pub error: ServiceError,
    pub revoked_session: bool,
}

impl From<ServiceError> for RefreshRefused {
    fn from(error: ServiceError) -> Self {
        Self {
            error,
            revoked_session: false,
        }
    }
}

pub async fn refresh(
    state: &AppState,
    presented: Option<&str>,
    client: ClientInfo,
) -> Result<Issued, RefreshRefused> {
    let Some(presented) = presented else {
        return Err(ServiceError::InvalidGrant("no refresh token was presented").into());
    };
    let Some(presented) = RefreshToken::parse(presented) else {
        return Err(ServiceError::InvalidGrant("the refresh token is invalid").into());
    };
    let successors = presented.successors(&state.token_keys);
    let presented_hash = presented.hash();
    let successor_hashes = successors.hashes();
    let policy = state.rotation_policy();
    let outcome = state
        .database
        .refresh(presented_hash, successor_hashes, client, policy)
        .await
        .map_err(ServiceError::from)?;

    match outcome {
        RefreshOutcome::Rotated {
            user,
            session,
            successor_expires_at,
        } => {
            state
                .metrics
                .refreshes
                .with_label_values(&["rotated"])
                .inc();
            record_identity(user.id, session.id);
            let successor = successors.take(KeyIndex::CURRENT);
            Ok(Issued::sign(
                state,
                &user,
                &session,
                successor.map(|token| (token, successor_expires_at)),
            )?)
        }
        RefreshOutcome::Grace {
            user,
            session,
            resend,
        } => {
            record_identity(user.id, session.id);
            // The successor the consumption issued, derived again: never
            // another token, so the session never forks.
            let again = resend.and_then(|r| Some((successors.take(r.key)?, r.expires_at)));
            let outcome = if again.is_some() {
                tracing::info!("consumed refresh token within the grace: its successor sent again");
                "grace"
            } else {
                tracing::info!(
                    "consumed refresh token within the grace: its successor cannot be sent again (consumed, or its key is gone); access token only"
                );
                "grace_access_only"
            };
            state.metrics.refreshes.with_label_values(&[outcome]).inc();
            Ok(Issued::sign(state, &user, &session, again)?)
        }
        RefreshOutcome::ReuseDetected {
            user_id,
            session_id,
        } => {
            state.revoked(RevocationReason::ReuseDetected, 1);
            state.metrics.reuse_detections.inc();
            state
                .metrics
                .refreshes
                .with_label_values(&["reuse_detected"])
                .inc();
            record_identity(user_id, session_id);
            tracing::warn!(audit = "reuse_detected", %user_id, %session_id, "refresh token reuse detected: session revoked");
            Err(RefreshRefused {
                error: ServiceError::InvalidGrant(
                    "the refresh token was already used; the session has been revoked",
                ),
                revoked_session: true,
            })
        }
        RefreshOutcome::Rejected {
            rejection,
            session_id,
        } => {
            state
                .metrics
                .refreshes
                .with_label_values(&["rejected"])
                .inc();
            tracing::info!(%session_id, ?rejection, "refresh rejected");
            Err(match rejection {
                // The token was not consumed: the client keeps it (and its
                // cookie) for when the address is verified.
                Rejection::EmailNotVerified => ServiceError::EmailNotVerified,
                other => ServiceError::InvalidGrant(other.description()),
            }
            .into())
        }
        RefreshOutcome::Unknown => {
            state
                .metrics
                .refreshes
                .with_label_values(&["unknown"])
                .inc();
            Err(ServiceError::InvalidGrant("the refresh token is invalid").into())
        }
    }
}
