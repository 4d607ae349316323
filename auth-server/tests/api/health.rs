//! Contract § Auth server: `/healthz`, `/readyz` and the JWKS; `503`, never a hang.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn health_readiness_and_jwks() {
    let app = spawn_app().await;
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["alg"], "EdDSA");
    assert_eq!(keys[0]["use"], "sig");
    assert!(keys[0]["kid"].as_str().is_some_and(|k| !k.is_empty()));
    assert!(keys[0].get("d").is_none());
}

#[tokio::test]
async fn a_database_outage_is_503_quickly_never_a_hang() {
    // A server whose database is unreachable (nothing listens on port 1).
    let db = TestDatabase::create();
    let mut app = spawn_app_with(&[]).await;
    drop(db);
    let vars: std::collections::HashMap<String, String> = [
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nowhere"),
        ("RUN_MIGRATIONS", "false"),
        ("AUTH_BIND", "127.0.0.1:0"),
        ("AUTH_INTERNAL_BIND", "127.0.0.1:0"),
        ("HTTP_WORKERS", "1"),
        ("PASSWORD_HASH_WORKERS", "1"),
        ("DATABASE_TIMEOUT", "500ms"),
        ("LOGIN_RATE_LIMIT", "0"),
        ("REFRESH_RATE_LIMIT", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let settings = auth_server::config::Settings::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let down = auth_server::startup::Application::build(settings)
        .await
        .unwrap();
    app.address = format!("http://127.0.0.1:{}", down.port());
    tokio::spawn(down.run_until_stopped());

    let started = Instant::now();
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_error(ready, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    let login = app
        .post_json(
            "/auth/login",
            &json!({ "email": "a@example.com", "password": PASSWORD }),
        )
        .await;
    assert!(login.headers().get("retry-after").is_some());
    assert_error(login, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    let refresh = app.refresh_body(&"A".repeat(43)).await;
    assert_token_error(&refresh, StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "bounded by the checkout timeout: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_exhausted_pool_is_503_not_a_hang() {
    let app = spawn_app_with(&[("DATABASE_POOL_SIZE", "1"), ("DATABASE_TIMEOUT", "300ms")]).await;
    let email = app.registered_user().await;
    // Hold the pool's only connection.
    let pool = app.pool.clone();
    let held = tokio::task::spawn_blocking(move || pool.get().unwrap())
        .await
        .unwrap();
    let response = app
        .post_json(
            "/auth/login",
            &json!({ "email": email, "password": PASSWORD }),
        )
        .await;
    assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    drop(held);
    assert_eq!(
        app.post_json(
            "/auth/login",
            &json!({ "email": email, "password": PASSWORD })
        )
        .await
        .status(),
        StatusCode::OK
    );
}
