//! Contract § Account lifecycle: verifying the e-mail address.
//!
//! Verifying the address: the mail registration sends, resending it, the
//! `email_verified` claim, and `REQUIRE_VERIFIED_EMAIL`.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn registration_sends_a_link_that_verifies_the_address() {
    let (app, smtp) = spawn_app_with_smtp(&[]).await;
    let email = app.registered_user().await;
    let before = app.login_body(&email).await;
    assert!(!app.validate(&before.access_token()).await.email_verified);

    let mail = smtp.mail_to(&email).await;
    assert_eq!(mail.subject(), "Confirm your e-mail address");
    assert!(
        mail.link("verify")
            .starts_with(&format!("{PUBLIC_URL}/#verify="))
    );
    let token = mail.token("verify");
    assert_eq!(
        app.verify_email(&token).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_error(
        app.verify_email(&token).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;

    // The next access token says so, from a refresh as from a login.
    let refreshed = app.refresh_body(&before.refresh_token().unwrap()).await;
    assert!(app.validate(&refreshed.access_token()).await.email_verified);
    let after = app.login_body(&email).await;
    assert!(app.validate(&after.access_token()).await.email_verified);
    assert!(
        app.event_types(&after.access_token())
            .await
            .contains(&"email_verified".to_owned())
    );

    // Nothing more to resend.
    assert_error(
        app.post_bearer("/auth/email/verify/resend", &after.access_token(), None)
            .await,
        StatusCode::CONFLICT,
        "already_verified",
    )
    .await;
}

#[tokio::test]
async fn resend_sends_a_new_link_and_kills_the_old_one() {
    let (app, smtp) = spawn_app_with_smtp(&[]).await;
    let email = app.registered_user().await;
    let first = smtp.mail_to(&email).await.token("verify");
    let access = app.login_body(&email).await.access_token();
    let response = app
        .post_bearer("/auth/email/verify/resend", &access, None)
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap(),
        json!({})
    );
    let mails = smtp
        .wait_for(&email, 2, std::time::Duration::from_secs(15))
        .await;
    let second = mails[1].token("verify");
    assert_ne!(first, second);
    assert_error(
        app.verify_email(&first).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        app.verify_email(&second).await.status(),
        StatusCode::NO_CONTENT
    );

    let unauthenticated = app
        .client
        .post(app.url("/auth/email/verify/resend"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    for junk in ["", "nope", &"b".repeat(43)] {
        assert_error(
            app.verify_email(junk).await,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        )
        .await;
    }
}

#[tokio::test]
async fn an_unverified_address_cannot_log_in_when_required() {
    let (app, smtp) = spawn_app_with_smtp(&[("REQUIRE_VERIFIED_EMAIL", "true")]).await;
    let email = app.registered_user().await;
    let refused = app.login_with(&email, PASSWORD).await;
    assert_token_error(&refused, StatusCode::FORBIDDEN, "email_not_verified");
    // A wrong password says nothing about the address.
    assert_token_error(
        &app.login_with(&email, "not the password").await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    let token = smtp.mail_to(&email).await.token("verify");
    assert_eq!(
        app.verify_email(&token).await.status(),
        StatusCode::NO_CONTENT
    );
    let tokens = app.login_with(&email, PASSWORD).await;
    assert_eq!(tokens.status, StatusCode::OK);
    assert!(app.validate(&tokens.access_token()).await.email_verified);
}

#[tokio::test]
async fn an_unverified_users_sessions_cannot_refresh_when_required() {
    // Sessions from before the operator required verified addresses.
    let (before, smtp) = spawn_app_with_smtp(&[]).await;
    let email = before.registered_user().await;
    let body = before.login_body(&email).await.refresh_token().unwrap();
    let cookie = before.login_cookie(&email).await.cookie().unwrap().value;
    let oauth = before.login_body(&email).await.refresh_token().unwrap();
    let app = before
        .replica_with(&[("REQUIRE_VERIFIED_EMAIL", "true")])
        .await;

    assert_token_error(
        &app.refresh_body(&body).await,
        StatusCode::FORBIDDEN,
        "email_not_verified",
    );
    let refused = app.refresh_cookie(&cookie).await;
    assert_token_error(&refused, StatusCode::FORBIDDEN, "email_not_verified");
    assert!(refused.cookie().is_none(), "the cookie is kept");
    assert_token_error(
        &app.oauth_refresh(&oauth).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM sessions WHERE generation <> 1"),
        0,
        "no token consumed"
    );

    // Once the address is verified, the very same tokens refresh.
    let token = smtp.mail_to(&email).await.token("verify");
    assert_eq!(
        app.verify_email(&token).await.status(),
        StatusCode::NO_CONTENT
    );
    for refreshed in [
        app.refresh_body(&body).await,
        app.refresh_cookie(&cookie).await,
        app.oauth_refresh(&oauth).await,
    ] {
        assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
        assert!(app.validate(&refreshed.access_token()).await.email_verified);
    }
}

#[tokio::test]
async fn resend_is_limited_per_client_address() {
    let (app, _smtp) = spawn_app_with_smtp(&[("MAIL_REQUEST_RATE_LIMIT", "2/10m")]).await;
    let email = app.registered_user().await;
    let access = app.login_body(&email).await.access_token();
    for _ in 0..2 {
        let response = app
            .post_bearer("/auth/email/verify/resend", &access, None)
            .await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
    let refused = app
        .post_bearer("/auth/email/verify/resend", &access, None)
        .await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_error(refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}
