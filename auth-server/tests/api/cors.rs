//! Feature: CORS on the auth server (`ALLOWED_ORIGINS`).
//!
//! CORS for the browser app: an allowed origin is echoed (never `*`) with
//! credentials; any other origin gets no CORS grant at all, and its
//! state-changing requests are still refused by the Origin guard.

use reqwest::header::HeaderMap;
use reqwest::{Method, Response, StatusCode};
use serde_json::json;

use crate::helpers::*;

const ALLOWED: &str = "http://localhost:3000";
const FOREIGN: &str = "https://evil.example";

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

/// The comma-separated list of a header, lower case.
fn list(headers: &HeaderMap, name: &str) -> Vec<String> {
    header(headers, name)
        .unwrap_or_default()
        .split(',')
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
        .collect()
}

async fn preflight(
    app: &TestApp,
    path: &str,
    origin: &str,
    method: &str,
    headers: &str,
) -> Response {
    let mut request = app
        .client
        .request(Method::OPTIONS, app.url(path))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", method);
    if !headers.is_empty() {
        request = request.header("Access-Control-Request-Headers", headers);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn preflights_from_an_allowed_origin_are_answered_with_credentials() {
    let app = spawn_app().await;
    let cases = [
        ("/auth/login", "POST", "content-type"),
        ("/auth/refresh", "POST", ""),
        ("/auth/logout-all", "POST", "authorization"),
        ("/auth/sessions", "GET", "authorization"),
        (
            "/auth/sessions/7d4c8c0e-4c55-4a33-9d4e-8f0f3c6b2a10",
            "DELETE",
            "authorization",
        ),
    ];
    for origin in [ALLOWED, "https://app.example.com"] {
        for (path, method, headers) in cases {
            let response = preflight(&app, path, origin, method, headers).await;
            let h = response.headers();
            assert!(response.status().is_success(), "{path}: {response:?}");
            assert_eq!(header(h, "access-control-allow-origin"), Some(origin));
            assert_eq!(header(h, "access-control-allow-credentials"), Some("true"));
            assert!(list(h, "access-control-allow-methods").contains(&method.to_ascii_lowercase()));
            for wanted in ["content-type", "authorization"] {
                assert!(
                    list(h, "access-control-allow-headers").contains(&wanted.to_owned()),
                    "{path}: {h:?}"
                );
            }
            assert!(list(h, "vary").contains(&"origin".to_owned()), "{h:?}");
        }
    }
}

#[tokio::test]
async fn a_preflight_from_a_foreign_origin_gets_no_grant() {
    let app = spawn_app().await;
    for origin in [FOREIGN, "null", "http://localhost:3000.evil.example"] {
        for (path, method) in [("/auth/login", "POST"), ("/auth/sessions", "GET")] {
            let response = preflight(&app, path, origin, method, "content-type").await;
            assert!(
                response
                    .headers()
                    .get("access-control-allow-origin")
                    .is_none(),
                "{origin} {path}: {:?}",
                response.headers()
            );
            assert!(
                response
                    .headers()
                    .get("access-control-allow-credentials")
                    .is_none()
            );
            assert_error(response, StatusCode::FORBIDDEN, "forbidden_origin").await;
        }
    }
}

#[tokio::test]
async fn a_preflight_for_a_method_or_header_not_allowed_gets_no_grant() {
    let app = spawn_app().await;
    for (method, headers) in [("PUT", "content-type"), ("POST", "x-custom")] {
        let response = preflight(&app, "/auth/login", ALLOWED, method, headers).await;
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none()
        );
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
}

#[tokio::test]
async fn answers_to_an_allowed_origin_are_readable_by_it_errors_included() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let login = app
        .client
        .post(app.url("/auth/login"))
        .header("Origin", ALLOWED)
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    let h = login.headers().clone();
    assert_eq!(login.status(), StatusCode::OK);
    assert_eq!(header(&h, "access-control-allow-origin"), Some(ALLOWED));
    assert_eq!(header(&h, "access-control-allow-credentials"), Some("true"));
    assert!(set_cookie(&h).is_some(), "the browser gets its cookie");

    // A refused refresh must be readable too, or the app cannot tell an
    // ended session from a network failure.
    let refused = app
        .client
        .post(app.url("/auth/refresh"))
        .header("Origin", ALLOWED)
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(refused.headers(), "access-control-allow-origin"),
        Some(ALLOWED)
    );
    assert_error(refused, StatusCode::UNAUTHORIZED, "invalid_grant").await;

    let sessions = app
        .client
        .get(app.url("/auth/sessions"))
        .header("Origin", ALLOWED)
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(sessions.headers(), "access-control-allow-origin"),
        Some(ALLOWED)
    );
    assert_eq!(sessions.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_foreign_origin_is_never_granted_and_still_refused() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let response = app
        .client
        .post(app.url("/auth/login"))
        .header("Origin", FOREIGN)
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert!(set_cookie(response.headers()).is_none());
    assert_error(response, StatusCode::FORBIDDEN, "forbidden_origin").await;

    // A safe request passes the guard, but its answer is not granted to the
    // foreign origin, so a browser there cannot read it.
    let jwks = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .header("Origin", FOREIGN)
        .send()
        .await
        .unwrap();
    assert_eq!(jwks.status(), StatusCode::OK);
    assert!(jwks.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn requests_without_an_origin_get_no_cors_headers() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let login = app.login_cookie(&email).await;
    assert!(login.headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn origins_are_matched_exactly_never_by_wildcard() {
    let app = spawn_app_with(&[("ALLOWED_ORIGINS", "https://app.example.com")]).await;
    for origin in [
        "https://app.example.com:443",
        "http://app.example.com",
        ALLOWED,
    ] {
        let response = preflight(&app, "/auth/refresh", origin, "POST", "").await;
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "{origin}"
        );
    }
    let response = preflight(&app, "/auth/refresh", "https://app.example.com", "POST", "").await;
    let allow = header(response.headers(), "access-control-allow-origin").unwrap();
    assert_eq!(allow, "https://app.example.com");
    assert_ne!(allow, "*");
}

#[tokio::test]
async fn put_is_granted_across_origins_only_under_admin() {
    let app = spawn_app().await;
    let path = format!("/admin/users/{}/roles", uuid::Uuid::new_v4());
    let response = preflight(&app, &path, ALLOWED, "PUT", "content-type,authorization").await;
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        ALLOWED,
        "{:?}",
        response.headers()
    );
    let methods = response.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(methods.contains("PUT"), "{methods}");
    let elsewhere = preflight(&app, "/auth/sessions", ALLOWED, "PUT", "content-type").await;
    assert!(
        elsewhere
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert_error(elsewhere, StatusCode::BAD_REQUEST, "invalid_request").await;
}
