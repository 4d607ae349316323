//! Contract § Auth server: `/auth/logout`, `/auth/logout-all` and the Bearer challenges.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn logout_revokes_the_session_and_is_idempotent() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let login = app.login_body(&email).await;
    let token = login.refresh_token().unwrap();
    let sid = app.validate(&login.access_token()).await.sid;

    let response = app.logout_body(&token).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(
        response.headers().get("set-cookie").is_none(),
        "body mode sets no cookie"
    );
    assert_eq!(app.session_revoked_reason(sid).as_deref(), Some("logout"));
    assert_token_error(
        &app.refresh_body(&token).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    );
    assert_error(
        app.get_sessions(&login.access_token()).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;

    // Again, with an unknown token, and with none at all: still 204.
    assert_eq!(
        app.logout_body(&token).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.logout_body(&"Z".repeat(43)).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.logout_body("junk").await.status(),
        StatusCode::NO_CONTENT
    );
    let bare = app
        .client
        .post(app.url("/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.session_revoked_reason(sid).as_deref(),
        Some("logout"),
        "the first reason stays"
    );
}

#[tokio::test]
async fn logout_with_a_cookie_clears_it() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let cookie = app.login_cookie(&email).await.cookie().unwrap();
    let response = app
        .client
        .post(app.url("/auth/logout"))
        .header("Cookie", format!("refresh_token={}", cookie.value))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let cleared = set_cookie(response.headers()).expect("a removal cookie");
    assert_eq!(cleared.value, "");
    assert_eq!(cleared.max_age(), 0);
    assert_eq!(cleared.attribute("Path").as_deref(), Some("/auth"));
    assert_token_error(
        &app.refresh_cookie(&cookie.value).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    );
}

#[tokio::test]
async fn a_refusal_for_a_session_already_ended_keeps_the_cookie() {
    // A late 401 for an old session must not wipe the cookie of a login
    // made since: only the refresh that itself revokes clears it.
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let revoked = app.login_cookie(&email).await.cookie().unwrap();
    app.execute("UPDATE sessions SET revoked_at = now(), revoked_reason = 'logout', revoked_xid = pg_current_xact_id()::text::bigint");
    let refused = app.refresh_cookie(&revoked.value).await;
    assert_token_error(&refused, StatusCode::UNAUTHORIZED, "invalid_grant");
    assert!(refused.headers.get("set-cookie").is_none(), "revoked");

    let expired = app.login_cookie(&email).await.cookie().unwrap();
    app.execute(
        "UPDATE sessions SET expires_at = now() - interval '1 second' WHERE revoked_at IS NULL",
    );
    let refused = app.refresh_cookie(&expired.value).await;
    assert_token_error(&refused, StatusCode::UNAUTHORIZED, "invalid_grant");
    assert!(
        refused.headers.get("set-cookie").is_none(),
        "past its lifetime"
    );
}

#[tokio::test]
async fn logout_with_two_refresh_cookies_is_refused_and_revokes_nothing() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let cookie = app.login_cookie(&email).await.cookie().unwrap();
    let planted = app.login_cookie(&email).await.cookie().unwrap();
    let response = app
        .client
        .post(app.url("/auth/logout"))
        .header("Cookie", format!("refresh_token={}", planted.value))
        .header(
            "Cookie",
            format!("theme=dark; refresh_token={}", cookie.value),
        )
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("set-cookie").is_none());
    let description = assert_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert!(description.starts_with("refresh_token"), "{description}");
    assert_eq!(
        app.count("SELECT count(*) AS n FROM sessions WHERE revoked_at IS NULL"),
        2
    );
    // A token in the body puts the request in body mode: cookies ignored.
    let response = app
        .client
        .post(app.url("/auth/logout"))
        .header(
            "Cookie",
            format!("refresh_token=a; refresh_token={}", cookie.value),
        )
        .json(&json!({ "refresh_token": cookie.value }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM sessions WHERE revoked_at IS NULL"),
        1
    );
}

#[tokio::test]
async fn logout_all_revokes_every_session_of_the_user_only() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let other = app.registered_user().await;
    let a = app.login_body(&email).await;
    let b = app.login_cookie(&email).await;
    let theirs = app.login_body(&other).await;

    let response = app.logout_all(&a.access_token()).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_token_error(
        &app.refresh_body(&a.refresh_token().unwrap()).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    );
    assert_token_error(
        &app.refresh_cookie(&b.cookie().unwrap().value).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM sessions WHERE revoked_reason = 'logout_all'"),
        2
    );
    assert_eq!(
        app.refresh_body(&theirs.refresh_token().unwrap())
            .await
            .status,
        StatusCode::OK
    );

    // Its own token is now of a revoked session.
    assert_error(
        app.logout_all(&a.access_token()).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn bearer_endpoints_answer_401_with_rfc_6750_challenges() {
    let app = spawn_app().await;
    let missing = app
        .client
        .post(app.url("/auth/logout-all"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        missing.headers()["www-authenticate"],
        r#"Bearer realm="auth-server""#
    );
    let description = assert_error(missing, StatusCode::UNAUTHORIZED, "invalid_token").await;
    assert_eq!(description, "missing bearer token");

    for header in [
        "Bearer garbage",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        &format!("Bearer {}", "a.b.c".repeat(2000)),
    ] {
        let response = app
            .client
            .get(app.url("/auth/sessions"))
            .header("Authorization", header)
            .send()
            .await
            .unwrap();
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            challenge.starts_with(r#"Bearer realm="auth-server", error="invalid_token""#),
            "{challenge}"
        );
        assert_error(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
    }
    let _ = json!({});
}
