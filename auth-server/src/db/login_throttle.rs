//! The failed-login throttle's statements (the rules are
//! [`crate::limits::login_throttle`]). Each hit is one statement, atomic on its own,
//! so concurrent logins on any number of replicas count every failure
//! exactly once. Times are the database's `now()`: one clock for every
//! replica.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Bytea, Double, Integer, Nullable, Text, Timestamptz};

use super::DbResult;
use crate::limits::login_throttle::{Bucket, Previous, REMEMBERED_STRANGERS, Standing, Strangers};

/// One client's failures for one account.
const CLIENT_SCOPE: &str = "login_client";
/// The failures of an account's strangers.
const STRANGERS_SCOPE: &str = "login_strangers";

/// Counts stop here rather than overflow; the rules saturate long before.
const MAX_FAILURES: i32 = 1_000_000;

/// Whom an attempt is about: the account (an HMAC of the normalised
/// e-mail, whether or not a user has it) and the client (an IPv4 address or
/// an IPv6 /64).
#[derive(Debug, Clone)]
pub struct Subject {
    pub account: [u8; 32],
    pub client: String,
}

impl Subject {
    fn account_hex(&self) -> String {
        self.account.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn client_bucket(&self) -> String {
        format!("{} {}", self.account_hex(), self.client)
    }

    fn strangers_bucket(&self) -> String {
        self.account_hex()
    }
}

#[derive(QueryableByName)]
struct StandingRow {
    #[diesel(sql_type = Timestamptz)]
    now: DateTime<Utc>,
    #[diesel(sql_type = Bool)]
    known: bool,
    #[diesel(sql_type = Nullable<Integer>)]
    client_failures: Option<i32>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    client_last: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Integer>)]
    strangers_failures: Option<i32>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    strangers_last: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Array<Text>>)]
    recent_clients: Option<Vec<String>>,
    #[diesel(sql_type = Nullable<Array<Timestamptz>>)]
    recent_failures: Option<Vec<DateTime<Utc>>>,
}

fn bucket(failures: Option<i32>, last: Option<DateTime<Utc>>) -> Option<Bucket> {
    Some(Bucket {
        failures: u32::try_from(failures?).ok()?,
        last_failure_at: last?,
    })
}

/// The strangers' bucket and its recent clients, told apart from the
/// attempt's own client.
fn strangers(
    bucket: Option<Bucket>,
    clients: Option<Vec<String>>,
    failures: Option<Vec<DateTime<Utc>>>,
    subject: &Subject,
) -> Option<Strangers> {
    let mut strangers = Strangers {
        bucket: bucket?,
        this_client: None,
        others: Vec::new(),
    };
    let recent = clients.unwrap_or_default().into_iter();
    for (client, at) in recent.zip(failures.unwrap_or_default()) {
        if client == subject.client {
            strangers.this_client = Some(at);
        } else {
            strangers.others.push(at);
        }
    }
    Some(strangers)
}

/// The attempt's buckets, and whether its client is known to the account.
pub fn standing(
    conn: &mut PgConnection,
    subject: &Subject,
    known_for: Duration,
) -> DbResult<Standing> {
    let row: StandingRow = diesel::sql_query(
        "SELECT now() AS now, \
           EXISTS (SELECT 1 FROM known_login_clients \
                   WHERE account_key = $1 AND client_key = $2 \
                   AND last_success_at > now() - make_interval(secs => $3)) AS known, \
           c.failures AS client_failures, c.last_failure_at AS client_last, \
           s.failures AS strangers_failures, s.last_failure_at AS strangers_last, \
           s.recent_clients, s.recent_failures \
         FROM (SELECT 1) AS one \
         LEFT JOIN failure_buckets c ON c.scope = $4 AND c.key = $5 \
         LEFT JOIN failure_buckets s ON s.scope = $6 AND s.key = $7",
    )
    .bind::<Bytea, _>(&subject.account[..])
    .bind::<Text, _>(&subject.client)
    .bind::<Double, _>(known_for.as_secs_f64())
    .bind::<Text, _>(CLIENT_SCOPE)
    .bind::<Text, _>(subject.client_bucket())
    .bind::<Text, _>(STRANGERS_SCOPE)
    .bind::<Text, _>(subject.strangers_bucket())
    .get_result(conn)?;
    Ok(Standing {
        now: row.now,
        known: row.known,
        client: bucket(row.client_failures, row.client_last),
        strangers: strangers(
            bucket(row.strangers_failures, row.strangers_last),
            row.recent_clients,
            row.recent_failures,
            subject,
        ),
    })
}

#[derive(QueryableByName)]
struct HitRow {
    #[diesel(sql_type = Text)]
    scope: String,
    #[diesel(sql_type = Integer)]
    failures: i32,
    #[diesel(sql_type = Timestamptz)]
    last_failure_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    previous_failure_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Array<Text>>)]
    recent_clients: Option<Vec<String>>,
    #[diesel(sql_type = Nullable<Array<Timestamptz>>)]
    recent_failures: Option<Vec<DateTime<Utc>>>,
}

/// How long each bucket keeps its count without a failure.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub client: Duration,
    pub strangers: Duration,
}

/// Counts a failed login: the client's bucket and, for a client the
/// account does not know, the strangers' bucket (which notes the client
/// among its [`REMEMBERED_STRANGERS`] most recent), in one statement. A
/// bucket whose [`Memory`] passed since its last failure starts over.
/// Returns the buckets as they now are, and when each one's failure before
/// this was.
pub fn record_failure(
    conn: &mut PgConnection,
    subject: &Subject,
    known: bool,
    memory: Memory,
) -> DbResult<(Standing, Previous)> {
    let forgotten = "b.last_failure_at <= now() - make_interval(secs => \
                     CASE WHEN b.scope = $1 THEN $6 ELSE $7 END)";
    // The strangers' recent clients: this one now, then the others newest
    // first (ties in a fixed order, so both arrays stay in step).
    let recent = format!(
        "(SELECT array_agg(c ORDER BY t DESC, c), array_agg(t ORDER BY t DESC, c) \
          FROM (SELECT c, t FROM unnest(b.recent_clients, b.recent_failures) AS r (c, t) \
                WHERE c <> $8 \
                UNION ALL SELECT $8, now() \
                ORDER BY t DESC, c LIMIT {REMEMBERED_STRANGERS}) AS kept \
          WHERE b.scope = $3)"
    );
    let sql = format!(
        "INSERT INTO failure_buckets AS b \
           (scope, key, failures, window_start, last_failure_at, previous_failure_at, \
            recent_clients, recent_failures) \
         SELECT scope, key, 1, now(), now(), NULL, \
           CASE WHEN scope = $3 THEN ARRAY[$8] END, CASE WHEN scope = $3 THEN ARRAY[now()] END \
         FROM (VALUES ($1, $2), ($3, $4)) AS hit (scope, key) \
         WHERE hit.scope = $1 OR NOT $5 \
         ON CONFLICT (scope, key) DO UPDATE SET \
           failures = CASE WHEN {forgotten} THEN 1 \
                           ELSE LEAST(b.failures + 1, {MAX_FAILURES}) END, \
           window_start = CASE WHEN {forgotten} THEN now() ELSE b.window_start END, \
           previous_failure_at = b.last_failure_at, \
           last_failure_at = now(), \
           (recent_clients, recent_failures) = {recent} \
         RETURNING scope, failures, last_failure_at, previous_failure_at, \
           recent_clients, recent_failures"
    );
    let hits: Vec<HitRow> = diesel::sql_query(sql)
        .bind::<Text, _>(CLIENT_SCOPE)
        .bind::<Text, _>(subject.client_bucket())
        .bind::<Text, _>(STRANGERS_SCOPE)
        .bind::<Text, _>(subject.strangers_bucket())
        .bind::<Bool, _>(known)
        .bind::<Double, _>(memory.client.as_secs_f64())
        .bind::<Double, _>(memory.strangers.as_secs_f64())
        .bind::<Text, _>(&subject.client)
        .load(conn)?;
    let mut standing = Standing {
        // Every row was written at the statement's `now()`.
        now: hits.first().map_or_else(Utc::now, |h| h.last_failure_at),
        known,
        client: None,
        strangers: None,
    };
    let mut previous = Previous::default();
    for hit in hits {
        let counted = bucket(Some(hit.failures), Some(hit.last_failure_at));
        if hit.scope == CLIENT_SCOPE {
            standing.client = counted;
            previous.client = hit.previous_failure_at;
        } else {
            standing.strangers =
                strangers(counted, hit.recent_clients, hit.recent_failures, subject);
            previous.strangers = hit.previous_failure_at;
        }
    }
    Ok((standing, previous))
}

/// A successful login: the client becomes (or stays) known to the account,
/// and its failures are forgotten, in one statement. The strangers' bucket
/// is left alone: the owner logging in says nothing about the others.
pub fn record_success(conn: &mut PgConnection, subject: &Subject) -> DbResult<()> {
    diesel::sql_query(
        "WITH known AS ( \
           INSERT INTO known_login_clients (account_key, client_key, last_success_at) \
           VALUES ($1, $2, now()) \
           ON CONFLICT (account_key, client_key) DO UPDATE SET last_success_at = now()) \
         DELETE FROM failure_buckets WHERE scope = $3 AND key = $4",
    )
    .bind::<Bytea, _>(&subject.account[..])
    .bind::<Text, _>(&subject.client)
    .bind::<Text, _>(CLIENT_SCOPE)
    .bind::<Text, _>(subject.client_bucket())
    .execute(conn)?;
    Ok(())
}

/// A password reset completed from the subject's client: the mailbox is
/// the owner's, so the account's strangers' failures are forgotten, and the
/// client becomes (or stays) known with its own failures forgotten, in one
/// statement (inside the reset's transaction).
pub fn reset_completed(conn: &mut PgConnection, subject: &Subject) -> QueryResult<()> {
    diesel::sql_query(
        "WITH known AS ( \
           INSERT INTO known_login_clients (account_key, client_key, last_success_at) \
           VALUES ($1, $2, now()) \
           ON CONFLICT (account_key, client_key) DO UPDATE SET last_success_at = now()) \
         DELETE FROM failure_buckets \
         WHERE (scope = $3 AND key = $4) OR (scope = $5 AND key = $6)",
    )
    .bind::<Bytea, _>(&subject.account[..])
    .bind::<Text, _>(&subject.client)
    .bind::<Text, _>(CLIENT_SCOPE)
    .bind::<Text, _>(subject.client_bucket())
    .bind::<Text, _>(STRANGERS_SCOPE)
    .bind::<Text, _>(subject.strangers_bucket())
    .execute(conn)?;
    Ok(())
}
