//! Administration: what the `/admin/*` endpoints and the CLI's `users`
//! commands do (the CLI acts with no actor). Each change commits with its
//! audit event ([`crate::db::admin`]); revocations wake the feed's long
//! polls so the APIs learn of them at once.

use chrono::Utc;
use uuid::Uuid;

use super::ServiceError;
use super::paging::{self, Cursor, Page};
use crate::accounts::email::Email;
pub use crate::db::admin::RolesChange;
use crate::db::admin::{self, Actor, ListedUser, Outcome};
use crate::db::audit::{self, AuditEvent, EventType, Position};
use crate::db::models::{ClientInfo, RevocationReason, Session, User};
use crate::db::{self, Database};
use crate::state::AppState;

/// Users or events per page unless asked otherwise, and the most one may ask for.
pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;
/// Roles a user may hold at most, and the longest name of one.
pub const MAX_ROLES: usize = 20;
pub const MAX_ROLE_LEN: usize = 64;
/// The role that opens `/admin/*`.
pub const ADMIN_ROLE: &str = "admin";

/// Where an administrator's change goes: the database, and the running
/// server's state to count revocations and wake the feed's long polls at
/// once (none in the CLI: the servers' polls re-read the database four
/// times a second).
pub struct Context<'a> {
    pub database: &'a Database,
    pub state: Option<&'a AppState>,
    /// How long an access token issued now can be accepted (TTL and
    /// leeway): a deleted user's sessions revoked longer ago than this no
    /// longer matter to the feed.
    pub token_window: chrono::Duration,
}

impl<'a> Context<'a> {
    pub fn new(database: &'a Database, tokens: &crate::config::TokenSettings) -> Self {
        Self {
            database,
            state: None,
            token_window: chrono::Duration::from_std(tokens.access_ttl + tokens.leeway)
                .unwrap_or_else(|_| chrono::Duration::days(1)),
        }
    }

    pub fn of(state: &'a AppState) -> Self {
        Self {
            state: Some(state),
            ..Self::new(&state.database, &state.settings.tokens)
        }
    }

    fn revoked(&self, reason: Option<RevocationReason>, sessions: usize) {
        if let Some(state) = self.state {
            match reason {
                Some(reason) => state.revoked(reason, sessions),
                None => state.revocations.notify_waiters(),
            }
        }
    }
}

/// Where a page of users resumes: after this e-mail (users are listed in
/// e-mail order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfterEmail(pub String);

/// The user list's cursor: the last e-mail.
impl Cursor for AfterEmail {
    const MAX_ENCODED_LEN: usize = 400;

    fn to_text(&self) -> String {
        self.0.clone()
    }

    fn from_text(email: &str) -> Option<Self> {
        // A NUL would reach PostgreSQL, which refuses it in text: no cursor
        // we gave holds a control character.
        let plausible = !email.is_empty()
            && email.len() <= 254
            && email == email.to_lowercase()
            && !email.chars().any(char::is_control);
        plausible.then(|| Self(email.to_owned()))
    }
}

/// Users whose e-mail holds `query` (case-insensitive), in e-mail order,
/// after `cursor`.
pub async fn list_users(
    database: &Database,
    query: Option<String>,
    cursor: Option<AfterEmail>,
    limit: i64,
) -> Result<Page<ListedUser>, ServiceError> {
    let query = query
        .map(|q| q.trim().to_lowercase())
        .filter(|q| !q.is_empty());
    let rows = paging::rows_to_fetch(limit);
    let users = database
        .run(move |conn| {
            let after = cursor.map(|AfterEmail(email)| email);
            admin::list_users(conn, query.as_deref(), after.as_deref(), rows)
        })
        .await?;
    Ok(paging::page(users, limit, |u| {
        AfterEmail(u.user.email.clone())
    }))
}

/// The user and its live sessions.
pub async fn find_user(
    database: &Database,
    id: Uuid,
) -> Result<(ListedUser, Vec<Session>), ServiceError> {
    database
        .run(move |conn| admin::find_user(conn, id))
        .await?
        .ok_or(ServiceError::NotFound("user"))
}

/// Disables the user: every session revoked, login refused.
pub async fn disable(
    cx: &Context<'_>,
    actor: Actor,
    id: Uuid,
    client: ClientInfo,
) -> Result<(), ServiceError> {
    let revoked = done(
        cx.database
            .run(move |conn| admin::disable(conn, actor, id, &client))
            .await?,
    )?;
    // Wake the feed's long polls even with no live session: cheap, rare.
    cx.revoked(Some(RevocationReason::UserDisabled), revoked);
    tracing::info!(audit = "user_disabled", user_id = %id, actor_id = ?actor.map(|a| a.user_id), sessions_revoked = revoked, "user disabled");
    Ok(())
}

/// Removes the user's second factors and ends every session (at the APIs
/// within the feed's interval).
pub async fn reset_mfa(
    cx: &Context<'_>,
    actor: Actor,
    id: Uuid,
    client: ClientInfo,
) -> Result<(), ServiceError> {
    let revoked = done(
        cx.database
            .run(move |conn| admin::reset_mfa(conn, actor, id, &client))
            .await?,
    )?;
    cx.revoked(Some(RevocationReason::MfaReset), revoked);
    if let Some(state) = cx.state {
        state.mail_queued.notify_one();
    }
    tracing::info!(audit = "mfa_reset", user_id = %id, actor_id = ?actor.map(|a| a.user_id), sessions_revoked = revoked, "second factors reset");
    Ok(())
}

pub async fn enable(
    cx: &Context<'_>,
    actor: Actor,
    id: Uuid,
    client: ClientInfo,
) -> Result<(), ServiceError> {
    done(
        cx.database
            .run(move |conn| admin::enable(conn, actor, id, &client))
            .await?,
    )?;
    tracing::info!(audit = "user_enabled", user_id = %id, actor_id = ?actor.map(|a| a.user_id), "user enabled");
    Ok(())
}

/// Changes the user's roles; roles as [`check_roles`] returns them.
pub async fn change_roles(
    cx: &Context<'_>,
    actor: Actor,
    id: Uuid,
    change: RolesChange,
    client: ClientInfo,
) -> Result<User, ServiceError> {
    let user = done(
        cx.database
            .run(move |conn| admin::change_roles(conn, actor, id, &change, &client))
            .await?,
    )?;
    cx.revoked(None, 0);
    tracing::info!(audit = "roles_changed", user_id = %id, actor_id = ?actor.map(|a| a.user_id), roles_version = user.roles_version, "roles set");
    Ok(user)
}

/// Deletes the user; its sessions stay in the revocation feed.
pub async fn delete(
    cx: &Context<'_>,
    actor: Actor,
    id: Uuid,
    client: ClientInfo,
) -> Result<(), ServiceError> {
    // With a margin for clock skew between the services.
    let since = Utc::now() - cx.token_window - chrono::Duration::minutes(1);
    let sessions = done(
        cx.database
            .run(move |conn| admin::delete(conn, actor, id, &client, since))
            .await?,
    )?;
    cx.revoked(None, 0);
    tracing::info!(audit = "user_deleted", user_id = %id, actor_id = ?actor.map(|a| a.user_id), sessions, "user deleted");
    Ok(())
}

/// The id of the user with this e-mail (the CLI names users by e-mail).
pub async fn id_by_email(database: &Database, email: Email) -> Result<Uuid, ServiceError> {
    database
        .run(move |conn| admin::id_by_email(conn, &email))
        .await?
        .ok_or(ServiceError::NotFound("user"))
}

/// The audit trail, newest first, about one user or of one type if asked.
pub async fn audit(
    database: &Database,
    user_id: Option<Uuid>,
    event_type: Option<EventType>,
    cursor: Option<Position>,
    limit: i64,
) -> Result<Page<AuditEvent>, ServiceError> {
    let rows = paging::rows_to_fetch(limit);
    let events = database
        .run(move |conn| db::audit::query(conn, user_id, event_type, cursor, rows))
        .await?;
    Ok(paging::page(events, limit, AuditEvent::position))
}

/// The roles as given, if each matches `^[a-z0-9_:-]{1,64}$` and there are
/// at most [`MAX_ROLES`]; duplicates are dropped.
pub fn check_roles(roles: Vec<String>) -> Result<Vec<String>, ServiceError> {
    if roles.len() > MAX_ROLES {
        return Err(ServiceError::Invalid("roles", "at most 20 roles"));
    }
    let mut checked: Vec<String> = Vec::with_capacity(roles.len());
    for role in roles {
        let valid = !role.is_empty()
            && role.len() <= MAX_ROLE_LEN
            && role.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b':' | b'-')
            });
        if !valid {
            return Err(ServiceError::Invalid(
                "roles",
                "each role is 1 to 64 of a-z, 0-9, `_`, `:` and `-`",
            ));
        }
        if !checked.contains(&role) {
            checked.push(role);
        }
    }
    Ok(checked)
}

/// The event type of this name, for the audit query.
pub fn event_type(name: &str) -> Result<EventType, ServiceError> {
    audit::EventType::parse(name).ok_or(ServiceError::Invalid("type", "not an audit event type"))
}

fn done<T>(outcome: Outcome<T>) -> Result<T, ServiceError> {
    match outcome {
        Outcome::Done(value) => Ok(value),
        Outcome::NotFound => Err(ServiceError::NotFound("user")),
        Outcome::LastAdmin => Err(ServiceError::LastAdmin),
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    #[test]
    fn roles_are_checked() {
        let ok = check_roles(vec!["admin".into(), "a:b-c_9".into(), "admin".into()]).unwrap();
        assert_eq!(ok, vec!["admin".to_owned(), "a:b-c_9".to_owned()]);
        for bad in ["", "Admin", "a b", "é", &"a".repeat(65)] {
            assert!(check_roles(vec![bad.to_owned()]).is_err(), "{bad}");
        }
        assert!(check_roles((0..21).map(|i| format!("r{i}")).collect()).is_err());
        assert!(check_roles((0..20).map(|i| format!("r{i}")).collect()).is_ok());
    }

    #[test]
    fn user_cursors_round_trip_and_junk_is_refused() {
        let cursor = paging::encode(&AfterEmail("a@example.com".to_owned()));
        // The form clients already hold.
        assert_eq!(cursor, URL_SAFE_NO_PAD.encode("a@example.com"));
        assert_eq!(
            paging::decode(&cursor),
            Some(AfterEmail("a@example.com".to_owned()))
        );
        for junk in [
            "",
            "!!!",
            &URL_SAFE_NO_PAD.encode("A@B"),
            &URL_SAFE_NO_PAD.encode("a\0@b"),
            &"a".repeat(500),
        ] {
            assert_eq!(paging::decode::<AfterEmail>(junk), None, "{junk}");
        }
    }
}
