//! Contract § Passkeys, in a browser: the demo app adds, uses and removes a passkey.
//!
//! In Chromium, with a virtual authenticator that chromedriver adds (the
//! W3C WebAuthn automation extension: a platform authenticator that keeps
//! discoverable credentials and verifies its user). The server's options
//! require a discoverable credential and user verification, so an
//! authenticator that cannot verify the user makes no passkey; a working
//! one does, named, with the first recovery codes. The user signs in with
//! the passkey alone (`acr` `aal2`, `amr` `hwk user`), answers the step-up
//! prompt with it, is refused when the device stops verifying, logs in with
//! the password and the passkey as the second step, and removes the
//! passkey: the session it signed in ends, a session of a recovery code
//! does not, and the device's leftover credential no longer signs in.

use std::time::{Duration, Instant};

use fantoccini::Client;
use fantoccini::wd::WebDriverCompatibleCommand;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use url::{ParseError, Url};
use uuid::Uuid;

use super::{click, codes, entries, in_chromium, poll, register, since, type_into, wait};
use crate::helpers::*;

/// The auth server's `REAUTH_MAX_AGE` here: longer than registering and
/// adding the passkey take, short enough to wait out once.
const REAUTH_MAX_AGE: Duration = Duration::from_secs(8);
/// Past a max age for sure: `auth_time` is in whole seconds.
const MARGIN: Duration = Duration::from_millis(1500);

/// What the page shows of passkeys, the session's proof and the prompts;
/// the request log oldest first.
const PASSKEYS: &str = r#"
    const shown = (id) => !document.getElementById(id).hidden;
    const text = (id) => document.getElementById(id).textContent;
    const assurance = document.getElementById('session-assurance').dataset;
    const field = (name) => {
        const dd = document.querySelector(`#me [data-field="${name}"]`);
        return dd ? dd.textContent : null;
    };
    return {
        loggedIn: shown('app-view'),
        loginShown: shown('login-view'),
        passkeyLoginShown: shown('passkey-login'),
        secondStep: shown('mfa-view'),
        passkeyChoice: shown('mfa-passkey-choice'),
        message: shown('message') ? text('message') : '',
        session: field('session'),
        acr: assurance.acr ?? null,
        amr: assurance.amr ?? null,
        passkeys: [...document.querySelectorAll('#passkeys li[data-passkey-id]')]
            .map((li) => ({ id: li.dataset.passkeyId, name: li.dataset.name })),
        recoveryCodes: shown('recovery-view')
            ? [...document.querySelectorAll('#recovery-codes li')].map((li) => li.textContent)
            : [],
        stepUpPrompt: document.getElementById('step-up-dialog').open,
        stepUpPasskey: shown('step-up-passkey'),
        log: [...document.querySelectorAll('#log li')].map((li) => li.dataset.entry).reverse(),
    };
"#;

#[tokio::test]
async fn passkeys_in_chromium() {
    let options = Options {
        serve_web: true,
        reauth_max_age: "8s",
        ..Options::default()
    };
    in_chromium("passkeys_in_chromium", options, |stack, tab| {
        Box::pin(scenario(stack, tab))
    })
    .await;
}

async fn scenario(stack: &Stack, tab: &Client) {
    let web_url = stack.web_url.clone().unwrap();
    let email = format!("passkey-{}@example.com", Uuid::new_v4().simple());
    assert_user_verification_required(stack).await;
    tab.goto(&web_url).await.unwrap();
    let state = wait_passkeys(tab, "the login form", |s| s["loginShown"] == true).await;
    assert_eq!(state["passkeyLoginShown"], true, "{state:#}");
    register(tab, &email).await;
    let registered = Instant::now();
    wait_passkeys(tab, "the security card", settled).await;

    // An authenticator that cannot verify its user: the server requires
    // user verification, so no passkey is made.
    let careless = Authenticator::add(tab, false).await;
    let before = read_passkeys(tab).await;
    click(tab, "#passkey-add").await;
    let after = wait_passkeys(tab, "the passkey refused", |s| {
        s["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("No passkey was used"))
    })
    .await;
    assert_eq!(after["passkeys"], json!([]), "{after:#}");
    assert_eq!(
        ceremonies(&before, &after),
        ["POST /auth/passkeys/register/start 200"]
    );
    assert!(careless.credentials(tab).await.is_empty());
    careless.remove(tab).await;

    // One that does: a discoverable credential on the device, the passkey
    // listed under its name, and the user's first recovery codes.
    let device = Authenticator::add(tab, true).await;
    type_into(tab, "passkey-name", "test laptop").await;
    click(tab, "#passkey-add").await;
    let state = wait_passkeys(tab, "the passkey added", |s| {
        s["passkeys"].as_array().is_some_and(|p| p.len() == 1)
    })
    .await;
    assert!(
        registered.elapsed() < REAUTH_MAX_AGE,
        "no step-up was needed"
    );
    assert_eq!(state["passkeys"][0]["name"], "test laptop", "{state:#}");
    assert_eq!(codes(&state).len(), 10, "{state:#}");
    assert!(
        entries(&state)
            .iter()
            .any(|e| e == "POST /auth/passkeys/register/finish 201"),
        "{state:#}"
    );
    let passkey_id = state["passkeys"][0]["id"].as_str().unwrap().to_owned();
    let held = device.credentials(tab).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["isResidentCredential"], true, "{held:?}");
    click(tab, "#recovery-saved").await;

    // The passkey alone signs in: no e-mail, no password, two factors' worth.
    log_out(tab).await;
    let before = read_passkeys(tab).await;
    click(tab, "#passkey-login-button").await;
    let after = wait_passkeys(tab, "signed in with the passkey", settled).await;
    let signed_in = Instant::now();
    assert_eq!(after["acr"], "aal2", "{after:#}");
    assert_eq!(after["amr"], "hwk user", "{after:#}");
    let new = since(&before, &after);
    for entry in [
        "POST /auth/passkeys/login/start 200",
        "POST /auth/passkeys/login/finish 200",
    ] {
        assert!(new.iter().any(|e| e == entry), "{entry} in {new:?}");
    }

    // Past REAUTH_MAX_AGE a sensitive action prompts, and the passkey alone
    // answers: new recovery codes.
    tokio::time::sleep_until((signed_in + REAUTH_MAX_AGE + MARGIN).into()).await;
    let before = read_passkeys(tab).await;
    click(tab, "#recovery-regenerate").await;
    let state = wait_passkeys(tab, "the step-up prompt", |s| s["stepUpPrompt"] == true).await;
    assert_eq!(state["stepUpPasskey"], true, "{state:#}");
    click(tab, "#step-up-passkey").await;
    let after = wait_passkeys(tab, "new recovery codes", |s| {
        s["stepUpPrompt"] == false && codes(s).len() == 10
    })
    .await;
    let recovery_codes = codes(&after);
    let posts: Vec<String> = since(&before, &after)
        .into_iter()
        .filter(|e| e.starts_with("POST "))
        .collect();
    assert_eq!(
        posts,
        [
            "POST /auth/mfa/recovery-codes 401",
            "POST /auth/reauthenticate/passkey 200",
            "POST /auth/reauthenticate 200",
            "POST /auth/mfa/recovery-codes 200",
        ]
    );
    click(tab, "#recovery-saved").await;

    // A device that no longer verifies its user signs no one in.
    log_out(tab).await;
    device.set_user_verified(tab, false).await;
    let before = read_passkeys(tab).await;
    click(tab, "#passkey-login-button").await;
    let after = wait_passkeys(tab, "the unverified sign-in refused", |s| {
        s["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("No passkey was used"))
    })
    .await;
    assert_eq!(after["loginShown"], true, "{after:#}");
    assert_eq!(
        ceremonies(&before, &after),
        ["POST /auth/passkeys/login/start 200"]
    );
    device.set_user_verified(tab, true).await;

    // The password, then the passkey as the second step.
    type_into(tab, "email", &email).await;
    type_into(tab, "password", PASSWORD).await;
    click(tab, "#login-button").await;
    let state = wait_passkeys(tab, "the second step", |s| s["secondStep"] == true).await;
    assert_eq!(state["passkeyChoice"], true, "{state:#}");
    click(tab, "#mfa-passkey").await;
    let state = wait_passkeys(tab, "logged in with the password and the passkey", settled).await;
    assert_eq!(state["acr"], "aal2", "{state:#}");
    let amr = state["amr"].as_str().unwrap();
    for method in ["pwd", "hwk", "mfa"] {
        assert!(amr.split(' ').any(|m| m == method), "{method} in {amr}");
    }
    for entry in [
        "POST /auth/login 403",
        "POST /auth/login/mfa/passkey 200",
        "POST /auth/login/mfa 200",
    ] {
        assert!(
            entries(&state).iter().any(|e| e == entry),
            "{entry} in {state:#}"
        );
    }

    // Another session, of the password and a recovery code: no passkey.
    let other = log_in_with_recovery_code(stack, &email, &recovery_codes[0]).await;

    // Removing the passkey ends the session it signed in (this one), and
    // only that one.
    let before = read_passkeys(tab).await;
    click(
        tab,
        &format!(r#"#passkeys li[data-passkey-id="{passkey_id}"] button.remove"#),
    )
    .await;
    accept_confirmation(tab).await;
    let after = wait_passkeys(tab, "this session ended", |s| s["loginShown"] == true).await;
    assert!(
        after["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Your session has ended")),
        "{after:#}"
    );
    let new = since(&before, &after);
    for entry in [
        format!("DELETE /auth/passkeys/{passkey_id} 204"),
        "POST /auth/refresh 401".to_owned(),
    ] {
        assert!(new.contains(&entry), "{entry} in {new:?}");
    }
    assert_eq!(stack.me_status(&other).await, StatusCode::OK);

    // The credential left on the device is no passkey of this server's now.
    click(tab, "#passkey-login-button").await;
    let after = wait_passkeys(tab, "the removed passkey refused", |s| {
        s["message"] != "" && !s["message"].as_str().unwrap().starts_with("Your session")
    })
    .await;
    assert_eq!(after["loggedIn"], false, "{after:#}");
    assert!(
        entries(&after)
            .iter()
            .any(|e| e == "POST /auth/passkeys/login/finish 401"),
        "{after:#}"
    );
}

/// What the browser is told to insist on: a discoverable credential and a
/// verified user when registering; a verified user, and any passkey the
/// device holds, when signing in.
async fn assert_user_verification_required(stack: &Stack) {
    let login = stack.login().await;
    let post = |path: &str, token: Option<&str>| {
        let request = stack
            .client
            .post(format!("{}{path}", stack.auth_url))
            .json(&json!({}));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    };
    let created: Value = post("/auth/passkeys/register/start", Some(&login.access_token))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let selection = &created["options"]["authenticatorSelection"];
    assert_eq!(selection["userVerification"], "required", "{created:#}");
    assert_eq!(selection["residentKey"], "required", "{created:#}");
    let requested: Value = post("/auth/passkeys/login/start", None)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let options = &requested["options"];
    assert_eq!(options["userVerification"], "required", "{requested:#}");
    assert!(
        options["allowCredentials"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{requested:#}"
    );
}

/// Logs in over HTTP with the password and a recovery code; the access token.
async fn log_in_with_recovery_code(stack: &Stack, email: &str, code: &str) -> String {
    let first: Value = stack
        .client
        .post(format!("{}/auth/login", stack.auth_url))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["error"], "mfa_required", "{first}");
    let methods = first["methods"].as_array().unwrap();
    assert!(methods.contains(&json!("passkey")), "{first}");
    let answer = stack
        .client
        .post(format!("{}/auth/login/mfa", stack.auth_url))
        .json(&json!({"mfa_token": first["mfa_token"], "recovery_code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = answer.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// Accepts the `window.confirm` the page shows, once it is there.
async fn accept_confirmation(tab: &Client) {
    let started = Instant::now();
    while tab.accept_alert().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a confirmation shown"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn log_out(tab: &Client) {
    click(tab, "#logout-button").await;
    wait(tab, "logged out", |s| s["loginShown"] == true).await;
}

async fn read_passkeys(tab: &Client) -> Value {
    tab.execute(PASSKEYS, vec![]).await.unwrap()
}

async fn wait_passkeys(tab: &Client, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    poll(tab, PASSKEYS, what, ready).await
}

/// Logged in, with /api/me and the security card both rendered (they load
/// side by side).
fn settled(state: &Value) -> bool {
    state["loggedIn"] == true
        && state["session"].is_string()
        && state["acr"].as_str().is_some_and(|acr| !acr.is_empty())
}

/// The passkey requests between two states.
fn ceremonies(before: &Value, after: &Value) -> Vec<String> {
    since(before, after)
        .into_iter()
        .filter(|e| e.starts_with("POST /auth/passkeys/"))
        .collect()
}

/// A virtual authenticator in the browser, as chromedriver keeps it: built
/// in ("internal"), CTAP2, holding discoverable credentials, with user
/// verification that succeeds or fails as told.
struct Authenticator {
    id: String,
}

impl Authenticator {
    async fn add(tab: &Client, verifies_user: bool) -> Self {
        let options = json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": verifies_user,
        });
        let id = webauthn(tab, Method::POST, "authenticator", Some(options)).await;
        Self {
            id: id.as_str().expect("an authenticator id").to_owned(),
        }
    }

    async fn set_user_verified(&self, tab: &Client, verified: bool) {
        let path = format!("authenticator/{}/uv", self.id);
        let body = json!({ "isUserVerified": verified });
        webauthn(tab, Method::POST, &path, Some(body)).await;
    }

    async fn credentials(&self, tab: &Client) -> Vec<Value> {
        let path = format!("authenticator/{}/credentials", self.id);
        match webauthn(tab, Method::GET, &path, None).await {
            Value::Array(list) => list,
            other => panic!("the credentials: {other}"),
        }
    }

    async fn remove(self, tab: &Client) {
        let path = format!("authenticator/{}", self.id);
        webauthn(tab, Method::DELETE, &path, None).await;
    }
}

/// Sends one of the WebAuthn extension's commands (`/session/{id}/webauthn/…`).
async fn webauthn(tab: &Client, method: Method, path: &str, body: Option<Value>) -> Value {
    let command = WebAuthnCommand {
        method,
        path: path.to_owned(),
        body,
    };
    tab.issue_cmd(command)
        .await
        .unwrap_or_else(|e| panic!("webauthn/{path}: {e}"))
}

#[derive(Debug)]
struct WebAuthnCommand {
    method: Method,
    path: String,
    body: Option<Value>,
}

impl WebDriverCompatibleCommand for WebAuthnCommand {
    fn endpoint(&self, base_url: &Url, session_id: Option<&str>) -> Result<Url, ParseError> {
        let session = session_id.unwrap_or_default();
        base_url.join(&format!("session/{session}/webauthn/{}", self.path))
    }

    fn method_and_body(&self, _: &Url) -> (Method, Option<String>) {
        (
            self.method.clone(),
            self.body.as_ref().map(Value::to_string),
        )
    }
}
