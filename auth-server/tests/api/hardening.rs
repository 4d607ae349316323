//! Feature: hardening: security headers, slow clients, SIGTERM, the request log, metrics.

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

/// The real binary, started on a free port of its own and ready.
struct Binary {
    process: std::process::Child,
    base: String,
    /// The internal listener: `/metrics` and the revocation feed.
    internal: String,
    // Last: dropped after the process is gone.
    _db: TestDatabase,
}

impl Binary {
    async fn start(env: &[(&str, &str)], stdout: Stdio) -> Self {
        let db = TestDatabase::create();
        let free_port = || {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let bind = format!("127.0.0.1:{}", free_port());
        let internal_bind = format!("127.0.0.1:{}", free_port());
        let process = Command::new(env!("CARGO_BIN_EXE_auth-server"))
            .arg("serve")
            .env_clear()
            .envs([
                ("DATABASE_URL", db.url.as_str()),
                ("AUTH_BIND", bind.as_str()),
                ("AUTH_INTERNAL_BIND", internal_bind.as_str()),
                ("HTTP_WORKERS", "1"),
                ("RUST_LOG", "warn"),
                ("NO_COLOR", "1"),
            ])
            .envs(env.iter().copied())
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://{bind}");
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
        Self {
            process,
            base,
            internal: format!("http://{internal_bind}"),
            _db: db,
        }
    }

    fn terminate(&self) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.process.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
    }

    /// Resident memory, in KiB.
    fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.process.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}

/// Never left running, whatever the test did.
impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish() {
    let mut server = Binary::start(&[], Stdio::null()).await;
    let base = server.base.clone();
    let internal = server.internal.clone();
    let client = reqwest::Client::new();

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
        server.terminate();
    };
    let (held, ()) = tokio::join!(held, terminate);
    assert_eq!(
        held.unwrap().status(),
        StatusCode::OK,
        "the in-flight request finished"
    );
    let status = tokio::task::spawn_blocking(move || server.process.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "a clean exit: {status:?}");
    assert!(
        client.get(format!("{base}/healthz")).send().await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn hostile_methods_leave_metrics_and_memory_flat() {
    // Made-up 2 KB methods, each new, at a route and at no route: actix
    // accepts any token as a method.
    fn hostile(address: &str, requests: std::ops::Range<usize>) {
        for i in requests {
            let method = format!("M{i:07}{}", "X".repeat(2040));
            let path = if i % 2 == 0 {
                "/auth/login".to_owned()
            } else {
                format!("/nowhere/{i}")
            };
            let answer = raw_request(
                address,
                &format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
                b"",
                Duration::ZERO,
            );
            assert!(
                answer.starts_with("HTTP/1.1 404") || answer.starts_with("HTTP/1.1 405"),
                "{answer}"
            );
        }
    }
    let server = Binary::start(&[], Stdio::null()).await;
    let client = reqwest::Client::new();
    let metrics_size = || async {
        let response = client
            .get(metrics_url(&server.internal))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.unwrap().len()
    };
    let address = server.base.clone();
    let warm = address.clone();
    tokio::task::spawn_blocking(move || hostile(&warm, 0..200))
        .await
        .unwrap();
    // Once, so that /metrics's own series exist before measuring.
    metrics_size().await;
    let (metrics_before, rss_before) = (metrics_size().await, server.rss_kib());
    tokio::task::spawn_blocking(move || hostile(&address, 200..2200))
        .await
        .unwrap();
    let (metrics_after, rss_after) = (metrics_size().await, server.rss_kib());
    eprintln!(
        "after 200 and 2200 hostile requests: /metrics {metrics_before} and {metrics_after} bytes, resident memory {rss_before} and {rss_after} KiB"
    );
    // The counts grow by a digit or so; no series is added.
    assert!(
        metrics_after < metrics_before + 256,
        "{metrics_before} → {metrics_after}"
    );
    assert!(
        rss_after < rss_before + 4096,
        "{rss_before} KiB → {rss_after} KiB"
    );
    server.terminate();
}

/// The `login_failed` log line of a failed login sent from this test with
/// `X-Forwarded-For: 198.51.100.7`, by a server trusting `trusted`.
async fn login_failed_line(trusted: &str) -> (String, String) {
    let mut server = Binary::start(
        &[("RUST_LOG", "info"), ("TRUSTED_PROXIES", trusted)],
        Stdio::piped(),
    )
    .await;
    let mut stdout = server.process.stdout.take().unwrap();
    let failed = reqwest::Client::new()
        .post(format!("{}/auth/login", server.base))
        .header("X-Forwarded-For", "198.51.100.7")
        .json(&json!({ "email": unique_email(), "password": "not the password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);
    server.terminate();
    // Until the process has exited and closed its end.
    let log = tokio::task::spawn_blocking(move || {
        let mut log = String::new();
        stdout.read_to_string(&mut log).unwrap();
        log
    })
    .await
    .unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("login_failed"))
        .unwrap_or_else(|| panic!("no login_failed line in:\n{log}"))
        .to_owned();
    (line, log)
}

#[tokio::test]
async fn the_request_log_names_the_peer_not_a_forged_forwarded_for() {
    // The tests' address is not among the trusted proxies, so what it
    // claims in X-Forwarded-For is believed nowhere: not in the log either.
    let (line, log) = login_failed_line("10.0.0.0/8").await;
    assert!(line.contains("http.client_ip=127.0.0.1"), "{line}");
    assert!(!log.contains("198.51.100.7"), "{log}");
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_request_log_names_the_client() {
    // Here the test is the trusted proxy: the client it names is logged.
    let (line, _) = login_failed_line("127.0.0.1/32").await;
    assert!(line.contains("http.client_ip=198.51.100.7"), "{line}");
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
    app.consumed_ago("1 hour");
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
