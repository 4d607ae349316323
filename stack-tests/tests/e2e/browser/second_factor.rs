//! Contract § Second factors and step-up, in a browser: the demo app's security card, second login step and step-up prompt.
//!
//! In Chromium, as a user would: set up an authenticator app from the
//! secret the page shows (and draws as a QR code), confirm it with a code,
//! read the ten recovery codes; log in again with the password and a code
//! (a wrong code lets the user try again); call `/api/step-up`, allowed
//! right after that login and, past `STEP_UP_MAX_AGE`, answered with the
//! step-up prompt (a code already used is refused there, a new one is
//! accepted and the call retried); past `REAUTH_MAX_AGE`, regenerating the
//! recovery codes prompts again, and a recovery code answers it; last, a
//! login with one of the new recovery codes leaves nine. The test computes
//! the codes an authenticator app would show (RFC 6238), from the secret
//! read off the page.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fantoccini::Client;
use serde_json::Value;
use totp_rs::{Algorithm, Secret, TOTP};
use uuid::Uuid;

use super::{click, codes, entries, in_chromium, poll, register, since, type_into, wait};
use crate::helpers::*;

/// The resource API's `STEP_UP_MAX_AGE` and the auth server's
/// `REAUTH_MAX_AGE` in this test: short, so that a proof grows stale
/// within seconds; the second longer than the time from registering to
/// starting the set-up, which is a sensitive action too. The same as the
/// `Options` below.
const STEP_UP_MAX_AGE: Duration = Duration::from_secs(4);
const REAUTH_MAX_AGE: Duration = Duration::from_secs(6);
/// Past a max age for sure: `auth_time` is in whole seconds.
const MARGIN: Duration = Duration::from_millis(1500);

/// What the security card, the second login step and the step-up prompt
/// show; the request log oldest first.
const SECURITY: &str = r#"
    const shown = (id) => !document.getElementById(id).hidden;
    const text = (id) => document.getElementById(id).textContent;
    const data = (id) => document.getElementById(id).dataset;
    const darkPixels = () => {
        const canvas = document.getElementById('totp-qr');
        if (!canvas.width) return 0;
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let dark = 0;
        for (let i = 0; i < pixels.length; i += 4) if (pixels[i] < 128) dark += 1;
        return dark;
    };
    return {
        loggedIn: shown('app-view'),
        loginShown: shown('login-view'),
        secondStep: shown('mfa-view'),
        message: shown('message') ? text('message') : '',
        totpEnabled: data('totp-status').enabled ?? null,
        recoveryRemaining: data('recovery-remaining').count ?? null,
        acr: data('session-assurance').acr ?? null,
        enrolShown: shown('totp-enrol'),
        secret: text('totp-secret').replace(/\s+/g, ''),
        link: document.getElementById('totp-link').getAttribute('href'),
        qrDarkPixels: darkPixels(),
        recoveryCodes: shown('recovery-view')
            ? [...document.querySelectorAll('#recovery-codes li')].map((li) => li.textContent)
            : [],
        stepUpPrompt: document.getElementById('step-up-dialog').open,
        stepUpError: shown('step-up-error') ? text('step-up-error') : '',
        stepUpStatus: data('step-up-result').status ?? null,
        log: [...document.querySelectorAll('#log li')].map((li) => li.dataset.entry).reverse(),
    };
"#;

#[tokio::test]
async fn a_second_factor_and_step_up_in_chromium() {
    let options = Options {
        serve_web: true,
        step_up_max_age: "4s",
        reauth_max_age: "6s",
        ..Options::default()
    };
    in_chromium(
        "a_second_factor_and_step_up_in_chromium",
        options,
        |stack, tab| Box::pin(scenario(stack, tab)),
    )
    .await;
}

async fn scenario(stack: &Stack, tab: &Client) {
    let web_url = stack.web_url.clone().unwrap();
    let email = format!("mfa-{}@example.com", Uuid::new_v4().simple());
    tab.goto(&web_url).await.unwrap();
    wait(tab, "the login form", |s| s["loginShown"] == true).await;
    register(tab, &email).await;
    let state = wait_security(tab, "no second factor yet", |s| s["totpEnabled"] == "false").await;
    assert_eq!(state["recoveryRemaining"], "0", "{state:#}");
    assert_eq!(state["acr"], "aal1", "{state:#}");

    // The set-up shows the secret and draws the otpauth URI as a QR code.
    click(tab, "#totp-setup").await;
    let state = wait_security(tab, "the set-up", |s| {
        s["enrolShown"] == true
            && s["secret"] != ""
            && s["qrDarkPixels"].as_u64().is_some_and(|n| n > 0)
    })
    .await;
    let secret = state["secret"].as_str().unwrap().to_owned();
    let link = state["link"].as_str().unwrap();
    assert!(
        link.starts_with("otpauth://totp/") && link.contains(&format!("secret={secret}")),
        "{link}"
    );
    let mut app = Authenticator::new(&secret);

    // A code confirms it: ten recovery codes, shown this once.
    type_into(tab, "totp-code", &app.next_code().await).await;
    click(tab, "#totp-confirm").await;
    let state = wait_security(tab, "the app on and the recovery codes", |s| {
        s["totpEnabled"] == "true" && codes(s).len() == 10
    })
    .await;
    assert_eq!(state["recoveryRemaining"], "10", "{state:#}");
    assert_eq!(state["enrolShown"], false, "{state:#}");
    let first_codes = codes(&state);
    click(tab, "#recovery-saved").await;
    wait_security(tab, "the codes put away", |s| codes(s).is_empty()).await;

    // Logged out, the password alone no longer logs in: a second step asks
    // for a code, and a wrong one lets the user try again.
    log_out(tab).await;
    log_in_with_password(tab, &email).await;
    type_into(tab, "mfa-code", &app.wrong_code()).await;
    click(tab, "#mfa-button").await;
    wait_security(tab, "the wrong code refused", |s| {
        s["message"] == "That code is not right. Try again." && s["secondStep"] == true
    })
    .await;
    type_into(tab, "mfa-code", &app.next_code().await).await;
    click(tab, "#mfa-button").await;
    let state = wait_security(tab, "logged in with two factors", |s| {
        s["loggedIn"] == true && s["acr"] == "aal2"
    })
    .await;
    let logged_in = Instant::now();
    let log = entries(&state);
    for entry in [
        "POST /auth/login 403",
        "POST /auth/login/mfa 401",
        "POST /auth/login/mfa 200",
    ] {
        assert!(log.iter().any(|e| e == entry), "{entry} in {log:?}");
    }

    // Right after that login, /api/step-up answers.
    click(tab, "#step-up-button").await;
    wait_security(tab, "/api/step-up allowed", |s| s["stepUpStatus"] == "200").await;

    // Past STEP_UP_MAX_AGE it asks for a fresh proof: the prompt. The
    // login's code, presented again, is refused; a new one is accepted, and
    // the call is retried with the access token it gave.
    tokio::time::sleep_until((logged_in + STEP_UP_MAX_AGE + MARGIN).into()).await;
    let before = read_security(tab).await;
    click(tab, "#step-up-button").await;
    wait_security(tab, "the step-up prompt", |s| s["stepUpPrompt"] == true).await;
    type_into(tab, "step-up-password", PASSWORD).await;
    type_into(tab, "step-up-code", &app.used_code()).await;
    click(tab, "#step-up-submit").await;
    wait_security(tab, "the used code refused", |s| {
        s["stepUpPrompt"] == true && s["stepUpError"] != ""
    })
    .await;
    type_into(tab, "step-up-password", PASSWORD).await;
    type_into(tab, "step-up-code", &app.next_code().await).await;
    click(tab, "#step-up-submit").await;
    let after = wait_security(tab, "/api/step-up allowed after the step-up", |s| {
        s["stepUpPrompt"] == false && s["stepUpStatus"] == "200"
    })
    .await;
    let stepped_up = Instant::now();
    assert_eq!(after["message"], "", "{after:#}");
    assert_eq!(
        since(&before, &after),
        [
            "GET /api/step-up 401",
            "POST /auth/reauthenticate 403",
            "POST /auth/reauthenticate 200",
            "GET /api/step-up 200",
        ],
        "no refresh: the step-up's access token is used as it comes"
    );

    // Past REAUTH_MAX_AGE the auth server's sensitive actions ask too:
    // regenerating the recovery codes prompts, a recovery code answers, and
    // the new codes come.
    tokio::time::sleep_until((stepped_up + REAUTH_MAX_AGE + MARGIN).into()).await;
    let before = read_security(tab).await;
    click(tab, "#recovery-regenerate").await;
    wait_security(tab, "the step-up prompt again", |s| {
        s["stepUpPrompt"] == true
    })
    .await;
    type_into(tab, "step-up-password", PASSWORD).await;
    click(tab, "#step-up-switch").await;
    type_into(tab, "step-up-recovery", &first_codes[0]).await;
    click(tab, "#step-up-submit").await;
    let after = wait_security(tab, "new recovery codes", |s| {
        s["stepUpPrompt"] == false && codes(s).len() == 10 && s["recoveryRemaining"] == "10"
    })
    .await;
    let new_codes = codes(&after);
    assert!(
        new_codes.iter().all(|c| !first_codes.contains(c)),
        "{new_codes:?}"
    );
    let new = since(&before, &after);
    for entry in [
        "POST /auth/mfa/recovery-codes 401",
        "POST /auth/reauthenticate 200",
        "POST /auth/mfa/recovery-codes 200",
    ] {
        assert!(new.iter().any(|e| e == entry), "{entry} in {new:?}");
    }
    click(tab, "#recovery-saved").await;

    // A login with one of the new recovery codes: nine left.
    log_out(tab).await;
    log_in_with_password(tab, &email).await;
    click(tab, "#mfa-switch").await;
    type_into(tab, "mfa-recovery", &new_codes[0]).await;
    click(tab, "#mfa-button").await;
    let state = wait_security(tab, "logged in with a recovery code", |s| {
        s["loggedIn"] == true && s["recoveryRemaining"] == "9"
    })
    .await;
    assert_eq!(state["acr"], "aal2", "{state:#}");
}

/// The user's authenticator app, as the test plays it: each code of a time
/// step later than the last one used (a code once accepted is refused
/// again), and no earlier than the step before now (the server accepts one
/// step either side). No test waits the 30 seconds of a step.
struct Authenticator {
    totp: TOTP,
    last_step: Option<u64>,
}

impl Authenticator {
    fn new(secret: &str) -> Self {
        let key = Secret::Encoded(secret.to_owned()).to_bytes().unwrap();
        Self {
            totp: TOTP::new_unchecked(Algorithm::SHA1, 6, 1, 30, key, None, String::new()),
            last_step: None,
        }
    }

    async fn next_code(&mut self) -> String {
        // Near a step's end, wait for the next one: the server must read
        // the same step as now.
        let at = unix_now();
        if at % 30 >= 28 {
            tokio::time::sleep(Duration::from_millis((30 - at % 30) * 1000 + 200)).await;
        }
        let now = unix_now() / 30;
        let step = self
            .last_step
            .map_or(now - 1, |last| (last + 1).max(now - 1));
        assert!(
            step <= now + 1,
            "step {step} is beyond what the server accepts"
        );
        self.last_step = Some(step);
        self.totp.generate(step * 30)
    }

    /// The last code accepted, again.
    fn used_code(&self) -> String {
        self.totp.generate(self.last_step.unwrap() * 30)
    }

    /// A code of a step far from now.
    fn wrong_code(&self) -> String {
        self.totp.generate((unix_now() / 30 + 10) * 30)
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn log_out(tab: &Client) {
    click(tab, "#logout-button").await;
    wait(tab, "logged out", |s| s["loginShown"] == true).await;
}

/// The password, right: the second step shows.
async fn log_in_with_password(tab: &Client, email: &str) {
    type_into(tab, "email", email).await;
    type_into(tab, "password", PASSWORD).await;
    click(tab, "#login-button").await;
    let state = wait_security(tab, "the second step", |s| s["secondStep"] == true).await;
    assert_eq!(state["loginShown"], false, "{state:#}");
}

async fn read_security(tab: &Client) -> Value {
    tab.execute(SECURITY, vec![]).await.unwrap()
}

async fn wait_security(tab: &Client, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    poll(tab, SECURITY, what, ready).await
}
