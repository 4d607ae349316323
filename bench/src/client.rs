//! Typed calls to the two services over one keep-alive connection pool.

use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde_json::json;

/// What the sessions record as the client: the SQL ceiling passes the same.
pub const USER_AGENT: &str = "auth-bench";

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    login: Url,
    login_mfa: Url,
    totp: Url,
    totp_confirm: Url,
    register: Url,
    refresh: Url,
    logout: Url,
    pub auth_ready: Url,
    pub me: Url,
    pub api_health: Url,
    pub api_ready: Url,
}

/// A login or refresh answer in body delivery.
#[derive(Debug, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
}

/// `403 mfa_required`: the password was right, a second factor is due.
#[derive(Deserialize)]
struct MfaRequired {
    error: String,
    mfa_token: String,
}

/// A pending TOTP enrolment; its secret is read back from the URI.
#[derive(Deserialize)]
struct Enrolment {
    otpauth_uri: String,
}

impl Client {
    pub fn new(auth: &Url, api: &Url, connections: usize) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .http1_only()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(connections)
            .user_agent(USER_AGENT)
            .timeout(Duration::from_secs(15))
            .build()?;
        let join = |base: &Url, path: &str| {
            base.join(path)
                .with_context(|| format!("joining {path} to {base}"))
        };
        Ok(Self {
            http,
            login: join(auth, "/auth/login")?,
            login_mfa: join(auth, "/auth/login/mfa")?,
            totp: join(auth, "/auth/mfa/totp")?,
            totp_confirm: join(auth, "/auth/mfa/totp/confirm")?,
            register: join(auth, "/auth/register")?,
            refresh: join(auth, "/auth/refresh")?,
            logout: join(auth, "/auth/logout")?,
            auth_ready: join(auth, "/readyz")?,
            me: join(api, "/api/me")?,
            api_health: join(api, "/healthz")?,
            api_ready: join(api, "/readyz")?,
        })
    }

    /// `POST /auth/refresh`'s URL, for the chains' own connections.
    pub fn refresh_url(&self) -> &Url {
        &self.refresh
    }

    /// Registers a user; one that already exists is fine.
    pub async fn register(&self, email: &str, password: &str) -> anyhow::Result<()> {
        let response = self
            .http
            .post(self.register.clone())
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await?;
        match response.status() {
            StatusCode::CREATED | StatusCode::CONFLICT => Ok(()),
            status => bail!("register: {status}: {}", snippet(response).await),
        }
    }

    pub async fn login(&self, email: &str, password: &str) -> anyhow::Result<Tokens> {
        let response = self
            .http
            .post(self.login.clone())
            .json(&json!({
                "email": email,
                "password": password,
                "refresh_token_delivery": "body",
            }))
            .send()
            .await?;
        tokens(response, "login").await
    }

    /// The password step of a user with a second factor: the `mfa_token`
    /// of its `403 mfa_required`.
    pub async fn login_password_step(&self, email: &str, password: &str) -> anyhow::Result<String> {
        let response = self
            .http
            .post(self.login.clone())
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await?;
        if response.status() != StatusCode::FORBIDDEN {
            bail!(
                "login of a TOTP user: {} (expected 403 mfa_required): {}",
                response.status(),
                snippet(response).await
            );
        }
        let body: MfaRequired = response.json().await?;
        if body.error != "mfa_required" {
            bail!("login of a TOTP user: 403 {}", body.error);
        }
        Ok(body.mfa_token)
    }

    /// `POST /auth/login/mfa`: the second step, refresh token in the body.
    pub async fn login_mfa(&self, mfa_token: &str, code: &str) -> anyhow::Result<Tokens> {
        let response = self
            .http
            .post(self.login_mfa.clone())
            .json(&json!({
                "mfa_token": mfa_token,
                "code": code,
                "refresh_token_delivery": "body",
            }))
            .send()
            .await?;
        tokens(response, "login/mfa").await
    }

    /// `POST /auth/mfa/totp`: a pending enrolment's `otpauth://` URI.
    pub async fn enrol_totp(&self, bearer: &HeaderValue) -> anyhow::Result<String> {
        let response = self
            .http
            .post(self.totp.clone())
            .header(AUTHORIZATION, bearer.clone())
            .send()
            .await?;
        match response.status() {
            StatusCode::OK => Ok(response.json::<Enrolment>().await?.otpauth_uri),
            status => bail!("mfa/totp: {status}: {}", snippet(response).await),
        }
    }

    /// `POST /auth/mfa/totp/confirm`: TOTP on.
    pub async fn confirm_totp(&self, bearer: &HeaderValue, code: &str) -> anyhow::Result<()> {
        let response = self
            .http
            .post(self.totp_confirm.clone())
            .header(AUTHORIZATION, bearer.clone())
            .json(&json!({ "code": code }))
            .send()
            .await?;
        match response.status() {
            StatusCode::OK => {
                response.bytes().await?;
                Ok(())
            }
            status => bail!("mfa/totp/confirm: {status}: {}", snippet(response).await),
        }
    }

    pub async fn logout(&self, refresh_token: &str) -> anyhow::Result<()> {
        let response = self
            .http
            .post(self.logout.clone())
            .json(&json!({ "refresh_token": refresh_token }))
            .send()
            .await?;
        match response.status() {
            StatusCode::NO_CONTENT => Ok(()),
            status => bail!("logout: {status}: {}", snippet(response).await),
        }
    }

    /// The status of a GET, its body read so the connection can be reused.
    pub async fn get(&self, url: &Url, bearer: Option<&HeaderValue>) -> anyhow::Result<StatusCode> {
        let mut request = self.http.get(url.clone());
        if let Some(bearer) = bearer {
            request = request.header(AUTHORIZATION, bearer.clone());
        }
        let response = request.send().await?;
        let status = response.status();
        response.bytes().await?;
        Ok(status)
    }

    /// A GET that must answer `200`.
    pub async fn get_ok(&self, url: &Url, bearer: Option<&HeaderValue>) -> anyhow::Result<()> {
        match self.get(url, bearer).await? {
            StatusCode::OK => Ok(()),
            status => bail!("GET {}: {status}", url.path()),
        }
    }
}

pub fn bearer(access_token: &str) -> anyhow::Result<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {access_token}"))?;
    value.set_sensitive(true);
    Ok(value)
}

async fn tokens(response: reqwest::Response, what: &str) -> anyhow::Result<Tokens> {
    match response.status() {
        StatusCode::OK => Ok(response.json().await?),
        status => bail!("{what}: {status}: {}", snippet(response).await),
    }
}

/// The start of an error body: the contract's `{"error", "error_description"}`,
/// which never holds a token.
async fn snippet(response: reqwest::Response) -> String {
    let body = response.text().await.unwrap_or_default();
    body.chars().take(200).collect()
}
