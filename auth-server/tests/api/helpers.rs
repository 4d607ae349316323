//! Test support: `TestApp`, a real auth server on port 0 over a database of its own.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use auth_server::config::Settings;
use auth_server::db::Pool;
use auth_server::db::models::ClientInfo;
use auth_server::db::rotation::{Mintable, RefreshOutcome};
use auth_server::db::rotation_pool::RotationPool;
use auth_server::db::sessions::FirstToken;
use auth_server::service::refresh::{mint, presented_token};
use auth_server::startup::Application;
use auth_server::tokens::keys::TokenKeys;
use auth_server::tokens::refresh::{self as refresh_token, RefreshToken, SessionSecret};
use auth_server::tokens::rotation::Policy;
use diesel::prelude::*;
use reqwest::header::{HeaderMap, SET_COOKIE};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use shared_claims::{AccessClaims, KeySet, ValidationRules, Validator};
pub use test_db::TestDatabase;

pub use crate::smtp::{Mail, SmtpServer};
use uuid::Uuid;

pub const PASSWORD: &str = "correct horse battery staple";
/// The web app the e-mail links point at.
pub const PUBLIC_URL: &str = "https://app.example.com";

pub struct TestApp {
    pub address: String,
    /// The internal listener: the revocation feed and `/metrics`.
    pub internal_address: String,
    pub client: reqwest::Client,
    pub pool: Pool,
    pub validator: Validator,
    /// `MAIL_DIR`, removed with the app.
    pub mail_dir: TempDir,
    /// The settings it was started with, for starting another instance.
    pub vars: HashMap<String, String>,
    /// `REFRESH_TOKEN_KEY_FILE`, when the test did not name one: shared by
    /// its replicas (a refresh token is checked with the key that minted
    /// it), removed with the last of them.
    pub token_key: Option<Arc<TokenKeyFile>>,
    // Last: the server's connections go before the database is dropped.
    pub db: Arc<TestDatabase>,
}

/// Settings every test starts from: a real server on port 0, small pools,
/// no rate limits (tests that want them set them).
fn base_settings(database_url: &str) -> HashMap<String, String> {
    [
        ("DATABASE_URL", database_url),
        ("AUTH_BIND", "127.0.0.1:0"),
        ("AUTH_INTERNAL_BIND", "127.0.0.1:0"),
        ("HTTP_WORKERS", "2"),
        ("PASSWORD_HASH_WORKERS", "2"),
        ("DATABASE_POOL_SIZE", "8"),
        ("LOGIN_RATE_LIMIT", "0"),
        ("LOGIN_ACCOUNT_RATE_LIMIT", "0"),
        ("REFRESH_RATE_LIMIT", "0"),
        ("MAIL_REQUEST_RATE_LIMIT", "0"),
        ("MAIL_RECIPIENT_LIMIT", "0"),
        ("PUBLIC_URL", PUBLIC_URL),
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

/// A server whose mail goes to a real SMTP server of its own (aiosmtpd).
pub async fn spawn_app_with_smtp(overrides: &[(&str, &str)]) -> (TestApp, SmtpServer) {
    let smtp = SmtpServer::start();
    let url = smtp.url();
    let mut all = vec![("SMTP_URL", url.as_str())];
    all.extend_from_slice(overrides);
    (spawn_app_with(&all).await, smtp)
}

pub async fn spawn_with_vars(db: TestDatabase, mut vars: HashMap<String, String>) -> TestApp {
    // Without SMTP_URL mail goes to files: somewhere of this test's own.
    let mail_dir = std::env::temp_dir().join(format!("mail-{}", Uuid::new_v4().simple()));
    vars.entry("MAIL_DIR".to_owned())
        .or_insert_with(|| mail_dir.to_str().unwrap().to_owned());
    // Never the default port: tests run side by side.
    vars.entry("AUTH_INTERNAL_BIND".to_owned())
        .or_insert_with(|| "127.0.0.1:0".to_owned());
    // One token key for the app and its replicas, as in production.
    let token_key = (!vars.contains_key("REFRESH_TOKEN_KEY_FILE")).then(|| {
        let key = Arc::new(TokenKeyFile::new());
        vars.insert("REFRESH_TOKEN_KEY_FILE".to_owned(), key.path().to_owned());
        key
    });
    let mut app = spawn_on(Arc::new(db), vars).await;
    app.token_key = token_key;
    app
}

async fn spawn_on(db: Arc<TestDatabase>, vars: HashMap<String, String>) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        service_kit::telemetry::init_tracing(false);
    }
    let (address, app) = start_instance(&vars).await;
    let internal_address = format!("http://127.0.0.1:{}", app.internal_port());
    let settings = Settings::from_lookup(|k| vars.get(k).cloned()).expect("valid test settings");
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
        internal_address,
        client,
        pool,
        validator,
        mail_dir: TempDir(PathBuf::from(&vars["MAIL_DIR"])),
        vars,
        token_key: None,
        db,
    }
}

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn start_instance(vars: &HashMap<String, String>) -> (String, Application) {
    let settings = Settings::from_lookup(|k| vars.get(k).cloned()).expect("valid test settings");
    let app = Application::build(settings)
        .await
        .expect("the server starts");
    (format!("http://127.0.0.1:{}", app.port()), app)
}

/// A new secret for `REFRESH_TOKEN_KEY_FILE` (what `auth-server secret`
/// writes), in a file removed with this value.
pub struct TokenKeyFile {
    pub path: PathBuf,
}

impl TokenKeyFile {
    pub fn new() -> Self {
        let path = std::env::temp_dir().join(format!("token-key-{}", Uuid::new_v4().simple()));
        auth_server::keys::signing::write_new_secret(&path).unwrap();
        Self { path }
    }

    pub fn path(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// `n` new keys with distinct key ids (a ring refuses two keys with
    /// the same one-byte id: new keys collide once in 256 pairs).
    pub fn distinct(n: usize) -> Vec<Self> {
        let mut files: Vec<Self> = Vec::with_capacity(n);
        let mut ids = std::collections::HashSet::new();
        while files.len() < n {
            let file = Self::new();
            let id = TokenKeys::from_files(&file.path, &[]).unwrap().current_id();
            if ids.insert(id) {
                files.push(file);
            }
        }
        files
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

/// Where the server whose internal listener is at `address` serves
/// `/metrics`.
pub fn metrics_url(address: &str) -> String {
    format!("{address}/metrics")
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
        let mut app = spawn_on(Arc::clone(&self.db), vars).await;
        app.token_key = self.token_key.clone();
        app
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// On the internal listener.
    pub fn internal_url(&self, path: &str) -> String {
        format!("{}{path}", self.internal_address)
    }

    /// `/metrics`, from the internal listener.
    pub async fn metrics(&self) -> String {
        let response = self
            .client
            .get(self.internal_url("/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.unwrap()
    }

    /// Another server on the same database and settings, as a second
    /// replica behind a load balancer; returns its address.
    pub async fn another_instance(&self) -> String {
        let (address, app) = start_instance(&self.vars).await;
        tokio::spawn(app.run_until_stopped());
        address
    }

    /// A registration from `client` as the tests' own trusted proxy
    /// forwards it (`TRUSTED_PROXIES=127.0.0.1`).
    pub async fn register_from(&self, email: &str, client: &str) -> Response {
        self.client
            .post(self.url("/auth/register"))
            .header("X-Forwarded-For", client)
            .json(&json!({ "email": email, "password": PASSWORD }))
            .send()
            .await
            .unwrap()
    }

    /// One sweep of the janitor, with the default retentions.
    pub async fn sweep(&self) -> auth_server::db::sweep::Swept {
        use auth_server::db::sweep::{Retention, expired};
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            expired(
                &mut pool.get().unwrap(),
                &Retention {
                    sessions: Duration::from_secs(7 * 86_400),
                    failure_buckets: Duration::from_secs(24 * 3600),
                    known_login_clients: Duration::from_secs(30 * 86_400),
                    audit_events: Duration::from_secs(90 * 86_400),
                },
            )
        })
        .await
        .unwrap()
        .unwrap()
    }

    /// A login from `client` as the tests' own trusted proxy forwards it
    /// (`TRUSTED_PROXIES=127.0.0.1`); `cookie` is a `Cookie` header to send.
    pub async fn login_from(
        &self,
        email: &str,
        password: &str,
        client: &str,
        cookie: Option<&str>,
    ) -> Response {
        self.login_at(&self.address, email, password, client, cookie)
            .await
    }

    /// [`Self::login_from`], to the server at `address` (another instance).
    pub async fn login_at(
        &self,
        address: &str,
        email: &str,
        password: &str,
        client: &str,
        cookie: Option<&str>,
    ) -> Response {
        let mut request = self
            .client
            .post(format!("{address}/auth/login"))
            .header("X-Forwarded-For", client)
            .json(&json!({ "email": email, "password": password }));
        if let Some(cookie) = cookie {
            request = request.header("Cookie", cookie);
        }
        request.send().await.unwrap()
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

    pub async fn post_bearer(
        &self,
        path: &str,
        access_token: &str,
        body: Option<&Value>,
    ) -> Response {
        let mut request = self.client.post(self.url(path)).bearer_auth(access_token);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.unwrap()
    }

    pub async fn change_password(&self, access_token: &str, current: &str, new: &str) -> Response {
        self.post_bearer(
            "/auth/password",
            access_token,
            Some(&json!({ "current_password": current, "new_password": new })),
        )
        .await
    }

    pub async fn forgot(&self, email: &str) -> Response {
        self.post_json("/auth/password/forgot", &json!({ "email": email }))
            .await
    }

    pub async fn reset(&self, token: &str, new_password: &str) -> Response {
        self.post_json(
            "/auth/password/reset",
            &json!({ "token": token, "new_password": new_password }),
        )
        .await
    }

    pub async fn verify_email(&self, token: &str) -> Response {
        self.post_json("/auth/email/verify", &json!({ "token": token }))
            .await
    }

    /// `GET /auth/events` with a query string such as `?limit=2`.
    pub async fn events(&self, access_token: &str, query: &str) -> Response {
        self.client
            .get(self.url(&format!("/auth/events{query}")))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
    }

    /// The types of the user's events, newest first (one page of 100).
    pub async fn event_types(&self, access_token: &str) -> Vec<String> {
        let body: Value = self
            .events(access_token, "?limit=100")
            .await
            .json()
            .await
            .unwrap();
        body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect()
    }

    pub async fn login_with(&self, email: &str, password: &str) -> Tokens {
        Tokens::read(
            self.post_json(
                "/auth/login",
                &json!({ "email": email, "password": password, "refresh_token_delivery": "body" }),
            )
            .await,
        )
        .await
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

    /// A connection to the test's database that records the text of every
    /// statement it sends (`BEGIN` and `COMMIT` included), and the record.
    pub fn recording_conn(&self) -> (PgConnection, Arc<std::sync::Mutex<Vec<String>>>) {
        use diesel::connection::InstrumentationEvent;

        let mut conn = self.conn();
        let sent: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
        let log = Arc::clone(&sent);
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::StartQuery { query, .. } = event {
                log.lock().unwrap().push(query.to_string());
            }
        });
        (conn, sent)
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

    /// Moves every kept consumption time (a session's `consumed_at`, and
    /// legacy rows') back by `interval` (`'1 hour'`): the grace has passed.
    pub fn consumed_ago(&self, interval: &str) {
        self.execute(&format!(
            "UPDATE sessions SET consumed_at = ARRAY(SELECT c - interval '{interval}' \
             FROM unnest(consumed_at) WITH ORDINALITY AS t(c, i) ORDER BY i)"
        ));
        self.execute(&format!(
            "UPDATE refresh_tokens SET consumed_at = consumed_at - interval '{interval}' \
             WHERE consumed_at IS NOT NULL"
        ));
    }

    /// Every row of every table of the schema, as text (bytes as `\\x…` hex).
    pub fn dump_tables(&self) -> String {
        #[derive(QueryableByName)]
        struct Table {
            #[diesel(sql_type = diesel::sql_types::Text)]
            name: String,
        }
        #[derive(QueryableByName)]
        struct Rows {
            #[diesel(sql_type = diesel::sql_types::Text)]
            text: String,
        }
        let mut conn = self.conn();
        let tables: Vec<Table> = diesel::sql_query(
            "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'",
        )
        .load(&mut conn)
        .unwrap();
        tables
            .iter()
            .map(|t| {
                diesel::sql_query(format!(
                    "SELECT coalesce(string_agg(t::text, E'\\n'), '') AS text FROM {} t",
                    t.name
                ))
                .get_result::<Rows>(&mut conn)
                .unwrap()
                .text
            })
            .collect::<Vec<_>>()
            .join("\n")
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

/// The rotation as the server runs it, on a pool built the server's way
/// ([`RotationPool`]), called from a synchronous test.
pub struct Rotations {
    runtime: tokio::runtime::Runtime,
    pool: RotationPool,
}

impl Rotations {
    /// One connection to `database_url` (so a test can watch it).
    pub fn new(database_url: &str) -> Self {
        let vars = [
            ("DATABASE_URL", database_url),
            ("DATABASE_ROTATION_POOL_SIZE", "1"),
        ];
        let settings = Settings::from_lookup(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        })
        .unwrap();
        Self {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            pool: RotationPool::new(&settings.database, 1).unwrap(),
        }
    }

    /// One rotation of `token`, as the server parses it with `keys`.
    pub fn refresh(
        &self,
        token: &RefreshToken,
        keys: &TokenKeys,
        client: &ClientInfo,
        policy: &Policy,
    ) -> RefreshOutcome {
        let presented = presented_token(keys, token.expose()).expect("a token of ours");
        self.runtime
            .block_on(self.pool.refresh(&presented, keys, client, policy))
            .unwrap()
    }
}

/// A session of `user_id` made as login makes it (a secret, generation 1
/// live), and its first refresh token, minted with `keys`' current key.
pub fn create_session(
    conn: &mut PgConnection,
    user_id: Uuid,
    keys: &TokenKeys,
    client: &ClientInfo,
) -> (auth_server::db::models::Session, RefreshToken) {
    let secret = SessionSecret::generate().unwrap();
    let now = chrono::Utc::now();
    let session = auth_server::db::sessions::create(
        conn,
        user_id,
        client,
        FirstToken {
            secret: &secret,
            key_id: keys.current_id(),
        },
        now + chrono::Duration::days(1),
        now + chrono::Duration::hours(1),
    )
    .unwrap();
    let token =
        refresh_token::mint(keys, keys.current_id(), session.id, 1, secret.as_bytes()).unwrap();
    (session, token)
}

/// The token a rotation's outcome names, minted with `keys`.
pub fn minted(keys: &TokenKeys, mintable: &Mintable) -> RefreshToken {
    mint(keys, mintable).expect("the key is held").0
}
