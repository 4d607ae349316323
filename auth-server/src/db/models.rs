use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::schema::{refresh_tokens, sessions, users};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub roles: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The address was proven by a verification link.
    pub email_verified: bool,
    /// Set while an administrator has the account disabled.
    pub disabled_at: Option<DateTime<Utc>>,
    /// Bumped by every change of roles; access tokens carry it as `rv`.
    pub roles_version: i64,
    pub last_login_at: Option<DateTime<Utc>>,
}

/// What an access token says of its user, and whether the user is
/// disabled: all a refresh reads of the user's row (never the password
/// hash).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct TokenSubject {
    pub id: Uuid,
    pub email: String,
    pub email_verified: bool,
    pub roles: Vec<String>,
    pub roles_version: i64,
    pub disabled_at: Option<DateTime<Utc>>,
}

impl From<&User> for TokenSubject {
    fn from(user: &User) -> Self {
        Self {
            id: user.id,
            email: user.email.clone(),
            email_verified: user.email_verified,
            roles: user.roles.clone(),
            roles_version: user.roles_version,
            disabled_at: user.disabled_at,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions, check_for_backend(diesel::pg::Pg))]
pub struct Session {
    pub id: Uuid,
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_reason: Option<String>,
    pub user_agent: Option<String>,
    pub client_ip: Option<String>,
    pub revoked_xid: Option<i64>,
    /// How the user proved who they are in this session (RFC 8176).
    pub amr: Vec<String>,
    /// When a factor was last proven; `None`: at `created_at`.
    pub auth_time: Option<DateTime<Utc>>,
    /// The passkey the session signed in with: removing it ends the session.
    pub passkey_id: Option<Uuid>,
}

impl Session {
    /// When a factor was last proven in this session.
    pub fn authenticated_at(&self) -> DateTime<Utc> {
        self.auth_time.unwrap_or(self.created_at)
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens, check_for_backend(diesel::pg::Pg))]
pub struct RefreshTokenRow {
    pub id: Uuid,
    pub token_hash: Vec<u8>,
    pub session_id: Uuid,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub consumed_at: Option<DateTime<Utc>>,
    pub successor_id: Option<Uuid>,
}

/// Why a session ended; stored in `sessions.revoked_reason`, whose CHECK
/// constraint must admit every one (a new reason needs a migration too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationReason {
    Logout,
    LogoutAll,
    SessionDeleted,
    ReuseDetected,
    /// The user changed the password: every other session ends.
    PasswordChanged,
    /// The password was reset by e-mail: every session ends.
    PasswordReset,
    /// A login went past `MAX_SESSIONS_PER_USER`: the oldest live session
    /// made room.
    SessionEvicted,
    /// An administrator disabled the user: every session ends.
    UserDisabled,
    /// An administrator removed the user's second factors: every session
    /// ends.
    MfaReset,
    /// The passkey the session signed in with was removed.
    PasskeyRemoved,
}

impl RevocationReason {
    pub const ALL: [Self; 10] = [
        Self::Logout,
        Self::LogoutAll,
        Self::SessionDeleted,
        Self::ReuseDetected,
        Self::SessionEvicted,
        Self::PasswordChanged,
        Self::PasswordReset,
        Self::UserDisabled,
        Self::MfaReset,
        Self::PasskeyRemoved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::LogoutAll => "logout_all",
            Self::SessionDeleted => "session_deleted",
            Self::ReuseDetected => "reuse_detected",
            Self::PasswordChanged => "password_changed",
            Self::PasswordReset => "password_reset",
            Self::SessionEvicted => "session_evicted",
            Self::UserDisabled => "user_disabled",
            Self::MfaReset => "mfa_reset",
            Self::PasskeyRemoved => "passkey_removed",
        }
    }
}

/// Who is behind a request, as recorded on sessions and audit events: what
/// the service layer needs of a request, without the request.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub user_agent: Option<String>,
    /// The client's address, behind trusted proxies (`TRUSTED_PROXIES`).
    pub ip: Option<String>,
    /// The request's id (tracing-actix-web's), tying an audit event to logs.
    pub request_id: Option<Uuid>,
}
