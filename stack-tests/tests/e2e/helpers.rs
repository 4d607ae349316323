//! Test support: `Stack`, both services in process or a deployment by URL.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use auth_server::startup::Handle;
use diesel::prelude::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use test_db::TestDatabase;
use uuid::Uuid;

pub use crate::lossy_proxy::LossyProxy;

pub const PASSWORD: &str = "correct horse battery staple";

/// An origin the in-process services allow, as a deployment's web app would be.
pub const WEB_ORIGIN: &str = "http://localhost:3000";

/// Control over in-process services: what a deployment under test lacks.
pub struct Control {
    auth_vars: HashMap<String, String>,
    auth_port: u16,
    auth_internal_port: u16,
    auth: Option<Handle>,
    key_dir: std::path::PathBuf,
    db: TestDatabase,
}

impl Drop for Control {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.key_dir);
    }
}

pub struct Stack {
    pub auth_url: String,
    pub api_url: String,
    /// The internal listeners (`/metrics`, the revocation feed): in URL
    /// mode only when `AUTH_INTERNAL_URL` and `API_INTERNAL_URL` say where.
    pub auth_internal_url: Option<String>,
    pub api_internal_url: Option<String>,
    /// The demo app of `web/`, when [`Options::serve_web`] asked for it.
    pub web_url: Option<String>,
    pub client: reqwest::Client,
    /// PEM of the signing key, to forge tokens the real key signed.
    pub signing_pem: Option<String>,
    pub control: Option<Control>,
    /// Between the served app and the auth server, when
    /// [`Options::web_through_lossy_proxy`] asked for it.
    pub lossy_proxy: Option<LossyProxy>,
}

/// Settings of the in-process services that tests may change.
#[derive(Clone)]
pub struct Options {
    pub max_staleness: &'static str,
    pub sync_interval: &'static str,
    pub fail_open: bool,
    pub reuse_grace: &'static str,
    pub access_token_ttl: &'static str,
    /// `JWT_LEEWAY` of both services.
    pub leeway: &'static str,
    /// Also serve `web/` on a port of its own, its origin allowed by both
    /// services and its `config.js` naming them (and the e-mail links
    /// pointing at it).
    pub serve_web: bool,
    /// `SMTP_URL` of the auth server; without it mail goes to files in a
    /// directory of the test's own.
    pub smtp_url: Option<String>,
    /// `MAX_SESSIONS_PER_USER` of the auth server.
    pub max_sessions_per_user: &'static str,
    /// Whether the served app's tabs take turns refreshing (its Web Lock);
    /// `false` writes `refreshLock: false` into its `config.js`.
    pub web_refresh_lock: bool,
    /// The served app reaches the auth server through a [`LossyProxy`]
    /// ([`Stack::lossy_proxy`]), which can lose a refresh's answer.
    pub web_through_lossy_proxy: bool,
    /// `REAUTH_MAX_AGE` of the auth server: how recent a proof its
    /// sensitive actions ask for.
    pub reauth_max_age: &'static str,
    /// `STEP_UP_MAX_AGE` of the resource API, for `/api/step-up`.
    pub step_up_max_age: &'static str,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_staleness: "30s",
            sync_interval: "1s",
            fail_open: false,
            reuse_grace: "10s",
            access_token_ttl: "15m",
            leeway: "5s",
            serve_web: false,
            smtp_url: None,
            max_sessions_per_user: "100",
            web_refresh_lock: true,
            web_through_lossy_proxy: false,
            reauth_max_age: "10m",
            step_up_max_age: "5m",
        }
    }
}

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Whether the suite targets a running deployment (`AUTH_URL`, `API_URL`).
pub fn url_mode() -> Option<(String, String)> {
    match (std::env::var("AUTH_URL"), std::env::var("API_URL")) {
        (Ok(auth), Ok(api)) if !auth.is_empty() && !api.is_empty() => Some((
            auth.trim_end_matches('/').to_owned(),
            api.trim_end_matches('/').to_owned(),
        )),
        _ => None,
    }
}

pub async fn spawn_stack() -> Stack {
    spawn_stack_with(Options::default()).await
}

pub async fn spawn_stack_with(options: Options) -> Stack {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    if let Some((auth_url, api_url)) = url_mode() {
        let signing_pem = std::env::var("SIGNING_KEY_FILE")
            .ok()
            .and_then(|path| std::fs::read_to_string(path).ok());
        let internal = |variable| {
            std::env::var(variable)
                .ok()
                .filter(|url| !url.is_empty())
                .map(|url| url.trim_end_matches('/').to_owned())
        };
        return Stack {
            auth_url,
            api_url,
            auth_internal_url: internal("AUTH_INTERNAL_URL"),
            api_internal_url: internal("API_INTERNAL_URL"),
            web_url: None,
            client,
            signing_pem,
            control: None,
            lossy_proxy: None,
        };
    }

    // Bound first: its origin goes into both services' ALLOWED_ORIGINS and
    // the auth server's WEBAUTHN_RP_ORIGINS. The browser reaches the page
    // and the services as `localhost`: one host name, so the SameSite=Strict
    // refresh cookie is same-site; and a domain, which passkeys need
    // (browsers refuse an IP address as relying party).
    let web_listener = options
        .serve_web
        .then(|| TcpListener::bind("127.0.0.1:0").unwrap());
    let mut allowed_origins = WEB_ORIGIN.to_owned();
    let mut public_url = WEB_ORIGIN.to_owned();
    if let Some(listener) = &web_listener {
        public_url = on_localhost(&format!("http://{}", listener.local_addr().unwrap()));
        allowed_origins.push_str(&format!(",{public_url}"));
    }

    let db = TestDatabase::create();
    let key_dir = std::env::temp_dir().join(format!("e2e-keys-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&key_dir).unwrap();
    let key_path = key_dir.join("signing.pem");
    auth_server::keys::signing::write_new_key(&key_path).unwrap();
    // Kept across restarts: a refresh token is checked with the key that
    // minted it.
    let token_key_path = key_dir.join("refresh-token-key");
    auth_server::keys::signing::write_new_secret(&token_key_path).unwrap();
    let mail_dir = key_dir.join("mail");
    let mut auth_vars = vars(&[
        ("DATABASE_URL", &db.url),
        ("AUTH_BIND", "127.0.0.1:0"),
        ("AUTH_INTERNAL_BIND", "127.0.0.1:0"),
        ("HTTP_WORKERS", "2"),
        ("PASSWORD_HASH_WORKERS", "2"),
        ("DATABASE_POOL_SIZE", "8"),
        ("LOGIN_RATE_LIMIT", "0"),
        ("LOGIN_ACCOUNT_RATE_LIMIT", "0"),
        ("REFRESH_RATE_LIMIT", "0"),
        ("REFRESH_REUSE_GRACE", options.reuse_grace),
        ("ACCESS_TOKEN_TTL", options.access_token_ttl),
        ("JWT_LEEWAY", options.leeway),
        ("ALLOWED_ORIGINS", &allowed_origins),
        ("SIGNING_KEY_FILE", key_path.to_str().unwrap()),
        ("REFRESH_TOKEN_KEY_FILE", token_key_path.to_str().unwrap()),
        ("PUBLIC_URL", &public_url),
        ("MAIL_DIR", mail_dir.to_str().unwrap()),
        ("MAIL_REQUEST_RATE_LIMIT", "0"),
        ("MAX_SESSIONS_PER_USER", options.max_sessions_per_user),
        ("REAUTH_MAX_AGE", options.reauth_max_age),
        ("WEBAUTHN_RP_ID", "localhost"),
        ("WEBAUTHN_RP_ORIGINS", &allowed_origins),
    ]);
    if let Some(url) = &options.smtp_url {
        auth_vars.insert("SMTP_URL".to_owned(), url.clone());
    }
    let (auth_port, auth_internal_port, auth) = start_auth(&auth_vars).await;
    let auth_url = format!("http://127.0.0.1:{auth_port}");
    let auth_internal_url = format!("http://127.0.0.1:{auth_internal_port}");
    let api_vars = vars(&[
        ("AUTH_URL", &auth_url),
        ("AUTH_INTERNAL_URL", &auth_internal_url),
        ("API_BIND", "127.0.0.1:0"),
        ("API_INTERNAL_BIND", "127.0.0.1:0"),
        ("HTTP_WORKERS", "2"),
        ("REVOCATION_SYNC_INTERVAL", options.sync_interval),
        ("REVOCATION_MAX_STALENESS", options.max_staleness),
        (
            "REVOCATION_FAIL_OPEN",
            if options.fail_open { "true" } else { "false" },
        ),
        ("JWKS_MIN_REFETCH_INTERVAL", "500ms"),
        ("JWT_LEEWAY", options.leeway),
        ("ALLOWED_ORIGINS", &allowed_origins),
        ("STEP_UP_MAX_AGE", options.step_up_max_age),
    ]);
    let settings =
        resource_api::config::Settings::from_lookup(|k| api_vars.get(k).cloned()).unwrap();
    let api = resource_api::startup::Application::build(settings)
        .await
        .unwrap();
    let api_url = format!("http://127.0.0.1:{}", api.port());
    let api_internal_url = format!("http://127.0.0.1:{}", api.internal_port());
    tokio::spawn(api.run_until_stopped());
    let lossy_proxy = options
        .web_through_lossy_proxy
        .then(|| LossyProxy::start(&auth_url));
    let web_auth_url = lossy_proxy.as_ref().map_or(&auth_url, |p| &p.url);
    let web_url = web_listener
        .map(|listener| serve_web(listener, web_auth_url, &api_url, options.web_refresh_lock));

    let stack = Stack {
        auth_url,
        api_url,
        auth_internal_url: Some(auth_internal_url),
        api_internal_url: Some(api_internal_url),
        web_url,
        client,
        signing_pem: Some(std::fs::read_to_string(&key_path).unwrap()),
        control: Some(Control {
            auth_vars,
            auth_port,
            auth_internal_port,
            auth: Some(auth),
            key_dir,
            db,
        }),
        lossy_proxy,
    };
    stack.wait_until_ready().await;
    stack
}

/// The public port, the internal port, and the handle that stops both.
async fn start_auth(vars: &HashMap<String, String>) -> (u16, u16, Handle) {
    if std::env::var("TEST_LOG").is_ok() {
        service_kit::telemetry::init_tracing(false);
    }
    let settings = auth_server::config::Settings::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let app = auth_server::startup::Application::build(settings)
        .await
        .expect("the auth server starts");
    let ports = (app.port(), app.internal_port());
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    (ports.0, ports.1, handle)
}

/// The workspace's `web/`: the demo app, served as it is.
fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../web")
}

/// A loopback URL of a listener on 127.0.0.1, named as the browser reaches it.
fn on_localhost(url: &str) -> String {
    url.replacen("://127.0.0.1:", "://localhost:", 1)
}

/// Serves `web/` as any static server would, except that `config.js` names
/// the in-process services. Returns the app's URL; the page and the
/// services it calls are all on `localhost`.
fn serve_web(listener: TcpListener, auth_url: &str, api_url: &str, refresh_lock: bool) -> String {
    let url = on_localhost(&format!("http://{}", listener.local_addr().unwrap()));
    let (auth_url, api_url) = (on_localhost(auth_url), on_localhost(api_url));
    let config = format!(
        "window.APP_CONFIG = {{ authUrl: '{auth_url}', apiUrl: '{api_url}', refreshLock: {refresh_lock} }};\n"
    );
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(config.clone()))
            .default_service(web::get().to(web_file))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    url
}

async fn web_file(req: HttpRequest, config: web::Data<String>) -> HttpResponse {
    let name = match req.path().trim_start_matches('/') {
        "" => "index.html",
        name => name,
    };
    if name == "config.js" {
        return HttpResponse::Ok()
            .content_type("text/javascript")
            .body(config.get_ref().clone());
    }
    // web/ is flat: anything with a separator or a leading dot is not in it.
    if name.contains(['/', '\\']) || name.starts_with('.') {
        return HttpResponse::NotFound().finish();
    }
    let content_type = match Path::new(name).extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript",
        Some("css") => "text/css",
        _ => "application/octet-stream",
    };
    match std::fs::read(web_dir().join(name)) {
        Ok(bytes) => HttpResponse::Ok()
            .content_type(content_type)
            .insert_header(("Cache-Control", "no-store"))
            .body(bytes),
        Err(_) => HttpResponse::NotFound().finish(),
    }
}

/// Polls until `check` holds or `limit` passes; returns how long it took.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < limit {
        if check().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

#[derive(Debug, Clone)]
pub struct Login {
    pub email: String,
    pub access_token: String,
    pub refresh_token: String,
}

impl Stack {
    /// Present in process mode; `None` means the test must skip, and says so.
    pub fn control(&mut self, test: &str) -> Option<&mut Control> {
        if self.control.is_none() {
            eprintln!(
                "SKIPPED {test}: it needs the in-process services (to stop or restart one, set its settings, or reach its database), which a deployment under test does not give"
            );
        }
        self.control.as_mut()
    }

    /// The resource API's internal listener; `None` means the test must
    /// skip, and says so.
    pub fn api_internal(&self, test: &str) -> Option<&str> {
        if self.api_internal_url.is_none() {
            eprintln!("SKIPPED {test}: the internal listener needs API_INTERNAL_URL in URL mode");
        }
        self.api_internal_url.as_deref()
    }

    /// The signing key's PEM; `None` means the test must skip, and says so.
    pub fn signing_pem(&self, test: &str) -> Option<&str> {
        if self.signing_pem.is_none() {
            eprintln!("SKIPPED {test}: forging tokens needs SIGNING_KEY_FILE in URL mode");
        }
        self.signing_pem.as_deref()
    }

    pub async fn wait_until_ready(&self) {
        let ready = eventually(Duration::from_secs(20), || async {
            matches!(self.client.get(format!("{}/readyz", self.api_url)).send().await, Ok(r) if r.status() == StatusCode::OK)
        })
        .await;
        assert!(ready.is_some(), "the resource API became ready");
    }

    pub async fn login(&self) -> Login {
        let email = format!("e2e-{}@example.com", Uuid::new_v4().simple());
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

    pub async fn login_as(&self, email: &str) -> Login {
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
            access_token: body["access_token"]
                .as_str()
                .expect("an access token")
                .to_owned(),
            refresh_token: body["refresh_token"]
                .as_str()
                .expect("a refresh token")
                .to_owned(),
        }
    }

    /// Logs the session out; the auth server acknowledges with `204`.
    pub async fn logout(&self, refresh_token: &str) {
        let logout = self
            .client
            .post(format!("{}/auth/logout", self.auth_url))
            .json(&json!({ "refresh_token": refresh_token }))
            .send()
            .await
            .unwrap();
        assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.client
            .post(format!("{}/auth/refresh", self.auth_url))
            .json(&json!({ "refresh_token": refresh_token }))
            .send()
            .await
            .unwrap()
    }

    pub async fn api(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.get(format!("{}{path}", self.api_url));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        request.send().await.unwrap()
    }

    pub async fn me_status(&self, token: &str) -> StatusCode {
        self.api("/api/me", Some(token)).await.status()
    }

    /// The body of a `GET` as JSON, whatever its status.
    pub async fn get_json(&self, url: String) -> Value {
        self.client
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn jwks(&self) -> Value {
        self.get_json(format!("{}/.well-known/jwks.json", self.auth_url))
            .await
    }

    pub async fn kid(&self) -> String {
        self.jwks().await["keys"][0]["kid"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

impl Control {
    pub async fn stop_auth(&mut self) {
        if let Some(handle) = self.auth.take() {
            handle.stop(false).await;
        }
    }

    /// Starts the auth server again on the same ports and database.
    pub async fn start_auth(&mut self) {
        let mut vars = self.auth_vars.clone();
        vars.insert(
            "AUTH_BIND".to_owned(),
            format!("127.0.0.1:{}", self.auth_port),
        );
        vars.insert(
            "AUTH_INTERNAL_BIND".to_owned(),
            format!("127.0.0.1:{}", self.auth_internal_port),
        );
        let (_, _, handle) = start_auth(&vars).await;
        self.auth = Some(handle);
    }

    /// Switches to a brand-new signing key for the next start, keeping the
    /// current one published as retired.
    pub fn rotate_signing_key_with_overlap(&mut self) {
        let current = self.auth_vars["SIGNING_KEY_FILE"].clone();
        self.new_signing_key();
        self.auth_vars
            .insert("RETIRED_SIGNING_KEY_FILES".to_owned(), current);
    }

    /// Switches to a brand-new signing key for the next start.
    pub fn new_signing_key(&mut self) {
        let path = self
            .key_dir
            .join(format!("signing-{}.pem", Uuid::new_v4().simple()));
        auth_server::keys::signing::write_new_key(&path).unwrap();
        self.auth_vars.insert(
            "SIGNING_KEY_FILE".to_owned(),
            path.to_str().unwrap().to_owned(),
        );
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.db.count(sql)
    }

    pub fn execute(&self, sql: &str) {
        diesel::sql_query(sql).execute(&mut self.connect()).unwrap();
    }

    /// A connection of the test's own to the auth server's database.
    pub fn connect(&self) -> PgConnection {
        PgConnection::establish(&self.db.url).unwrap()
    }

    pub fn grant_role(&self, email: &str, role: &str) {
        let mut conn = PgConnection::establish(&self.db.url).unwrap();
        let email = auth_server::accounts::email::Email::parse(email).unwrap();
        auth_server::db::admin::set_role(&mut conn, &email, role, true)
            .unwrap()
            .unwrap();
    }
}

/// The claims of a token, unverified: a template to forge variants from.
pub fn claims_of(token: &str) -> Value {
    jsonwebtoken::dangerous::insecure_decode::<Value>(token)
        .unwrap()
        .claims
}

/// Signs `claims` with the PEM's key and `header`.
pub fn forge(pem: &str, header: &Header, claims: &Value) -> String {
    jsonwebtoken::encode(
        header,
        claims,
        &EncodingKey::from_ed_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

pub fn access_header(kid: &str) -> Header {
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(kid.to_owned());
    header
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Asserts a `401` with the contract's body and an RFC 6750 challenge;
/// `error="invalid_token"` exactly when a token was sent.
pub async fn assert_unauthorized(response: Response, token_sent: bool) -> String {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    if token_sent {
        assert!(
            challenge.starts_with(r#"Bearer realm="resource-api", error="invalid_token""#),
            "{challenge}"
        );
    } else {
        assert_eq!(challenge, r#"Bearer realm="resource-api""#);
    }
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
    body["error_description"].as_str().unwrap().to_owned()
}
