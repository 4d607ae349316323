use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn the_admin_route_needs_the_admin_role() {
    let mut stack = spawn_stack().await;
    let login = stack.login().await;
    let response = stack.api("/api/admin", Some(&login.access_token)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer realm="resource-api", error="insufficient_scope", error_description="this resource requires the `admin` role""#
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope");

    let Some(control) = stack.control("the_admin_route_needs_the_admin_role (granting the role)")
    else {
        return;
    };
    control.grant_role(&login.email, "admin");
    // Roles are in the token: a new one carries the grant.
    let admin = stack.login_as(&login.email).await;
    assert_eq!(
        stack
            .api("/api/admin", Some(&admin.access_token))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        stack
            .api("/api/admin", Some(&login.access_token))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
}

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
    let ready: serde_json::Value = stack
        .client
        .get(format!("{}/readyz", stack.api_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
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
    let login = stack.login().await;
    // Deltas, not totals: a deployment under test has served others too.
    let before = stack.api("/metrics", None).await.text().await.unwrap();
    stack.api("/api/me", Some(&login.access_token)).await;
    stack.api("/api/me", None).await;
    let text = stack.api("/metrics", None).await.text().await.unwrap();
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
    stack.api("/metrics", None).await;
    let before = stack.api("/metrics", None).await.text().await.unwrap();
    tokio::task::spawn_blocking(move || hostile_methods(&api_url, 10..310))
        .await
        .unwrap();
    let after = stack.api("/metrics", None).await.text().await.unwrap();
    let ((series_before, bytes_before), (series_after, bytes_after)) =
        (hostile(&before), hostile(&after));
    assert!(series_before > 0, "{before}");
    assert_eq!(series_after, series_before, "{after}");
    assert!(
        bytes_after < bytes_before + 256,
        "{bytes_before} → {bytes_after} bytes"
    );
}
