//! Contract § Internal listener: the auth server's revocation feed and `/metrics`.
//!
//! The internal listener: the revocation feed (its token, its paging, its
//! long poll) and `/metrics`, which the public listener does not serve.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::*;

const DEV_TOKEN: &str = auth_server::config::DEVELOPMENT_INTERNAL_TOKEN;
/// One page of the feed.
const PAGE: usize = auth_server::db::revocations::PAGE;

impl TestApp {
    async fn feed(&self, query: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.internal_url(&format!("/internal/revocations{query}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// One answer of the feed, from `cursor` (the start without one).
    async fn feed_page(&self, cursor: Option<&str>) -> Value {
        let query = cursor.map_or(String::new(), |c| format!("?cursor={c}"));
        let response = self.feed(&query, DEV_TOKEN).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// `count` sessions of a new user revoked by one transaction, as a
    /// logout-all of them would; returns their ids.
    fn revoke_in_one_transaction(&self, count: usize) -> HashSet<String> {
        let user = Uuid::new_v4();
        self.execute(&format!(
            "INSERT INTO users (id, email, password_hash) VALUES ('{user}', '{user}@example.com', 'x')"
        ));
        self.execute(&format!(
            "INSERT INTO sessions (id, user_id, expires_at) \
             SELECT gen_random_uuid(), '{user}', now() + interval '1 day' FROM generate_series(1, {count})"
        ));
        self.execute(&format!(
            "UPDATE sessions SET revoked_at = now(), revoked_reason = 'logout_all', \
             revoked_xid = pg_current_xact_id()::text::bigint WHERE user_id = '{user}'"
        ));
        session_ids(self, &format!("user_id = '{user}'"))
    }
}

fn session_ids(app: &TestApp, condition: &str) -> HashSet<String> {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: Uuid,
    }
    diesel::sql_query(format!("SELECT id FROM sessions WHERE {condition}"))
        .load::<Id>(&mut app.conn())
        .unwrap()
        .into_iter()
        .map(|row| row.id.to_string())
        .collect()
}

fn entries(page: &Value) -> Vec<String> {
    page["revocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["session_id"].as_str().unwrap().to_owned())
        .collect()
}

fn cursor(page: &Value) -> String {
    page["cursor"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_revocation_feed_needs_the_internal_token() {
    let app = spawn_app().await;
    let missing = app
        .client
        .get(app.internal_url("/internal/revocations"))
        .send()
        .await
        .unwrap();
    assert_error(missing, StatusCode::UNAUTHORIZED, "invalid_token").await;
    for wrong in [
        "",
        "development-internal-token-not-for-productioN",
        &format!("{DEV_TOKEN}x"),
    ] {
        assert_error(
            app.feed("", wrong).await,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        )
        .await;
    }
    assert_eq!(app.feed("", DEV_TOKEN).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn malformed_cursors_are_400() {
    let app = spawn_app().await;
    let good = cursor(&app.feed_page(None).await);
    for bad in [
        "abc".to_owned(),
        // The numeric cursor of earlier versions.
        "42".to_owned(),
        "c.1".to_owned(),
        "c.-1.2".to_owned(),
        "p.1.1.1.1.nothex.1".to_owned(),
        format!("{good}.1"),
        format!("{good}{}", "0".repeat(300)),
    ] {
        let description = assert_error(
            app.feed(&format!("?cursor={bad}"), DEV_TOKEN).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
        assert!(description.contains("cursor"), "{description}");
    }
    for bad_query in ["?seen=many", "?wait=-1"] {
        assert_error(
            app.feed(bad_query, DEV_TOKEN).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
    }
}

#[tokio::test]
async fn the_public_listener_does_not_serve_the_feed_or_metrics() {
    let app = spawn_app().await;
    for path in [
        "/metrics",
        "/internal/revocations",
        "/internal/revocations?cursor=x",
    ] {
        let public = app
            .client
            .get(app.url(path))
            .bearer_auth(DEV_TOKEN)
            .send()
            .await
            .unwrap();
        assert_error(public, StatusCode::NOT_FOUND, "not_found").await;
    }
    assert!(app.metrics().await.contains("db_pool_max_connections"));
    assert_eq!(app.feed("", DEV_TOKEN).await.status(), StatusCode::OK);
    // And the internal listener serves nothing else.
    for path in ["/auth/login", "/.well-known/jwks.json", "/healthz"] {
        let internal = app.client.get(app.internal_url(path)).send().await.unwrap();
        assert_eq!(internal.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn the_feed_lists_revocations_once_past_its_cursor() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let login = app.login_body(&email).await;
    let sid = app.validate(&login.access_token()).await.sid;

    let empty = app.feed_page(None).await;
    assert_eq!(empty["revocations"], serde_json::json!([]));
    assert_eq!(empty["more"], false);
    assert_eq!(empty["kids"].as_array().unwrap().len(), 1);

    app.logout_body(&login.refresh_token().unwrap()).await;
    let feed = app.feed_page(Some(&cursor(&empty))).await;
    let revocations = feed["revocations"].as_array().unwrap();
    assert_eq!(revocations.len(), 1);
    assert_eq!(revocations[0]["session_id"], sid.to_string());
    assert_eq!(feed["more"], false);
    let revoked_at =
        chrono::DateTime::parse_from_rfc3339(revocations[0]["revoked_at"].as_str().unwrap())
            .unwrap();
    let forget_after =
        chrono::DateTime::parse_from_rfc3339(revocations[0]["forget_after"].as_str().unwrap())
            .unwrap();
    assert!(
        forget_after - revoked_at >= chrono::Duration::minutes(15),
        "kept past the last access token's expiry"
    );

    // Past the new cursor, nothing new: at most the same one again, while
    // a transaction elsewhere on the server holds xmin back.
    let later = app.feed_page(Some(&cursor(&feed))).await;
    assert!(
        entries(&later).iter().all(|s| *s == sid.to_string()),
        "{later}"
    );
}

#[tokio::test]
async fn a_long_poll_answers_as_soon_as_a_session_is_revoked() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let login = app.login_body(&email).await;
    let first = app.feed_page(None).await;
    let (cursor, held) = (cursor(&first), first["held"].as_i64().unwrap());

    let started = Instant::now();
    let quiet: Value = app
        .feed(&format!("?cursor={cursor}&seen={held}&wait=1"), DEV_TOKEN)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "held while nothing happens"
    );
    assert_eq!(quiet["revocations"].as_array().unwrap().len(), 0);

    let query = format!("?cursor={cursor}&seen={held}&wait=20");
    let poll = app.feed(&query, DEV_TOKEN);
    let logout = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.logout_body(&login.refresh_token().unwrap()).await
    };
    let started = Instant::now();
    let (poll, _) = tokio::join!(poll, logout);
    let answered = started.elapsed();
    let body: Value = poll.json().await.unwrap();
    assert_eq!(body["revocations"].as_array().unwrap().len(), 1);
    assert!(
        answered < Duration::from_secs(5),
        "answered at the revocation, not at the end of the wait: {answered:?}"
    );
}

/// More revocations in one transaction than a page holds: the old cursor
/// (the transaction id alone) returned the same first page for ever.
#[tokio::test]
async fn a_transaction_revoking_more_than_a_page_is_paged_in_full() {
    let app = spawn_app().await;
    let start = app.feed_page(None).await;
    let bulk = app.revoke_in_one_transaction(PAGE + 1);

    let started = Instant::now();
    let first = app.feed_page(Some(&cursor(&start))).await;
    assert_eq!(first["more"], true, "a full page says there is more");
    assert_eq!(entries(&first).len(), PAGE);
    let second = app.feed_page(Some(&cursor(&first))).await;
    let pass = started.elapsed();
    assert_eq!(second["more"], false, "caught up");
    let mut seen: Vec<String> = entries(&first);
    seen.extend(entries(&second));
    let delivered: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(delivered.len(), seen.len(), "no entry twice in one pass");
    assert!(bulk.is_subset(&delivered), "every revocation delivered");
    eprintln!(
        "a pass over {} revocations of one transaction: {} answers in {pass:?}",
        bulk.len(),
        2
    );

    // And what comes after is delivered on the next read.
    let email = app.registered_user().await;
    let login = app.login_body(&email).await;
    let sid = app.validate(&login.access_token()).await.sid;
    app.logout_body(&login.refresh_token().unwrap()).await;
    let next = app.feed_page(Some(&cursor(&second))).await;
    assert!(entries(&next).contains(&sid.to_string()), "{next}");
}

/// A revocation that commits behind the resume key while a pass is under
/// way (its transaction started before the pass): the pass cannot say it
/// has caught up, and starts again from below it.
#[tokio::test]
async fn a_revocation_committed_behind_the_resume_key_restarts_the_pass() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let late = app.login_body(&email).await;
    let late_sid = app.validate(&late.access_token()).await.sid.to_string();
    let start = app.feed_page(None).await;

    // A transaction with an older id than the bulk one, still open.
    let mut older = app.conn();
    older
        .batch_execute("BEGIN; SELECT pg_current_xact_id();")
        .unwrap();
    let bulk = app.revoke_in_one_transaction(PAGE + 1);
    let first = app.feed_page(Some(&cursor(&start))).await;
    assert_eq!(first["more"], true);

    // It now revokes a session and commits: behind the first page's end.
    older
        .batch_execute(&format!(
            "UPDATE sessions SET revoked_at = now(), revoked_reason = 'logout', \
             revoked_xid = pg_current_xact_id()::text::bigint WHERE id = '{late_sid}'; COMMIT;"
        ))
        .unwrap();
    let second = app.feed_page(Some(&cursor(&first))).await;
    assert!(
        entries(&second).len() < PAGE && second["more"] == true,
        "a last page that cannot vouch for the pass: {} entries, more={}",
        entries(&second).len(),
        second["more"]
    );

    // The new pass delivers it, and ends.
    let mut delivered: HashSet<String> = entries(&first).into_iter().collect();
    delivered.extend(entries(&second));
    let mut page = second;
    let mut answers = 0;
    while page["more"] == true {
        answers += 1;
        assert!(answers <= 5, "the pass ends");
        page = app.feed_page(Some(&cursor(&page))).await;
        delivered.extend(entries(&page));
    }
    assert!(delivered.contains(&late_sid), "the late revocation arrives");
    assert!(bulk.is_subset(&delivered));
}

/// With a transaction holding xmin back further than the feed's time
/// window, a long poll still waits: what it counts and what the reader was
/// told it holds are the same measure.
#[tokio::test]
async fn a_long_poll_waits_while_an_old_transaction_holds_xmin_back() {
    let app = spawn_app().await;
    let mut held_open = app.conn();
    held_open
        .batch_execute("BEGIN; SELECT pg_current_xact_id();")
        .unwrap();
    // A revocation above the pinned xmin, but older than the window.
    let email = app.registered_user().await;
    let login = app.login_body(&email).await;
    let sid = app.validate(&login.access_token()).await.sid;
    app.logout_body(&login.refresh_token().unwrap()).await;
    app.execute(&format!(
        "UPDATE sessions SET revoked_at = now() - interval '2 hours' WHERE id = '{sid}'"
    ));

    let caught_up = app.feed_page(None).await;
    assert_eq!(caught_up["more"], false);
    let query = format!(
        "?cursor={}&seen={}&wait=1",
        cursor(&caught_up),
        caught_up["held"]
    );
    let started = Instant::now();
    let poll = app.feed(&query, DEV_TOKEN).await;
    assert_eq!(poll.status(), StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "held, not answered at once: {:?}",
        started.elapsed()
    );
    held_open.batch_execute("ROLLBACK").unwrap();
}

/// A transaction held open since before a bulk revocation: once a reader
/// has caught up, the next read sends what is new, not the bulk again (the
/// cursor names the open transaction instead of stopping at it).
#[tokio::test]
async fn an_open_transaction_does_not_make_readers_read_everything_again() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let login = app.login_body(&email).await;
    let sid = app.validate(&login.access_token()).await.sid.to_string();
    let mut held_open = app.conn();
    held_open
        .batch_execute("BEGIN; SELECT pg_current_xact_id();")
        .unwrap();
    let bulk = app.revoke_in_one_transaction(PAGE + 1);

    let mut page = app.feed_page(None).await;
    let mut delivered: HashSet<String> = entries(&page).into_iter().collect();
    while page["more"] == true {
        page = app.feed_page(Some(&cursor(&page))).await;
        delivered.extend(entries(&page));
    }
    assert!(bulk.is_subset(&delivered));

    app.logout_body(&login.refresh_token().unwrap()).await;
    let started = Instant::now();
    let next = app.feed_page(Some(&cursor(&page))).await;
    eprintln!(
        "with xmin pinned below {} revocations, the next read took {:?} and sent {} entries",
        bulk.len(),
        started.elapsed(),
        entries(&next).len()
    );
    assert_eq!(entries(&next), [sid], "only what is new");
    assert_eq!(next["more"], false);
    held_open.batch_execute("ROLLBACK").unwrap();
}
