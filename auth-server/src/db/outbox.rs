//! The mail queue (`mail_outbox`): what requests leave for the mail worker,
//! and how workers (on any number of replicas) take, finish and retry it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::DbResult;
use super::models::ClientInfo;
use super::schema::mail_outbox;
use crate::accounts::email::Email;
use crate::mail::notice::Notice;
use crate::tokens::email::Purpose;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = mail_outbox, check_for_backend(diesel::pg::Pg))]
pub struct OutboxRow {
    pub id: Uuid,
    pub kind: String,
    pub recipient: String,
    pub user_id: Option<Uuid>,
    pub token_id: Option<Uuid>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub attempts: i32,
}

impl OutboxRow {
    /// Who asked for this mail, for the audit event of its token.
    pub fn requester(&self) -> ClientInfo {
        ClientInfo {
            user_agent: self.user_agent.clone(),
            ip: self.ip.clone(),
            request_id: self.request_id,
        }
    }
}

/// Queues a mail of `kind` to `recipient`; the worker mints its token.
pub fn enqueue(
    conn: &mut PgConnection,
    kind: Purpose,
    recipient: &Email,
    user_id: Option<Uuid>,
    client: &ClientInfo,
) -> QueryResult<Uuid> {
    insert(conn, kind.as_str(), recipient, user_id, client)
}

/// Queues a notice (no link, no token) to the user `user_id`.
pub fn enqueue_notice(
    conn: &mut PgConnection,
    notice: Notice,
    recipient: &Email,
    user_id: Uuid,
    client: &ClientInfo,
) -> QueryResult<Uuid> {
    insert(conn, notice.as_str(), recipient, Some(user_id), client)
}

fn insert(
    conn: &mut PgConnection,
    kind: &str,
    recipient: &Email,
    user_id: Option<Uuid>,
    client: &ClientInfo,
) -> QueryResult<Uuid> {
    let id = Uuid::new_v4();
    diesel::insert_into(mail_outbox::table)
        .values((
            mail_outbox::id.eq(id),
            mail_outbox::kind.eq(kind),
            mail_outbox::recipient.eq(recipient.as_str()),
            mail_outbox::user_id.eq(user_id),
            mail_outbox::ip.eq(client.ip.as_deref()),
            mail_outbox::user_agent.eq(client.user_agent.as_deref()),
            mail_outbox::request_id.eq(client.request_id),
        ))
        .execute(conn)?;
    Ok(id)
}

fn pending() -> diesel::dsl::And<
    diesel::dsl::IsNull<mail_outbox::sent_at>,
    diesel::dsl::IsNull<mail_outbox::dropped_at>,
> {
    mail_outbox::sent_at
        .is_null()
        .and(mail_outbox::dropped_at.is_null())
}

/// Takes up to `batch` due rows for this worker: each is leased (its
/// `due_at` moved `lease` ahead) and its attempt counted, in one short
/// transaction. `SKIP LOCKED` lets workers on other replicas take other
/// rows meanwhile; a worker that dies mid-send leaves its rows to be taken
/// again when the lease runs out, so a mail is sent at least once.
pub fn claim(conn: &mut PgConnection, batch: i64, lease: Duration) -> DbResult<Vec<OutboxRow>> {
    let lease = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(1));
    Ok(conn.transaction(|conn| {
        let now = Utc::now();
        let rows: Vec<OutboxRow> = mail_outbox::table
            .filter(pending())
            .filter(mail_outbox::due_at.le(now))
            .order(mail_outbox::due_at)
            .limit(batch)
            .select(OutboxRow::as_select())
            .for_update()
            .skip_locked()
            .load(conn)?;
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        diesel::update(mail_outbox::table.filter(mail_outbox::id.eq_any(&ids)))
            .set((
                mail_outbox::due_at.eq(now + lease),
                mail_outbox::attempts.eq(mail_outbox::attempts + 1),
            ))
            .execute(conn)?;
        QueryResult::Ok(
            rows.into_iter()
                .map(|mut r| {
                    r.attempts += 1;
                    r
                })
                .collect(),
        )
    })?)
}

/// When the next pending row falls due, for the worker's sleep.
pub fn next_due(conn: &mut PgConnection) -> DbResult<Option<DateTime<Utc>>> {
    Ok(mail_outbox::table
        .filter(pending())
        .select(diesel::dsl::min(mail_outbox::due_at))
        .first(conn)?)
}

pub fn mark_sent(conn: &mut PgConnection, id: Uuid) -> DbResult<()> {
    diesel::update(mail_outbox::table.find(id))
        .set((
            mail_outbox::sent_at.eq(Utc::now()),
            mail_outbox::last_error.eq(None::<String>),
        ))
        .execute(conn)?;
    Ok(())
}

/// Another attempt at `due_at`, remembering why this one failed.
pub fn retry_at(
    conn: &mut PgConnection,
    id: Uuid,
    due_at: DateTime<Utc>,
    error: &str,
) -> DbResult<()> {
    diesel::update(mail_outbox::table.find(id))
        .set((
            mail_outbox::due_at.eq(due_at),
            mail_outbox::last_error.eq(truncate(error, 500)),
        ))
        .execute(conn)?;
    Ok(())
}

/// No more attempts: the token is no longer usable, a limit was reached, or
/// the mail could not be delivered in time.
pub fn drop_mail(conn: &mut PgConnection, id: Uuid, reason: &str) -> QueryResult<()> {
    diesel::update(mail_outbox::table.find(id))
        .set((
            mail_outbox::dropped_at.eq(Utc::now()),
            mail_outbox::dropped_reason.eq(truncate(reason, 100)),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Forgets a request for an address no account has: nothing is sent, and
/// nothing of the address is kept.
pub fn forget(conn: &mut PgConnection, id: Uuid) -> QueryResult<()> {
    diesel::delete(mail_outbox::table.find(id))
        .execute(conn)
        .map(|_| ())
}

/// Mail of `kind` to the address or the account within `window`, apart from
/// `except`: what the per-recipient and per-account limits count. Only mail
/// that got a token counts (a dropped request sent nothing).
pub fn recent_count(
    conn: &mut PgConnection,
    recipient: &str,
    user_id: Uuid,
    window: Duration,
    except: Uuid,
) -> QueryResult<i64> {
    let since =
        Utc::now() - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::hours(1));
    mail_outbox::table
        .filter(
            mail_outbox::recipient
                .eq(recipient)
                .or(mail_outbox::user_id.eq(user_id)),
        )
        .filter(mail_outbox::created_at.gt(since))
        .filter(mail_outbox::token_id.is_not_null())
        .filter(mail_outbox::id.ne(except))
        .count()
        .get_result(conn)
}

/// Records the minted token on the row.
pub fn attach_token(
    conn: &mut PgConnection,
    id: Uuid,
    user_id: Uuid,
    token_id: Uuid,
) -> QueryResult<()> {
    diesel::update(mail_outbox::table.find(id))
        .set((
            mail_outbox::user_id.eq(user_id),
            mail_outbox::token_id.eq(token_id),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Drops reset requests queued for the address but not minted yet: a
/// password change or a completed reset (`reason`) must kill those links
/// too, not only minted ones (a minted one's mail is dropped by the worker
/// when it finds its token killed).
pub fn drop_unminted_resets(
    conn: &mut PgConnection,
    recipient: &str,
    reason: &'static str,
) -> QueryResult<usize> {
    diesel::update(mail_outbox::table)
        .filter(pending())
        .filter(mail_outbox::kind.eq(Purpose::PasswordReset.as_str()))
        .filter(mail_outbox::recipient.eq(recipient))
        .filter(mail_outbox::token_id.is_null())
        .set((
            mail_outbox::dropped_at.eq(Utc::now()),
            mail_outbox::dropped_reason.eq(reason),
        ))
        .execute(conn)
}

/// Locks the row for minting its token; `None` when it is no longer
/// pending or already has one (another worker got there first).
pub fn lock_for_minting(conn: &mut PgConnection, id: Uuid) -> QueryResult<Option<OutboxRow>> {
    mail_outbox::table
        .find(id)
        .filter(pending())
        .filter(mail_outbox::token_id.is_null())
        .select(OutboxRow::as_select())
        .for_update()
        .first(conn)
        .optional()
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}
