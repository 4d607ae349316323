//! What administrators (the `/admin/*` endpoints and the CLI) do to users:
//! list and find them, disable and enable, change roles, delete. Each change
//! and its audit event commit together, in one transaction.
//!
//! `last_admin`: every change that could leave no enabled administrator
//! first takes one transaction-scoped advisory lock, so two of them (two
//! admins disabling each other) take turns and the second sees the first.
//! The CLI (no acting user) is not held to it: an operator with access to
//! the server is the way back in, and may need to remove the last admin
//! (it can grant `admin` again just as well).

use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel::sql_types::{BigInt, Bool, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

use super::audit::{self, Event, EventType};
use super::models::{ClientInfo, RevocationReason, Session, User};
use super::schema::users;
use super::{DbError, DbResult};
use crate::accounts::email::Email;
use crate::mail::notice::Notice;

/// The advisory lock the changes that can remove an administrator share.
const ADMINS_LOCK: i64 = 0x6164_6d69_6e73; // "admins"

/// Who acts: an administrator, from one of its sessions (recorded as the
/// event's session); the CLI acts as `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admin {
    pub user_id: Uuid,
    pub session_id: Uuid,
}

pub type Actor = Option<Admin>;

/// The event about `id` that `actor` caused.
fn record(
    conn: &mut PgConnection,
    event_type: EventType,
    id: Uuid,
    actor: Actor,
    client: &ClientInfo,
) -> QueryResult<()> {
    let mut event = Event::new(event_type, id, client);
    if let Some(admin) = actor {
        event = event.in_session(admin.session_id);
    }
    audit::record_by(conn, event, actor.map(|a| a.user_id))
}

/// What an administrator's change came to.
#[derive(Debug)]
pub enum Outcome<T> {
    Done(T),
    NotFound,
    /// It would leave no enabled administrator.
    LastAdmin,
}

/// Users whose e-mail holds `query` (already lower case; `None`: every
/// user), in e-mail order after `after`; at most `limit`.
pub fn list_users(
    conn: &mut PgConnection,
    query: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> DbResult<Vec<ListedUser>> {
    let mut select = users::table
        .order(users::email.asc())
        .limit(limit)
        .select((User::as_select(), has_second_factor()))
        .into_boxed();
    if let Some(query) = query {
        select = select.filter(users::email.like(format!("%{}%", escape_like(query))));
    }
    if let Some(after) = after {
        select = select.filter(users::email.gt(after.to_owned()));
    }
    Ok(select
        .load::<(User, bool)>(conn)?
        .into_iter()
        .map(|(user, has_second_factor)| ListedUser {
            user,
            has_second_factor,
        })
        .collect())
}

/// A user as the administration lists it.
#[derive(Debug, Clone)]
pub struct ListedUser {
    pub user: User,
    /// TOTP is on, or the user has a passkey.
    pub has_second_factor: bool,
}

/// Whether the row's user has a second factor: TOTP on, or a passkey.
fn has_second_factor() -> diesel::expression::SqlLiteral<diesel::sql_types::Bool> {
    diesel::dsl::sql::<diesel::sql_types::Bool>(
        "(EXISTS (SELECT 1 FROM totp_factors t WHERE t.user_id = users.id AND t.confirmed_at IS NOT NULL) \
          OR EXISTS (SELECT 1 FROM passkeys p WHERE p.user_id = users.id))",
    )
}

/// `LIKE`'s wildcards and its escape character, taken literally.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The user and its live sessions.
pub fn find_user(
    conn: &mut PgConnection,
    id: Uuid,
) -> DbResult<Option<(ListedUser, Vec<Session>)>> {
    let Some((user, has_second_factor)) = users::table
        .find(id)
        .select((User::as_select(), has_second_factor()))
        .first::<(User, bool)>(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let sessions = super::sessions::list_live(conn, id)?;
    Ok(Some((
        ListedUser {
            user,
            has_second_factor,
        },
        sessions,
    )))
}

/// Disables the user and revokes every live session (`user_disabled`);
/// `Done` with how many sessions were revoked.
pub fn disable(
    conn: &mut PgConnection,
    actor: Actor,
    id: Uuid,
    client: &ClientInfo,
) -> DbResult<Outcome<usize>> {
    transaction(conn, |conn| {
        lock_admins(conn)?;
        let Some(user) = lock_user(conn, id)? else {
            return Ok(Outcome::NotFound);
        };
        if actor.is_some() && is_enabled_admin(&user) && !another_enabled_admin(conn, id)? {
            return Ok(Outcome::LastAdmin);
        }
        if user.disabled_at.is_none() {
            diesel::update(users::table.find(id))
                .set((
                    users::disabled_at.eq(Utc::now()),
                    users::updated_at.eq(Utc::now()),
                ))
                .execute(conn)?;
        }
        let revoked =
            super::sessions::revoke_all_except(conn, id, None, RevocationReason::UserDisabled)?;
        record(conn, EventType::UserDisabled, id, actor, client)?;
        Ok(Outcome::Done(revoked))
    })
}

/// Removes every second factor of the user (TOTP, recovery codes, pending
/// second steps) and revokes every session: for a user who lost them all.
/// The owner is told by mail.
pub fn reset_mfa(
    conn: &mut PgConnection,
    actor: Actor,
    id: Uuid,
    client: &ClientInfo,
) -> DbResult<Outcome<usize>> {
    transaction(conn, |conn| {
        let Some(user) = lock_user(conn, id)? else {
            return Ok(Outcome::NotFound);
        };
        super::factors::delete_totp(conn, id)?;
        super::factors::delete_recovery_codes(conn, id)?;
        super::passkeys::delete_all(conn, id)?;
        super::mfa_tokens::delete_for_user(conn, id)?;
        let revoked =
            super::sessions::revoke_all_except(conn, id, None, RevocationReason::MfaReset)?;
        record(conn, EventType::MfaReset, id, actor, client)?;
        if let Ok(email) = crate::accounts::email::Email::parse(&user.email) {
            super::outbox::enqueue_notice(conn, Notice::FactorRemoved, &email, id, client)?;
        }
        Ok(Outcome::Done(revoked))
    })
}

/// Enables the user again (its sessions stay revoked: it logs in anew).
pub fn enable(
    conn: &mut PgConnection,
    actor: Actor,
    id: Uuid,
    client: &ClientInfo,
) -> DbResult<Outcome<()>> {
    transaction(conn, |conn| {
        let updated = diesel::update(users::table.find(id))
            .set((
                users::disabled_at.eq(None::<DateTime<Utc>>),
                users::updated_at.eq(Utc::now()),
            ))
            .execute(conn)?;
        if updated == 0 {
            return Ok(Outcome::NotFound);
        }
        record(conn, EventType::UserEnabled, id, actor, client)?;
        Ok(Outcome::Done(()))
    })
}

/// A change of a user's roles: all of them (the API), or one (the CLI).
#[derive(Debug, Clone)]
pub enum RolesChange {
    Set(Vec<String>),
    Grant(String),
    Revoke(String),
}

impl RolesChange {
    fn may_remove_admin(&self) -> bool {
        match self {
            Self::Set(roles) => !roles.iter().any(|r| r == "admin"),
            Self::Grant(_) => false,
            Self::Revoke(role) => role == "admin",
        }
    }

    fn apply(&self, current: &[String]) -> Vec<String> {
        match self {
            Self::Set(roles) => roles.clone(),
            Self::Grant(role) => {
                let mut roles = current.to_vec();
                if !roles.contains(role) {
                    roles.push(role.clone());
                }
                roles
            }
            Self::Revoke(role) => current.iter().filter(|r| *r != role).cloned().collect(),
        }
    }
}

/// Changes the user's roles (already checked). A change (but a grant
/// alone) bumps the roles version and puts it in the feed, so every API
/// refuses the user's tokens issued before; the same roles again change
/// nothing (and record nothing).
pub fn change_roles(
    conn: &mut PgConnection,
    actor: Actor,
    id: Uuid,
    change: &RolesChange,
    client: &ClientInfo,
) -> DbResult<Outcome<User>> {
    transaction(conn, |conn| {
        let removes_admin = change.may_remove_admin();
        if removes_admin {
            lock_admins(conn)?;
        }
        let Some(user) = lock_user(conn, id)? else {
            return Ok(Outcome::NotFound);
        };
        let roles = change.apply(&user.roles);
        let mut before = user.roles.clone();
        before.sort();
        let mut after = roles.clone();
        after.sort();
        if before == after {
            return Ok(Outcome::Done(user));
        }
        if removes_admin
            && actor.is_some()
            && is_enabled_admin(&user)
            && !another_enabled_admin(conn, id)?
        {
            return Ok(Outcome::LastAdmin);
        }
        // A grant alone (the CLI's) takes nothing away: tokens issued before
        // carry fewer roles, never more, so they stay good until they expire
        // and the next refresh carries the grant. Any other change refuses
        // them.
        let bump = i64::from(!matches!(change, RolesChange::Grant(_)));
        let user = diesel::update(users::table.find(id))
            .set((
                users::roles.eq(&roles),
                users::roles_version.eq(users::roles_version + bump),
                users::updated_at.eq(Utc::now()),
            ))
            .returning(User::as_returning())
            .get_result(conn)?;
        if bump == 0 {
            record(conn, EventType::RolesChanged, id, actor, client)?;
            return Ok(Outcome::Done(user));
        }
        diesel::sql_query(
            "INSERT INTO feed_events (id, user_id, roles_version) VALUES (gen_random_uuid(), $1, $2)",
        )
        .bind::<SqlUuid, _>(id)
        .bind::<BigInt, _>(user.roles_version)
        .execute(conn)?;
        record(conn, EventType::RolesChanged, id, actor, client)?;
        Ok(Outcome::Done(user))
    })
}

/// Deletes the user, its sessions and tokens. Its sessions (those whose
/// tokens may still be valid: live, or revoked after `since`) stay in the
/// feed as `feed_events`, with an entry that refuses every token of the
/// user; its audit events stay. `Done` with how many sessions were live.
pub fn delete(
    conn: &mut PgConnection,
    actor: Actor,
    id: Uuid,
    client: &ClientInfo,
    since: DateTime<Utc>,
) -> DbResult<Outcome<usize>> {
    transaction(conn, |conn| {
        lock_admins(conn)?;
        let Some(user) = lock_user(conn, id)? else {
            return Ok(Outcome::NotFound);
        };
        if actor.is_some() && is_enabled_admin(&user) && !another_enabled_admin(conn, id)? {
            return Ok(Outcome::LastAdmin);
        }
        let entries = diesel::sql_query(
            "INSERT INTO feed_events (id, user_id, session_id, roles_version) \
             SELECT gen_random_uuid(), $1, id, NULL FROM sessions \
             WHERE user_id = $1 AND (revoked_at IS NULL OR revoked_at > $2) \
             UNION ALL SELECT gen_random_uuid(), $1, NULL, 9223372036854775807",
        )
        .bind::<SqlUuid, _>(id)
        .bind::<Timestamptz, _>(since)
        .execute(conn)?;
        diesel::delete(users::table.find(id)).execute(conn)?;
        record(conn, EventType::UserDeleted, id, actor, client)?;
        Ok(Outcome::Done(entries.saturating_sub(1)))
    })
}

/// The id of the user with this e-mail, for the CLI.
pub fn id_by_email(conn: &mut PgConnection, email: &Email) -> DbResult<Option<Uuid>> {
    Ok(users::table
        .filter(users::email.eq(email.as_str()))
        .select(users::id)
        .first(conn)
        .optional()?)
}

fn transaction<T>(
    conn: &mut PgConnection,
    body: impl FnOnce(&mut PgConnection) -> QueryResult<T>,
) -> DbResult<T> {
    conn.transaction(body)
        .map_err(|e: DieselError| DbError::from(e))
}

fn lock_admins(conn: &mut PgConnection) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
        .bind::<BigInt, _>(ADMINS_LOCK)
        .execute(conn)
        .map(|_| ())
}

fn lock_user(conn: &mut PgConnection, id: Uuid) -> QueryResult<Option<User>> {
    users::table
        .find(id)
        .select(User::as_select())
        .for_update()
        .first(conn)
        .optional()
}

fn is_enabled_admin(user: &User) -> bool {
    user.disabled_at.is_none() && user.roles.iter().any(|r| r == "admin")
}

fn another_enabled_admin(conn: &mut PgConnection, id: Uuid) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        users::table
            .filter(users::id.ne(id))
            .filter(users::disabled_at.is_null())
            .filter(sql::<Bool>("'admin' = ANY (roles)")),
    ))
    .get_result(conn)
}

/// Adds or removes a role, as the CLI does (no acting user; see
/// [`change_roles`]); `None` when no user has this email, or
/// (the CLI is not held to `last_admin`).
pub fn set_role(
    conn: &mut PgConnection,
    email: &Email,
    role: &str,
    granted: bool,
) -> DbResult<Option<User>> {
    let Some(id) = id_by_email(conn, email)? else {
        return Ok(None);
    };
    let change = if granted {
        RolesChange::Grant(role.to_owned())
    } else {
        RolesChange::Revoke(role.to_owned())
    };
    Ok(
        match change_roles(conn, None, id, &change, &ClientInfo::default())? {
            Outcome::Done(user) => Some(user),
            Outcome::NotFound | Outcome::LastAdmin => None,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_are_literal() {
        assert_eq!(escape_like("a_b%c\\d"), "a\\_b\\%c\\\\d");
        assert_eq!(escape_like("plain@example.com"), "plain@example.com");
    }
}
