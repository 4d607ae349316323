//! Contract § Account lifecycle: `POST /auth/password`.
//!
//! `POST /auth/password`: a change keeps this session and ends the others.

use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::json;

use crate::helpers::*;

const NEW_PASSWORD: &str = "a brand new passphrase";

#[tokio::test]
async fn a_change_keeps_this_session_and_revokes_every_other() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let here = app.login_body(&email).await;
    let elsewhere = app.login_body(&email).await;
    let browser = app.login_cookie(&email).await;

    let response = app
        .change_password(&here.access_token(), PASSWORD, NEW_PASSWORD)
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    // This session goes on: its access token and its refresh token.
    assert_eq!(
        app.get_sessions(&here.access_token()).await.status(),
        StatusCode::OK
    );
    let rotated = app.refresh_body(&here.refresh_token().unwrap()).await;
    assert_eq!(rotated.status, StatusCode::OK);
    // The others ended, with the reason the revocation feed carries.
    assert_token_error(
        &app.refresh_body(&elsewhere.refresh_token().unwrap()).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    );
    assert_token_error(
        &app.refresh_cookie(&browser.cookie().unwrap().value).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    );
    assert_eq!(
        app.get_sessions(&elsewhere.access_token()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let other = app.validate(&elsewhere.access_token()).await.sid;
    assert_eq!(
        app.session_revoked_reason(other).as_deref(),
        Some("password_changed")
    );

    assert_eq!(
        app.login_with(&email, NEW_PASSWORD).await.status,
        StatusCode::OK
    );
    assert_token_error(
        &app.login_with(&email, PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    // Newest first: the old password refused, the new one accepted, the
    // change, the three logins before it.
    let types = app.event_types(&rotated.access_token()).await;
    assert_eq!(
        types,
        [
            "login_failed",
            "login",
            "password_changed",
            "login",
            "login",
            "login",
            "register"
        ]
    );
}

#[tokio::test]
async fn a_wrong_current_password_is_403_and_changes_nothing() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let here = app.login_body(&email).await;
    let elsewhere = app.login_body(&email).await;
    let description = assert_error(
        app.change_password(&here.access_token(), "not the password", NEW_PASSWORD)
            .await,
        StatusCode::FORBIDDEN,
        "invalid_credentials",
    )
    .await;
    assert!(description.starts_with("current_password"), "{description}");
    assert_eq!(
        app.login_with(&email, PASSWORD).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.refresh_body(&elsewhere.refresh_token().unwrap())
            .await
            .status,
        StatusCode::OK
    );
}

/// A change from `client`, as the tests' trusted proxy forwards it.
async fn change_from(app: &TestApp, access: &str, current: &str, client: &str) -> Response {
    app.client
        .post(app.url("/auth/password"))
        .bearer_auth(access)
        .header("X-Forwarded-For", client)
        .json(&json!({ "current_password": current, "new_password": NEW_PASSWORD }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn wrong_current_passwords_count_as_failed_logins() {
    let app = spawn_app_with(&[
        ("LOGIN_ACCOUNT_RATE_LIMIT", "3/5m"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let email = app.registered_user().await;
    let owner = "192.0.2.10";
    let tokens = Tokens::read(app.login_from(&email, PASSWORD, owner, None).await).await;
    let access = tokens.access_token();

    // Someone elsewhere with the access token guesses; the budget is the
    // one a login from there has for this account.
    let thief = "203.0.113.66";
    for _ in 0..2 {
        assert_error(
            change_from(&app, &access, "not the password", thief).await,
            StatusCode::FORBIDDEN,
            "invalid_credentials",
        )
        .await;
    }
    let login = app
        .login_from(&email, "not the password", thief, None)
        .await;
    assert_eq!(login.status(), StatusCode::UNAUTHORIZED);
    // Three failures: the next guess, even the right one, is not checked.
    let refused = change_from(&app, &access, PASSWORD, thief).await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_error(refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    let login = app.login_from(&email, PASSWORD, thief, None).await;
    assert_eq!(login.status(), StatusCode::TOO_MANY_REQUESTS);

    // Recorded as failed logins, bounded alike: once per client and window.
    let types = app.event_types(&access).await;
    let failed = types.iter().filter(|t| *t == "login_failed").count();
    assert_eq!(failed, 1, "{types:?}");
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM audit_events WHERE type = 'login_failed' AND ip = '{thief}'"
        )),
        1
    );

    // The owner, from where they logged in, changes the password at once.
    let changed = change_from(&app, &access, PASSWORD, owner).await;
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn inputs_are_checked_and_named() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let token = app.login_body(&email).await.access_token();
    for (body, field) in [
        (json!({ "current_password": PASSWORD }), "new_password"),
        (json!({ "new_password": NEW_PASSWORD }), "current_password"),
        (
            json!({ "current_password": PASSWORD, "new_password": "short" }),
            "new_password",
        ),
        (
            json!({ "current_password": "x".repeat(300), "new_password": NEW_PASSWORD }),
            "current_password",
        ),
    ] {
        let d = assert_error(
            app.post_bearer("/auth/password", &token, Some(&body)).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        )
        .await;
        assert!(d.starts_with(field), "{d}");
    }
    let response = app
        .client
        .post(app.url("/auth/password"))
        .json(&json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer realm="auth-server""#
    );
}

#[tokio::test]
async fn a_change_kills_outstanding_reset_links() {
    let (app, smtp) = spawn_app_with_smtp(&[]).await;
    let email = app.registered_user().await;
    let here = app.login_body(&email).await;
    assert_eq!(app.forgot(&email).await.status(), StatusCode::ACCEPTED);
    let mails = smtp.wait_for(&email, 2, Duration::from_secs(15)).await;
    let token = mails
        .iter()
        .find(|m| m.subject() == "Reset your password")
        .unwrap()
        .token("reset");
    assert_eq!(
        app.change_password(&here.access_token(), PASSWORD, NEW_PASSWORD)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_error(
        app.reset(&token, "the attacker's choice").await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        app.login_with(&email, NEW_PASSWORD).await.status,
        StatusCode::OK
    );
}
