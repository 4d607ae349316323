//! Contract § Delivery of the refresh token: a foreign `Origin` is `403 forbidden_origin`.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_foreign_origin_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let login = app.login_body(&email).await;
    let token = login.refresh_token().unwrap();

    let posts = [
        (
            "/auth/register",
            json!({ "email": unique_email(), "password": PASSWORD }),
        ),
        (
            "/auth/login",
            json!({ "email": email, "password": PASSWORD }),
        ),
        ("/auth/refresh", json!({ "refresh_token": token })),
        ("/auth/logout", json!({ "refresh_token": token })),
    ];
    for origin in [
        "https://evil.example",
        "null",
        "http://localhost:3000.evil.example",
    ] {
        for (path, body) in &posts {
            let response = app
                .client
                .post(app.url(path))
                .header("Origin", origin)
                .json(body)
                .send()
                .await
                .unwrap();
            assert_error(response, StatusCode::FORBIDDEN, "forbidden_origin").await;
        }
        let response = app
            .client
            .post(app.url("/auth/logout-all"))
            .header("Origin", origin)
            .bearer_auth(login.access_token())
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::FORBIDDEN, "forbidden_origin").await;
    }
    assert_eq!(app.count("SELECT count(*) AS n FROM users"), 1);
    assert_eq!(app.count("SELECT count(*) AS n FROM sessions"), 1);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM sessions WHERE revoked_at IS NOT NULL"),
        0
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM sessions WHERE generation <> 1"),
        0
    );
}

#[tokio::test]
async fn allowed_origins_and_requests_without_origin_pass() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    for origin in ["http://localhost:3000", "https://app.example.com"] {
        let response = app
            .client
            .post(app.url("/auth/login"))
            .header("Origin", origin)
            .json(&json!({ "email": email, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{origin}");
    }
    // GET requests are not state-changing: the JWKS is readable from anywhere.
    let jwks = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(jwks.status(), StatusCode::OK);
}
