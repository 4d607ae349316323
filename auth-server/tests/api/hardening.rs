use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

fn assert_security_headers(headers: &reqwest::header::HeaderMap) {
    for (name, value) in service_kit::security_headers::SECURITY_HEADERS {
        assert_eq!(
            headers.get(*name).and_then(|v| v.to_str().ok()),
            Some(*value),
            "{name}"
        );
    }
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let ok = app
        .post_json(
            "/auth/login",
            &json!({ "email": email, "password": PASSWORD }),
        )
        .await;
    assert_security_headers(ok.headers());
    assert!(
        ok.headers().get("strict-transport-security").is_none(),
        "HSTS in production only"
    );
    for response in [
        app.client.get(app.url("/nope")).send().await.unwrap(),
        app.client
            .get(app.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap(),
        app.post_json("/auth/login", &json!({})).await,
        app.client
            .post(app.url("/auth/login"))
            .header("Origin", "https://evil.example")
            .send()
            .await
            .unwrap(),
    ] {
        assert_security_headers(response.headers());
    }
}

fn raw_request(address: &str, head: &str, body_part: &[u8], wait: Duration) -> String {
    let mut stream = TcpStream::connect(address.trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body_part).unwrap();
    std::thread::sleep(wait);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    let app = spawn_app_with(&[("CLIENT_TIMEOUT", "500ms")]).await;
    let address = app.address.clone();
    let started = Instant::now();
    let answers = tokio::task::spawn_blocking(move || {
        // A body that trickles: 10 of 100 bytes, then nothing.
        let slow_body = raw_request(
            &address,
            "POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n",
            b"{\"email\": ",
            Duration::from_millis(100),
        );
        // A head that never ends.
        let slow_head = raw_request(&address, "POST /auth/login HTTP/1.1\r\nHost: x\r\n", b"", Duration::from_millis(100));
        (slow_body, slow_head)
    })
    .await
    .unwrap();
    assert!(answers.0.starts_with("HTTP/1.1 408"), "{}", answers.0);
    assert!(
        answers.0.contains("\"error\":\"invalid_request\""),
        "{}",
        answers.0
    );
    assert!(
        answers.1.is_empty() || answers.1.starts_with("HTTP/1.1 408"),
        "{}",
        answers.1
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish() {
    let db = TestDatabase::create();
    let free_port = || {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let bind = format!("127.0.0.1:{}", free_port());
    let internal_bind = format!("127.0.0.1:{}", free_port());
    let mut server = Command::new(env!("CARGO_BIN_EXE_auth-server"))
        .arg("serve")
        .env_clear()
        .envs([
            ("DATABASE_URL", db.url.as_str()),
            ("AUTH_BIND", bind.as_str()),
            ("AUTH_INTERNAL_BIND", internal_bind.as_str()),
            ("HTTP_WORKERS", "1"),
            ("RUST_LOG", "warn"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://{bind}");
    let internal = format!("http://{internal_bind}");
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..100 {
        if matches!(client.get(format!("{base}/readyz")).send().await, Ok(r) if r.status() == StatusCode::OK)
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "the server started");

    // An in-flight request: a long poll held for 2 s.
    let cursor: serde_json::Value = client
        .get(format!("{internal}/internal/revocations"))
        .bearer_auth(auth_server::config::DEVELOPMENT_INTERNAL_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let held = client
        .get(format!(
            "{internal}/internal/revocations?wait=2&cursor={}",
            cursor["cursor"].as_str().unwrap()
        ))
        .bearer_auth(auth_server::config::DEVELOPMENT_INTERNAL_TOKEN)
        .send();
    let terminate = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let killed = Command::new("kill")
            .args(["-TERM", &server.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
    };
    let (held, ()) = tokio::join!(held, terminate);
    assert_eq!(
        held.unwrap().status(),
        StatusCode::OK,
        "the in-flight request finished"
    );
    let status = tokio::task::spawn_blocking(move || server.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "a clean exit: {status:?}");
    assert!(
        client.get(format!("{base}/healthz")).send().await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn metrics_count_requests_logins_refreshes_reuse_and_revocations() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let first = app.login_body(&email).await.refresh_token().unwrap();
    app.post_json(
        "/auth/login",
        &json!({ "email": email, "password": "wrong password" }),
    )
    .await;
    let second = app.refresh_body(&first).await.refresh_token().unwrap();
    app.execute("UPDATE refresh_tokens SET consumed_at = now() - interval '1 hour' WHERE consumed_at IS NOT NULL");
    app.refresh_body(&first).await; // reuse: revokes the session
    let other = app.login_body(&email).await.refresh_token().unwrap();
    app.logout_body(&other).await;
    app.client
        .get(app.url("/auth/sessions/not-a-uuid"))
        .send()
        .await
        .unwrap();
    let _ = second;

    let text = app.metrics().await;
    for line in [
        r#"auth_logins_total{outcome="ok"} 2"#,
        r#"auth_logins_total{outcome="failed"} 1"#,
        "auth_registrations_total 1",
        r#"auth_refreshes_total{outcome="rotated"} 1"#,
        r#"auth_refreshes_total{outcome="reuse_detected"} 1"#,
        "auth_reuse_detections_total 1",
        r#"auth_session_revocations_total{reason="reuse_detected"} 1"#,
        r#"auth_session_revocations_total{reason="logout"} 1"#,
        r#"http_requests_total{method="POST",route="/auth/login",status="200"} 2"#,
        r#"http_requests_total{method="POST",route="/auth/login",status="401"} 1"#,
        "db_pool_max_connections 8",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
    // Routes are patterns, not raw paths.
    assert!(!text.contains("not-a-uuid"));
    assert!(text.contains(r#"route="/auth/sessions/{id}""#));
    assert!(text.contains("http_request_duration_seconds_bucket"));
}
