//! Contract § Passkeys: the ceremonies from outside, with a software authenticator.
//!
//! The full ceremonies run in Python against a real server
//! (`scripts/passkey_interop.py`: python-fido2 and `cryptography` as the
//! authenticator); the browser's side is the Chromium test of stack-tests.
//! Here also the refusals that need no authenticator.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

const ORIGIN: &str = "http://localhost:3000";

/// An independent WebAuthn implementation registers, signs in, steps up
/// and is refused as it should be, each ceremony finished by a replica
/// other than the one that started it. CI installs python-fido2 (`.ci/run`);
/// without it this test fails, saying how to install it.
#[tokio::test]
async fn fido2_interoperates() {
    // Both replicas sign with one key: the finish takes the start's Bearer.
    let dir = TempDir(std::env::temp_dir().join(format!("passkeys-{}", uuid::Uuid::new_v4())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let key = dir.0.join("signing.pem");
    std::fs::write(&key, auth_server::keys::signing::generate_pem().unwrap()).unwrap();
    let app = spawn_app_with(&[
        ("WEBAUTHN_RP_ID", "localhost"),
        ("WEBAUTHN_RP_ORIGINS", ORIGIN),
        ("SIGNING_KEY_FILE", key.to_str().unwrap()),
    ])
    .await;
    // Ceremonies start on the first server and finish on this replica.
    let replica = app.replica_with(&[]).await;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/passkey_interop.py");
    let (address, finish) = (app.address.clone(), replica.address.clone());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .env("AUTH_URL", address)
            .env("FINISH_URL", finish)
            .env("ORIGIN", ORIGIN)
            .output()
    })
    .await
    .unwrap()
    .expect("python3 runs (CI installs it, with fido2: see .ci/run)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named 'fido2'"),
        "python-fido2 is missing: python3 -m pip install 'fido2==2.2.1'"
    );
    assert!(
        output.status.success(),
        "the fido2 client failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
    drop(dir);
}

#[tokio::test]
async fn ceremonies_refuse_what_cannot_be_one() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let access = app.login_body(&email).await.access_token();

    let started: Value = app
        .post_bearer("/auth/passkeys/register/start", &access, None)
        .await
        .json()
        .await
        .unwrap();
    assert!(started["challenge_id"].is_string());
    assert_eq!(started["options"]["rp"]["id"], "localhost");
    let finish = |body: Value| {
        let (app, access) = (&app, access.clone());
        async move {
            app.post_bearer("/auth/passkeys/register/finish", &access, Some(&body))
                .await
        }
    };
    let junk =
        finish(json!({"challenge_id": started["challenge_id"], "credential": {"id": 1}})).await;
    assert_error(junk, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;
    let not_uuid = finish(json!({"challenge_id": "x", "credential": {}})).await;
    assert_error(
        not_uuid,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    )
    .await;
    let long_name = finish(json!({
        "challenge_id": started["challenge_id"],
        "credential": {"id": "a", "rawId": "YQ", "type": "public-key",
            "response": {"clientDataJSON": "e30", "attestationObject": "oA"}},
        "name": "n".repeat(65)
    }))
    .await;
    assert_error(
        long_name,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    )
    .await;
    let unknown = finish(json!({
        "challenge_id": uuid::Uuid::new_v4(),
        "credential": {"id": "a", "rawId": "YQ", "type": "public-key",
            "response": {"clientDataJSON": "e30", "attestationObject": "oA"}}
    }))
    .await;
    assert_error(unknown, StatusCode::BAD_REQUEST, "invalid_grant").await;

    // Nothing to step up or to delete with, and no passkey to sign in with.
    let none = app
        .post_bearer("/auth/reauthenticate/passkey", &access, None)
        .await;
    assert_error(none, StatusCode::NOT_FOUND, "not_found").await;
    let missing = app
        .client
        .request(
            Method::DELETE,
            app.url(&format!("/auth/passkeys/{}", uuid::Uuid::new_v4())),
        )
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_error(missing, StatusCode::NOT_FOUND, "not_found").await;
    let dead = app
        .post_json(
            "/auth/login/mfa/passkey",
            &json!({"mfa_token": "a".repeat(43)}),
        )
        .await;
    assert_error(dead, StatusCode::UNAUTHORIZED, "invalid_grant").await;
    let started: Value = app
        .post_json("/auth/passkeys/login/start", &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(started["options"]["userVerification"], "required");
    let forged = app
        .post_json(
            "/auth/passkeys/login/finish",
            &json!({"challenge_id": started["challenge_id"], "credential": {
                "id": "a", "rawId": "YQ", "type": "public-key",
                "response": {"clientDataJSON": "e30", "authenticatorData": "AA", "signature": "AA", "userHandle": "AA"}}}),
        )
        .await;
    assert_error(forged, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    // The ceremony was used by that attempt.
    let replay = app
        .post_json(
            "/auth/passkeys/login/finish",
            &json!({"challenge_id": started["challenge_id"], "credential": {
                "id": "a", "rawId": "YQ", "type": "public-key",
                "response": {"clientDataJSON": "e30", "authenticatorData": "AA", "signature": "AA", "userHandle": "AA"}}}),
        )
        .await;
    assert_error(replay, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let listed: Value = app
        .client
        .get(app.url("/auth/passkeys"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!({"passkeys": []}));
}
