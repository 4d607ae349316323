//! Contract § Resource API (health) and § Internal listener: the API's listeners.
//!
//! The resource API's public listener and both internal listeners: health
//! and unknown routes, the security headers on every answer, `/metrics`
//! (what it counts, and that hostile methods add no series), and the
//! internal endpoints kept off the public listeners.

use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn health_and_unknown_routes() {
    let stack = spawn_stack().await;
    assert_eq!(
        stack
            .client
            .get(format!("{}/healthz", stack.api_url))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let ready: serde_json::Value = stack.get_json(format!("{}/readyz", stack.api_url)).await;
    assert_eq!(
        ready,
        serde_json::json!({ "status": "ready" }),
        "nothing more"
    );
    let missing = stack
        .client
        .get(format!("{}/nope", stack.api_url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let stack = spawn_stack().await;
    let login = stack.login().await;
    for response in [
        stack.api("/api/me", Some(&login.access_token)).await,
        stack.api("/api/me", None).await,
        stack.api("/api/me", Some("garbage")).await,
        stack.api("/api/admin", Some(&login.access_token)).await,
        stack.api("/nope", None).await,
        stack.api("/readyz", None).await,
    ] {
        for (name, value) in service_kit::security_headers::SECURITY_HEADERS {
            assert_eq!(
                response.headers().get(*name).and_then(|v| v.to_str().ok()),
                Some(*value),
                "{name} on {}",
                response.url()
            );
        }
    }
}

/// A metric's value in Prometheus text, 0 when absent.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_show_requests_and_the_revocation_state() {
    let stack = spawn_stack().await;
    let Some(internal) = stack.api_internal("metrics_show_requests_and_the_revocation_state")
    else {
        return;
    };
    let metrics = || async {
        let response = stack
            .client
            .get(format!("{internal}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.unwrap()
    };
    let login = stack.login().await;
    // Deltas, not totals: a deployment under test has served others too.
    let before = metrics().await;
    stack.api("/api/me", Some(&login.access_token)).await;
    stack.api("/api/me", None).await;
    let text = metrics().await;
    for series in [
        r#"http_requests_total{method="GET",route="/api/me",status="200"}"#,
        r#"http_requests_total{method="GET",route="/api/me",status="401"}"#,
    ] {
        assert!(
            metric(&text, series) - metric(&before, series) >= 1.0,
            "{series} counted in:\n{text}"
        );
    }
    assert!(metric(&text, "jwks_keys") >= 1.0);
    assert!(text.lines().any(|l| l.starts_with("revoked_sessions ")));
    let age = metric(&text, "revocation_sync_age_seconds");
    assert!((0.0..30.0).contains(&age), "{age}");
    assert!(metric(&text, r#"revocation_syncs_total{outcome="ok"}"#) >= 1.0);
}

/// Requests with made-up 2 KB methods (actix accepts any token as one),
/// each new, straight over TCP.
fn hostile_methods(api_url: &str, requests: std::ops::Range<usize>) {
    use std::io::{Read, Write};
    let address = api_url.trim_start_matches("http://");
    for i in requests {
        let method = format!("M{i:07}{}", "X".repeat(2040));
        let path = if i % 2 == 0 { "/api/me" } else { "/nowhere" };
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        assert!(
            answer.starts_with(b"HTTP/1.1 4"),
            "{}",
            String::from_utf8_lossy(&answer)
        );
    }
}

#[tokio::test]
async fn hostile_methods_add_no_metrics_series() {
    let stack = spawn_stack().await;
    let Some(internal) = stack.api_internal("hostile_methods_add_no_metrics_series") else {
        return;
    };
    let metrics = || async {
        let response = stack
            .client
            .get(format!("{internal}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.unwrap()
    };
    let api_url = stack.api_url.clone();
    // Only the made-up methods' series: a deployment under test may be
    // serving others meanwhile.
    let hostile = |text: &str| -> (usize, usize) {
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.contains(r#"method="other""#))
            .collect();
        (lines.len(), lines.iter().map(|l| l.len()).sum())
    };
    let warm = api_url.clone();
    tokio::task::spawn_blocking(move || hostile_methods(&warm, 0..10))
        .await
        .unwrap();
    // Once, so that /metrics's own series exist before measuring.
    metrics().await;
    let before = metrics().await;
    tokio::task::spawn_blocking(move || hostile_methods(&api_url, 10..310))
        .await
        .unwrap();
    let after = metrics().await;
    let ((series_before, bytes_before), (series_after, bytes_after)) =
        (hostile(&before), hostile(&after));
    assert!(series_before > 0, "{before}");
    assert_eq!(series_after, series_before, "{after}");
    assert!(
        bytes_after < bytes_before + 256,
        "{bytes_before} → {bytes_after} bytes"
    );
}

/// `/metrics` and the revocation feed are on the internal listeners only:
/// the public ones answer `404` there, as for any unknown path.
#[tokio::test]
async fn internal_endpoints_are_not_on_the_public_listeners() {
    let stack = spawn_stack().await;
    for url in [
        format!("{}/metrics", stack.api_url),
        format!("{}/metrics", stack.auth_url),
        format!("{}/internal/revocations", stack.auth_url),
    ] {
        let public = stack.client.get(&url).send().await.unwrap();
        assert_eq!(public.status(), StatusCode::NOT_FOUND, "{url}");
        let body: serde_json::Value = public.json().await.unwrap();
        assert_eq!(body["error"], "not_found");
    }
    let Some(api_internal) =
        stack.api_internal("internal_endpoints_are_not_on_the_public_listeners")
    else {
        return;
    };
    let Some(auth_internal) = stack.auth_internal_url.as_deref() else {
        eprintln!("SKIPPED the auth server's internal listener: AUTH_INTERNAL_URL is not set");
        return;
    };
    for url in [
        format!("{api_internal}/metrics"),
        format!("{auth_internal}/metrics"),
    ] {
        let internal = stack.client.get(&url).send().await.unwrap();
        assert_eq!(internal.status(), StatusCode::OK, "{url}");
    }
    // And the internal listeners serve nothing public.
    for url in [
        format!("{api_internal}/api/me"),
        format!("{api_internal}/readyz"),
        format!("{auth_internal}/.well-known/jwks.json"),
    ] {
        let internal = stack.client.get(&url).send().await.unwrap();
        assert_eq!(internal.status(), StatusCode::NOT_FOUND, "{url}");
    }
}
