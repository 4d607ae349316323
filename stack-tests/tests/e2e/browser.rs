//! Contract § Delivery of the refresh token, in a browser: the demo app in Chromium.
//!
//! The demo app of `web/` in a real Chromium, driven through chromedriver
//! (WebDriver, with fantoccini): it registers and logs in, keeps the refresh
//! token out of scripts' reach, survives a reload, refreshes silently when
//! its access token expires, lets two tabs refresh at the same moment (with
//! its Web Lock and no grace; and without the lock under the default grace,
//! where the server's answer to the second tab is the cookie the first got),
//! recovers from a refresh whose answer was lost by trying it once more, and
//! logs out. The second factor and the step-up prompt are in
//! `browser/second_factor.rs`, passkeys in `browser/passkeys.rs`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them;
//! `CHROMIUM` and `CHROMEDRIVER` name other binaries). Without them the test
//! fails when `CI` is set and is skipped, loudly, otherwise.

use std::os::unix::process::CommandExt;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::WindowHandle;
use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use hyper_util::client::legacy::connect::HttpConnector;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

mod passkeys;
mod second_factor;

/// `ACCESS_TOKEN_TTL` of this test (with `JWT_LEEWAY` 0s), and a wait that
/// surely outlasts a token: `exp` is in whole seconds.
const ACCESS_TOKEN_TTL: &str = "3s";
const PAST_EXPIRY: Duration = Duration::from_millis(4500);

/// What the page shows, read from its DOM; the log oldest first.
const STATE: &str = r#"
    const shown = (id) => !document.getElementById(id).hidden;
    const field = (name) => {
        const dd = document.querySelector(`#me [data-field="${name}"]`);
        return dd ? dd.textContent : null;
    };
    return {
        loggedIn: shown('app-view'),
        loginShown: shown('login-view'),
        message: shown('message') ? document.getElementById('message').textContent : '',
        email: field('email'),
        session: field('session'),
        expires: field('expires'),
        sessions: [...document.querySelectorAll('#sessions li')].map((li) => li.dataset.sessionId),
        resetShown: shown('reset-view'),
        unverifiedBanner: shown('verify-banner'),
        events: [...document.querySelectorAll('#events li')].map((li) => li.dataset.type),
        href: window.location.href,
        log: [...document.querySelectorAll('#log li')].map((li) => li.dataset.entry).reverse(),
    };
"#;

/// A scenario, run against a stack and a Chromium session of its own.
type Scenario = for<'a> fn(&'a Stack, &'a Client) -> LocalBoxFuture<'a, ()>;

/// Starts the stack and a browser, runs `scenario`, and on failure reports
/// what each tab showed; skipped in URL mode (the test serves `web/` itself,
/// with its origin allowed by the in-process services) and without the
/// browser binaries outside CI.
async fn in_chromium(test: &str, options: Options, scenario: Scenario) {
    if url_mode().is_some() {
        eprintln!(
            "SKIPPED {test}: it serves web/ itself, with its origin allowed by in-process services"
        );
        return;
    }
    let Some((chromium, chromedriver)) = browser_binaries() else {
        return;
    };
    let started = Instant::now();
    let stack = spawn_stack_with(options).await;
    let driver = Driver::start(&chromedriver).await;
    let browser = driver.session(&chromium).await;

    let outcome = AssertUnwindSafe(scenario(&stack, &browser))
        .catch_unwind()
        .await;
    finish(driver, browser, outcome).await;
    eprintln!("{test} took {:?}", started.elapsed());
}

#[tokio::test]
async fn the_demo_app_in_chromium() {
    let options = Options {
        access_token_ttl: ACCESS_TOKEN_TTL,
        leeway: "0s",
        // No grace: two tabs presenting one refresh token would revoke the
        // session outright, so only real coordination passes.
        reuse_grace: "0s",
        serve_web: true,
        ..Options::default()
    };
    in_chromium("the_demo_app_in_chromium", options, |stack, tab| {
        Box::pin(scenario(stack, tab))
    })
    .await;
}

/// Without the Web Lock, under the default grace: two tabs present one
/// cookie at the same instant, the server rotates it once and answers the
/// other tab with the very cookie the first got; then a refresh's answer is
/// lost on its way back (the cookie it set never reaches the browser), the
/// app tries once more, and the server sends that cookie again. Past the
/// grace, both tabs still hold the live cookie: a consumed one would now be
/// reuse and end the session.
#[tokio::test]
async fn without_the_web_lock_two_tabs_and_a_lost_answer_stay_logged_in() {
    let options = Options {
        access_token_ttl: ACCESS_TOKEN_TTL,
        leeway: "0s",
        serve_web: true,
        web_refresh_lock: false,
        web_through_lossy_proxy: true,
        ..Options::default()
    };
    in_chromium(
        "without_the_web_lock_two_tabs_and_a_lost_answer_stay_logged_in",
        options,
        |stack, tab| Box::pin(without_the_lock(stack, tab)),
    )
    .await;
}

async fn without_the_lock(stack: &Stack, tab: &Client) {
    let web_url = stack.web_url.clone().unwrap();
    let control = stack.control.as_ref().unwrap();
    tab.goto(&web_url).await.unwrap();
    wait(tab, "the login form", |s| s["loginShown"] == true).await;
    let email = format!("browser-{}@example.com", Uuid::new_v4().simple());
    let state = register(tab, &email).await;
    let session = state["session"].as_str().unwrap().to_owned();
    let (tab_a, tab_b) = second_tab(tab, &web_url, &session).await;

    let rotations = || {
        control.count(&format!(
            "SELECT generation - 1 AS n FROM sessions WHERE id = '{session}'"
        ))
    };
    tokio::time::sleep(PAST_EXPIRY).await;
    let before = rotations();
    reload_together(tab, &[&tab_a, &tab_b], &session).await;
    // Informative only: whether the two refreshes overlapped is up to the
    // scheduler; when they did, one rotation served both.
    eprintln!(
        "two tabs without the lock: {} rotation(s) for two refreshes",
        rotations() - before
    );

    // The first tab's next refresh rotates the cookie, but its answer never
    // arrives: the app gives up waiting, tries once more with the cookie it
    // still has, and is sent the new one.
    switch(tab, &tab_a).await;
    tokio::time::sleep(PAST_EXPIRY).await;
    let proxy = stack.lossy_proxy.as_ref().unwrap();
    proxy.lose_next_refresh_answer();
    let before = read_state(tab).await;
    let before_rotations = rotations();
    click(tab, "#reload-button").await;
    let after = wait(tab, "the refresh tried once more", |s| {
        let new = since(&before, s);
        s["message"] != "" || (has(&new, "GET /api/me 200") && has(&new, "GET /auth/sessions 200"))
    })
    .await;
    let new = since(&before, &after);
    assert_eq!(after["message"], "", "{after}");
    assert_eq!(
        new.iter()
            .filter(|e| e.starts_with("POST /auth/refresh"))
            .collect::<Vec<_>>(),
        ["POST /auth/refresh unreachable", "POST /auth/refresh 200"],
        "{new:?}"
    );
    assert_eq!(
        rotations(),
        before_rotations + 1,
        "one rotation, its answer lost"
    );

    // Past the grace, a tab left with a consumed cookie would now revoke the
    // session: both tabs hold the live one, so both refresh again.
    tokio::time::sleep(Duration::from_secs(11)).await;
    reload_together(tab, &[&tab_a, &tab_b], &session).await;
    assert_eq!(
        control.count(&format!(
            "SELECT count(*) AS n FROM sessions WHERE id = '{session}' AND revoked_at IS NULL"
        )),
        1,
        "the session was never revoked"
    );
}

/// Opens the app in a second tab, which restores `session` from the shared
/// cookie; returns the first tab and the second, which is current.
async fn second_tab(tab: &Client, web_url: &str, session: &str) -> (WindowHandle, WindowHandle) {
    let first = tab.window().await.unwrap();
    let second = tab.new_window(false).await.unwrap().handle;
    switch(tab, &second).await;
    tab.goto(web_url).await.unwrap();
    wait(tab, "the second tab restored", |s| {
        s["loggedIn"] == true && s["session"] == session
    })
    .await;
    (first, second)
}

/// Registers `email` in the page, which logs in; returns what the page shows
/// then.
async fn register(tab: &Client, email: &str) -> Value {
    type_into(tab, "email", email).await;
    type_into(tab, "password", PASSWORD).await;
    click(tab, "#register-button").await;
    wait(tab, "/api/me and the sessions after registering", |s| {
        s["loggedIn"] == true
            && s["email"] == email
            && s["sessions"].as_array().is_some_and(|l| !l.is_empty())
    })
    .await
}

/// Every tab clicks its reload button at the same instant, with an expired
/// access token: each refreshes once, successfully, and stays in `session`.
async fn reload_together(tab: &Client, tabs: &[&WindowHandle], session: &str) {
    let at = tab
        .execute("return Date.now() + 1200;", vec![])
        .await
        .unwrap();
    let mut before = Vec::new();
    for handle in tabs {
        switch(tab, handle).await;
        before.push(read_state(tab).await);
        tab.execute(
            "setTimeout(() => document.getElementById('reload-button').click(), arguments[0] - Date.now());",
            vec![at.clone()],
        )
        .await
        .unwrap();
    }
    for (handle, before) in tabs.iter().zip(&before) {
        switch(tab, handle).await;
        let after = wait(tab, "a tab after the simultaneous refresh", |s| {
            let new = since(before, s);
            s["message"] != ""
                || (has(&new, "GET /api/me 200") && has(&new, "GET /auth/sessions 200"))
        })
        .await;
        let new = since(before, &after);
        assert_eq!(after["message"], "", "{after}");
        assert_eq!(after["session"], session);
        assert_eq!(
            new.iter()
                .filter(|e| e.starts_with("POST /auth/refresh"))
                .collect::<Vec<_>>(),
            ["POST /auth/refresh 200"],
            "{new:?}"
        );
    }
}

async fn scenario(stack: &Stack, tab: &Client) {
    let web_url = stack.web_url.clone().unwrap();
    let email = format!("browser-{}@example.com", Uuid::new_v4().simple());

    // No cookie yet: the page offers to log in.
    tab.goto(&web_url).await.unwrap();
    let state = wait(tab, "the login form", |s| s["loginShown"] == true).await;
    assert_eq!(state["message"], "Log in, or create an account.");

    // Register (which logs in) and see /api/me.
    let state = register(tab, &email).await;
    let session = state["session"].as_str().unwrap().to_owned();
    assert_eq!(state["sessions"], json!([session]), "{state}");

    // The refresh token is in an HttpOnly cookie: no script sees it, and
    // nothing lands in storage.
    let exposed = tab
        .execute(
            "return [document.cookie, localStorage.length, sessionStorage.length];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(exposed, json!(["", 0, 0]), "what scripts can see");

    // A reload loses the in-memory access token; the cookie restores it.
    tab.refresh().await.unwrap();
    let state = wait(tab, "the session restored after a reload", |s| {
        s["loggedIn"] == true && s["session"] == session.as_str()
    })
    .await;
    assert!(count(&state, "POST /auth/refresh 200") >= 1, "{state}");

    // Past the access token's lifetime both panels fail at once; one refresh
    // serves both, and the user sees nothing of it.
    tokio::time::sleep(PAST_EXPIRY).await;
    let before = read_state(tab).await;
    click(tab, "#reload-button").await;
    let after = wait(tab, "both panels after the silent refresh", |s| {
        let new = since(&before, s);
        has(&new, "GET /api/me 200") && has(&new, "GET /auth/sessions 200")
    })
    .await;
    let new = since(&before, &after);
    assert!(has(&new, "GET /api/me 401"), "{new:?}");
    assert!(has(&new, "GET /auth/sessions 401"), "{new:?}");
    assert_eq!(
        new.iter()
            .filter(|e| e.starts_with("POST /auth/refresh"))
            .count(),
        1,
        "one refresh in flight: {new:?}"
    );
    assert!(has(&new, "POST /auth/refresh 200"), "{new:?}");
    assert_eq!(after["loggedIn"], true);
    assert_eq!(after["message"], "");
    assert_eq!(after["session"], session.as_str());
    assert_ne!(after["expires"], before["expires"], "a new access token");

    // A second tab restores the same session from the shared cookie.
    let (tab_a, tab_b) = second_tab(tab, &web_url, &session).await;

    // Both tabs' tokens expire; both reload at the same instant, so both
    // refresh with the same cookie at once unless they coordinate.
    tokio::time::sleep(PAST_EXPIRY).await;
    reload_together(tab, &[&tab_a, &tab_b], &session).await;

    // Back in the first tab: another session of the user appears in the
    // list and can be revoked.
    switch(tab, &tab_a).await;
    let other = stack.login_as(&email).await;
    let other_session = claims_of(&other.access_token)["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    click(tab, "#reload-button").await;
    wait(tab, "two sessions listed", |s| {
        s["sessions"].as_array().is_some_and(|l| l.len() == 2)
    })
    .await;

    // The logged-in page, kept as an artifact.
    let screenshot = tab.screenshot().await.unwrap();
    let artifacts = workspace().join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(artifacts.join("logged-in.png"), screenshot).unwrap();

    click(
        tab,
        &format!(r#"#sessions li[data-session-id="{other_session}"] button.revoke"#),
    )
    .await;
    let state = wait(tab, "the other session gone", |s| {
        s["sessions"] == json!([session])
    })
    .await;
    assert_eq!(state["message"], "");
    assert_revoked_soon(stack, &other.access_token).await;

    // Log out: this tab forgets everything, and a reload does not bring it back.
    click(tab, "#logout-button").await;
    let state = wait(tab, "logged out", |s| s["loginShown"] == true).await;
    assert_eq!(state["message"], "You have logged out.");
    tab.refresh().await.unwrap();
    let state = wait(tab, "still logged out after a reload", |s| {
        s["loginShown"] == true && s["message"] == "Log in, or create an account."
    })
    .await;
    assert_eq!(state["loggedIn"], false);

    // The other tab still holds an access token of that session: /api/me
    // refuses it, the refresh finds no cookie, and the tab says so.
    switch(tab, &tab_b).await;
    let before = read_state(tab).await;
    click(tab, "#reload-button").await;
    let after = wait(tab, "the other tab told its session ended", |s| {
        s["loginShown"] == true
    })
    .await;
    let new = since(&before, &after);
    assert!(has(&new, "GET /api/me 401"), "{new:?}");
    assert!(has(&new, "POST /auth/refresh 401"), "{new:?}");
    assert!(
        after["message"]
            .as_str()
            .unwrap()
            .starts_with("Your session has ended"),
        "{after}"
    );

    // Log in again and log out everywhere: every session of the user ends.
    let elsewhere = stack.login_as(&email).await;
    type_into(tab, "email", &email).await;
    type_into(tab, "password", PASSWORD).await;
    click(tab, "#login-button").await;
    wait(tab, "logged in again", |s| {
        s["loggedIn"] == true && s["sessions"].as_array().is_some_and(|l| l.len() == 2)
    })
    .await;
    click(tab, "#logout-all-button").await;
    let state = wait(tab, "logged out everywhere", |s| s["loginShown"] == true).await;
    assert_eq!(
        state["message"],
        "You have logged out of every session, on every device."
    );
    assert_revoked_soon(stack, &elsewhere.access_token).await;
    tab.refresh().await.unwrap();
    wait(tab, "still logged out after logging out everywhere", |s| {
        s["loginShown"] == true && s["message"] == "Log in, or create an account."
    })
    .await;
}

/// Reset by e-mail, end to end: the links read from a real SMTP server's
/// Maildir and opened in Chromium, which takes the token out of the
/// address bar before it calls the auth server.
#[tokio::test]
async fn reset_by_email_in_chromium() {
    if url_mode().is_some() {
        eprintln!("SKIPPED reset_by_email_in_chromium: it reads the mail of in-process services");
        return;
    }
    let Some((chromium, chromedriver)) = browser_binaries() else {
        return;
    };
    let smtp = crate::smtp::SmtpServer::start();
    let stack = spawn_stack_with(Options {
        serve_web: true,
        smtp_url: Some(smtp.url()),
        ..Options::default()
    })
    .await;
    let driver = Driver::start(&chromedriver).await;
    let browser = driver.session(&chromium).await;
    let outcome = AssertUnwindSafe(reset_scenario(&stack, &smtp, &browser))
        .catch_unwind()
        .await;
    finish(driver, browser, outcome).await;
}

async fn reset_scenario(stack: &Stack, smtp: &crate::smtp::SmtpServer, tab: &Client) {
    const NEW_PASSWORD: &str = "a brand new passphrase";
    let web_url = stack.web_url.clone().unwrap();
    let email = format!("reset-{}@example.com", Uuid::new_v4().simple());

    // Register: until the address is verified, a banner offers to resend.
    tab.goto(&web_url).await.unwrap();
    wait(tab, "the login form", |s| s["loginShown"] == true).await;
    type_into(tab, "email", &email).await;
    type_into(tab, "password", PASSWORD).await;
    click(tab, "#register-button").await;
    wait(tab, "logged in, unverified", |s| {
        s["loggedIn"] == true && s["unverifiedBanner"] == true
    })
    .await;
    click(tab, "#resend-button").await;
    wait(tab, "the resend acknowledged", |s| {
        s["message"] == "A new link is on its way to your address."
    })
    .await;

    // The newest verification link, opened: verified, and gone from the bar.
    let mails = smtp.wait_for(&email, 2, Duration::from_secs(15)).await;
    let verify_link = mails
        .iter()
        .rev()
        .find(|m| m.subject() == "Confirm your e-mail address")
        .unwrap()
        .link("verify");
    assert!(
        verify_link.starts_with(&format!("{web_url}/#verify=")),
        "{verify_link}"
    );
    tab.goto(&verify_link).await.unwrap();
    let state = wait(tab, "the address verified", |s| {
        s["loggedIn"] == true
            && s["unverifiedBanner"] == false
            && s["message"] == "Your e-mail address is verified."
    })
    .await;
    assert_eq!(
        state["href"],
        format!("{web_url}/"),
        "the token left the address bar"
    );
    assert!(
        state["events"]
            .as_array()
            .unwrap()
            .contains(&json!("email_verified")),
        "{state}"
    );

    // Log out, then forget the password.
    click(tab, "#logout-button").await;
    wait(tab, "logged out", |s| s["loginShown"] == true).await;
    click(tab, "#forgot summary").await;
    type_into(tab, "forgot-email", &email).await;
    click(tab, "#forgot-button").await;
    wait(tab, "the reset request acknowledged", |s| {
        s["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("If an account has this address"))
    })
    .await;

    // The link from the delivered message, opened in the browser.
    let link = smtp
        .mail_titled(&email, "Reset your password")
        .await
        .link("reset");
    assert!(link.starts_with(&format!("{web_url}/#reset=")), "{link}");
    let before_reset = stack.login_as(&email).await;
    tab.goto(&link).await.unwrap();
    let state = wait(tab, "the reset form", |s| s["resetShown"] == true).await;
    assert_eq!(
        state["href"],
        format!("{web_url}/"),
        "the token left the address bar"
    );
    let history = tab.execute("return history.length;", vec![]).await.unwrap();
    assert!(history.as_u64().is_some());
    type_into(tab, "reset-password", NEW_PASSWORD).await;
    click(tab, "#reset-button").await;
    let state = wait(tab, "the password reset", |s| {
        s["loginShown"] == true
            && s["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("Your password is reset"))
    })
    .await;
    assert_eq!(state["resetShown"], false);

    // Every session ended; the new password logs in, the old one does not.
    assert_revoked_soon(stack, &before_reset.access_token).await;
    let old = stack
        .client
        .post(format!("{}/auth/login", stack.auth_url))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    type_into(tab, "email", &email).await;
    type_into(tab, "password", NEW_PASSWORD).await;
    click(tab, "#login-button").await;
    let state = wait(tab, "logged in with the new password", |s| {
        s["loggedIn"] == true
            && s["events"]
                .as_array()
                .is_some_and(|e| e.contains(&json!("password_reset")))
    })
    .await;
    let events = state["events"].as_array().unwrap();
    assert!(
        events.contains(&json!("password_reset_requested")),
        "{state}"
    );
    assert_eq!(events[0], "login", "{state}");

    // The link is single use: opened again, the page says so.
    tab.goto(&link).await.unwrap();
    type_into(tab, "reset-password", "yet another passphrase").await;
    click(tab, "#reset-button").await;
    wait(tab, "a used link refused", |s| {
        s["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("The password was not reset"))
    })
    .await;
}

/// What the admin page shows.
const ADMIN_STATE: &str = r#"
    const panel = document.getElementById('admin-user');
    return {
        shown: !document.getElementById('admin-view').hidden,
        users: [...document.querySelectorAll('#admin-users tbody tr')]
            .map((tr) => ({ email: tr.dataset.email, disabled: tr.dataset.disabled === 'true' })),
        selected: panel.hidden ? null : document.getElementById('admin-user-email').textContent,
        selectedDisabled: panel.dataset.disabled === 'true',
        audit: [...document.querySelectorAll('#audit-events li')].map((li) => li.dataset.type),
        message: document.getElementById('message').hidden ? '' : document.getElementById('message').textContent,
    };
"#;

async fn wait_admin(tab: &Client, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    poll(tab, ADMIN_STATE, what, ready).await
}

/// An admin, in a browser of its own, finds a user who is logged in in
/// another browser and disables it; that browser's next call fails (the
/// API refuses its token, its refresh is refused) and the page says the
/// session has ended. The admin page is not shown to the user.
#[tokio::test]
async fn an_admin_disables_a_user_logged_in_in_another_browser() {
    if url_mode().is_some() {
        eprintln!(
            "SKIPPED an_admin_disables_a_user_logged_in_in_another_browser: it grants admin through the in-process database"
        );
        return;
    }
    let Some((chromium, chromedriver)) = browser_binaries() else {
        return;
    };
    let started = Instant::now();
    let mut stack = spawn_stack_with(Options {
        serve_web: true,
        ..Options::default()
    })
    .await;
    let admin = stack.login().await;
    stack
        .control("an_admin_disables_a_user_logged_in_in_another_browser")
        .unwrap()
        .grant_role(&admin.email, "admin");
    // Two browsers, two profiles: two cookie jars.
    let user_driver = Driver::start(&chromedriver).await;
    let admin_driver = Driver::start(&chromedriver).await;
    let user_tab = user_driver.session(&chromium).await;
    let admin_tab = admin_driver.session(&chromium).await;
    let outcome = AssertUnwindSafe(disable_scenario(
        &stack,
        &admin.email,
        &user_tab,
        &admin_tab,
    ))
    .catch_unwind()
    .await;
    if outcome.is_err() {
        report_failure(&admin_tab).await;
    }
    let _ = admin_tab.close().await;
    drop(admin_driver);
    finish(user_driver, user_tab, outcome).await;
    eprintln!(
        "an_admin_disables_a_user_logged_in_in_another_browser took {:?}",
        started.elapsed()
    );
}

async fn disable_scenario(stack: &Stack, admin_email: &str, user_tab: &Client, admin_tab: &Client) {
    let web_url = stack.web_url.clone().unwrap();
    let email = format!("disabled-{}@example.com", Uuid::new_v4().simple());

    // The user logs in (by registering) in its browser: no admin page.
    user_tab.goto(&web_url).await.unwrap();
    wait(user_tab, "the login form", |s| s["loginShown"] == true).await;
    register(user_tab, &email).await;
    let hidden = wait_admin(user_tab, "the user's page", |s| s["shown"] == false).await;
    assert_eq!(hidden["users"], json!([]));

    // The admin logs in in another browser and sees the admin page.
    admin_tab.goto(&web_url).await.unwrap();
    wait(admin_tab, "the admin's login form", |s| {
        s["loginShown"] == true
    })
    .await;
    type_into(admin_tab, "email", admin_email).await;
    type_into(admin_tab, "password", PASSWORD).await;
    click(admin_tab, "#login-button").await;
    wait_admin(admin_tab, "the admin page", |s| s["shown"] == true).await;

    // Searches for the user, opens it, disables it.
    type_into(admin_tab, "admin-query", &email[..20]).await;
    click(admin_tab, "#admin-search").await;
    wait_admin(admin_tab, "the user found", |s| {
        s["users"]
            .as_array()
            .is_some_and(|u| u.len() == 1 && u[0]["email"] == email.as_str())
    })
    .await;
    click(
        admin_tab,
        &format!(r#"#admin-users tr[data-email="{email}"]"#),
    )
    .await;
    wait_admin(admin_tab, "the user opened", |s| {
        s["selected"] == email.as_str()
    })
    .await;
    click(admin_tab, "#admin-disable").await;
    let state = wait_admin(admin_tab, "the user disabled", |s| {
        s["selectedDisabled"] == true
            && s["users"][0]["disabled"] == true
            && s["audit"]
                .as_array()
                .is_some_and(|a| a.iter().any(|t| t == "user_disabled"))
    })
    .await;
    assert!(
        state["message"].as_str().unwrap().contains("disabled"),
        "{state}"
    );

    // Within a second every API refuses the user's token: its next call
    // fails, its refresh is refused, and the page says the session ended.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let before = read_state(user_tab).await;
    click(user_tab, "#reload-button").await;
    let after = wait(user_tab, "the user's page after the disable", |s| {
        s["loginShown"] == true
    })
    .await;
    let new = since(&before, &after);
    assert!(has(&new, "GET /api/me 401"), "{new:?}");
    assert!(has(&new, "POST /auth/refresh 401"), "{new:?}");
    assert!(
        after["message"]
            .as_str()
            .unwrap()
            .contains("Your session has ended"),
        "{after}"
    );
    let refused = user_tab
        .execute(
            "return fetch(arguments[0], {method: 'POST', headers: {'Content-Type': 'application/json'}, \
             body: JSON.stringify({email: arguments[1], password: arguments[2]})}).then((r) => r.status);",
            vec![
                json!(format!("{}/auth/login", stack.auth_url)),
                json!(email),
                json!(PASSWORD),
            ],
        )
        .await
        .unwrap();
    assert_eq!(refused, json!(403), "a disabled user's login is refused");
}

/// After a scenario: what the page showed if it failed, then the browser
/// and chromedriver closed, then the failure (if any) raised again.
async fn finish(
    driver: Driver,
    browser: Client,
    outcome: Result<(), Box<dyn std::any::Any + Send>>,
) {
    if outcome.is_err() {
        report_failure(&browser).await;
    }
    let _ = browser.close().await;
    drop(driver);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The binaries, or `None` (skip) when they are missing outside CI.
fn browser_binaries() -> Option<(PathBuf, PathBuf)> {
    let path = |variable: &str, default: &str| {
        PathBuf::from(std::env::var(variable).unwrap_or_else(|_| default.to_owned()))
    };
    let chromium = path("CHROMIUM", "/usr/bin/chromium");
    let chromedriver = path("CHROMEDRIVER", "/usr/bin/chromedriver");
    let missing: Vec<_> = [&chromium, &chromedriver]
        .into_iter()
        .filter(|p| !p.is_file())
        .collect();
    if missing.is_empty() {
        return Some((chromium, chromedriver));
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set and the browser test cannot run: missing {missing:?} (apt-get install chromium chromium-driver)"
    );
    eprintln!(
        "\n**** SKIPPED the_demo_app_in_chromium: missing {missing:?}; \
         install them with `apt-get install chromium chromium-driver` ****\n"
    );
    None
}

/// chromedriver on a port of its own. Dropping it kills chromedriver and the
/// Chromium it started (one process group), even when the test failed before
/// closing its session, and removes the profile.
struct Driver {
    child: Child,
    url: String,
    profile: PathBuf,
}

impl Driver {
    async fn start(binary: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            profile: std::env::temp_dir().join(format!("e2e-chromium-{}", Uuid::new_v4().simple())),
        };
        let client = reqwest::Client::new();
        let ready = eventually(Duration::from_secs(10), || async {
            match client.get(format!("{}/status", driver.url)).send().await {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == true),
                Err(_) => false,
            }
        })
        .await;
        assert!(ready.is_some(), "chromedriver became ready");
        driver
    }

    async fn session(&self, chromium: &Path) -> Client {
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    // The network is closed: no calls home, or they are refused.
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    // The tab in the background must fire its timer on time
                    // for the two tabs to refresh at the same moment.
                    "--disable-background-timer-throttling",
                    "--disable-renderer-backgrounding",
                    "--disable-backgrounding-occluded-windows",
                    "--window-size=1200,860",
                    format!("--user-data-dir={}", self.profile.display()),
                ],
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

async fn read_state(tab: &Client) -> Value {
    tab.execute(STATE, vec![]).await.unwrap()
}

/// Polls the page until `ready` holds; on timeout fails with what it shows.
async fn wait(tab: &Client, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    poll(tab, STATE, what, ready).await
}

/// Runs `script` in the page until what it returns satisfies `ready`; on
/// timeout fails with what it returned last.
async fn poll(tab: &Client, script: &str, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let state = tab.execute(script, vec![]).await.unwrap();
        if ready(&state) {
            return state;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "waiting for {what}; the page shows {state:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Log entries added between two states.
fn since(before: &Value, after: &Value) -> Vec<String> {
    let entries = |s: &Value| -> Vec<String> {
        s["log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap().to_owned())
            .collect()
    };
    let old = entries(before).len();
    entries(after).split_off(old)
}

fn has(entries: &[String], entry: &str) -> bool {
    entries.iter().any(|e| e == entry)
}

fn count(state: &Value, entry: &str) -> usize {
    state["log"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| *e == entry)
        .count()
}

async fn type_into(tab: &Client, id: &str, text: &str) {
    let input = tab.find(Locator::Id(id)).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(text).await.unwrap();
}

async fn click(tab: &Client, css: &str) {
    tab.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn switch(tab: &Client, window: &WindowHandle) {
    tab.switch_to_window(window.clone()).await.unwrap();
}

async fn assert_revoked_soon(stack: &Stack, access_token: &str) {
    let refused = eventually(Duration::from_secs(5), || async {
        stack.me_status(access_token).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(refused.is_some(), "the revoked session's token is refused");
}

/// What each window showed when the test failed, and a screenshot of it.
async fn report_failure(tab: &Client) {
    let dir = workspace().join("artifacts");
    let _ = std::fs::create_dir_all(&dir);
    for (i, window) in tab
        .windows()
        .await
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        if tab.switch_to_window(window).await.is_err() {
            continue;
        }
        if let Ok(state) = tab.execute(STATE, vec![]).await {
            eprintln!("window {i} showed: {state:#}");
        }
        if let Ok(png) = tab.screenshot().await {
            let path = dir.join(format!("browser-failure-{i}.png"));
            let _ = std::fs::write(&path, png);
            eprintln!("screenshot: {}", path.display());
        }
    }
}

/// The recovery codes a page state shows (the second factor's and the
/// passkeys' scenarios read them alike).
fn codes(state: &Value) -> Vec<String> {
    strings(&state["recoveryCodes"])
}

/// A page state's log, oldest first.
fn entries(state: &Value) -> Vec<String> {
    strings(&state["log"])
}

fn strings(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|l| {
            l.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
