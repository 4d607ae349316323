//! Contract § Account lifecycle: forgot password and reset by e-mail.
//!
//! Forgot password and reset by e-mail, read from a real SMTP server.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const NEW_PASSWORD: &str = "a brand new passphrase";

async fn forgot_accepted(app: &TestApp, email: &str) {
    let response = app.forgot(email).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({}));
}

/// The newest reset mail's token, once it arrives.
async fn reset_token(smtp: &SmtpServer, email: &str) -> String {
    smtp.mail_titled(email, "Reset your password")
        .await
        .token("reset")
}

/// Waits until the mail worker has nothing left to do.
async fn drained(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while app
        .count("SELECT count(*) AS n FROM mail_outbox WHERE sent_at IS NULL AND dropped_at IS NULL")
        > 0
    {
        assert!(Instant::now() < deadline, "the worker drains the queue");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_whole_reset_flow_from_the_delivered_message() {
    let (app, smtp) = spawn_app_with_smtp(&[]).await;
    let email = app.registered_user().await;
    let phone = app.login_body(&email).await;
    let laptop = app.login_cookie(&email).await;

    forgot_accepted(&app, &email).await;
    let mails = smtp.wait_for(&email, 2, Duration::from_secs(15)).await;
    let mail = mails
        .iter()
        .find(|m| m.subject() == "Reset your password")
        .expect("a reset mail");
    let link = mail.link("reset");
    assert!(
        link.starts_with(&format!("{PUBLIC_URL}/#reset=")),
        "the token travels in the fragment: {link}"
    );
    assert!(mail.raw.contains("within 30 minutes"), "{}", mail.raw);
    let token = mail.token("reset");

    let response = app.reset(&token, NEW_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    // Every session ended, whatever its delivery.
    assert_token_error(
        &app.refresh_body(&phone.refresh_token().unwrap()).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    );
    assert_token_error(
        &app.refresh_cookie(&laptop.cookie().unwrap().value).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    );
    let sid = app.validate(&phone.access_token()).await.sid;
    assert_eq!(
        app.session_revoked_reason(sid).as_deref(),
        Some("password_reset")
    );

    // The new password works, the old one no longer does.
    assert_token_error(
        &app.login_with(&email, PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    let fresh = app.login_with(&email, NEW_PASSWORD).await;
    assert_eq!(fresh.status, StatusCode::OK);
    // Following the link proved the address too.
    assert!(app.validate(&fresh.access_token()).await.email_verified);

    // Single use.
    assert_error(
        app.reset(&token, "yet another passphrase").await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;

    let types = app.event_types(&fresh.access_token()).await;
    let reset_at = types.iter().position(|t| t == "password_reset").unwrap();
    let requested_at = types
        .iter()
        .position(|t| t == "password_reset_requested")
        .unwrap();
    assert!(reset_at < requested_at, "newest first: {types:?}");
}

#[tokio::test]
async fn expired_reused_and_junk_tokens_are_400_invalid_grant() {
    let (app, smtp) = spawn_app_with_smtp(&[]).await;
    let email = app.registered_user().await;
    forgot_accepted(&app, &email).await;
    let token = reset_token(&smtp, &email).await;

    app.execute("UPDATE email_tokens SET expires_at = now() - interval '1 second'");
    let description = assert_error(
        app.reset(&token, NEW_PASSWORD).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert!(description.contains("expired"), "{description}");
    assert_eq!(
        app.login_with(&email, PASSWORD).await.status,
        StatusCode::OK,
        "nothing changed"
    );

    for junk in [
        "",
        "short",
        &"a".repeat(43),
        &"!".repeat(43),
        &"a".repeat(5000),
    ] {
        assert_error(
            app.reset(junk, NEW_PASSWORD).await,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        )
        .await;
    }
    // A verification token is not a reset token.
    let verify = smtp
        .mail_titled(&email, "Confirm your e-mail address")
        .await
        .token("verify");
    assert_error(
        app.reset(&verify, NEW_PASSWORD).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;

    // Fields are checked first, and named.
    let d = assert_error(
        app.reset(&token, "short").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    )
    .await;
    assert!(d.starts_with("new_password"), "{d}");
    let d = assert_error(
        app.post_json(
            "/auth/password/reset",
            &json!({ "new_password": NEW_PASSWORD }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    )
    .await;
    assert!(d.starts_with("token"), "{d}");
}

#[tokio::test]
async fn a_newer_request_kills_older_links() {
    let (app, smtp) = spawn_app_with_smtp(&[]).await;
    let email = app.registered_user().await;
    forgot_accepted(&app, &email).await;
    let first = reset_token(&smtp, &email).await;
    forgot_accepted(&app, &email).await;
    smtp.wait_for(&email, 3, Duration::from_secs(15)).await;
    let second = reset_token(&smtp, &email).await;
    assert_ne!(first, second);
    assert_error(
        app.reset(&first, NEW_PASSWORD).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        app.reset(&second, NEW_PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn a_completed_reset_drops_reset_mail_still_queued() {
    let (app, smtp) = spawn_app_with_smtp(&[]).await;
    let email = app.registered_user().await;
    forgot_accepted(&app, &email).await;
    let token = reset_token(&smtp, &email).await;
    // The message arrives before its worker records it sent: wait for
    // that, or the first row still counts as pending below.
    let sent = "SELECT count(*) AS n FROM mail_outbox WHERE kind = 'password_reset' AND sent_at IS NOT NULL";
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.count(sent) == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A later request that no worker has minted a link for yet (its
    // attempt falls due in a minute: after a failed one, or a lease).
    app.execute(&format!(
        "INSERT INTO mail_outbox (id, kind, recipient, due_at) \
         VALUES (gen_random_uuid(), 'password_reset', '{email}', now() + interval '1 minute')"
    ));

    assert_eq!(
        app.reset(&token, NEW_PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );
    // No link is minted and sent after the reset: the mail is dropped.
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM mail_outbox WHERE kind = 'password_reset' \
             AND sent_at IS NULL AND dropped_at IS NULL"
        ),
        0
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM mail_outbox WHERE dropped_reason = 'password_reset'"),
        1
    );
}

#[tokio::test]
async fn concurrent_resets_with_one_token_give_exactly_one_204() {
    let (app, smtp) = spawn_app_with_smtp(&[]).await;
    let email = app.registered_user().await;
    forgot_accepted(&app, &email).await;
    let token = reset_token(&smtp, &email).await;
    let attempts = (0..8).map(|i| {
        let (app, token) = (&app, token.clone());
        async move {
            app.reset(&token, &format!("{NEW_PASSWORD} {i}"))
                .await
                .status()
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::NO_CONTENT)
            .count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::NO_CONTENT || *s == StatusCode::BAD_REQUEST),
        "{statuses:?}"
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM audit_events WHERE type = 'password_reset'"),
        1
    );
}

#[tokio::test]
async fn a_mail_server_down_during_the_request_delivers_later() {
    let (app, mut smtp) = spawn_app_with_smtp(&[]).await;
    let email = app.registered_user().await;
    smtp.mail_to(&email).await; // The verification mail, while it was up.
    smtp.stop();

    let started = Instant::now();
    forgot_accepted(&app, &email).await;
    let answered = started.elapsed();

    // The worker tried, failed, and keeps the mail with a backoff.
    let tried = {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let n = app.count(
                "SELECT count(*) AS n FROM mail_outbox WHERE kind = 'password_reset' \
                 AND sent_at IS NULL AND dropped_at IS NULL AND attempts >= 1 AND last_error IS NOT NULL",
            );
            if n == 1 || Instant::now() > deadline {
                break n;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert_eq!(tried, 1, "a failed attempt is recorded and the mail kept");
    // The failed attempt's token, as stored, for comparison once delivered.
    app.execute(
        "CREATE TABLE failed_attempt AS SELECT token_hash FROM email_tokens \
         WHERE purpose = 'password_reset'",
    );
    tokio::time::sleep(Duration::from_secs(1)).await;

    smtp.resume();
    let token = reset_token(&smtp, &email).await;
    eprintln!(
        "SMTP down: forgot answered in {answered:?}; the mail arrived {:?} after the request",
        started.elapsed()
    );
    // The retry drew a fresh token: the failed attempt's (which a server
    // that failed after accepting the message may have delivered) is dead,
    // and the one delivered is the one stored.
    assert_eq!(
        app.count("SELECT count(*) AS n FROM email_tokens JOIN failed_attempt USING (token_hash)"),
        0,
        "the retry replaced the token"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM email_tokens \
             WHERE token_hash = sha256(convert_to('{token}', 'UTF8')) AND spent_at IS NULL"
        )),
        1,
        "the delivered token is the stored one"
    );
    assert_eq!(
        app.reset(&token, NEW_PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn queued_mail_outlives_the_process_that_queued_it() {
    // This server's mail server is nowhere: it queues, tries, and fails.
    let a = spawn_app_with(&[("SMTP_URL", "smtp://127.0.0.1:9")]).await;
    let email = a.registered_user().await;
    forgot_accepted(&a, &email).await;
    let pending =
        "FROM mail_outbox WHERE kind = 'password_reset' AND sent_at IS NULL AND dropped_at IS NULL";
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.count(&format!(
        "SELECT count(*) AS n {pending} AND attempts >= 1 AND last_error IS NOT NULL"
    )) == 0
    {
        assert!(Instant::now() < deadline, "a failed attempt is recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Out of this server's reach from now on (its worker looks at most
    // every few seconds, and finds nothing due), as if it had stopped.
    a.execute(&format!(
        "UPDATE mail_outbox SET due_at = now() + interval '1 hour' WHERE id IN (SELECT id {pending})"
    ));
    // Another process on the same database, whose mail server works: the
    // restart after the operator fixed SMTP_URL. It sends what is queued.
    let smtp = SmtpServer::start();
    let b = a.replica_with(&[("SMTP_URL", &smtp.url())]).await;
    a.execute(&format!(
        "UPDATE mail_outbox SET due_at = now() WHERE id IN (SELECT id {pending})"
    ));
    // A request that queues mail wakes B's worker at once (this one for an
    // address no account has: nothing is sent for it).
    forgot_accepted(&b, &unique_email()).await;
    let token = reset_token(&smtp, &email).await;
    assert_eq!(
        b.reset(&token, NEW_PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn unknown_addresses_get_the_same_answer_and_no_mail() {
    let (app, smtp) = spawn_app_with_smtp(&[]).await;
    let known = app.registered_user().await;
    smtp.mail_to(&known).await;
    let unknown = unique_email();

    // Interleaved, so both see the same machine; the first of each warms up.
    const ROUNDS: usize = 30;
    let (mut known_times, mut unknown_times) = (Vec::new(), Vec::new());
    for round in 0..=ROUNDS {
        for (email, times) in [(&known, &mut known_times), (&unknown, &mut unknown_times)] {
            let started = Instant::now();
            let response = app.forgot(email).await;
            let took = started.elapsed();
            assert_eq!(response.status(), StatusCode::ACCEPTED);
            let headers = response.headers().clone();
            assert_eq!(headers["content-type"], "application/json");
            assert_eq!(response.bytes().await.unwrap().as_ref(), b"{}");
            if round > 0 {
                times.push(took);
            }
        }
    }
    let summary = |times: &mut Vec<Duration>| {
        times.sort();
        (times[times.len() / 2], times[times.len() * 95 / 100])
    };
    let (known_p50, known_p95) = summary(&mut known_times);
    let (unknown_p50, unknown_p95) = summary(&mut unknown_times);
    eprintln!(
        "forgot timing over {ROUNDS} requests each: known address p50 {known_p50:?} p95 {known_p95:?}; \
         unknown address p50 {unknown_p50:?} p95 {unknown_p95:?}; p50 ratio {:.2}",
        known_p50.as_secs_f64() / unknown_p50.as_secs_f64()
    );

    // Let the worker catch up: the unknown address gets nothing, and nothing
    // of it is kept.
    drained(&app).await;
    assert!(smtp.messages_to(&unknown).is_empty());
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM mail_outbox WHERE recipient = '{unknown}'"
        )),
        0
    );
}

#[tokio::test]
async fn limits_per_recipient_drop_mail_silently_and_only_the_address_limit_answers_429() {
    let (app, smtp) = spawn_app_with_smtp(&[
        ("MAIL_RECIPIENT_LIMIT", "2/1h"),
        ("MAIL_REQUEST_RATE_LIMIT", "5/1m"),
    ])
    .await;
    let email = app.registered_user().await; // One verification mail: 1 of 2.
    for _ in 0..4 {
        forgot_accepted(&app, &email).await;
    }
    drained(&app).await;
    assert_eq!(smtp.messages_to(&email).len(), 2, "the limit is 2 an hour");
    assert_eq!(
        app.count("SELECT count(*) AS n FROM mail_outbox WHERE dropped_reason = 'recipient_limit'"),
        3
    );
    // The client address's own budget (5 a minute): 4 used, one left.
    forgot_accepted(&app, &unique_email()).await;
    let response = app.forgot(&unique_email()).await;
    assert!(response.headers().contains_key("retry-after"));
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

#[tokio::test]
async fn forgot_checks_its_input() {
    let app = spawn_app().await;
    for body in [
        json!({}),
        json!({ "email": "not an address" }),
        json!({ "email": 7 }),
    ] {
        let d = assert_error(
            app.post_json("/auth/password/forgot", &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        )
        .await;
        assert!(d.starts_with("email"), "{d}");
    }
}

#[tokio::test]
async fn no_usable_token_is_ever_stored() {
    let (app, smtp) = spawn_app_with_smtp(&[]).await;
    let email = app.registered_user().await;
    forgot_accepted(&app, &email).await;
    let reset = reset_token(&smtp, &email).await;
    let verify = smtp
        .mail_titled(&email, "Confirm your e-mail address")
        .await
        .token("verify");
    // Every row of every table, as text (bytes as hex), searched for them.
    let dump = app.dump_tables();
    assert!(dump.contains("password_reset"), "the dump holds the queue");
    for token in [&reset, &verify] {
        assert!(!dump.contains(token.as_str()), "a token in the database");
        let hex: String = token.bytes().map(|b| format!("{b:02x}")).collect();
        assert!(!dump.contains(&hex), "a token in the database, as bytes");
    }
}
