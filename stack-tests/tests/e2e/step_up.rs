//! Contract § Second factors and step-up: the resource API's `/api/step-up`, and `/api/me`'s `amr`, `acr`, `auth_time`.
//!
//! Tokens are the auth server's own, re-signed with its key with other
//! second-factor claims (`STEP_UP_MAX_AGE` is the default, 5 minutes).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const DESCRIPTION: &str = "a more recent or stronger authentication is required: reauthenticate";

/// The login's token with these claims (`None`: the claim left out, as
/// in tokens from before second factors), signed with the real key.
fn with_assurance(
    pem: &str,
    kid: &str,
    template: &Value,
    amr: Option<&[&str]>,
    acr: Option<&str>,
    auth_time: Option<i64>,
) -> String {
    let mut claims = template.clone();
    let object = claims.as_object_mut().unwrap();
    for (name, value) in [
        ("amr", amr.map(|amr| json!(amr))),
        ("acr", acr.map(|acr| json!(acr))),
        ("auth_time", auth_time.map(|at| json!(at))),
    ] {
        match value {
            Some(value) => object.insert(name.to_owned(), value),
            None => object.remove(name),
        };
    }
    forge(pem, &access_header(kid), &claims)
}

/// Asserts the step-up `401`: RFC 9470's challenge with the default max
/// age, `acr_values` exactly when the level is what is missing, and the
/// contract's body.
async fn assert_step_up_needed(stack: &Stack, token: &str, acr_missing: bool, case: &str) {
    let response = stack.api("/api/step-up", Some(token)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{case}");
    let mut expected = format!(
        r#"Bearer realm="resource-api", error="insufficient_user_authentication", error_description="{DESCRIPTION}", max_age=300"#
    );
    if acr_missing {
        expected.push_str(r#", acr_values="aal2""#);
    }
    assert_eq!(
        response.headers()["www-authenticate"].to_str().unwrap(),
        expected,
        "{case}"
    );
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "{case}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "error": "insufficient_user_authentication", "error_description": DESCRIPTION }),
        "{case}"
    );
}

#[tokio::test]
async fn step_up_answers_a_fresh_aal2_only() {
    let stack = spawn_stack().await;
    let login = stack.login().await;
    // A password login is `aal1`.
    assert_step_up_needed(&stack, &login.access_token, true, "a password login").await;
    assert_unauthorized(stack.api("/api/step-up", None).await, false).await;
    let Some(pem) = stack.signing_pem("step_up_answers_a_fresh_aal2_only") else {
        return;
    };
    let kid = stack.kid().await;
    let template = claims_of(&login.access_token);
    let mfa: &[&str] = &["pwd", "otp", "mfa"];
    let token = |amr, acr, auth_time| with_assurance(pem, &kid, &template, amr, acr, auth_time);

    let fresh = now() - 60;
    let response = stack
        .api(
            "/api/step-up",
            Some(&token(Some(mfa), Some("aal2"), Some(fresh))),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK, "aal2, a minute old");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user_id"], template["sub"]);
    assert_eq!(body["acr"], "aal2");
    assert_eq!(body["amr"], json!(mfa));
    assert_eq!(body["auth_time"], fresh);

    let weak = token(Some(&["pwd"]), Some("aal1"), Some(now()));
    assert_step_up_needed(&stack, &weak, true, "aal1, fresh").await;
    let stale = token(Some(mfa), Some("aal2"), Some(now() - 600));
    assert_step_up_needed(&stack, &stale, false, "aal2, 10 minutes old").await;
    let old_style = token(None, None, None);
    assert_step_up_needed(&stack, &old_style, true, "no acr, no auth_time").await;
    let timeless = token(Some(mfa), Some("aal2"), None);
    assert_step_up_needed(&stack, &timeless, false, "aal2, no auth_time").await;
}

#[tokio::test]
async fn api_me_says_how_the_user_signed_in() {
    let stack = spawn_stack().await;
    let login = stack.login().await;
    let me: Value = stack
        .api("/api/me", Some(&login.access_token))
        .await
        .json()
        .await
        .unwrap();
    assert!(me["amr"].is_array(), "{me}");
    assert_eq!(me["acr"], "aal1", "a password login: {me}");
    assert!(
        me["auth_time"].is_i64() || me["auth_time"].is_null(),
        "{me}"
    );
    let Some(pem) = stack.signing_pem("api_me_says_how_the_user_signed_in") else {
        return;
    };
    let kid = stack.kid().await;
    let template = claims_of(&login.access_token);

    let at = now() - 30;
    let strong = with_assurance(
        pem,
        &kid,
        &template,
        Some(&["hwk", "user"]),
        Some("aal2"),
        Some(at),
    );
    let me: Value = stack
        .api("/api/me", Some(&strong))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["amr"], json!(["hwk", "user"]));
    assert_eq!(me["acr"], "aal2");
    assert_eq!(me["auth_time"], at);

    let old_style = with_assurance(pem, &kid, &template, None, None, None);
    let response = stack.api("/api/me", Some(&old_style)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["amr"], json!([]));
    assert_eq!(me["acr"], "aal1", "absent means aal1");
    assert_eq!(me["auth_time"], Value::Null, "absent is null, not left out");
}
