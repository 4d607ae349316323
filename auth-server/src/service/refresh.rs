//! Refreshing: one rotation of the presented refresh token (see
//! [`crate::db::rotation::refresh`] and [`crate::tokens::rotation`]). A version 2
//! token names its session and generation; the successor is minted from
//! the session's secret with the server's token key
//! ([`crate::tokens::refresh::mint`]), so a retry within the grace is sent
//! the very token the lost answer carried.

use service_kit::telemetry::record_identity;

use super::ServiceError;
use super::issue::Issued;
use crate::db::models::{ClientInfo, RevocationReason};
use crate::db::rotation::{Mintable, PresentedToken, RefreshOutcome};
use crate::state::AppState;
use crate::tokens::keys::TokenKeys;
use crate::tokens::refresh::{self as refresh_token, Presented, RefreshToken};
use crate::tokens::rotation::Rejection;

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

/// A presented token as the database needs it: `None` for anything that is
/// not one of ours (malformed, or minted with a key the ring no longer
/// holds), before any query.
pub fn presented_token(keys: &TokenKeys, presented: &str) -> Option<PresentedToken> {
    match Presented::parse(presented)? {
        Presented::V2(token) => token.proof(keys).map(PresentedToken::V2),
        Presented::Legacy(token) => Some(PresentedToken::Legacy(token.hash())),
    }
}

/// The token `mintable` describes, with its expiry; `None` when the ring no
/// longer holds its key.
pub fn mint(
    keys: &TokenKeys,
    mintable: &Mintable,
) -> Option<(RefreshToken, chrono::DateTime<chrono::Utc>)> {
    refresh_token::mint(
        keys,
        mintable.key_id,
        mintable.session_id,
        mintable.generation,
        mintable.secret.as_bytes(),
    )
    .map(|token| (token, mintable.expires_at))
}

pub async fn refresh(
    state: &AppState,
    presented: Option<&str>,
    client: ClientInfo,
) -> Result<Issued, RefreshRefused> {
    let Some(presented) = presented else {
        return Err(ServiceError::InvalidGrant("no refresh token was presented").into());
    };
    let Some(presented) = presented_token(&state.token_keys, presented) else {
        return Err(ServiceError::InvalidGrant("the refresh token is invalid").into());
    };
    let policy = state.rotation_policy();
    let outcome = state
        .database
        .refresh(
            presented,
            std::sync::Arc::clone(&state.token_keys),
            client,
            policy,
        )
        .await
        .map_err(ServiceError::from)?;

    match outcome {
        RefreshOutcome::Rotated {
            user,
            session,
            successor,
        } => {
            state
                .metrics
                .refreshes
                .with_label_values(&["rotated"])
                .inc();
            record_identity(user.id, session.id);
            let successor = mint(&state.token_keys, &successor);
            Ok(Issued::sign(state, &user, &session, successor)?)
        }
        RefreshOutcome::Grace {
            user,
            session,
            resend,
        } => {
            record_identity(user.id, session.id);
            // The successor the consumption issued, minted again: never
            // another token, so the session never forks.
            let again = resend.and_then(|r| mint(&state.token_keys, &r));
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
