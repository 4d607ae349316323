//! What login and refresh hand out: a signed access token and, unless the
//! grace rule says otherwise, a new refresh token.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::ServiceError;
use crate::db::models::{Session, TokenSubject};
use crate::keys::signing::access_claims;
use crate::state::AppState;
use crate::tokens::refresh::{RefreshToken, SessionSecret};

/// Tokens handed out by login and refresh.
#[derive(Debug)]
pub struct Issued {
    pub access_token: String,
    pub user_id: Uuid,
    pub session_id: Uuid,
    /// `None` when a grace answer cannot send the successor again.
    pub refresh: Option<(RefreshToken, DateTime<Utc>)>,
}

impl Issued {
    /// A new access token for the session, with the user's roles as they
    /// are now, handed out with `refresh` (if any).
    pub(super) fn sign(
        state: &AppState,
        user: &TokenSubject,
        session: &Session,
        refresh: Option<(RefreshToken, DateTime<Utc>)>,
    ) -> Result<Self, ServiceError> {
        let tokens = &state.settings.tokens;
        let claims = access_claims(
            &tokens.issuer,
            &tokens.audience,
            tokens.access_ttl,
            user,
            session,
        );
        Ok(Self {
            access_token: state
                .signing
                .sign(&claims)
                .map_err(ServiceError::Internal)?,
            user_id: user.id,
            session_id: session.id,
            refresh,
        })
    }
}

/// A new session's token secret from the operating system's CSPRNG.
pub(super) fn new_session_secret() -> Result<SessionSecret, ServiceError> {
    SessionSecret::generate().map_err(|e| ServiceError::Internal(anyhow::anyhow!("CSPRNG: {e}")))
}
