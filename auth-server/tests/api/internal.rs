use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

const DEV_TOKEN: &str = auth_server::config::DEVELOPMENT_INTERNAL_TOKEN;

impl TestApp {
    async fn feed(&self, query: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(&format!("/internal/revocations{query}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn the_revocation_feed_needs_the_internal_token() {
    let app = spawn_app().await;
    let missing = app
        .client
        .get(app.url("/internal/revocations"))
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
    let bad_query = app.feed("?cursor=abc", DEV_TOKEN).await;
    assert_error(bad_query, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn the_feed_lists_revocations_once_past_its_cursor() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let login = app.login_body(&email).await;
    let sid = app.validate(&login.access_token()).await.sid;

    let empty: Value = app.feed("", DEV_TOKEN).await.json().await.unwrap();
    assert_eq!(empty["revocations"], serde_json::json!([]));
    assert_eq!(empty["kids"].as_array().unwrap().len(), 1);
    let cursor = empty["cursor"].as_str().unwrap().to_owned();

    app.logout_body(&login.refresh_token().unwrap()).await;
    let feed: Value = app
        .feed(&format!("?cursor={cursor}"), DEV_TOKEN)
        .await
        .json()
        .await
        .unwrap();
    let revocations = feed["revocations"].as_array().unwrap();
    assert_eq!(revocations.len(), 1);
    assert_eq!(revocations[0]["session_id"], sid.to_string());
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

    // Past the new cursor, nothing more (once no transaction holds it back).
    let next = feed["cursor"].as_str().unwrap();
    let held = feed["held"].as_i64().unwrap();
    let later: Value = app
        .feed(&format!("?cursor={next}&seen={held}"), DEV_TOKEN)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(later["revocations"].as_array().unwrap().len() as i64, held);
}

#[tokio::test]
async fn a_long_poll_answers_as_soon_as_a_session_is_revoked() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let login = app.login_body(&email).await;
    let cursor: Value = app.feed("", DEV_TOKEN).await.json().await.unwrap();
    let cursor = cursor["cursor"].as_str().unwrap().to_owned();

    let started = Instant::now();
    let quiet: Value = app
        .feed(&format!("?cursor={cursor}&wait=1"), DEV_TOKEN)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "held while nothing happens"
    );
    assert_eq!(quiet["revocations"].as_array().unwrap().len(), 0);

    let query = format!("?cursor={cursor}&wait=20");
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
