//! Contract § Tokens: one row per session, whatever its number of rotations.
//!
//! One row per session: a forged token for a real session revokes nothing,
//! storage stays flat however often a session rotates, and tokens issued by
//! the previous version (rows in `refresh_tokens`) keep working and rotate
//! their session into the new form.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use uuid::Uuid;

use crate::helpers::*;

/// A version 2 token for `sid` with the given generation and key id, and a
/// mac of someone's choosing: what an attacker who read a session id off
/// an access token can make.
fn forged(sid: Uuid, generation: u64, key_id: u8, mac: [u8; 32]) -> String {
    let mut bytes = vec![2u8];
    bytes.extend_from_slice(sid.as_bytes());
    bytes.extend_from_slice(&generation.to_be_bytes());
    bytes.push(key_id);
    bytes.extend_from_slice(&mac);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn a_forged_token_for_a_real_session_is_invalid_grant_and_revokes_nothing() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let login = app.login_body(&email).await;
    let token = login.refresh_token().unwrap();
    let sid = app.validate(&login.access_token()).await.sid;
    let key_id = URL_SAFE_NO_PAD.decode(&token).unwrap()[25];
    // Its session id and key id are right; the mac is not.
    for forgery in [
        forged(sid, 1, key_id, [0; 32]),
        forged(sid, 1, key_id, [0xa5; 32]),
        // A generation the session has not reached, or one it has left.
        forged(sid, 2, key_id, [7; 32]),
        forged(sid, 9_000, key_id, [7; 32]),
        // A key the server does not hold.
        forged(sid, 1, key_id.wrapping_add(1), [7; 32]),
    ] {
        assert_eq!(forgery.len(), 78);
        let refused = app.refresh_body(&forgery).await;
        assert_token_error(&refused, StatusCode::UNAUTHORIZED, "invalid_grant");
        assert_eq!(
            refused.body["error_description"], "the refresh token is invalid",
            "unknown, not reuse"
        );
        let cookie = app.refresh_cookie(&forgery).await;
        assert_token_error(&cookie, StatusCode::UNAUTHORIZED, "invalid_grant");
        assert!(
            cookie.headers.get("set-cookie").is_none(),
            "no cookie cleared"
        );
        // Logout and revocation with it end nothing either.
        assert_eq!(
            app.logout_body(&forgery).await.status(),
            StatusCode::NO_CONTENT
        );
    }
    assert_eq!(app.session_revoked_reason(sid), None, "the session lives");
    // The real token still rotates, once, and its successor after it.
    let rotated = app.refresh_body(&token).await;
    assert_eq!(rotated.status, StatusCode::OK);
    let next = app.refresh_body(&rotated.refresh_token().unwrap()).await;
    assert_eq!(next.status, StatusCode::OK);
    assert_eq!(app.validate(&next.access_token()).await.sid, sid);
}

#[tokio::test]
async fn three_hundred_rotations_leave_one_row_and_no_token_rows() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let login = app.login_body(&email).await;
    let sid = app.validate(&login.access_token()).await.sid;
    let mut token = login.refresh_token().unwrap();
    let before = app.count("SELECT count(*) AS n FROM refresh_tokens");
    for _ in 0..300 {
        let rotated = app.refresh_body(&token).await;
        assert_eq!(rotated.status, StatusCode::OK);
        token = rotated.refresh_token().unwrap();
    }
    assert_eq!(app.count("SELECT count(*) AS n FROM sessions"), 1);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM refresh_tokens"),
        before,
        "no token row written"
    );
    assert_eq!(before, 0);
    // The one row: generation 301 live, the last eight consumptions kept.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM sessions WHERE id = '{sid}' AND generation = 301 \
             AND cardinality(consumed_at) = 8"
        )),
        1
    );
    // Replays up to three back are still told apart: within the grace the
    // one just consumed resends, older ones get an access token only.
    assert_eq!(app.refresh_body(&token).await.status, StatusCode::OK);
}

/// A user registered through the API, and a session of theirs with a chain
/// of two legacy tokens, written as the previous version wrote them: the
/// first consumed (`consumed_ago` before now) with the second as its
/// successor, the second live. Returns (session id, first, second).
async fn legacy_session(app: &TestApp, email: &str) -> (Uuid, String, String) {
    let user_id = app.count(&format!(
        "SELECT count(*) AS n FROM users WHERE email = '{email}'"
    ));
    assert_eq!(user_id, 1);
    let sid = Uuid::new_v4();
    let (first_id, second_id) = (Uuid::new_v4(), Uuid::new_v4());
    let first = auth_server::tokens::refresh::RefreshToken::generate().unwrap();
    let second = auth_server::tokens::refresh::RefreshToken::generate().unwrap();
    let hex = |t: &auth_server::tokens::refresh::RefreshToken| -> String {
        t.hash()
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    // sessions::create and tokens::insert of the previous version; the
    // rotation's INSERT of the successor and UPDATE of the consumed token.
    app.execute(&format!(
        "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, revoked_at, revoked_reason, user_agent, client_ip, revoked_xid) \
         SELECT '{sid}', id, now() - interval '2 hours', now() - interval '1 hour', now() + interval '29 days', NULL, NULL, 'old-client/1.0', '127.0.0.1', NULL \
         FROM users WHERE email = '{email}'"
    ));
    app.execute(&format!(
        "INSERT INTO refresh_tokens (id, token_hash, session_id, issued_at, expires_at, consumed_at, successor_id) VALUES \
         ('{first_id}', '\\x{}'::bytea, '{sid}', now() - interval '2 hours', now() + interval '5 days', NULL, NULL), \
         ('{second_id}', '\\x{}'::bytea, '{sid}', now() - interval '1 hour', now() + interval '6 days', NULL, NULL)",
        hex(&first),
        hex(&second)
    ));
    app.execute(&format!(
        "UPDATE refresh_tokens SET consumed_at = now() - interval '1 hour', successor_id = '{second_id}' WHERE id = '{first_id}'"
    ));
    (sid, first.expose().to_owned(), second.expose().to_owned())
}

#[tokio::test]
async fn a_token_of_the_previous_version_rotates_into_the_new_form() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let (sid, first, second) = legacy_session(&app, &email).await;
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM sessions WHERE id = '{sid}' AND generation = 0 AND token_secret IS NULL"
        )),
        1,
        "the migration left the old session as it was"
    );
    // Introspection reads it as before.
    assert_eq!(app.introspect(&second).await["active"], true);

    // The live legacy token rotates: the answer is a version 2 token of
    // the same session, and the session now has a secret at generation 1.
    let rotated = app.refresh_body(&second).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    assert_eq!(app.validate(&rotated.access_token()).await.sid, sid);
    let v2 = rotated.refresh_token().unwrap();
    assert_eq!(v2.len(), 78);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM sessions WHERE id = '{sid}' AND generation = 1 \
             AND token_secret IS NOT NULL AND token_expires_at > now()"
        )),
        1
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM refresh_tokens WHERE consumed_at IS NULL"),
        0,
        "the legacy token was consumed"
    );
    assert_eq!(app.count("SELECT count(*) AS n FROM refresh_tokens"), 2);

    // A retry within the grace (the answer lost) gets that very token.
    let retry = app.refresh_body(&second).await;
    assert_eq!(retry.status, StatusCode::OK);
    assert_eq!(retry.refresh_token().as_deref(), Some(v2.as_str()));

    // It rotates further, in the new form.
    let next = app.refresh_body(&v2).await;
    assert_eq!(next.status, StatusCode::OK);
    let next = next.refresh_token().unwrap();
    assert_eq!(next.len(), 78);
    assert_ne!(next, v2);
    // The legacy token within the grace now gets an access token only: its
    // successor was consumed in turn.
    let late = app.refresh_body(&second).await;
    assert_eq!(late.status, StatusCode::OK);
    assert!(late.refresh_token().is_none());

    // After the grace, the old tokens are reuse: the session is revoked.
    app.consumed_ago("1 minute");
    let reuse = app.refresh_body(&second).await;
    assert_token_error(&reuse, StatusCode::UNAUTHORIZED, "invalid_grant");
    assert_eq!(
        app.session_revoked_reason(sid).as_deref(),
        Some("reuse_detected")
    );
    assert_token_error(
        &app.refresh_body(&next).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    );
    // And the first legacy token, consumed long before, is refused too.
    assert_token_error(
        &app.refresh_body(&first).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    );
}

#[tokio::test]
async fn a_replay_of_a_previous_version_token_after_the_grace_revokes_its_session() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let (sid, first, second) = legacy_session(&app, &email).await;
    // The first was consumed an hour ago, by the previous version.
    let reuse = app.refresh_body(&first).await;
    assert_token_error(&reuse, StatusCode::UNAUTHORIZED, "invalid_grant");
    assert_eq!(
        app.session_revoked_reason(sid).as_deref(),
        Some("reuse_detected")
    );
    assert_token_error(
        &app.refresh_body(&second).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    );
}

#[tokio::test]
async fn a_previous_version_token_logs_out_its_session() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let (sid, _, second) = legacy_session(&app, &email).await;
    assert_eq!(
        app.logout_body(&second).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.session_revoked_reason(sid).as_deref(), Some("logout"));
}

#[tokio::test]
async fn logout_and_introspection_read_version_2_tokens() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let login = app.login_body(&email).await;
    let sid = app.validate(&login.access_token()).await.sid;
    let first = login.refresh_token().unwrap();
    let second = app.refresh_body(&first).await.refresh_token().unwrap();
    assert_eq!(app.introspect(&first).await["active"], false, "consumed");
    let live = app.introspect(&second).await;
    assert_eq!(live["active"], true, "{live}");
    assert_eq!(live["sid"], sid.to_string());
    // Even a consumed token ends its session.
    assert_eq!(
        app.logout_body(&first).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.session_revoked_reason(sid).as_deref(), Some("logout"));
    assert_eq!(app.introspect(&second).await["active"], false);
}
