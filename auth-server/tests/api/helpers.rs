use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use auth_server::config::Settings;
use auth_server::db::Pool;
use auth_server::startup::Application;
use diesel::prelude::*;
use reqwest::header::{HeaderMap, SET_COOKIE};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use shared_claims::{AccessClaims, KeySet, ValidationRules, Validator};
pub use test_db::TestDatabase;
use uuid::Uuid;

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub pool: Pool,
    pub validator: Validator,
    /// The settings it was started with, for [`TestApp::replica_with`].
    vars: HashMap<String, String>,
    // Last: the server's connections go before the database is dropped.
    pub db: Arc<TestDatabase>,
}

/// Settings every test starts from: a real server on port 0, small pools,
/// no rate limits (tests that want them set them).
fn base_settings(database_url: &str) -> HashMap<String, String> {
    [
        ("DATABASE_URL", database_url),
        ("AUTH_BIND", "127.0.0.1:0"),
        ("HTTP_WORKERS", "2"),
        ("PASSWORD_HASH_WORKERS", "2"),
        ("DATABASE_POOL_SIZE", "8"),
        ("LOGIN_RATE_LIMIT", "0"),
        ("LOGIN_ACCOUNT_RATE_LIMIT", "0"),
        ("REFRESH_RATE_LIMIT", "0"),
        (
            "ALLOWED_ORIGINS",
            "http://localhost:3000,https://app.example.com",
        ),
        ("RUST_LOG", "warn"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// A server with some settings changed from [`base_settings`].
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    let db = TestDatabase::create();
    let mut vars = base_settings(&db.url);
    for (k, v) in overrides {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    spawn_with_vars(db, vars).await
}

pub async fn spawn_with_vars(db: TestDatabase, vars: HashMap<String, String>) -> TestApp {
    spawn_on(Arc::new(db), vars).await
}

async fn spawn_on(db: Arc<TestDatabase>, vars: HashMap<String, String>) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        service_kit::telemetry::init_tracing(false);
    }
    let settings = Settings::from_lookup(|k| vars.get(k).cloned()).expect("valid test settings");
    let app = Application::build(settings.clone())
        .await
        .expect("the server starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let pool = app.state().database.pool().clone();
    let validator = Validator::new(ValidationRules {
        issuer: settings.tokens.issuer.clone(),
        audience: settings.tokens.audience.clone(),
        leeway: Duration::from_secs(5),
    });
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("auth-server-tests/1.0")
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    TestApp {
        address,
        client,
        pool,
        validator,
        vars,
        db,
    }
}

/// A new secret for `REFRESH_TOKEN_KEY_FILE` (what `auth-server secret`
/// writes), in a file removed with this value.
pub struct TokenKeyFile {
    pub path: PathBuf,
}

impl TokenKeyFile {
    pub fn new() -> Self {
        let path = std::env::temp_dir().join(format!("token-key-{}", Uuid::new_v4().simple()));
        auth_server::signing::write_new_secret(&path).unwrap();
        Self { path }
    }

    pub fn path(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

impl Drop for TokenKeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A parsed token response.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub status: StatusCode,
    pub body: Value,
    pub headers: HeaderMap,
}

impl Tokens {
    pub async fn read(response: Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap_or(Value::Null);
        Self {
            status,
            body,
            headers,
        }
    }

    pub fn access_token(&self) -> String {
        self.body["access_token"]
            .as_str()
            .expect("an access token")
            .to_owned()
    }

    pub fn refresh_token(&self) -> Option<String> {
        self.body["refresh_token"].as_str().map(str::to_owned)
    }

    /// The `refresh_token` Set-Cookie header, if any.
    pub fn cookie(&self) -> Option<SetCookie> {
        set_cookie(&self.headers)
    }
}

/// A `Set-Cookie: refresh_token=…` header, split into value and attributes.
#[derive(Debug, Clone)]
pub struct SetCookie {
    pub raw: String,
    pub value: String,
    pub attributes: Vec<String>,
}

impl SetCookie {
    pub fn has(&self, attribute: &str) -> bool {
        self.attributes
            .iter()
            .any(|a| a.eq_ignore_ascii_case(attribute))
    }

    pub fn attribute(&self, name: &str) -> Option<String> {
        self.attributes.iter().find_map(|a| {
            let (k, v) = a.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }

    pub fn max_age(&self) -> i64 {
        self.attribute("Max-Age").expect("Max-Age").parse().unwrap()
    }
}

pub fn set_cookie(headers: &HeaderMap) -> Option<SetCookie> {
    headers.get_all(SET_COOKIE).iter().find_map(|raw| {
        let raw = raw.to_str().ok()?.to_owned();
        let mut parts = raw.split(';').map(|p| p.trim().to_owned());
        let first = parts.next()?;
        let value = first.strip_prefix("refresh_token=")?.to_owned();
        Some(SetCookie {
            value,
            attributes: parts.collect(),
            raw,
        })
    })
}

pub fn unique_email() -> String {
    format!("user-{}@example.com", Uuid::new_v4().simple())
}

impl TestApp {
    /// Another server on the same database, with some settings changed: a
    /// replica configured otherwise, or this one restarted with a new
    /// configuration.
    pub async fn replica_with(&self, overrides: &[(&str, &str)]) -> TestApp {
        let mut vars = self.vars.clone();
        for (k, v) in overrides {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        spawn_on(Arc::clone(&self.db), vars).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn register(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "/auth/register",
            &json!({ "email": email, "password": password }),
        )
        .await
    }

    /// A new user with [`PASSWORD`]; returns the email.
    pub async fn registered_user(&self) -> String {
        let email = unique_email();
        assert_eq!(
            self.register(&email, PASSWORD).await.status(),
            StatusCode::CREATED
        );
        email
    }

    pub async fn login_body(&self, email: &str) -> Tokens {
        let response = self
            .post_json(
                "/auth/login",
                &json!({ "email": email, "password": PASSWORD, "refresh_token_delivery": "body" }),
            )
            .await;
        let tokens = Tokens::read(response).await;
        assert_eq!(tokens.status, StatusCode::OK, "{:?}", tokens.body);
        tokens
    }

    pub async fn login_cookie(&self, email: &str) -> Tokens {
        let response = self
            .post_json(
                "/auth/login",
                &json!({ "email": email, "password": PASSWORD }),
            )
            .await;
        let tokens = Tokens::read(response).await;
        assert_eq!(tokens.status, StatusCode::OK, "{:?}", tokens.body);
        tokens
    }

    pub async fn refresh_body(&self, refresh_token: &str) -> Tokens {
        Tokens::read(
            self.post_json("/auth/refresh", &json!({ "refresh_token": refresh_token }))
                .await,
        )
        .await
    }

    pub async fn refresh_cookie(&self, cookie_value: &str) -> Tokens {
        let response = self
            .client
            .post(self.url("/auth/refresh"))
            .header("Cookie", format!("refresh_token={cookie_value}"))
            .send()
            .await
            .unwrap();
        Tokens::read(response).await
    }

    pub async fn logout_body(&self, refresh_token: &str) -> Response {
        self.post_json("/auth/logout", &json!({ "refresh_token": refresh_token }))
            .await
    }

    pub async fn get_sessions(&self, access_token: &str) -> Response {
        self.client
            .get(self.url("/auth/sessions"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete_session(&self, access_token: &str, id: &str) -> Response {
        self.client
            .delete(self.url(&format!("/auth/sessions/{id}")))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
    }

    pub async fn logout_all(&self, access_token: &str) -> Response {
        self.client
            .post(self.url("/auth/logout-all"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
    }

    /// Validates an access token exactly as a resource API would: with the
    /// keys of the published JWKS and the shared validation routine.
    pub async fn validate(&self, access_token: &str) -> AccessClaims {
        let jwks = self
            .client
            .get(self.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        self.validator
            .validate(access_token, &KeySet::from_jwks(&jwks))
            .expect("a valid access token")
    }

    pub fn conn(&self) -> PgConnection {
        PgConnection::establish(&self.db.url).unwrap()
    }

    /// Runs SQL against the test's database (time travel, inspection).
    pub fn execute(&self, sql: &str) -> usize {
        diesel::sql_query(sql).execute(&mut self.conn()).unwrap()
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.db.count(sql)
    }

    pub fn session_revoked_reason(&self, session_id: Uuid) -> Option<String> {
        use auth_server::db::schema::sessions;
        sessions::table
            .find(session_id)
            .select(sessions::revoked_reason)
            .first::<Option<String>>(&mut self.conn())
            .unwrap()
    }
}

/// Asserts the contract's error shape and code; returns the description.
pub async fn assert_error(response: Response, status: StatusCode, code: &str) -> String {
    assert_eq!(response.status(), status);
    let content_type = response
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
    let description = body["error_description"]
        .as_str()
        .expect("an error_description")
        .to_owned();
    assert!(!description.is_empty());
    assert_eq!(
        body.as_object().unwrap().len(),
        2,
        "only error and error_description: {body}"
    );
    description
}

pub fn assert_token_error(tokens: &Tokens, status: StatusCode, code: &str) {
    assert_eq!(tokens.status, status, "{}", tokens.body);
    assert_eq!(tokens.body["error"], code, "{}", tokens.body);
}
