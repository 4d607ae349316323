//! Contract § Auth server: `POST /auth/login` (delivery, timing, rate limits).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn login_sets_the_refresh_cookie_by_default() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let tokens = app.login_cookie(&email).await;

    assert_eq!(tokens.body["token_type"], "Bearer");
    assert_eq!(tokens.body["expires_in"], 900);
    assert!(
        tokens.refresh_token().is_none(),
        "no refresh token in the body in cookie mode"
    );
    assert_eq!(tokens.headers["cache-control"], "no-store");

    let cookie = tokens.cookie().expect("a refresh_token cookie");
    assert_eq!(
        cookie.value.len(),
        78,
        "version 2: session id, generation, key id and a 256-bit mac, base64url"
    );
    for attribute in ["HttpOnly", "Secure"] {
        assert!(cookie.has(attribute), "{attribute} in {}", cookie.raw);
    }
    assert_eq!(cookie.attribute("SameSite").as_deref(), Some("Strict"));
    assert_eq!(cookie.attribute("Path").as_deref(), Some("/auth"));
    let max_age = cookie.max_age();
    assert!(
        (7 * 86_400 - 5..=7 * 86_400).contains(&max_age),
        "{max_age}"
    );
}

#[tokio::test]
async fn login_in_body_mode_returns_the_refresh_token_and_no_cookie() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let tokens = app.login_body(&email).await;
    assert_eq!(tokens.refresh_token().unwrap().len(), 78);
    assert!(tokens.cookie().is_none());
    assert!(tokens.headers.get("set-cookie").is_none());
    assert_eq!(tokens.headers["cache-control"], "no-store");
}

#[tokio::test]
async fn the_access_token_is_an_eddsa_at_jwt_verifiable_from_the_jwks() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let tokens = app.login_body(&email).await;
    let access = tokens.access_token();

    let header = jsonwebtoken::decode_header(&access).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let jwks: serde_json::Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kid"].as_str(), header.kid.as_deref());

    let claims = app.validate(&access).await;
    assert_eq!(claims.email, email);
    assert_eq!(claims.iss, "http://localhost:8080");
    assert_eq!(claims.aud, "resource-api");
    assert!(claims.roles.is_empty());
    assert_eq!(claims.exp - claims.iat, 900);
    assert_eq!(claims.nbf, claims.iat);
}

#[tokio::test]
async fn login_accepts_the_email_in_any_case() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let response = app
        .post_json(
            "/auth/login",
            &json!({ "email": format!(" {} ", email.to_uppercase()), "password": PASSWORD }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_email_and_wrong_password_get_identical_answers() {
    let app = spawn_app().await;
    let email = app.registered_user().await;

    let started = Instant::now();
    let wrong = app
        .post_json(
            "/auth/login",
            &json!({ "email": email, "password": "not the password" }),
        )
        .await;
    let wrong_elapsed = started.elapsed();
    let started = Instant::now();
    let unknown = app
        .post_json(
            "/auth/login",
            &json!({ "email": unique_email(), "password": "not the password" }),
        )
        .await;
    let unknown_elapsed = started.elapsed();

    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get("set-cookie").is_none());
    let wrong_body = wrong.text().await.unwrap();
    let unknown_body = unknown.text().await.unwrap();
    assert_eq!(wrong_body, unknown_body);
    assert!(wrong_body.contains("invalid_credentials"));
    // Both verified a real argon2id hash (no timing assertion: the machine is
    // shared and noisy; the figures are printed for a person to read).
    eprintln!("wrong password: {wrong_elapsed:?}, unknown email: {unknown_elapsed:?}");
    assert_eq!(app.count("SELECT count(*) AS n FROM sessions"), 0);
}

#[tokio::test]
async fn an_unknown_delivery_mode_is_422_naming_the_field() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let response = app
        .post_json("/auth/login", &json!({ "email": email, "password": PASSWORD, "refresh_token_delivery": "carrier-pigeon" }))
        .await;
    let description = assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    )
    .await;
    assert!(
        description.starts_with("refresh_token_delivery"),
        "{description}"
    );
}

#[tokio::test]
async fn login_and_register_are_rate_limited_per_client_ip() {
    let app = spawn_app_with(&[("LOGIN_RATE_LIMIT", "3/1m")]).await;
    let email = app.registered_user().await; // 1
    app.login_body(&email).await; // 2
    app.login_body(&email).await; // 3
    let response = app
        .post_json(
            "/auth/login",
            &json!({ "email": email, "password": PASSWORD }),
        )
        .await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    let response = app.register(&unique_email(), PASSWORD).await;
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    async fn login_from(app: &TestApp, email: &str, forwarded_for: &str) -> StatusCode {
        app.client
            .post(app.url("/auth/login"))
            .header("X-Forwarded-For", forwarded_for)
            .json(
                &json!({ "email": email, "password": PASSWORD, "refresh_token_delivery": "body" }),
            )
            .send()
            .await
            .unwrap()
            .status()
    }

    // Behind a trusted proxy (the tests' own address), each client has its budget.
    let app = spawn_app_with(&[
        ("LOGIN_RATE_LIMIT", "1/1m"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let email = unique_email();
    let register = app.register_from(&email, "198.51.100.1").await;
    assert_eq!(register.status(), StatusCode::CREATED);
    assert_eq!(
        login_from(&app, &email, "198.51.100.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login_from(&app, &email, "6.6.6.6, 198.51.100.2").await,
        StatusCode::OK
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM sessions WHERE client_ip = '198.51.100.2'"),
        1
    );

    // Without trusted proxies the header is ignored: forging it gains nothing.
    let app = spawn_app_with(&[("LOGIN_RATE_LIMIT", "1/1m")]).await;
    let email = app.registered_user().await;
    assert_eq!(
        login_from(&app, &email, "198.51.100.3").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn repeated_forwarded_for_lines_are_read_as_one_list() {
    let app = spawn_app_with(&[
        ("LOGIN_RATE_LIMIT", "1/1m"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let email = unique_email();
    let register = app.register_from(&email, "192.0.2.99").await;
    assert_eq!(register.status(), StatusCode::CREATED);
    // The client forged a first line; the proxy appended the address it saw
    // on a second. The client is the right-most untrusted hop of both.
    let login = |forged: &'static str| {
        app.client
            .post(app.url("/auth/login"))
            .header("X-Forwarded-For", forged)
            .header("X-Forwarded-For", "198.51.100.2")
            .json(&json!({ "email": email, "password": PASSWORD }))
            .send()
    };
    assert_eq!(
        login("198.51.100.1").await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM sessions WHERE client_ip = '198.51.100.2'"),
        1
    );
    // A new forged first line buys no new budget.
    assert_eq!(
        login("198.51.100.3").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn ipv6_clients_share_the_budget_of_their_64() {
    let app = spawn_app_with(&[
        ("LOGIN_RATE_LIMIT", "1/1m"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let register = |email: String, from: &'static str| {
        app.client
            .post(app.url("/auth/register"))
            .header("X-Forwarded-For", from)
            .json(&json!({ "email": email, "password": PASSWORD }))
            .send()
    };
    let first = register(unique_email(), "2001:db8:1:1::1").await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let same_64 = register(unique_email(), "2001:db8:1:1:ffff::2")
        .await
        .unwrap();
    assert_error(same_64, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    let next_64 = register(unique_email(), "2001:db8:1:2::1").await.unwrap();
    assert_eq!(next_64.status(), StatusCode::CREATED);
}

/// Iterations that make checking a password take a while (the tests'
/// default takes milliseconds), so that a reset or change can commit while
/// a login hashes.
const SLOW_ITERATIONS: &str = "16";

/// A user whose stored hash is slow to check, registered on `slow`; returns
/// the email and how long hashing the password took there (about what
/// checking it takes).
async fn slow_user(slow: &TestApp) -> (String, std::time::Duration) {
    let email = unique_email();
    let started = Instant::now();
    assert_eq!(
        slow.register(&email, PASSWORD).await.status(),
        StatusCode::CREATED
    );
    (email, started.elapsed())
}

/// A login of `email` with [`PASSWORD`] started after `delay`; its answer,
/// and when it came.
async fn login_after(app: &TestApp, email: &str, delay: std::time::Duration) -> (Tokens, Instant) {
    tokio::time::sleep(delay).await;
    let tokens = app.login_with(email, PASSWORD).await;
    (tokens, Instant::now())
}

/// The user's sessions that have not been revoked.
fn live_sessions(app: &TestApp, email: &str) -> i64 {
    app.count(&format!(
        "SELECT count(*) AS n FROM sessions JOIN users ON users.id = sessions.user_id \
         WHERE users.email = '{email}' AND sessions.revoked_at IS NULL"
    ))
}

#[tokio::test]
async fn a_login_that_checked_the_old_password_gets_no_session_after_a_reset() {
    let (slow, smtp) = spawn_app_with_smtp(&[("ARGON2_ITERATIONS", SLOW_ITERATIONS)]).await;
    // The reset hashes its new password cheaply on another instance: it
    // commits well within the login's check.
    let fast = slow.replica_with(&[("ARGON2_ITERATIONS", "1")]).await;
    let (email, hashing) = slow_user(&slow).await;
    assert_eq!(fast.forgot(&email).await.status(), StatusCode::ACCEPTED);
    let token = smtp
        .mail_titled(&email, "Reset your password")
        .await
        .token("reset");

    let started = Instant::now();
    let reset = async {
        // The login has read the old hash and is checking the password.
        tokio::time::sleep(hashing / 4).await;
        let status = fast.reset(&token, "a brand new passphrase").await.status();
        (status, Instant::now())
    };
    let ((login, login_answered), (reset, reset_done)) =
        futures_util::future::join(login_after(&slow, &email, Duration::ZERO), reset).await;
    eprintln!(
        "checking the password takes {hashing:?}; the reset committed after {:?}, the login answered after {:?}",
        reset_done - started,
        login_answered - started
    );
    assert_eq!(reset, StatusCode::NO_CONTENT);
    assert!(
        reset_done < login_answered,
        "the reset came while the login hashed"
    );
    assert_token_error(&login, StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert_eq!(live_sessions(&slow, &email), 0);
}

/// Waits until an update of a user's row waits for its lock.
async fn user_update_waiting(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.count(
        "SELECT count(*) AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND wait_event_type = 'Lock' \
         AND query LIKE 'UPDATE \"users\"%'",
    ) == 0
    {
        assert!(
            Instant::now() < deadline,
            "no update waits for the user's row"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_login_that_checked_the_old_password_gets_no_session_after_a_change() {
    use diesel::connection::SimpleConnection;

    let slow = spawn_app_with(&[("ARGON2_ITERATIONS", SLOW_ITERATIONS)]).await;
    let fast = slow.replica_with(&[("ARGON2_ITERATIONS", "1")]).await;
    let (email, hashing) = slow_user(&slow).await;
    let here = fast.login_with(&email, PASSWORD).await;
    assert_eq!(here.status, StatusCode::OK);

    // The change checks the current password (as long as a login does),
    // then waits for the user's row, which the test holds: it commits only
    // once the test lets go, while a login that read the old hash is
    // checking it.
    let mut holder = slow.conn();
    holder
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM users WHERE email = '{email}' FOR NO KEY UPDATE"
        ))
        .unwrap();
    let started = Instant::now();
    let change = async {
        let status = fast
            .change_password(&here.access_token(), PASSWORD, "a brand new passphrase")
            .await
            .status();
        (status, Instant::now())
    };
    let login_during_the_change = async {
        user_update_waiting(&slow).await;
        let login = login_after(&slow, &email, Duration::ZERO);
        let release = async {
            tokio::time::sleep(hashing / 4).await;
            holder.batch_execute("COMMIT").unwrap();
            Instant::now()
        };
        futures_util::future::join(login, release).await
    };
    let ((change, change_done), ((login, login_answered), released)) =
        futures_util::future::join(change, login_during_the_change).await;
    eprintln!(
        "checking the password takes {hashing:?}; the change committed after {:?}, the login answered after {:?}",
        change_done - started,
        login_answered - started
    );
    assert_eq!(change, StatusCode::NO_CONTENT);
    // The change's answer may reach the test after the login's: the login
    // waited for the row the change held, and answers once it commits. Its
    // `401` is what shows the order; the release shows it hashed meanwhile.
    assert!(
        released < login_answered,
        "the change came while the login hashed"
    );
    let _ = change_done;
    assert_token_error(&login, StatusCode::UNAUTHORIZED, "invalid_credentials");
    // The session the change was made from is the only one left.
    assert_eq!(live_sessions(&slow, &email), 1);
}
