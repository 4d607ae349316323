//! Contract § Configuration: `LOGIN_ACCOUNT_RATE_LIMIT`, the failed-login throttle.
//!
//! The failed-login throttle (`LOGIN_ACCOUNT_RATE_LIMIT`): failures counted
//! per account and client in PostgreSQL, strangers of an account attacked
//! from many clients slowed down, the owner never locked out. Clients come
//! from many addresses through the tests' own trusted proxy
//! (`X-Forwarded-For`).

use std::time::Instant;

use reqwest::{Response, StatusCode};
use serde_json::json;

use crate::helpers::*;

const WRONG: &str = "not the password";
const OWNER: &str = "192.0.2.10";

/// N failures per window, from behind the tests' trusted proxy.
async fn throttled_app(limit: &str) -> TestApp {
    spawn_app_with(&[
        ("LOGIN_ACCOUNT_RATE_LIMIT", limit),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await
}

fn stranger(i: usize) -> String {
    format!("198.51.100.{}", i + 1)
}

fn retry_after(response: &Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Status, body and `Retry-After` of an answer, for comparing answers.
async fn answer(response: Response) -> (StatusCode, Option<u64>, String) {
    let status = response.status();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (status, retry, response.text().await.unwrap())
}

/// The owner logs in from `OWNER` with a browser's cookie jar; returns the
/// `Cookie` header that browser sends from then on.
async fn owner_logs_in(app: &TestApp, email: &str) -> String {
    let login = app.login_from(email, PASSWORD, OWNER, None).await;
    assert_eq!(login.status(), StatusCode::OK);
    let cookie = set_cookie(login.headers()).expect("a refresh cookie");
    format!("refresh_token={}", cookie.value)
}

#[tokio::test]
async fn strangers_cannot_lock_out_the_owner() {
    let app = throttled_app("10/5m").await;
    let email = app.registered_user().await;
    let cookie = owner_logs_in(&app, &email).await;

    let mut refused = 0;
    for i in 0..30 {
        let response = app.login_from(&email, WRONG, &stranger(i), None).await;
        match response.status() {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => panic!("a stranger got {other}"),
        }
    }
    assert!(refused > 0, "the strangers were slowed down");
    assert!(
        app.count("SELECT count(*) AS n FROM failure_buckets WHERE scope = 'login_strangers' AND failures >= 10")
            == 1
    );

    // The owner, same address and cookies as before, gets in at once.
    let owner = app.login_from(&email, PASSWORD, OWNER, Some(&cookie)).await;
    assert_eq!(owner.status(), StatusCode::OK);
}

#[tokio::test]
async fn one_client_guessing_is_stopped_by_its_own_limit() {
    let app = throttled_app("3/5m").await;
    let email = app.registered_user().await;
    let cookie = owner_logs_in(&app, &email).await;
    let guesser = "203.0.113.5";
    for _ in 0..3 {
        let wrong = app.login_from(&email, WRONG, guesser, None).await;
        assert_error(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    // Even the right password is refused now, without being checked.
    let refused = app.login_from(&email, PASSWORD, guesser, None).await;
    let wait = retry_after(&refused);
    assert!((295..=300).contains(&wait), "{wait}");
    assert_error(refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // IPv6: another address of the same /64 is the same client.
    let v6 = "2001:db8:7:7::1";
    for _ in 0..3 {
        app.login_from(&email, WRONG, v6, None).await;
    }
    let same_64 = app
        .login_from(&email, WRONG, "2001:db8:7:7::beef", None)
        .await;
    assert_eq!(same_64.status(), StatusCode::TOO_MANY_REQUESTS);

    let owner = app.login_from(&email, PASSWORD, OWNER, Some(&cookie)).await;
    assert_eq!(owner.status(), StatusCode::OK);
}

/// Moves an account's strangers' failures (the bucket's, and those of its
/// recent clients) `seconds` into the past.
fn time_passes_for_strangers(app: &TestApp, seconds: u64) {
    let ago = format!("interval '{seconds} seconds'");
    app.execute(&format!(
        "UPDATE failure_buckets SET last_failure_at = last_failure_at - {ago}, \
         previous_failure_at = previous_failure_at - {ago}, \
         window_start = window_start - {ago}, \
         recent_failures = (SELECT array_agg(t - {ago} ORDER BY i) \
                            FROM unnest(recent_failures) WITH ORDINALITY AS r (t, i)) \
         WHERE scope = 'login_strangers'"
    ));
}

#[tokio::test]
async fn strangers_of_an_account_attacked_from_many_clients_wait_a_growing_bounded_delay() {
    let app = throttled_app("3/1m").await;
    let email = app.registered_user().await;
    let cookie = owner_logs_in(&app, &email).await;
    for i in 0..3 {
        let wrong = app.login_from(&email, WRONG, &stranger(i), None).await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
    let mut waits = Vec::new();
    for i in 3..10 {
        let refused = app.login_from(&email, PASSWORD, &stranger(i), None).await;
        assert_eq!(
            refused.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "after {waits:?}"
        );
        let wait = retry_after(&refused);
        waits.push(wait);
        // Once the delay has passed, one more guess goes through.
        time_passes_for_strangers(&app, wait);
        let wrong = app.login_from(&email, WRONG, &stranger(i), None).await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "after {waits:?}");
    }
    assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60], "doubling, at most W");

    // The owner was never slowed down.
    let owner = app.login_from(&email, PASSWORD, OWNER, Some(&cookie)).await;
    assert_eq!(owner.status(), StatusCode::OK);

    // Nothing is permanent: past W after the last failure, a stranger with
    // the right password gets in...
    time_passes_for_strangers(&app, 60);
    let new_device = app.login_from(&email, PASSWORD, &stranger(50), None).await;
    assert_eq!(new_device.status(), StatusCode::OK);
    // ...but the count is kept, so waiting W buys an attacker no fresh run
    // of N guesses: once three clients fail again, it is W again.
    time_passes_for_strangers(&app, 60);
    for i in 51..54 {
        let wrong = app.login_from(&email, WRONG, &stranger(i), None).await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
    let refused = app.login_from(&email, WRONG, &stranger(54), None).await;
    assert_eq!(retry_after(&refused), 60);
    // A day without failures, and the count starts over.
    time_passes_for_strangers(&app, 24 * 3600);
    app.login_from(&email, WRONG, &stranger(53), None).await;
    assert_eq!(
        app.count(
            "SELECT failures::bigint AS n FROM failure_buckets WHERE scope = 'login_strangers'"
        ),
        1
    );
}

#[tokio::test]
async fn an_unknown_email_is_answered_like_a_throttled_known_one() {
    let app = throttled_app("3/5m").await;
    let known = app.registered_user().await;
    let unknown = unique_email();

    async fn script(app: &TestApp, email: &str, net: u8) -> Vec<(StatusCode, Option<u64>, String)> {
        let client = |host: u8| format!("203.0.{net}.{host}");
        let mut answers = Vec::new();
        for _ in 0..3 {
            answers.push(answer(app.login_from(email, WRONG, &client(1), None).await).await);
        }
        // The right password for the known account, from the same client:
        // refused like any guess at an unknown address.
        answers.push(answer(app.login_from(email, PASSWORD, &client(1), None).await).await);
        // Two more clients fail: the strangers' delay is on, and the right
        // password from yet another one is refused alike.
        for host in [2, 3] {
            answers.push(answer(app.login_from(email, WRONG, &client(host), None).await).await);
        }
        answers.push(answer(app.login_from(email, PASSWORD, &client(4), None).await).await);
        answers
    }
    let for_known = script(&app, &known, 1).await;
    let for_unknown = script(&app, &unknown, 2).await;
    assert_eq!(for_known, for_unknown);
    let statuses: Vec<StatusCode> = for_known.iter().map(|a| a.0).collect();
    assert_eq!(
        statuses,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS,
        ]
    );
    // Neither address is stored in the clear.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM failure_buckets WHERE key LIKE '%{}%' OR key LIKE '%{}%'",
            known.split('@').next().unwrap(),
            unknown.split('@').next().unwrap()
        )),
        0
    );
}

#[tokio::test]
async fn a_correct_password_clears_the_clients_failures() {
    let app = throttled_app("3/5m").await;
    let email = app.registered_user().await;
    for _ in 0..2 {
        for _ in 0..2 {
            let wrong = app.login_from(&email, WRONG, OWNER, None).await;
            assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        }
        // Four failures in all, but never three in a row.
        let right = app.login_from(&email, PASSWORD, OWNER, None).await;
        assert_eq!(right.status(), StatusCode::OK);
    }
    assert_eq!(
        app.count("SELECT count(*) AS n FROM failure_buckets WHERE scope = 'login_client'"),
        0
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM known_login_clients WHERE client_key = '{OWNER}'"
        )),
        1
    );
}

#[tokio::test]
async fn the_counts_hold_across_two_instances_on_one_database() {
    // Replicas share the token key, from which the account keys derive.
    let key_file = std::env::temp_dir().join(format!("throttle-key-{}", uuid::Uuid::new_v4()));
    std::fs::write(&key_file, "k".repeat(43)).unwrap();
    let app = spawn_app_with(&[
        ("LOGIN_ACCOUNT_RATE_LIMIT", "3/5m"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
        ("REFRESH_TOKEN_KEY_FILE", key_file.to_str().unwrap()),
    ])
    .await;
    let first = app.address.clone();
    let second = app.another_instance().await;
    let email = app.registered_user().await;
    let owner = app.login_at(&first, &email, PASSWORD, OWNER, None).await;
    assert_eq!(owner.status(), StatusCode::OK);

    let guesser = "203.0.113.9";
    for instance in [&first, &second, &first] {
        let wrong = app.login_at(instance, &email, WRONG, guesser, None).await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
    let refused = app.login_at(&second, &email, PASSWORD, guesser, None).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    // The strangers' delay is shared too (two more clients fail, one on
    // each), and so is who is known.
    for (instance, client) in [(&first, "203.0.113.11"), (&second, "203.0.113.12")] {
        let wrong = app.login_at(instance, &email, WRONG, client, None).await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
    let stranger = app
        .login_at(&second, &email, PASSWORD, "203.0.113.10", None)
        .await;
    assert_eq!(stranger.status(), StatusCode::TOO_MANY_REQUESTS);
    let owner = app.login_at(&second, &email, PASSWORD, OWNER, None).await;
    assert_eq!(owner.status(), StatusCode::OK);
    std::fs::remove_file(key_file).unwrap();
}

#[tokio::test]
async fn a_burst_of_guesses_learns_no_more_than_the_limit() {
    let app = throttled_app("3/5m").await;
    let email = app.registered_user().await;
    let guesses = (0..12).map(|i| {
        let address = stranger(i);
        let app = &app;
        let email = &email;
        async move { app.login_from(email, WRONG, &address, None).await.status() }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let answered = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert!(
        statuses
            .iter()
            .all(|s| matches!(*s, StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS)),
        "{statuses:?}"
    );
    assert!(answered <= 3, "{answered} guesses answered: {statuses:?}");
}

#[tokio::test]
async fn registration_has_no_per_account_limit() {
    let app = throttled_app("3/5m").await;
    let email = unique_email();
    let mut statuses = Vec::new();
    for i in 0..6 {
        statuses.push(app.register_from(&email, &stranger(i)).await.status());
    }
    assert_eq!(statuses[0], StatusCode::CREATED);
    assert!(
        statuses[1..].iter().all(|s| *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn the_janitor_sweeps_emptied_buckets_and_forgotten_clients() {
    let app = throttled_app("3/5m").await;
    let email = app.registered_user().await;
    owner_logs_in(&app, &email).await;
    app.login_from(&email, WRONG, &stranger(0), None).await;
    app.login_from(&email, WRONG, &stranger(1), None).await;
    // One client's failures are a day old; the owner's client was last
    // seen long ago.
    app.execute(&format!(
        "UPDATE failure_buckets SET last_failure_at = now() - interval '25 hours' \
         WHERE scope = 'login_client' AND key LIKE '% {}'",
        stranger(0)
    ));
    app.execute("UPDATE known_login_clients SET last_success_at = now() - interval '31 days'");
    let swept = app.sweep().await;
    assert_eq!((swept.failure_buckets, swept.known_login_clients), (1, 1));
    assert_eq!(app.count("SELECT count(*) AS n FROM failure_buckets"), 2);
}

/// Moves every failure of every bucket `seconds` into the past.
fn time_passes(app: &TestApp, seconds: u64) {
    let ago = format!("interval '{seconds} seconds'");
    app.execute(&format!(
        "UPDATE failure_buckets SET last_failure_at = last_failure_at - {ago}, \
         previous_failure_at = previous_failure_at - {ago}, \
         window_start = window_start - {ago}, \
         recent_failures = (SELECT array_agg(t - {ago} ORDER BY i) \
                            FROM unnest(recent_failures) WITH ORDINALITY AS r (t, i))"
    ));
}

#[tokio::test]
async fn one_stranger_failing_every_window_never_delays_the_owners_new_device() {
    // Sixty password checks: cheap ones keep the hour to a second or two.
    let app = spawn_app_with(&[
        ("LOGIN_ACCOUNT_RATE_LIMIT", "3/5m"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
        ("ARGON2_MEMORY_KIB", "1024"),
        ("ARGON2_ITERATIONS", "1"),
    ])
    .await;
    let email = app.registered_user().await;
    let attacker = "203.0.113.99";
    let started = Instant::now();
    let mut answered = 0;
    // An hour: twelve windows of five minutes.
    for window in 0..12 {
        // As many guesses as the attacker's own limit answers, and more.
        for _ in 0..4 {
            let guess = app.login_from(&email, WRONG, attacker, None).await;
            match guess.status() {
                StatusCode::UNAUTHORIZED => answered += 1,
                StatusCode::TOO_MANY_REQUESTS => {}
                other => panic!("the attacker got {other}"),
            }
        }
        // The owner, on a device the account has never seen, right after
        // the attacker's last failure: in at once.
        let owner = app
            .login_from(&email, PASSWORD, &format!("192.0.2.{}", window + 1), None)
            .await;
        assert_eq!(owner.status(), StatusCode::OK, "window {window}");
        time_passes(&app, 300);
    }
    eprintln!(
        "an hour of one stranger's failures, in {:?}",
        started.elapsed()
    );
    assert_eq!(answered, 3 * 12, "N guesses per W from one client");
}

/// A reset with the link's token from `client`, as the tests' trusted
/// proxy forwards it.
async fn reset_from(app: &TestApp, token: &str, password: &str, client: &str) -> Response {
    app.client
        .post(app.url("/auth/password/reset"))
        .header("X-Forwarded-For", client)
        .json(&json!({ "token": token, "new_password": password }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn strangers_from_many_clients_delay_a_new_device_until_a_reset_from_it() {
    let (app, smtp) = spawn_app_with_smtp(&[
        ("LOGIN_ACCOUNT_RATE_LIMIT", "3/5m"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let email = app.registered_user().await;
    // Three clients fail, then more, each after the delay so far.
    for i in 0..3 {
        let wrong = app.login_from(&email, WRONG, &stranger(i), None).await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
    for i in 3..8 {
        let refused = app.login_from(&email, WRONG, &stranger(i), None).await;
        time_passes_for_strangers(&app, retry_after(&refused));
        let wrong = app.login_from(&email, WRONG, &stranger(i), None).await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }

    // The owner's new device waits with every other stranger.
    let new_device = "192.0.2.77";
    let refused = app.login_from(&email, PASSWORD, new_device, None).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&refused), 32);

    // From it, the owner proves the mailbox: a reset.
    assert_eq!(app.forgot(&email).await.status(), StatusCode::ACCEPTED);
    let token = smtp
        .mail_titled(&email, "Reset your password")
        .await
        .token("reset");
    let new_password = "a brand new passphrase";
    let reset = reset_from(&app, &token, new_password, new_device).await;
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);

    // In at once, from that device; and the strangers' delay is gone.
    let owner = app.login_from(&email, new_password, new_device, None).await;
    assert_eq!(owner.status(), StatusCode::OK);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM failure_buckets WHERE scope = 'login_strangers'"),
        0
    );
    let elsewhere = app
        .login_from(&email, new_password, "192.0.2.78", None)
        .await;
    assert_eq!(elsewhere.status(), StatusCode::OK);
}
