//! Contract § Second factors and step-up: TOTP, recovery codes, the login's second step, reauthentication.
//!
//! Codes are computed here from the `otpauth://` URI the server gives (by
//! totp-rs; Python's pyotp does the same from outside in
//! `scripts/interop`), one step ahead when a step was already used: the
//! server accepts one step either side.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::WWW_AUTHENTICATE;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use totp_rs::TOTP;

use crate::helpers::*;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A user with TOTP on: the email, the authenticator, the recovery codes.
struct Enrolled {
    email: String,
    totp: TOTP,
    recovery_codes: Vec<String>,
    /// The session the enrolment was made in (password only, aal1).
    tokens: Tokens,
    /// Steps already used: the next code is for a later one.
    next_step: u64,
}

impl Enrolled {
    /// A code for a step not used yet (at most one ahead of now).
    fn code(&mut self) -> String {
        let step = (now() / 30).max(self.next_step);
        assert!(
            step <= now() / 30 + 1,
            "no unused step left within the skew"
        );
        self.next_step = step + 1;
        self.totp.generate(step * 30)
    }

    /// The code [`Self::code`] would give, for a try the server will not
    /// check (so the step stays unused).
    fn peek(&self) -> String {
        self.totp.generate((now() / 30).max(self.next_step) * 30)
    }
}

async fn json_of(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn enrol(app: &TestApp) -> Enrolled {
    let email = app.registered_user().await;
    let tokens = app.login_body(&email).await;
    let (status, started) = json_of(
        app.post_bearer("/auth/mfa/totp", &tokens.access_token(), None)
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let uri = started["otpauth_uri"].as_str().unwrap();
    let totp = TOTP::from_url(uri).unwrap();
    assert_eq!(
        totp.get_secret_base32(),
        started["secret"].as_str().unwrap()
    );
    assert_eq!(totp.secret.len(), 20, "160 bits");
    let mut enrolled = Enrolled {
        email,
        totp,
        recovery_codes: Vec::new(),
        tokens,
        next_step: 0,
    };
    let code = enrolled.code();
    let (status, confirmed) = json_of(
        app.post_bearer(
            "/auth/mfa/totp/confirm",
            &enrolled.tokens.access_token(),
            Some(&json!({ "code": code })),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    enrolled.recovery_codes = confirmed["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(enrolled.recovery_codes.len(), 10);
    enrolled
}

async fn password_step(app: &TestApp, email: &str) -> (StatusCode, Value) {
    json_of(
        app.post_json(
            "/auth/login",
            &json!({ "email": email, "password": PASSWORD, "refresh_token_delivery": "body" }),
        )
        .await,
    )
    .await
}

async fn mfa_token(app: &TestApp, email: &str) -> String {
    let (status, body) = password_step(app, email).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "mfa_required");
    body["mfa_token"].as_str().unwrap().to_owned()
}

async fn second_step(app: &TestApp, mfa_token: &str, factor: Value) -> Tokens {
    let mut body = json!({ "mfa_token": mfa_token, "refresh_token_delivery": "body" });
    body.as_object_mut()
        .unwrap()
        .extend(factor.as_object().unwrap().clone());
    Tokens::read(app.post_json("/auth/login/mfa", &body).await).await
}

async fn mfa_status(app: &TestApp, access: &str) -> Value {
    let response = app
        .client
        .get(app.url("/auth/mfa"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_login_with_totp_is_aal2_and_no_session_exists_before_the_code() {
    let app = spawn_app().await;
    let mut user = enrol(&app).await;
    let status = mfa_status(&app, &user.tokens.access_token()).await;
    assert_eq!(status["totp"]["enabled"], true);
    assert!(status["totp"]["created_at"].is_string());
    assert_eq!(status["recovery_codes_remaining"], 10);
    assert_eq!(status["passkeys"], json!([]));
    // The enrolling session keeps what it recorded.
    let before = app.validate(&user.tokens.access_token()).await;
    assert_eq!(before.acr.as_deref(), Some("aal1"));
    assert_eq!(before.amr, ["pwd"]);

    let sessions = |app: &TestApp| app.count("SELECT count(*) AS n FROM sessions");
    let live = sessions(&app);
    let (status, body) = password_step(&app, &user.email).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["methods"], json!(["totp", "recovery_code"]));
    assert_eq!(body["mfa_token"].as_str().unwrap().len(), 43);
    assert_eq!(sessions(&app), live, "no session before the second factor");
    let token = body["mfa_token"].as_str().unwrap().to_owned();

    let wrong = second_step(&app, &token, json!({ "code": "000000" })).await;
    assert_token_error(&wrong, StatusCode::UNAUTHORIZED, "invalid_credentials");
    let code = user.code();
    let tokens = second_step(&app, &token, json!({ "code": code })).await;
    assert_eq!(tokens.status, StatusCode::OK, "{:?}", tokens.body);
    let claims = app.validate(&tokens.access_token()).await;
    assert_eq!(claims.acr.as_deref(), Some("aal2"));
    assert_eq!(claims.amr, ["pwd", "otp", "mfa"]);
    let auth_time = claims.auth_time.unwrap();
    assert!((auth_time - now() as i64).abs() <= 2);

    // The mfa token had its one success; the code its one use.
    let again = second_step(&app, &token, json!({ "code": code })).await;
    assert_token_error(&again, StatusCode::UNAUTHORIZED, "invalid_grant");
    let replay = second_step(
        &app,
        &mfa_token(&app, &user.email).await,
        json!({ "code": code }),
    )
    .await;
    assert_token_error(&replay, StatusCode::UNAUTHORIZED, "invalid_credentials");

    // A refresh keeps the session's values.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let rotated = app.refresh_body(&tokens.refresh_token().unwrap()).await;
    let after = app.validate(&rotated.access_token()).await;
    assert_eq!(after.acr.as_deref(), Some("aal2"));
    assert_eq!(after.amr, claims.amr);
    assert_eq!(after.auth_time, Some(auth_time));
    assert!(
        app.event_types(&tokens.access_token())
            .await
            .contains(&"mfa_failed".to_owned())
    );
}

#[tokio::test]
async fn an_mfa_token_allows_five_tries_and_expires() {
    let app = spawn_app_with(&[("MFA_TOKEN_TTL", "2s")]).await;
    let user = enrol(&app).await;
    let token = mfa_token(&app, &user.email).await;
    for _ in 0..5 {
        let wrong = second_step(&app, &token, json!({ "code": "123456" })).await;
        assert_token_error(&wrong, StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    let right = second_step(&app, &token, json!({ "code": user.peek() })).await;
    assert_token_error(&right, StatusCode::UNAUTHORIZED, "invalid_grant");

    let token = mfa_token(&app, &user.email).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let late = second_step(&app, &token, json!({ "code": user.peek() })).await;
    assert_token_error(&late, StatusCode::UNAUTHORIZED, "invalid_grant");
    for junk in ["", "x", &"a".repeat(43)] {
        let unknown = second_step(&app, junk, json!({ "code": "123456" })).await;
        assert_token_error(&unknown, StatusCode::UNAUTHORIZED, "invalid_grant");
    }
    let both = second_step(&app, &token, json!({ "code": "1", "recovery_code": "2" })).await;
    assert_eq!(both.status, StatusCode::UNPROCESSABLE_ENTITY);
    let neither = second_step(&app, &token, json!({})).await;
    assert_eq!(neither.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn wrong_codes_count_in_the_failed_login_throttle() {
    let app = spawn_app_with(&[("LOGIN_ACCOUNT_RATE_LIMIT", "3/1m")]).await;
    let user = enrol(&app).await;
    // Fresh mfa tokens do not buy fresh tries: the account's budget is one.
    for _ in 0..3 {
        let token = mfa_token(&app, &user.email).await;
        let wrong = second_step(&app, &token, json!({ "code": "999999" })).await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    }
    let (status, _) = password_step(&app, &user.email).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Even the right code waits.
    let token_less = second_step(&app, &"a".repeat(43), json!({ "code": user.peek() })).await;
    assert_eq!(token_less.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_recovery_code_signs_in_once_and_tells_the_owner() {
    let app = spawn_app().await;
    let user = enrol(&app).await;
    let code = user.recovery_codes[3].to_uppercase();
    let tokens = second_step(
        &app,
        &mfa_token(&app, &user.email).await,
        json!({ "recovery_code": code }),
    )
    .await;
    assert_eq!(tokens.status, StatusCode::OK, "{:?}", tokens.body);
    assert_eq!(
        app.validate(&tokens.access_token()).await.acr.as_deref(),
        Some("aal2")
    );
    let again = second_step(
        &app,
        &mfa_token(&app, &user.email).await,
        json!({ "recovery_code": code }),
    )
    .await;
    assert_token_error(&again, StatusCode::UNAUTHORIZED, "invalid_credentials");
    let status = mfa_status(&app, &tokens.access_token()).await;
    assert_eq!(status["recovery_codes_remaining"], 9);
    assert!(
        app.event_types(&tokens.access_token())
            .await
            .contains(&"recovery_code_used".to_owned())
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM mail_outbox WHERE kind = 'recovery_code_used'"),
        1
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM mail_outbox WHERE kind = 'factor_added'"),
        1
    );
}

#[tokio::test]
async fn sensitive_actions_need_a_recent_aal2_authentication() {
    let app = spawn_app_with(&[("REAUTH_MAX_AGE", "2s")]).await;
    let mut user = enrol(&app).await;
    // The enrolling session is aal1: a user with a factor needs aal2.
    let access = user.tokens.access_token();
    let refused = app
        .post_bearer("/auth/mfa/recovery-codes", &access, None)
        .await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let challenge = refused.headers()[WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge
            .starts_with(r#"Bearer realm="auth-server", error="insufficient_user_authentication""#),
        "{challenge}"
    );
    assert!(
        challenge.ends_with(r#"max_age=2, acr_values="aal2""#),
        "{challenge}"
    );
    assert_error(
        refused,
        StatusCode::UNAUTHORIZED,
        "insufficient_user_authentication",
    )
    .await;

    // Wrong factors are 403 and change nothing.
    let reauth = |body: Value| {
        let app = &app;
        let access = access.clone();
        async move {
            app.post_bearer("/auth/reauthenticate", &access, Some(&body))
                .await
        }
    };
    let wrong = reauth(json!({ "password": "not the password", "code": "000000" })).await;
    assert_error(wrong, StatusCode::FORBIDDEN, "invalid_credentials").await;
    let no_code = reauth(json!({ "password": PASSWORD })).await;
    assert_error(no_code, StatusCode::FORBIDDEN, "invalid_credentials").await;

    let stepped =
        Tokens::read(reauth(json!({ "password": PASSWORD, "code": user.code() })).await).await;
    assert_eq!(stepped.status, StatusCode::OK, "{:?}", stepped.body);
    assert!(stepped.refresh_token().is_none() && stepped.cookie().is_none());
    let claims = app.validate(&stepped.access_token()).await;
    assert_eq!(claims.acr.as_deref(), Some("aal2"));
    assert_eq!(
        claims.sid,
        app.validate(&access).await.sid,
        "the same session"
    );
    let regenerated = app
        .post_bearer("/auth/mfa/recovery-codes", &stepped.access_token(), None)
        .await;
    let (status, body) = json_of(regenerated).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["recovery_codes"].as_array().unwrap().len(), 10);
    // The old codes are dead.
    let old = second_step(
        &app,
        &mfa_token(&app, &user.email).await,
        json!({ "recovery_code": user.recovery_codes[0] }),
    )
    .await;
    assert_token_error(&old, StatusCode::UNAUTHORIZED, "invalid_credentials");
    // Later refreshes of the session carry what was proven.
    let rotated = app
        .refresh_body(&user.tokens.refresh_token().unwrap())
        .await;
    assert_eq!(
        app.validate(&rotated.access_token()).await.acr.as_deref(),
        Some("aal2")
    );

    // Past REAUTH_MAX_AGE: stale, and only the age is named.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let stale = app
        .change_password(&stepped.access_token(), PASSWORD, "another long password")
        .await;
    let challenge = stale.headers()[WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.ends_with("max_age=2"), "{challenge}");
    assert_error(
        stale,
        StatusCode::UNAUTHORIZED,
        "insufficient_user_authentication",
    )
    .await;
    let deleted = app
        .client
        .delete(app.url("/auth/mfa/totp"))
        .bearer_auth(stepped.access_token())
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn turning_totp_off_keeps_sessions_and_ends_the_codes() {
    let app = spawn_app().await;
    let mut user = enrol(&app).await;
    let tokens = second_step(
        &app,
        &mfa_token(&app, &user.email).await,
        json!({ "code": user.code() }),
    )
    .await;
    let access = tokens.access_token();
    let again = app.post_bearer("/auth/mfa/totp", &access, None).await;
    assert_error(again, StatusCode::CONFLICT, "already_enrolled").await;
    let off = app
        .client
        .delete(app.url("/auth/mfa/totp"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), StatusCode::NO_CONTENT);
    let status = mfa_status(&app, &access).await;
    assert_eq!(status["totp"]["enabled"], false);
    assert_eq!(status["recovery_codes_remaining"], 0);
    // Sessions keep what they recorded; a login is a password again.
    let rotated = app.refresh_body(&tokens.refresh_token().unwrap()).await;
    assert_eq!(
        app.validate(&rotated.access_token()).await.acr.as_deref(),
        Some("aal2")
    );
    let plain = app.login_body(&user.email).await;
    assert_eq!(app.validate(&plain.access_token()).await.amr, ["pwd"]);
    let none = app
        .post_bearer("/auth/mfa/recovery-codes", &plain.access_token(), None)
        .await;
    assert_eq!(none.status(), StatusCode::CONFLICT);
    let gone = app
        .client
        .delete(app.url("/auth/mfa/totp"))
        .bearer_auth(plain.access_token())
        .send()
        .await
        .unwrap();
    assert_error(gone, StatusCode::NOT_FOUND, "not_found").await;
    let types = app.event_types(&plain.access_token()).await;
    assert!(
        types.contains(&"mfa_enabled".to_owned()) && types.contains(&"mfa_disabled".to_owned())
    );
}

#[tokio::test]
async fn confirming_needs_the_pending_secrets_code() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let access = app.login_body(&email).await.access_token();
    let confirm = |code: &str| {
        let body = json!({ "code": code });
        let (app, access) = (&app, access.clone());
        async move {
            app.post_bearer("/auth/mfa/totp/confirm", &access, Some(&body))
                .await
        }
    };
    assert_error(confirm("123456").await, StatusCode::NOT_FOUND, "not_found").await;
    let (_, first) = json_of(app.post_bearer("/auth/mfa/totp", &access, None).await).await;
    let (_, second) = json_of(app.post_bearer("/auth/mfa/totp", &access, None).await).await;
    assert_ne!(first["secret"], second["secret"], "a new call replaces it");
    let stale = TOTP::from_url(first["otpauth_uri"].as_str().unwrap()).unwrap();
    let wrong = confirm(&stale.generate(now())).await;
    assert_error(wrong, StatusCode::FORBIDDEN, "invalid_credentials").await;
    let long = confirm(&"1".repeat(17)).await;
    assert_eq!(long.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let current = TOTP::from_url(second["otpauth_uri"].as_str().unwrap()).unwrap();
    assert_eq!(
        confirm(&current.generate(now())).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_secret_is_not_in_the_database() {
    let app = spawn_app().await;
    let user = enrol(&app).await;
    let dump = app.dump_tables();
    let base32 = user.totp.get_secret_base32();
    assert!(!dump.contains(&base32));
    let hex: String = user
        .totp
        .secret
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(!dump.contains(&hex), "the raw secret is in a table");
    for code in &user.recovery_codes {
        assert!(!dump.contains(code.as_str()));
    }
}

#[tokio::test]
async fn an_administrator_resets_a_users_factors_and_sessions() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let mut user = enrol(&app).await;
    let tokens = second_step(
        &app,
        &mfa_token(&app, &user.email).await,
        json!({ "code": user.code() }),
    )
    .await;
    let user_id = app.validate(&tokens.access_token()).await.sub;
    let listed = app
        .admin_call(
            Method::GET,
            &format!("/admin/users/{user_id}"),
            &admin,
            None,
        )
        .await;
    let (_, body) = json_of(listed).await;
    assert_eq!(body["mfa"], true);

    let reset = app
        .admin_call(
            Method::DELETE,
            &format!("/admin/users/{user_id}/mfa"),
            &admin,
            None,
        )
        .await;
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    assert_token_error(
        &app.refresh_body(&tokens.refresh_token().unwrap()).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    );
    assert_token_error(
        &app.refresh_body(&user.tokens.refresh_token().unwrap())
            .await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    );
    let plain = app.login_body(&user.email).await;
    assert!(
        app.event_types(&plain.access_token())
            .await
            .contains(&"mfa_reset".to_owned())
    );
    let (_, body) = json_of(
        app.admin_call(
            Method::GET,
            &format!("/admin/users/{user_id}"),
            &admin,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(body["mfa"], false);
    let missing = app
        .admin_call(
            Method::DELETE,
            &format!("/admin/users/{}/mfa", uuid::Uuid::new_v4()),
            &admin,
            None,
        )
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

/// An independent TOTP implementation (Python's pyotp) enrols and signs in
/// from the `otpauth://` URI alone (`scripts/totp_interop.py`). CI installs
/// pyotp (`.ci/run`); without it this test fails, saying how to install it.
#[tokio::test]
async fn pyotp_interoperates() {
    let app = spawn_app().await;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/totp_interop.py");
    let address = app.address.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .env("AUTH_URL", address)
            .output()
    })
    .await
    .unwrap()
    .expect("python3 runs (CI installs it, with pyotp: see .ci/run)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named 'pyotp'"),
        "pyotp is missing: python3 -m pip install 'pyotp==2.12.1'"
    );
    assert!(
        output.status.success(),
        "the pyotp client failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}
