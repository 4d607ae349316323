//! Feature: replicas on one database (limits, revocations and keys shared).
//!
//! Several replicas on one database: what one replica counts or revokes,
//! the others see.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

const CLIENT: &str = "198.51.100.77";

async fn post_from(app: &TestApp, path: &str, body: serde_json::Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("X-Forwarded-For", CLIENT)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn login_and_mail_limits_hold_across_two_replicas() {
    let a = spawn_app_with(&[
        ("LOGIN_RATE_LIMIT", "4/1m"),
        ("MAIL_REQUEST_RATE_LIMIT", "3/10m"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let b = a.replica_with(&[]).await;
    let email = unique_email();
    let credentials = json!({ "email": email, "password": PASSWORD });

    // Four requests of one client, spread over both replicas: the budget.
    let register = post_from(&a, "/auth/register", credentials.clone()).await;
    assert_eq!(register.status(), StatusCode::CREATED);
    for app in [&b, &a, &b] {
        let login = post_from(app, "/auth/login", credentials.clone()).await;
        assert_eq!(login.status(), StatusCode::OK);
    }
    // The fifth is refused wherever it lands, and says when to come back;
    // a refusal writes nothing (the row's version stays the same).
    let version = "SELECT xmin::text::bigint AS n FROM rate_buckets WHERE scope = 'login' AND key = '198.51.100.77'";
    let before = a.count(version);
    for app in [&a, &b] {
        let refused = post_from(app, "/auth/login", credentials.clone()).await;
        let retry_after: u64 = refused.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        // 4 a minute: one more every 15 s.
        assert!((1..=15).contains(&retry_after), "{retry_after}");
        assert_error(refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    }
    assert_eq!(a.count(version), before, "refusals leave the row alone");
    // Another client is not affected.
    let other = b.login_from(&email, PASSWORD, "198.51.100.78", None).await;
    assert_eq!(other.status(), StatusCode::OK);

    // The mail requests' budget is shared too.
    for app in [&a, &b, &a] {
        let forgot = post_from(app, "/auth/password/forgot", json!({ "email": email })).await;
        assert_eq!(forgot.status(), StatusCode::ACCEPTED);
    }
    let refused = post_from(&b, "/auth/password/forgot", json!({ "email": email })).await;
    assert_error(refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert_eq!(
        a.count("SELECT count(*) AS n FROM rate_buckets"),
        3,
        "one bucket per limit and client"
    );
}

#[tokio::test]
async fn concurrent_hits_on_two_replicas_are_each_counted_once() {
    let a = spawn_app_with(&[
        ("LOGIN_RATE_LIMIT", "10/1h"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let b = a.replica_with(&[]).await;
    let attempts = (0..30).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        async move {
            post_from(
                app,
                "/auth/login",
                json!({ "email": unique_email(), "password": PASSWORD }),
            )
            .await
            .status()
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    let counted = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((counted, refused), (10, 20), "{statuses:?}");
}

#[tokio::test]
async fn a_limit_the_database_cannot_count_refuses_rather_than_bypasses() {
    let app = spawn_app_with(&[
        ("LOGIN_RATE_LIMIT", "100/1m"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let email = app.registered_user().await;
    app.execute("ALTER TABLE rate_buckets RENAME TO rate_buckets_gone");
    let login = post_from(
        &app,
        "/auth/login",
        json!({ "email": email, "password": PASSWORD }),
    )
    .await;
    assert_error(login, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    app.execute("ALTER TABLE rate_buckets_gone RENAME TO rate_buckets");
    let login = post_from(
        &app,
        "/auth/login",
        json!({ "email": email, "password": PASSWORD }),
    )
    .await;
    assert_eq!(login.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_janitor_sweeps_spent_rate_buckets() {
    let app = spawn_app_with(&[
        ("LOGIN_RATE_LIMIT", "5/1m"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    app.registered_user().await;
    app.execute(
        "INSERT INTO rate_buckets (scope, key, tat) \
         VALUES ('login', '192.0.2.200', now() - interval '1 second')",
    );
    let swept = app.sweep().await;
    assert_eq!(swept.rate_buckets, 1);
    // The live bucket (the registration's, within its window) stays.
    assert_eq!(app.count("SELECT count(*) AS n FROM rate_buckets"), 1);
}

/// One answer of the revocation feed of `app`.
async fn feed(app: &TestApp, query: &str) -> serde_json::Value {
    let response = app
        .client
        .get(app.internal_url(&format!("/internal/revocations{query}")))
        .bearer_auth(auth_server::config::DEVELOPMENT_INTERNAL_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// Where a reader that has caught up with `app`'s feed stands.
async fn caught_up(app: &TestApp) -> String {
    let mut page = feed(app, "").await;
    while page["more"] == true {
        page = feed(
            app,
            &format!("?cursor={}", page["cursor"].as_str().unwrap()),
        )
        .await;
    }
    format!(
        "?cursor={}&seen={}",
        page["cursor"].as_str().unwrap(),
        page["held"]
    )
}

/// For each of `trials` logins of a user on `a`: a poll held on `b`, then
/// the logout on `a`; how long after the logout `b` answered (sorted).
async fn held_poll_answers(a: &TestApp, b: &TestApp, trials: usize) -> Vec<Duration> {
    let email = a.registered_user().await;
    let mut woken = Vec::new();
    for _ in 0..trials {
        let login = a.login_body(&email).await;
        let position = caught_up(b).await;
        let held = {
            let b_client = b.client.clone();
            let url = b.internal_url(&format!("/internal/revocations{position}&wait=10"));
            tokio::spawn(async move {
                let response = b_client
                    .get(url)
                    .bearer_auth(auth_server::config::DEVELOPMENT_INTERNAL_TOKEN)
                    .send()
                    .await
                    .unwrap();
                let answered = Instant::now();
                let body: serde_json::Value = response.json().await.unwrap();
                (answered, body)
            })
        };
        // Let the poll be held (and its first re-read pass) before the logout.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let logout_sent = Instant::now();
        let logout = a.logout_body(&login.refresh_token().unwrap()).await;
        assert_eq!(logout.status(), StatusCode::NO_CONTENT);
        let (answered, body) = held.await.unwrap();
        assert_eq!(body["revocations"].as_array().unwrap().len(), 1, "{body}");
        woken.push(answered.saturating_duration_since(logout_sent));
    }
    woken.sort();
    woken
}

fn millis(durations: &[Duration]) -> Vec<u128> {
    durations.iter().map(Duration::as_millis).collect()
}

/// Whether `app`'s `/metrics` says it is listening for other replicas.
async fn listening(app: &TestApp) -> bool {
    app.metrics().await.contains("auth_listen_connected 1")
}

#[tokio::test]
async fn a_logout_on_one_replica_wakes_a_poll_held_on_another_at_once() {
    let a = spawn_app().await;
    let b = a.replica_with(&[]).await;
    let woken = held_poll_answers(&a, &b, 8).await;
    assert!(listening(&b).await);
    let millis = millis(&woken);
    eprintln!("logout on A → poll held on B answered after (ms, sorted): {millis:?}");
    // The fallback re-read alone (every 250 ms) would give a median near 125 ms.
    assert!(
        woken[woken.len() / 2] < Duration::from_millis(60),
        "median {millis:?}"
    );
    assert!(
        woken[woken.len() - 1] < Duration::from_millis(250),
        "{millis:?}"
    );
}

#[tokio::test]
async fn without_notifications_the_fallback_re_read_still_answers_held_polls() {
    let a = spawn_app().await;
    let b = a.replica_with(&[]).await;
    // Every notification lost: the revoking transactions send none.
    a.execute("ALTER TABLE sessions DISABLE TRIGGER sessions_notify_revocation");
    let woken = held_poll_answers(&a, &b, 6).await;
    let millis = millis(&woken);
    eprintln!("no NOTIFY: logout on A → poll held on B answered after (ms, sorted): {millis:?}");
    // The feed's cursor is the truth: the 250 ms re-read finds it, and the
    // API's one-second bound holds with room to spare.
    assert!(
        woken[woken.len() - 1] < Duration::from_millis(600),
        "{millis:?}"
    );
}

#[tokio::test]
async fn a_broken_listen_connection_is_replaced_and_pushes_again() {
    let a = spawn_app().await;
    let b = a.replica_with(&[]).await;
    assert!(listening(&b).await);
    let listeners = format!(
        "FROM pg_stat_activity WHERE datname = current_database() AND application_name = '{}'",
        auth_server::db::notifications::APPLICATION_NAME
    );
    assert_eq!(a.count(&format!("SELECT count(*) AS n {listeners}")), 2);
    a.execute(&format!(
        "CREATE TABLE old_listeners AS SELECT pid {listeners}"
    ));
    // Both replicas' LISTEN connections ended by the server, as a restart
    // or a failover of PostgreSQL would.
    a.execute(&format!("SELECT pg_terminate_backend(pid) {listeners}"));
    // Each thread sees it (at the latest at its health check) and comes
    // back on a connection of its own.
    let deadline = Instant::now() + Duration::from_secs(20);
    while a.count(&format!(
        "SELECT count(*) AS n {listeners} AND pid NOT IN (SELECT pid FROM old_listeners)"
    )) < 2
    {
        assert!(Instant::now() < deadline, "the replicas listen again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(listening(&b).await);
    let woken = held_poll_answers(&a, &b, 4).await;
    let millis = millis(&woken);
    eprintln!(
        "after reconnecting: logout on A → poll held on B answered after (ms, sorted): {millis:?}"
    );
    assert!(
        woken[woken.len() / 2] < Duration::from_millis(60),
        "pushed again, not re-read: {millis:?}"
    );
}

#[tokio::test]
async fn the_revoking_transaction_notifies_once_on_commit_and_never_on_rollback() {
    use diesel::connection::SimpleConnection;

    // The trigger, not the server, sends it: any path that revokes (here
    // plain SQL, as an operator's script would) wakes the replicas.
    let app = spawn_app().await;
    let email = app.registered_user().await;
    for _ in 0..3 {
        app.login_body(&email).await;
    }
    let mut listener = app.conn();
    listener.batch_execute("LISTEN revocations").unwrap();
    let revoke_all = "UPDATE sessions SET revoked_at = now(), revoked_reason = 'logout_all', \
                      revoked_xid = pg_current_xact_id()::text::bigint WHERE revoked_at IS NULL";
    let mut conn = app.conn();
    conn.batch_execute(&format!("BEGIN; {revoke_all}; ROLLBACK"))
        .unwrap();
    conn.batch_execute(&format!("BEGIN; {revoke_all}; COMMIT"))
        .unwrap();
    // Already revoked: revoking again notifies nothing.
    conn.batch_execute("UPDATE sessions SET revoked_reason = 'logout'")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let received: Vec<_> = listener
        .notifications_iter()
        .map(|n| n.unwrap().channel)
        .collect();
    assert_eq!(
        received,
        ["revocations"],
        "one for three sessions, none for the rollback"
    );
}
