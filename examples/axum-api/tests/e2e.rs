//! Feature: resource-guard's axum adapter (the axum example) on the real auth server.
//!
//! The axum example against the real auth server (in process, on port 0,
//! over a PostgreSQL database of its own): the guard's answers through the
//! axum adapter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::future::IntoFuture;
use std::time::{Duration, Instant};

use auth_server::startup::Handle;
use diesel::{Connection, PgConnection};
use reqwest::{Response, StatusCode};
use resource_guard::{Guard, GuardSettings, Readiness};
use serde_json::{Value, json};
use test_db::TestDatabase;
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery staple";

/// The contract's bound, after a revocation is acknowledged.
const WITHIN: Duration = Duration::from_secs(1);

struct Stack {
    auth_url: String,
    api_url: String,
    client: reqwest::Client,
    auth: Option<Handle>,
    db: TestDatabase,
    _mail: MailDir,
}

/// `MAIL_DIR` of the auth server (registration writes a verification mail
/// there), removed with the stack.
struct MailDir(std::path::PathBuf);

impl Drop for MailDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Login {
    email: String,
    access_token: String,
    refresh_token: String,
}

/// The auth server, then the example with a guard pointed at it; ready once
/// the guard has the keys and a first sync. `max_staleness` is the guard's
/// `REVOCATION_MAX_STALENESS`.
async fn spawn(max_staleness: &str) -> Stack {
    let db = TestDatabase::create();
    let mail =
        MailDir(std::env::temp_dir().join(format!("axum-api-mail-{}", Uuid::new_v4().simple())));
    let auth_vars: HashMap<&str, &str> = HashMap::from([
        ("DATABASE_URL", db.url.as_str()),
        ("MAIL_DIR", mail.0.to_str().unwrap()),
        ("AUTH_BIND", "127.0.0.1:0"),
        ("AUTH_INTERNAL_BIND", "127.0.0.1:0"),
        ("HTTP_WORKERS", "2"),
        ("PASSWORD_HASH_WORKERS", "2"),
        ("DATABASE_POOL_SIZE", "4"),
        ("LOGIN_RATE_LIMIT", "0"),
        ("LOGIN_ACCOUNT_RATE_LIMIT", "0"),
        ("REFRESH_RATE_LIMIT", "0"),
    ]);
    let settings =
        auth_server::config::Settings::from_lookup(|k| auth_vars.get(k).map(|v| (*v).to_owned()))
            .unwrap();
    let auth = auth_server::startup::Application::build(settings)
        .await
        .expect("the auth server starts");
    let auth_url = format!("http://127.0.0.1:{}", auth.port());
    let auth_internal_url = format!("http://127.0.0.1:{}", auth.internal_port());
    let handle = auth.handle();
    tokio::spawn(auth.run_until_stopped());

    // What a user's service reads from its environment.
    let guard_vars: HashMap<&str, &str> = HashMap::from([
        ("AUTH_URL", auth_url.as_str()),
        ("AUTH_INTERNAL_URL", auth_internal_url.as_str()),
        ("REVOCATION_SYNC_INTERVAL", "200ms"),
        ("REVOCATION_MAX_STALENESS", max_staleness),
    ]);
    let settings =
        GuardSettings::from_lookup(|k| guard_vars.get(k).map(|v| (*v).to_owned())).unwrap();
    let guard = Guard::start(settings).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, axum_api::router(guard.clone())).into_future());

    let started = Instant::now();
    while guard.readiness() != Readiness::Ready {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the guard is ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Stack {
        auth_url,
        api_url,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        auth: Some(handle),
        db,
        _mail: mail,
    }
}

impl Stack {
    async fn login(&self) -> Login {
        let email = format!("axum-{}@example.com", Uuid::new_v4().simple());
        let registered = self
            .client
            .post(format!("{}/auth/register", self.auth_url))
            .json(&json!({ "email": email, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(registered.status(), StatusCode::CREATED);
        self.login_as(&email).await
    }

    async fn login_as(&self, email: &str) -> Login {
        let body: Value = self
            .client
            .post(format!("{}/auth/login", self.auth_url))
            .json(
                &json!({ "email": email, "password": PASSWORD, "refresh_token_delivery": "body" }),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Login {
            email: email.to_owned(),
            access_token: body["access_token"].as_str().unwrap().to_owned(),
            refresh_token: body["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.get(format!("{}{path}", self.api_url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    fn grant_admin(&self, email: &str) {
        let mut conn = PgConnection::establish(&self.db.url).unwrap();
        let email = auth_server::accounts::email::Email::parse(email).unwrap();
        auth_server::db::admin::set_role(&mut conn, &email, "admin", true)
            .unwrap()
            .unwrap();
    }
}

/// The contract's error body, with `Content-Type: application/json`.
async fn error_of(response: Response) -> Value {
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_token_reaches_the_handler() {
    let stack = spawn("30s").await;
    let login = stack.login().await;
    let response = stack.get("/hello", Some(&login.access_token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let claims: Value = jsonwebtoken_claims(&login.access_token);
    assert_eq!(body["user_id"], claims["sub"]);
    assert_eq!(body["email"], login.email.as_str());

    // A password login is `aal1`: the step-up route asks for more.
    let step_up = stack.get("/step-up", Some(&login.access_token)).await;
    assert_eq!(step_up.status(), StatusCode::UNAUTHORIZED);
    let challenge = step_up.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with(
            r#"Bearer realm="resource-api", error="insufficient_user_authentication""#
        ) && challenge.ends_with(r#", max_age=300, acr_values="aal2""#),
        "{challenge}"
    );
    assert_eq!(
        error_of(step_up).await["error"],
        "insufficient_user_authentication"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_or_a_bad_one_is_401_with_the_challenge() {
    let stack = spawn("30s").await;
    let missing = stack.get("/hello", None).await;
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        missing.headers()["www-authenticate"],
        r#"Bearer realm="resource-api""#,
        "the realm is the audience unless set; no error attribute without a token"
    );
    let body = error_of(missing).await;
    assert_eq!(
        body,
        json!({ "error": "invalid_token", "error_description": "missing bearer token" })
    );

    let garbage = stack.get("/hello", Some("garbage")).await;
    assert_eq!(garbage.status(), StatusCode::UNAUTHORIZED);
    let challenge = garbage.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with(r#"Bearer realm="resource-api", error="invalid_token""#),
        "{challenge}"
    );
    assert_eq!(error_of(garbage).await["error"], "invalid_token");

    let basic = stack
        .client
        .get(format!("{}/hello", stack.api_url))
        .header("Authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    assert!(
        basic.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"error="invalid_token""#)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_session_is_refused_within_a_second() {
    let stack = spawn("30s").await;
    let login = stack.login().await;
    assert_eq!(
        stack
            .get("/hello", Some(&login.access_token))
            .await
            .status(),
        StatusCode::OK
    );
    let logout = stack
        .client
        .post(format!("{}/auth/logout", stack.auth_url))
        .json(&json!({ "refresh_token": login.refresh_token }))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let started = Instant::now();
    loop {
        let response = stack.get("/hello", Some(&login.access_token)).await;
        if response.status() == StatusCode::UNAUTHORIZED {
            let body = error_of(response).await;
            assert_eq!(
                body["error_description"],
                "the access token's session has been revoked"
            );
            break;
        }
        assert!(
            started.elapsed() < WITHIN,
            "refused within a second of the logout"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!(
        "revoked session refused by the axum example after {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_role_is_403_insufficient_scope() {
    let stack = spawn("30s").await;
    let login = stack.login().await;
    let forbidden = stack.get("/admin", Some(&login.access_token)).await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        forbidden.headers()["www-authenticate"],
        r#"Bearer realm="resource-api", error="insufficient_scope", error_description="this resource requires the `admin` role""#
    );
    assert_eq!(error_of(forbidden).await["error"], "insufficient_scope");

    // Roles are in the token: one issued after the grant carries it.
    stack.grant_admin(&login.email);
    let admin = stack.login_as(&login.email).await;
    assert_eq!(
        stack
            .get("/admin", Some(&admin.access_token))
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_auth_server_gone_it_fails_closed_past_the_staleness_bound() {
    let mut stack = spawn("2s").await;
    let login = stack.login().await;
    stack.auth.take().unwrap().stop(false).await;
    let stopped = Instant::now();
    let response = loop {
        let response = stack.get("/hello", Some(&login.access_token)).await;
        if response.status() != StatusCode::OK {
            break response;
        }
        assert!(stopped.elapsed() < Duration::from_secs(10), "fails closed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        stopped.elapsed() >= Duration::from_millis(1_500),
        "not before the bound"
    );
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(
        error_of(response).await,
        json!({ "error": "unavailable", "error_description": "revocation state is stale" })
    );
}

/// The claims of a token, unverified.
fn jsonwebtoken_claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}
