//! Contract § Resource API: fail closed when stale, new signing keys without a restart.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn with_the_auth_server_down_the_api_serves_until_the_staleness_bound_then_recovers() {
    let mut stack = spawn_stack_with(Options {
        max_staleness: "3s",
        sync_interval: "200ms",
        ..Options::default()
    })
    .await;
    let login = stack.login().await;
    let Some(control) = stack.control("with_the_auth_server_down…") else {
        return;
    };
    control.stop_auth().await;
    let stopped = Instant::now();

    // Still serving from local state, with no call to the auth server...
    assert_eq!(stack.me_status(&login.access_token).await, StatusCode::OK);
    // ...until the bound passes: then it fails closed, and says why.
    let closed = eventually(Duration::from_secs(10), || async {
        stack.me_status(&login.access_token).await == StatusCode::SERVICE_UNAVAILABLE
    })
    .await
    .expect("503 once revocation state is stale");
    assert!(
        stopped.elapsed() >= Duration::from_millis(2_500),
        "not before the bound: {:?}",
        stopped.elapsed()
    );
    eprintln!(
        "failed closed {:?} after the auth server stopped (bound 3s)",
        closed
    );
    let response = stack.api("/api/me", Some(&login.access_token)).await;
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unavailable");
    let ready = stack
        .client
        .get(format!("{}/readyz", stack.api_url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["error_description"], "revocation state is stale");
    // A bad token is still a 401, not a 503.
    assert_unauthorized(stack.api("/api/me", Some("garbage")).await, true).await;

    // The auth server comes back: the API recovers by itself.
    stack.control.as_mut().unwrap().start_auth().await;
    eventually(Duration::from_secs(10), || async {
        stack.me_status(&login.access_token).await == StatusCode::OK
    })
    .await
    .expect("the API recovers without a restart");
    assert_eq!(
        stack
            .client
            .get(format!("{}/readyz", stack.api_url))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn failing_open_keeps_serving_and_reports_degraded() {
    let mut stack = spawn_stack_with(Options {
        max_staleness: "2s",
        sync_interval: "200ms",
        fail_open: true,
        ..Options::default()
    })
    .await;
    let login = stack.login().await;
    let Some(control) = stack.control("failing_open_keeps_serving…") else {
        return;
    };
    control.stop_auth().await;
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    assert_eq!(stack.me_status(&login.access_token).await, StatusCode::OK);
    let ready: Value = stack.get_json(format!("{}/readyz", stack.api_url)).await;
    assert_eq!(
        ready,
        serde_json::json!({ "status": "degraded", "reason": "revocation state is stale" }),
        "why, in fixed words only"
    );
}

/// What the public listener says when it cannot serve: ready or not, and
/// why in fixed words, never the sync's error text or its figures (those
/// are in the log, and on the internal listener's `/metrics`).
#[tokio::test]
async fn public_readiness_and_503_answers_leak_nothing() {
    let mut stack = spawn_stack_with(Options {
        max_staleness: "2s",
        sync_interval: "200ms",
        ..Options::default()
    })
    .await;
    let login = stack.login().await;
    let ready = stack.api("/readyz", None).await.text().await.unwrap();
    assert_eq!(ready, r#"{"status":"ready"}"#);
    let Some(control) = stack.control("public_readiness_and_503_answers_leak_nothing") else {
        return;
    };
    control.stop_auth().await;
    eventually(Duration::from_secs(10), || async {
        stack.me_status(&login.access_token).await == StatusCode::SERVICE_UNAVAILABLE
    })
    .await
    .expect("503 once revocation state is stale");
    // Long enough for the sync to have failed with its own words.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for path in ["/readyz", "/api/me", "/api/admin"] {
        let response = stack.api(path, Some(&login.access_token)).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        let body = response.text().await.unwrap();
        assert_eq!(
            body, r#"{"error":"unavailable","error_description":"revocation state is stale"}"#,
            "{path}"
        );
        assert!(!body.chars().any(|c| c.is_ascii_digit()), "{body}");
    }
}

#[tokio::test]
async fn a_new_signing_key_is_accepted_without_restarting_the_api() {
    let mut stack = spawn_stack().await;
    let before = stack.login().await;
    let old_kid = stack.kid().await;
    let Some(control) = stack.control("a_new_signing_key_is_accepted…") else {
        return;
    };
    control.stop_auth().await;
    control.new_signing_key();
    control.start_auth().await;

    let after = stack.login_as(&before.email).await;
    let new_kid = stack.kid().await;
    assert_ne!(new_kid, old_kid);
    let header = jsonwebtoken::decode_header(&after.access_token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(new_kid.as_str()));
    let took = eventually(Duration::from_secs(5), || async {
        stack.me_status(&after.access_token).await == StatusCode::OK
    })
    .await
    .expect("a token of the new kid is accepted within a few seconds");
    eprintln!("new key accepted after {took:?}");
    // The old key is no longer published, so its tokens are refused now.
    assert_unauthorized(stack.api("/api/me", Some(&before.access_token)).await, true).await;
}

#[tokio::test]
async fn a_flood_of_unknown_kids_does_not_hammer_the_auth_server() {
    let stack = spawn_stack().await;
    let Some(pem) = stack.signing_pem("a_flood_of_unknown_kids…") else {
        return;
    };
    let template = claims_of(&stack.login().await.access_token);
    let started = Instant::now();
    for i in 0..200 {
        let junk = forge(pem, &access_header(&format!("junk-{i}")), &template);
        assert_eq!(stack.me_status(&junk).await, StatusCode::UNAUTHORIZED);
    }
    // The refetches this flood asked for are rate-limited (JWKS_MIN_REFETCH_INTERVAL
    // is 500ms here): the API stays fast and keeps its keys.
    eprintln!("200 junk kids answered in {:?}", started.elapsed());
    let login = stack.login().await;
    assert_eq!(stack.me_status(&login.access_token).await, StatusCode::OK);
}

#[tokio::test]
async fn a_rotation_with_the_old_key_retired_keeps_its_tokens_valid() {
    let mut stack = spawn_stack().await;
    let before = stack.login().await;
    let Some(control) = stack.control("a_rotation_with_the_old_key_retired…") else {
        return;
    };
    control.stop_auth().await;
    control.rotate_signing_key_with_overlap();
    control.start_auth().await;

    let after = stack.login_as(&before.email).await;
    let jwks: Value = stack.jwks().await;
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        2,
        "the new key and the retired one"
    );
    eventually(Duration::from_secs(5), || async {
        stack.me_status(&after.access_token).await == StatusCode::OK
    })
    .await
    .expect("the new key's tokens are accepted");
    // The old key's token lives out its lifetime.
    assert_eq!(stack.me_status(&before.access_token).await, StatusCode::OK);
}
