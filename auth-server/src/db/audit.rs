//! The audit trail: security events, each inserted by the transaction of the
//! change it records, and read back newest first with a keyset cursor.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{QueryFragment, QueryId};
use diesel::sql_types::{Nullable, Text, Uuid as SqlUuid};
use uuid::Uuid;

use super::DbResult;
use super::models::ClientInfo;
use super::schema::audit_events;
use crate::limits::client_key::ClientKey;

/// At most one `login_failed` event is stored per account and client (an
/// IPv4 address or an IPv6 /64: [`ClientKey`]) within this window; the others are only counted (in `/metrics`), so a
/// password-guessing attacker cannot grow the table without bound.
pub const LOGIN_FAILED_WINDOW_SECS: i64 = 15 * 60;

/// The contract's audit event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Register,
    Login,
    LoginFailed,
    RefreshReuseDetected,
    Logout,
    LogoutAll,
    SessionDeleted,
    SessionEvicted,
    PasswordChanged,
    PasswordResetRequested,
    PasswordReset,
    EmailVerified,
    UserDisabled,
    UserEnabled,
    UserDeleted,
    RolesChanged,
    MfaEnabled,
    MfaDisabled,
    RecoveryCodesRegenerated,
    RecoveryCodeUsed,
    MfaFailed,
    MfaReset,
    Reauthenticated,
    PasskeyAdded,
    PasskeyRemoved,
    PasskeyCloneSuspected,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Login => "login",
            Self::LoginFailed => "login_failed",
            Self::RefreshReuseDetected => "refresh_reuse_detected",
            Self::Logout => "logout",
            Self::LogoutAll => "logout_all",
            Self::SessionDeleted => "session_deleted",
            Self::SessionEvicted => "session_evicted",
            Self::PasswordChanged => "password_changed",
            Self::PasswordResetRequested => "password_reset_requested",
            Self::PasswordReset => "password_reset",
            Self::EmailVerified => "email_verified",
            Self::UserDisabled => "user_disabled",
            Self::UserEnabled => "user_enabled",
            Self::UserDeleted => "user_deleted",
            Self::RolesChanged => "roles_changed",
            Self::MfaEnabled => "mfa_enabled",
            Self::MfaDisabled => "mfa_disabled",
            Self::RecoveryCodesRegenerated => "recovery_codes_regenerated",
            Self::RecoveryCodeUsed => "recovery_code_used",
            Self::MfaFailed => "mfa_failed",
            Self::MfaReset => "mfa_reset",
            Self::Reauthenticated => "reauthenticated",
            Self::PasskeyAdded => "passkey_added",
            Self::PasskeyRemoved => "passkey_removed",
            Self::PasskeyCloneSuspected => "passkey_clone_suspected",
        }
    }

    pub const ALL: [Self; 26] = [
        Self::Register,
        Self::Login,
        Self::LoginFailed,
        Self::RefreshReuseDetected,
        Self::Logout,
        Self::LogoutAll,
        Self::SessionDeleted,
        Self::SessionEvicted,
        Self::PasswordChanged,
        Self::PasswordResetRequested,
        Self::PasswordReset,
        Self::EmailVerified,
        Self::UserDisabled,
        Self::UserEnabled,
        Self::UserDeleted,
        Self::RolesChanged,
        Self::MfaEnabled,
        Self::MfaDisabled,
        Self::RecoveryCodesRegenerated,
        Self::RecoveryCodeUsed,
        Self::MfaFailed,
        Self::MfaReset,
        Self::Reauthenticated,
        Self::PasskeyAdded,
        Self::PasskeyRemoved,
        Self::PasskeyCloneSuspected,
    ];

    /// The type of this name; `None` for a name that is not one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// One event as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_events, check_for_backend(diesel::pg::Pg))]
pub struct AuditEvent {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    #[diesel(column_name = type_)]
    pub event_type: String,
    pub actor_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<Uuid>,
}

/// What an event is about; `client` says who asked (address, user agent,
/// request id). The actor is the user themself unless `actor` says otherwise.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub event_type: EventType,
    pub user_id: Uuid,
    pub session_id: Option<Uuid>,
    pub client: &'a ClientInfo,
}

impl<'a> Event<'a> {
    pub fn new(event_type: EventType, user_id: Uuid, client: &'a ClientInfo) -> Self {
        Self {
            event_type,
            user_id,
            session_id: None,
            client,
        }
    }

    pub fn in_session(mut self, session_id: Uuid) -> Self {
        self.session_id = Some(session_id);
        self
    }
}

/// Inserts the event; call it inside the transaction of the change.
pub fn record(conn: &mut PgConnection, event: Event<'_>) -> QueryResult<()> {
    record_by(conn, event, Some(event.user_id))
}

/// Inserts an event the server did by itself (no acting user), such as a
/// reset requested by an unauthenticated client.
pub fn record_by_server(conn: &mut PgConnection, event: Event<'_>) -> QueryResult<()> {
    record_by(conn, event, None)
}

/// Inserts an event an administrator (`actor`), or the CLI (`None`), did.
pub fn record_by(
    conn: &mut PgConnection,
    event: Event<'_>,
    actor: Option<Uuid>,
) -> QueryResult<()> {
    record_all(conn, &[(event, actor)])
}

/// Inserts several events, each with its actor, in one statement: a change
/// that records more than one event (a login that evicts sessions) still
/// adds one statement to its transaction.
pub fn record_all(
    conn: &mut PgConnection,
    events: &[(Event<'_>, Option<Uuid>)],
) -> QueryResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    conn.execute_returning_count(&insert(events)).map(|_| ())
}

/// The statement [`record_all`] runs, for a transaction on an asynchronous
/// connection too. `events` must not be empty.
pub fn insert<'a>(
    events: &'a [(Event<'a>, Option<Uuid>)],
) -> impl QueryFragment<Pg> + QueryId + Send + 'a {
    let rows: Vec<_> = events
        .iter()
        .map(|(event, actor)| {
            (
                audit_events::id.eq(Uuid::new_v4()),
                audit_events::type_.eq(event.event_type.as_str()),
                audit_events::actor_id.eq(*actor),
                audit_events::user_id.eq(event.user_id),
                audit_events::session_id.eq(event.session_id),
                audit_events::ip.eq(event.client.ip.as_deref()),
                audit_events::user_agent.eq(event.client.user_agent.as_deref()),
                audit_events::request_id.eq(event.client.request_id),
            )
        })
        .collect();
    diesel::insert_into(audit_events::table).values(rows)
}

/// A failed login (or a wrong current password), stored when the account
/// exists and no failure from the same client (its [`ClientKey`], so every
/// address of one IPv6 /64 alike) was stored within
/// [`LOGIN_FAILED_WINDOW_SECS`]. `true` when stored. An unknown email
/// (`None`) makes the same single statement, which stores nothing: the two
/// take the same time.
pub fn record_login_failed(
    conn: &mut PgConnection,
    user_id: Option<Uuid>,
    client: &ClientInfo,
) -> DbResult<bool> {
    record_failure(conn, Failure::Password, user_id, client)
}

/// Which factor failed: `login_failed` for a password, `mfa_failed` for a
/// second factor. Both are bounded alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Password,
    SecondFactor,
}

impl Failure {
    fn event_type(self) -> EventType {
        match self {
            Self::Password => EventType::LoginFailed,
            Self::SecondFactor => EventType::MfaFailed,
        }
    }
}

/// [`record_login_failed`] for either kind of failure.
pub fn record_failure(
    conn: &mut PgConnection,
    failure: Failure,
    user_id: Option<Uuid>,
    client: &ClientInfo,
) -> DbResult<bool> {
    let client_key = client_key(client);
    let stored = diesel::sql_query(format!(
        "INSERT INTO audit_events (id, type, user_id, ip, user_agent, request_id, client_key) \
         SELECT $1, $7, $2, $3, $4, $5, $6 \
         WHERE $2::uuid IS NOT NULL AND NOT EXISTS (SELECT 1 FROM audit_events WHERE user_id = $2 AND type = $7 \
           AND client_key IS NOT DISTINCT FROM $6 AND at > now() - interval '{LOGIN_FAILED_WINDOW_SECS} seconds')"
    ))
    .bind::<SqlUuid, _>(Uuid::new_v4())
    .bind::<Nullable<SqlUuid>, _>(user_id)
    .bind::<Nullable<Text>, _>(client.ip.as_deref())
    .bind::<Nullable<Text>, _>(client.user_agent.as_deref())
    .bind::<Nullable<SqlUuid>, _>(client.request_id)
    .bind::<Nullable<Text>, _>(client_key.as_deref())
    .bind::<Text, _>(failure.event_type().as_str())
    .execute(conn)?;
    Ok(stored > 0)
}

/// The client behind the request's address, as the rate limits count it;
/// `None` without an address.
fn client_key(client: &ClientInfo) -> Option<String> {
    let ip: IpAddr = client.ip.as_deref()?.parse().ok()?;
    Some(ClientKey::of(ip).to_string())
}

/// Where a page of events starts: strictly older than this event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub at: DateTime<Utc>,
    pub id: Uuid,
}

impl AuditEvent {
    /// Where the page that ends with this event resumes.
    pub fn position(&self) -> Position {
        Position {
            at: self.at,
            id: self.id,
        }
    }
}

/// Every event, or those about `user_id`, or of `event_type`, newest
/// first, after `cursor`; at most `limit` (the administration's query).
pub fn query(
    conn: &mut PgConnection,
    user_id: Option<Uuid>,
    event_type: Option<EventType>,
    cursor: Option<Position>,
    limit: i64,
) -> DbResult<Vec<AuditEvent>> {
    let mut query = audit_events::table
        .order((audit_events::at.desc(), audit_events::id.desc()))
        .limit(limit)
        .select(AuditEvent::as_select())
        .into_boxed();
    if let Some(user_id) = user_id {
        query = query.filter(audit_events::user_id.eq(user_id));
    }
    if let Some(event_type) = event_type {
        query = query.filter(audit_events::type_.eq(event_type.as_str()));
    }
    if let Some(Position { at, id }) = cursor {
        query = query.filter(
            audit_events::at
                .lt(at)
                .or(audit_events::at.eq(at).and(audit_events::id.lt(id))),
        );
    }
    Ok(query.load(conn)?)
}

/// The user's events, newest first, after `cursor`; at most `limit`.
pub fn for_user(
    conn: &mut PgConnection,
    user_id: Uuid,
    cursor: Option<Position>,
    limit: i64,
) -> DbResult<Vec<AuditEvent>> {
    let mut query = audit_events::table
        .filter(audit_events::user_id.eq(user_id))
        .order((audit_events::at.desc(), audit_events::id.desc()))
        .limit(limit)
        .select(AuditEvent::as_select())
        .into_boxed();
    if let Some(Position { at, id }) = cursor {
        query = query.filter(
            audit_events::at
                .lt(at)
                .or(audit_events::at.eq(at).and(audit_events::id.lt(id))),
        );
    }
    Ok(query.load(conn)?)
}
