//! Several replicas on one database: what one replica counts or revokes,
//! the others see.

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
    // The fifth is refused wherever it lands, and says when to come back.
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
        "INSERT INTO rate_buckets (scope, key, tat, allowed) \
         VALUES ('login', '192.0.2.200', now() - interval '1 second', true)",
    );
    let swept = app.sweep().await;
    assert_eq!(swept.rate_buckets, 1);
    // The live bucket (the registration's, within its window) stays.
    assert_eq!(app.count("SELECT count(*) AS n FROM rate_buckets"), 1);
}
