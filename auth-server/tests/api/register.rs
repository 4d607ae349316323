//! Contract § Auth server: `POST /auth/register` (inputs, password storage, e-mails).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn register_creates_a_user_with_a_normalised_email() {
    let app = spawn_app().await;
    let local = uuid::Uuid::new_v4().simple().to_string();
    let response = app
        .register(&format!("  Mixed.Case-{local}@Example.COM "), PASSWORD)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    let user = &body["user"];
    assert_eq!(user["email"], format!("mixed.case-{local}@example.com"));
    assert!(uuid::Uuid::parse_str(user["id"].as_str().unwrap()).is_ok());
    let created_at = user["created_at"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(created_at).is_ok());
    assert!(created_at.ends_with('Z'), "UTC: {created_at}");
    assert_eq!(body.as_object().unwrap().len(), 1);
    assert_eq!(
        user.as_object().unwrap().len(),
        3,
        "no hash or other field leaks: {user}"
    );
}

#[tokio::test]
async fn passwords_are_stored_as_argon2id_with_owasp_parameters() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let stored = app.count(&format!(
        "SELECT count(*) AS n FROM users WHERE email = '{email}' AND password_hash LIKE '$argon2id$v=19$m=19456,t=2,p=1$%'"
    ));
    assert_eq!(stored, 1);
    let plain = app.count(&format!(
        "SELECT count(*) AS n FROM users WHERE password_hash LIKE '%{PASSWORD}%'"
    ));
    assert_eq!(plain, 0);
}

#[tokio::test]
async fn an_email_is_taken_regardless_of_case() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let response = app
        .register(&email.to_uppercase(), "another password")
        .await;
    let description = assert_error(response, StatusCode::CONFLICT, "email_taken").await;
    assert!(description.contains("email"));
}

#[tokio::test]
async fn invalid_emails_and_passwords_are_422_naming_the_field() {
    let app = spawn_app().await;
    for email in [
        "",
        "not-an-email",
        "a@b",
        &format!("{}@example.com", "x".repeat(250)),
    ] {
        let description = assert_error(
            app.register(email, PASSWORD).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        )
        .await;
        assert!(description.starts_with("email"), "{description}");
    }
    for password in ["short", &"x".repeat(257)] {
        let description = assert_error(
            app.register(&unique_email(), password).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        )
        .await;
        assert!(description.starts_with("password"), "{description}");
    }
    // 256 multi-byte characters are within bounds.
    assert_eq!(
        app.register(&unique_email(), &"é".repeat(256))
            .await
            .status(),
        StatusCode::CREATED
    );
    let missing = app
        .post_json("/auth/register", &json!({ "email": unique_email() }))
        .await;
    let description =
        assert_error(missing, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;
    assert!(description.starts_with("password"), "{description}");
    assert_eq!(app.count("SELECT count(*) AS n FROM users"), 1);
}

/// The reproduced attack: `ceo<attacker@evil.example>` was accepted, and
/// the mail library read it as a mailbox named "ceo" at the attacker's
/// address, so the verification mail went there. Register and forgot take
/// bare addresses only; nothing is stored, queued or sent for the others.
#[tokio::test]
async fn an_address_with_a_display_name_is_422_and_no_mail_goes_anywhere() {
    let (app, smtp) = spawn_app_with_smtp(&[]).await;
    for email in [
        "ceo<attacker@evil.example>",
        "CEO <attacker@evil.example>",
        "\"ceo@corp.example\" <attacker@evil.example>",
        "ceo@corp.example,attacker@evil.example",
        "ceo@corp.example;attacker@evil.example",
        "ceo@corp.example (attacker@evil.example)",
        "\"c e o\"@corp.example",
        "ceo@[192.0.2.1]",
        "ceo\\@corp.example",
        "ceo:attacker@evil.example",
        "ceo@corp.example\r\nBcc: attacker@evil.example",
    ] {
        let description = assert_error(
            app.register(email, PASSWORD).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        )
        .await;
        assert!(
            description.starts_with("email: "),
            "{email:?}: {description}"
        );
        let description = assert_error(
            app.forgot(email).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        )
        .await;
        assert!(
            description.starts_with("email: "),
            "{email:?}: {description}"
        );
    }
    assert_eq!(app.count("SELECT count(*) AS n FROM users"), 0);
    assert_eq!(app.count("SELECT count(*) AS n FROM mail_outbox"), 0);

    // The worker still sends (a bare address's mail arrives), and none of
    // it went to the address inside the brackets.
    let email = app.registered_user().await;
    smtp.mail_to(&email).await;
    assert!(smtp.messages_to("attacker@evil.example").is_empty());
}

/// An account stored before addresses were checked as they are now gets no
/// mail: the mail worker takes its recipient as an address again, and drops
/// what is not a bare one rather than hand the mail library a string it
/// would read as a display name.
#[tokio::test]
async fn mail_queued_for_an_address_stored_before_the_check_is_dropped() {
    let (app, smtp) = spawn_app_with_smtp(&[]).await;
    app.execute(
        "INSERT INTO users (id, email, password_hash, roles, created_at, updated_at) \
         VALUES (gen_random_uuid(), 'ceo<attacker@evil.example>', 'x', '{}', now(), now())",
    );
    app.execute(
        "INSERT INTO mail_outbox (id, kind, recipient, user_id) \
         SELECT gen_random_uuid(), 'email_verify', email, id FROM users",
    );
    let started = std::time::Instant::now();
    while app
        .count("SELECT count(*) AS n FROM mail_outbox WHERE dropped_reason = 'invalid_recipient'")
        == 0
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "the worker drops the row"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(
        app.count("SELECT count(*) AS n FROM email_tokens"),
        0,
        "no token minted"
    );
    // Another mail goes out after it, and still nothing reached the attacker.
    let email = app.registered_user().await;
    smtp.mail_to(&email).await;
    assert!(
        smtp.messages()
            .iter()
            .all(|m| !m.raw.contains("evil.example"))
    );
}
