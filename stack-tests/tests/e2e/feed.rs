//! Contract § Internal listener: the revocation feed paged under load.
//!
//! The revocation feed under load the old cursor could not page through:
//! one transaction revoking more sessions than a page holds, with and
//! without a transaction elsewhere holding the cluster's `xmin` back.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use reqwest::StatusCode;

use crate::helpers::*;

/// More sessions than one page of the feed holds (10,000).
const BULK: usize = 10_001;

/// The contract's bound, after a revocation is acknowledged.
const WITHIN: Duration = Duration::from_secs(1);

/// `BULK` extra live sessions of the token's user, inserted directly.
fn insert_sessions(control: &Control, access_token: &str) {
    let user_id = claims_of(access_token)["sub"].as_str().unwrap().to_owned();
    control.execute(&format!(
        "INSERT INTO sessions (id, user_id, expires_at) \
         SELECT gen_random_uuid(), '{user_id}', now() + interval '1 day' FROM generate_series(1, {BULK})"
    ));
}

async fn logout_all(stack: &Stack, access_token: &str) {
    let started = Instant::now();
    let response = stack
        .client
        .post(format!("{}/auth/logout-all", stack.auth_url))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    eprintln!(
        "logout-all of {} sessions took {:?}",
        BULK + 1,
        started.elapsed()
    );
}

/// Time from now until the API refuses the token, polled every 5 ms for at
/// most `limit`; `None` if it never did.
async fn refused_after(stack: &Stack, access_token: &str, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if stack.me_status(access_token).await == StatusCode::UNAUTHORIZED {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

#[tokio::test]
async fn a_bulk_revocation_does_not_stall_the_feed() {
    let mut stack = spawn_stack().await;
    let a = stack.login().await;
    let b = stack.login().await;
    let Some(control) = stack.control("a_bulk_revocation_does_not_stall_the_feed") else {
        return;
    };
    insert_sessions(control, &a.access_token);
    logout_all(&stack, &a.access_token).await;
    let a_refused = refused_after(&stack, &a.access_token, Duration::from_secs(5)).await;
    eprintln!("after the bulk revocation, A's token refused after {a_refused:?}");

    stack.logout(&b.refresh_token).await;
    let took = refused_after(&stack, &b.access_token, Duration::from_secs(5)).await;
    eprintln!(
        "after a bulk revocation of {} sessions, another logout reached the API in {took:?} (None: not within 5 s)",
        BULK + 1
    );
    let took = took.expect("the later logout reaches the API");
    assert!(took < WITHIN, "within a second: {took:?}");
    assert!(a_refused.is_some(), "the bulk revocation reached the API");
}

#[tokio::test]
async fn a_held_open_transaction_during_a_bulk_revocation() {
    let mut stack = spawn_stack_with(Options {
        max_staleness: "3s",
        sync_interval: "200ms",
        ..Options::default()
    })
    .await;
    let a = stack.login().await;
    let b = stack.login().await;
    let c = stack.login().await;
    let Some(control) = stack.control("a_held_open_transaction_during_a_bulk_revocation") else {
        return;
    };
    insert_sessions(control, &a.access_token);
    // A transaction elsewhere that has an xid and stays open: it pins the
    // cluster's xmin below everything that follows.
    let mut held = control.connect();
    held.batch_execute("BEGIN; SELECT pg_current_xact_id();")
        .unwrap();
    let pinned = Instant::now();

    logout_all(&stack, &a.access_token).await;
    stack.logout(&b.refresh_token).await;
    let took = refused_after(&stack, &b.access_token, Duration::from_secs(5)).await;
    eprintln!(
        "with xmin pinned, a logout after a bulk revocation reached the API in {took:?} (None: not within 5 s)"
    );
    let took = took.expect("the later logout reaches the API");
    assert!(took < WITHIN, "within a second: {took:?}");

    // The API has caught up with everything it can see: the pinned xmin
    // must not make it fail closed, past REVOCATION_MAX_STALENESS (3 s).
    while pinned.elapsed() < Duration::from_secs(5) {
        let ready = stack
            .client
            .get(format!("{}/readyz", stack.api_url))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(ready, StatusCode::OK, "ready after {:?}", pinned.elapsed());
        assert_eq!(
            stack.me_status(&c.access_token).await,
            StatusCode::OK,
            "a valid token is served after {:?}",
            pinned.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    held.batch_execute("ROLLBACK").unwrap();
}
