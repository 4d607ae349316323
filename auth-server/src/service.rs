//! What the endpoints do, apart from HTTP: handlers parse, call one of these,
//! and map the result.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use uuid::Uuid;

use crate::db;
use crate::db::models::{ClientInfo, RevocationReason, Session, User};
use crate::db::tokens::RefreshOutcome;
use crate::db::users::CreateUserError;
use crate::error::ApiError;
use crate::password::PasswordError;
use crate::refresh_token::RefreshToken;
use crate::rotation::{Rejection, successor_expiry};
use crate::signing::access_claims;
use crate::state::AppState;
pub use service_kit::telemetry::record_identity;

impl From<PasswordError> for ApiError {
    fn from(error: PasswordError) -> Self {
        match error {
            PasswordError::Saturated => ApiError::Unavailable {
                retry_after_secs: 1,
                cause: "password hashing queue full".to_owned(),
            },
            PasswordError::Stopped => ApiError::unavailable("password pool stopped"),
            PasswordError::Hash(e) => {
                ApiError::Internal(anyhow::anyhow!("hashing a password: {e}"))
            }
        }
    }
}

pub async fn register(
    state: &AppState,
    email: String,
    password: SecretString,
) -> Result<User, ApiError> {
    let hash = state.passwords.hash(password).await?;
    state
        .database
        .run(move |conn| Ok(db::users::create(conn, &email, &hash)))
        .await?
        .map_err(|e| match e {
            CreateUserError::EmailTaken => ApiError::EmailTaken,
            CreateUserError::Db(e) => e.into(),
        })
        .inspect(|_| state.metrics.registrations.inc())
}

/// Tokens handed out by login and refresh.
#[derive(Debug)]
pub struct Issued {
    pub access_token: String,
    pub user_id: Uuid,
    pub session_id: Uuid,
    /// `None` under the reuse grace: no new refresh token.
    pub refresh: Option<(RefreshToken, DateTime<Utc>)>,
}

pub async fn login(
    state: &AppState,
    email: String,
    password: SecretString,
    client: ClientInfo,
) -> Result<Issued, ApiError> {
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
        _ => {
            state.metrics.logins.with_label_values(&["failed"]).inc();
            tracing::info!(audit = "login_failed", "login failed");
            return Err(ApiError::InvalidCredentials);
        }
    };

    let refresh =
        RefreshToken::generate().map_err(|e| ApiError::Internal(anyhow::anyhow!("CSPRNG: {e}")))?;
    let hash = refresh.hash();
    let now = Utc::now();
    let tokens = &state.settings.tokens;
    let session_expires_at = add(now, tokens.session_max_lifetime);
    let token_expires_at = successor_expiry(now, session_expires_at, tokens.refresh_ttl);
    let user_id = user.id;
    let session = state
        .database
        .run(move |conn| {
            db::sessions::create(
                conn,
                user_id,
                &client,
                &hash,
                session_expires_at,
                token_expires_at,
            )
        })
        .await?;
    state.metrics.logins.with_label_values(&["ok"]).inc();
    tracing::info!(audit = "login", user_id = %user.id, session_id = %session.id, "login");
    let access_token = sign(state, &user, &session)?;
    Ok(Issued {
        access_token,
        user_id: user.id,
        session_id: session.id,
        refresh: Some((refresh, token_expires_at)),
    })
}

/// Why a refresh was refused, and whether the refusal ended the session
/// (only then may a cookie be cleared: a refusal that ends nothing must not
/// wipe a token another request just received).
#[derive(Debug)]
pub struct RefreshRefused {
    pub error: ApiError,
    pub session_ended: bool,
}

impl From<ApiError> for RefreshRefused {
    fn from(error: ApiError) -> Self {
        Self {
            error,
            session_ended: false,
        }
    }
}

pub async fn refresh(
    state: &AppState,
    presented: Option<&str>,
    client: ClientInfo,
) -> Result<Issued, RefreshRefused> {
    let Some(presented) = presented else {
        return Err(ApiError::InvalidGrant("no refresh token was presented").into());
    };
    let Some(presented) = RefreshToken::parse(presented) else {
        return Err(ApiError::InvalidGrant("the refresh token is invalid").into());
    };
    let successor =
        RefreshToken::generate().map_err(|e| ApiError::Internal(anyhow::anyhow!("CSPRNG: {e}")))?;
    let presented_hash = presented.hash();
    let successor_hash = successor.hash();
    let policy = state.rotation_policy();
    let outcome = state
        .database
        .run(move |conn| {
            db::tokens::refresh(conn, &presented_hash, &successor_hash, &client, &policy)
        })
        .await
        .map_err(ApiError::from)?;

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
            let access_token = sign(state, &user, &session)?;
            Ok(Issued {
                access_token,
                user_id: user.id,
                session_id: session.id,
                refresh: Some((successor, successor_expires_at)),
            })
        }
        RefreshOutcome::Grace { user, session } => {
            state.metrics.refreshes.with_label_values(&["grace"]).inc();
            record_identity(user.id, session.id);
            tracing::info!("refresh token reused within the grace: access token only");
            let access_token = sign(state, &user, &session)?;
            Ok(Issued {
                access_token,
                user_id: user.id,
                session_id: session.id,
                refresh: None,
            })
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
                error: ApiError::InvalidGrant(
                    "the refresh token was already used; the session has been revoked",
                ),
                session_ended: true,
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
            Err(RefreshRefused {
                error: ApiError::InvalidGrant(rejection.description()),
                session_ended: matches!(
                    rejection,
                    Rejection::SessionRevoked | Rejection::SessionExpired
                ),
            })
        }
        RefreshOutcome::Unknown => {
            state
                .metrics
                .refreshes
                .with_label_values(&["unknown"])
                .inc();
            Err(ApiError::InvalidGrant("the refresh token is invalid").into())
        }
    }
}

/// Revokes the token's session, whatever state the token is in: the holder
/// of even a consumed token may end the session. Unknown tokens are no-ops.
pub async fn logout(state: &AppState, presented: Option<&str>) -> Result<(), ApiError> {
    let Some(token) = presented.and_then(RefreshToken::parse) else {
        return Ok(());
    };
    let hash = token.hash();
    let revoked = state
        .database
        .run(move |conn| {
            let Some(session) = db::tokens::session_of(conn, &hash)? else {
                return Ok(None);
            };
            db::sessions::revoke(conn, session.id, RevocationReason::Logout)
                .map(|changed| Some((session, changed)))
        })
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

pub async fn logout_all(state: &AppState, user_id: Uuid) -> Result<usize, ApiError> {
    let count = state
        .database
        .run(move |conn| db::sessions::revoke_all(conn, user_id, RevocationReason::LogoutAll))
        .await?;
    if count > 0 {
        state.revoked(RevocationReason::LogoutAll, count);
    }
    tracing::info!(audit = "logout_all", %user_id, sessions = count, "logout everywhere");
    Ok(count)
}

pub async fn list_sessions(state: &AppState, user_id: Uuid) -> Result<Vec<Session>, ApiError> {
    Ok(state
        .database
        .run(move |conn| db::sessions::list_live(conn, user_id))
        .await?)
}

pub async fn delete_session(
    state: &AppState,
    user_id: Uuid,
    session_id: Uuid,
) -> Result<(), ApiError> {
    let revoked = state
        .database
        .run(move |conn| {
            db::sessions::revoke_owned(conn, user_id, session_id, RevocationReason::SessionDeleted)
        })
        .await?;
    match revoked {
        None => Err(ApiError::NotFound("session")),
        Some(changed) => {
            if changed {
                state.revoked(RevocationReason::SessionDeleted, 1);
                tracing::info!(audit = "session_deleted", %user_id, %session_id, "session revoked by its user");
            }
            Ok(())
        }
    }
}

fn sign(state: &AppState, user: &User, session: &Session) -> Result<String, ApiError> {
    let tokens = &state.settings.tokens;
    let claims = access_claims(
        &tokens.issuer,
        &tokens.audience,
        tokens.access_ttl,
        user,
        session,
    );
    state.signing.sign(&claims).map_err(ApiError::Internal)
}

fn add(now: DateTime<Utc>, duration: std::time::Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(duration)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}
