//! Contract § Resource API: revocations reach the API within a second.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

/// The contract's bound, after a revocation is acknowledged.
const WITHIN: Duration = Duration::from_secs(1);

/// Time from the acknowledged revocation until the API refuses the token.
async fn rejected_within(stack: &Stack, access_token: &str) -> Duration {
    let took = eventually(WITHIN, || async {
        stack.me_status(access_token).await == StatusCode::UNAUTHORIZED
    })
    .await;
    took.expect("the API rejects the revoked session's token within 1 second")
}

#[tokio::test]
async fn logout_reaches_the_api_within_a_second() {
    let stack = spawn_stack().await;
    let login = stack.login().await;
    assert_eq!(stack.me_status(&login.access_token).await, StatusCode::OK);
    stack.logout(&login.refresh_token).await;
    rejected_within(&stack, &login.access_token).await;
    let description =
        assert_unauthorized(stack.api("/api/me", Some(&login.access_token)).await, true).await;
    assert!(description.contains("revoked"), "{description}");
}

#[tokio::test]
async fn logout_all_reaches_the_api_within_a_second() {
    let stack = spawn_stack().await;
    let first = stack.login().await;
    let second = stack.login_as(&first.email).await;
    let other_user = stack.login().await;
    let response = stack
        .client
        .post(format!("{}/auth/logout-all", stack.auth_url))
        .bearer_auth(&first.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    rejected_within(&stack, &first.access_token).await;
    rejected_within(&stack, &second.access_token).await;
    assert_eq!(
        stack.me_status(&other_user.access_token).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_session_delete_reaches_the_api_within_a_second() {
    let stack = spawn_stack().await;
    let phone = stack.login().await;
    let laptop = stack.login_as(&phone.email).await;
    let phone_sid = claims_of(&phone.access_token)["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = stack
        .client
        .delete(format!("{}/auth/sessions/{phone_sid}", stack.auth_url))
        .bearer_auth(&laptop.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    rejected_within(&stack, &phone.access_token).await;
    assert_eq!(stack.me_status(&laptop.access_token).await, StatusCode::OK);
}

#[tokio::test]
async fn a_detected_reuse_reaches_the_api_within_a_second() {
    let stack = spawn_stack().await;
    let login = stack.login().await;
    let rotated = stack.refresh(&login.refresh_token).await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let rotated: serde_json::Value = rotated.json().await.unwrap();
    let new_access = rotated["access_token"].as_str().unwrap().to_owned();
    match stack.control.as_ref() {
        // Move the consumption back past the grace instead of waiting it out.
        Some(control) => control.execute(
            "UPDATE sessions SET consumed_at = ARRAY(SELECT c - interval '1 hour' \
             FROM unnest(consumed_at) WITH ORDINALITY AS t(c, i) ORDER BY i)",
        ),
        None => {
            let grace = std::env::var("REFRESH_REUSE_GRACE").unwrap_or_else(|_| "10s".to_owned());
            let grace = service_kit::duration::parse_duration(&grace).unwrap();
            tokio::time::sleep(grace + Duration::from_secs(1)).await;
        }
    }
    let reuse = stack.refresh(&login.refresh_token).await;
    assert_eq!(reuse.status(), StatusCode::UNAUTHORIZED);
    rejected_within(&stack, &login.access_token).await;
    rejected_within(&stack, &new_access).await;
}

/// Propagation from an acknowledged logout to the API's first `401`, over
/// 20 trials; the figures are printed for the book (docs/src/tokens.md).
#[tokio::test]
async fn revocation_propagation_over_twenty_trials() {
    let stack = spawn_stack().await;
    let first = stack.login().await;
    let mut samples = Vec::new();
    for _ in 0..20 {
        let login = stack.login_as(&first.email).await;
        assert_eq!(stack.me_status(&login.access_token).await, StatusCode::OK);
        stack.logout(&login.refresh_token).await;
        let started = std::time::Instant::now();
        while stack.me_status(&login.access_token).await != StatusCode::UNAUTHORIZED {
            assert!(started.elapsed() < WITHIN, "propagation within 1 second");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        samples.push(started.elapsed());
    }
    samples.sort();
    let median = samples[samples.len() / 2];
    let worst = samples[samples.len() - 1];
    eprintln!(
        "revocation propagation over {} trials: median {median:?}, worst {worst:?}",
        samples.len()
    );
    assert!(worst < WITHIN);
}

#[tokio::test]
async fn a_password_change_reaches_the_api_within_a_second_and_spares_its_session() {
    let stack = spawn_stack().await;
    let here = stack.login().await;
    let elsewhere = stack.login_as(&here.email).await;
    let response = stack
        .client
        .post(format!("{}/auth/password", stack.auth_url))
        .bearer_auth(&here.access_token)
        .json(&json!({ "current_password": PASSWORD, "new_password": "a brand new passphrase" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    rejected_within(&stack, &elsewhere.access_token).await;
    assert_eq!(stack.me_status(&here.access_token).await, StatusCode::OK);
}

/// `MAX_SESSIONS_PER_USER=3`: the fourth login evicts the oldest session,
/// and the API hears of it as of any other revocation.
#[tokio::test]
async fn an_evicted_session_is_refused_at_the_api_within_a_second() {
    let mut stack = spawn_stack_with(Options {
        max_sessions_per_user: "3",
        ..Options::default()
    })
    .await;
    if stack
        .control("an_evicted_session_is_refused… (it sets MAX_SESSIONS_PER_USER)")
        .is_none()
    {
        return;
    }
    let oldest = stack.login().await;
    let second = stack.login_as(&oldest.email).await;
    let third = stack.login_as(&oldest.email).await;
    for login in [&oldest, &second, &third] {
        assert_eq!(stack.me_status(&login.access_token).await, StatusCode::OK);
    }
    let fourth = stack.login_as(&oldest.email).await;
    let took = rejected_within(&stack, &oldest.access_token).await;
    eprintln!("an evicted session's token refused at the API after {took:?}");
    assert_eq!(
        stack.refresh(&oldest.refresh_token).await.status(),
        StatusCode::UNAUTHORIZED,
        "nor can it be refreshed"
    );
    for login in [&second, &third, &fourth] {
        assert_eq!(stack.me_status(&login.access_token).await, StatusCode::OK);
    }
}
