//! What login and refresh hand out: a signed access token and, unless the
//! grace rule says otherwise, a new refresh token.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use diesel::PgConnection;

use super::ServiceError;
use crate::db::models::{ClientInfo, RevocationReason, Session, TokenSubject};
use crate::db::sessions::{Created, FirstToken, Proven};
use crate::db::{self, DbResult};
use crate::keys::signing::access_claims;
use crate::state::AppState;
use crate::tokens::refresh::{RefreshToken, SessionSecret};
use crate::tokens::rotation::successor_expiry;

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

/// A session about to open: its secret, the key that mints its first
/// token, and their lifetimes, drawn before the database is reached so
/// that the row can be written inside any transaction
/// ([`NewSession::create`]) and the tokens handed out after it commits
/// ([`NewSession::open`]). Every way to sign in opens its session so.
#[derive(Debug, Clone)]
pub struct NewSession {
    secret: SessionSecret,
    key_id: u8,
    session_expires_at: DateTime<Utc>,
    token_expires_at: DateTime<Utc>,
    max_live: Option<std::num::NonZeroU32>,
}

impl NewSession {
    pub fn draw(state: &AppState) -> Result<Self, ServiceError> {
        let now = Utc::now();
        let tokens = &state.settings.tokens;
        let session_expires_at = after(now, tokens.session_max_lifetime);
        Ok(Self {
            secret: new_session_secret()?,
            key_id: state.token_keys.current_id(),
            session_expires_at,
            token_expires_at: successor_expiry(now, session_expires_at, tokens.refresh_ttl),
            max_live: state.settings.sessions.max_per_user,
        })
    }

    /// The row, in the caller's transaction (see
    /// [`db::sessions::create_within_cap`]): `None` when the user is gone
    /// or disabled, or no longer has `verified_hash`.
    pub fn create(
        &self,
        conn: &mut PgConnection,
        user_id: Uuid,
        verified_hash: Option<&str>,
        proven: Proven<'_>,
        client: &ClientInfo,
    ) -> DbResult<Option<Created>> {
        db::sessions::create_within_cap(
            conn,
            user_id,
            verified_hash,
            proven,
            client,
            FirstToken {
                secret: &self.secret,
                key_id: self.key_id,
            },
            (self.session_expires_at, self.token_expires_at),
            self.max_live,
        )
    }

    /// The login answer for the session just created: counted, its
    /// evictions announced, generation 1 minted from the secret stored.
    pub fn open(
        self,
        state: &AppState,
        user: &TokenSubject,
        created: Created,
    ) -> Result<Issued, ServiceError> {
        let Created { session, evicted } = created;
        state.metrics.logins.with_label_values(&["ok"]).inc();
        tracing::info!(audit = "login", user_id = %user.id, session_id = %session.id, amr = ?session.amr, "login");
        if !evicted.is_empty() {
            state.revoked(RevocationReason::SessionEvicted, evicted.len());
            for evicted in &evicted {
                tracing::info!(audit = "session_evicted", user_id = %user.id, session_id = %evicted, "oldest session revoked: MAX_SESSIONS_PER_USER");
            }
        }
        let refresh = crate::tokens::refresh::mint(
            &state.token_keys,
            self.key_id,
            session.id,
            1,
            self.secret.as_bytes(),
        )
        .ok_or_else(|| {
            ServiceError::Internal(anyhow::anyhow!("the current token key is missing"))
        })?;
        Issued::sign(
            state,
            user,
            &session,
            Some((refresh, self.token_expires_at)),
        )
    }
}

/// `now + duration`, saturating.
pub(super) fn after(now: DateTime<Utc>, duration: std::time::Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(duration)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}
