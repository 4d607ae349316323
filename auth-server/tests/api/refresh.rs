//! Contract § Tokens and § Delivery of the refresh token: `POST /auth/refresh`.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

/// The hex of a version 2 token's mac (its last 32 bytes).
fn mac_hex(token: &str) -> String {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .unwrap();
    bytes[bytes.len() - 32..]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn refresh_in_body_mode_rotates_the_token() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let first = app.login_body(&email).await.refresh_token().unwrap();

    let rotated = app.refresh_body(&first).await;
    assert_eq!(rotated.status, StatusCode::OK);
    assert_eq!(rotated.headers["cache-control"], "no-store");
    assert!(rotated.cookie().is_none(), "body mode never sets a cookie");
    let second = rotated
        .refresh_token()
        .expect("a new refresh token in the body");
    assert_ne!(first, second);
    let claims = app.validate(&rotated.access_token()).await;
    assert_eq!(claims.email, email);

    // One row: the session at generation 2 (the second live), the first's
    // consumption kept; no token row, and neither token stored.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM sessions WHERE id = '{}' AND generation = 2 \
             AND cardinality(consumed_at) = 1",
            claims.sid
        )),
        1
    );
    assert_eq!(app.count("SELECT count(*) AS n FROM refresh_tokens"), 0);
    for token in [&first, &second] {
        let stored_plain = app.count(&format!(
            "SELECT count(*) AS n FROM sessions WHERE position(convert_to('{token}', 'UTF8') in token_secret) > 0 \
             OR position('\\x{}'::bytea in token_secret) > 0",
            mac_hex(token)
        ));
        assert_eq!(stored_plain, 0);
    }

    // The new one works in turn.
    let third = app.refresh_body(&second).await;
    assert_eq!(third.status, StatusCode::OK);
    assert_eq!(
        app.validate(&third.access_token()).await.sid,
        claims.sid,
        "same session"
    );
}

#[tokio::test]
async fn refresh_in_cookie_mode_answers_with_a_cookie_only() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let first = app.login_cookie(&email).await.cookie().unwrap();

    let rotated = app.refresh_cookie(&first.value).await;
    assert_eq!(rotated.status, StatusCode::OK);
    assert!(rotated.refresh_token().is_none());
    let second = rotated.cookie().expect("a rotated cookie");
    assert_ne!(second.value, first.value);
    assert!(second.has("HttpOnly") && second.has("Secure"));
    assert_eq!(second.attribute("SameSite").as_deref(), Some("Strict"));
    assert_eq!(second.attribute("Path").as_deref(), Some("/auth"));
}

#[tokio::test]
async fn a_cookie_token_is_never_answered_in_the_body_whatever_is_asked() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let cookie = app.login_cookie(&email).await.cookie().unwrap();
    let response = app
        .client
        .post(app.url("/auth/refresh"))
        .header("Cookie", format!("refresh_token={}", cookie.value))
        .json(&json!({ "refresh_token_delivery": "body" }))
        .send()
        .await
        .unwrap();
    let tokens = Tokens::read(response).await;
    assert_eq!(tokens.status, StatusCode::OK);
    assert!(tokens.refresh_token().is_none());
    assert!(tokens.cookie().is_some());
}

#[tokio::test]
async fn a_token_in_the_body_wins_and_the_cookie_is_ignored() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let cookie = app.login_cookie(&email).await.cookie().unwrap();
    let body_token = app.login_body(&email).await.refresh_token().unwrap();

    let response = app
        .client
        .post(app.url("/auth/refresh"))
        .header("Cookie", format!("refresh_token={}", cookie.value))
        .json(&json!({ "refresh_token": body_token }))
        .send()
        .await
        .unwrap();
    let tokens = Tokens::read(response).await;
    assert_eq!(tokens.status, StatusCode::OK);
    assert!(tokens.refresh_token().is_some());
    assert!(tokens.cookie().is_none());
    // The cookie's token was not touched: it still rotates normally.
    let from_cookie = app.refresh_cookie(&cookie.value).await;
    assert_eq!(from_cookie.status, StatusCode::OK);
    assert!(from_cookie.cookie().is_some());
}

#[tokio::test]
async fn a_retry_within_the_grace_gets_the_very_successor_which_then_rotates_normally() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let login = app.login_cookie(&email).await;
    let first = login.cookie().unwrap();
    let sid = app.validate(&login.access_token()).await.sid;
    // This answer is lost on its way back: the client still holds `first`.
    let lost = app.refresh_cookie(&first.value).await.cookie().unwrap();

    let retry = app.refresh_cookie(&first.value).await;
    assert_eq!(retry.status, StatusCode::OK);
    let resent = retry.cookie().expect("the successor, sent again");
    assert_eq!(resent.value, lost.value, "never a different token");
    assert!(resent.has("HttpOnly") && resent.has("Secure"));
    assert_eq!(resent.attribute("SameSite").as_deref(), Some("Strict"));
    assert_eq!(resent.attribute("Path").as_deref(), Some("/auth"));
    assert!(resent.max_age() > 0 && resent.max_age() <= lost.max_age());
    assert!(
        retry.refresh_token().is_none(),
        "a cookie is never answered in the body"
    );
    assert_eq!(
        app.validate(&retry.access_token()).await.sid,
        sid,
        "the session never forks"
    );
    // One rotation: generation 2 is live, nothing else written.
    assert_eq!(
        app.count("SELECT count(*) AS n FROM sessions WHERE generation = 2"),
        1
    );
    assert_eq!(app.count("SELECT count(*) AS n FROM refresh_tokens"), 0);

    // The successor it was sent rotates normally, and only once.
    let next = app.refresh_cookie(&resent.value).await;
    assert_eq!(next.status, StatusCode::OK);
    let third = next.cookie().unwrap();
    assert_ne!(third.value, resent.value);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM sessions WHERE generation = 3"),
        1
    );
    assert_eq!(app.count("SELECT count(*) AS n FROM sessions"), 1);
    assert_eq!(app.count("SELECT count(*) AS n FROM refresh_tokens"), 0);

    // Body mode likewise: the successor in the body, no cookie.
    let body = app.login_body(&email).await.refresh_token().unwrap();
    let lost = app.refresh_body(&body).await.refresh_token().unwrap();
    let retry = app.refresh_body(&body).await;
    assert_eq!(retry.status, StatusCode::OK);
    assert_eq!(retry.refresh_token().as_deref(), Some(lost.as_str()));
    assert!(retry.cookie().is_none());
    let next = app.refresh_body(&lost).await.refresh_token().unwrap();
    assert_ne!(next, lost);
}

#[tokio::test]
async fn a_grace_answer_is_access_only_once_the_successor_was_consumed_in_turn() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let login = app.login_cookie(&email).await;
    let first = login.cookie().unwrap();
    let second = app.refresh_cookie(&first.value).await.cookie().unwrap();
    let third = app.refresh_cookie(&second.value).await.cookie().unwrap();

    // `second` is no longer the live token: sending it again would hand out
    // a consumed token. An access token only, and the cookie left alone.
    let late = app.refresh_cookie(&first.value).await;
    assert_eq!(late.status, StatusCode::OK);
    assert!(
        late.headers.get("set-cookie").is_none(),
        "{:?}",
        late.headers
    );
    assert!(late.refresh_token().is_none());
    assert_eq!(
        app.validate(&late.access_token()).await.sid,
        app.validate(&login.access_token()).await.sid
    );
    // Body mode: no refresh token in the body either.
    let body = app.login_body(&email).await.refresh_token().unwrap();
    let next = app.refresh_body(&body).await.refresh_token().unwrap();
    assert_eq!(app.refresh_body(&next).await.status, StatusCode::OK);
    let late = app.refresh_body(&body).await;
    assert_eq!(late.status, StatusCode::OK);
    assert!(late.refresh_token().is_none());

    // Nothing forked, nothing was revoked: the newest token carries on.
    assert_eq!(
        app.count("SELECT count(*) AS n FROM sessions WHERE revoked_at IS NULL"),
        2
    );
    assert_eq!(
        app.refresh_cookie(&third.value).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_new_token_key_makes_grace_answers_access_only_unless_the_old_one_is_retired() {
    let [first_key, old_key, new_key]: [TokenKeyFile; 3] =
        TokenKeyFile::distinct(3).try_into().ok().unwrap();
    // Sessions begin under the first key, which every later server keeps
    // retired: a token is checked with the key that minted it.
    let origin = spawn_app_with(&[("REFRESH_TOKEN_KEY_FILE", first_key.path())]).await;
    let email = origin.registered_user().await;
    let body = origin.login_body(&email).await.refresh_token().unwrap();
    let cookie = origin.login_cookie(&email).await.cookie().unwrap();
    let app = origin
        .replica_with(&[
            ("REFRESH_TOKEN_KEY_FILE", old_key.path()),
            ("RETIRED_REFRESH_TOKEN_KEY_FILES", first_key.path()),
        ])
        .await;
    let lost_body = app.refresh_body(&body).await.refresh_token().unwrap();
    let lost_cookie = app.refresh_cookie(&cookie.value).await.cookie().unwrap();

    // Restarted with another key, the old one not kept: the successors can
    // no longer be minted again, so the retries get access tokens only.
    let replaced = app
        .replica_with(&[
            ("REFRESH_TOKEN_KEY_FILE", new_key.path()),
            ("RETIRED_REFRESH_TOKEN_KEY_FILES", first_key.path()),
        ])
        .await;
    let retry = replaced.refresh_body(&body).await;
    assert_eq!(retry.status, StatusCode::OK);
    assert!(retry.refresh_token().is_none());
    let retry = replaced.refresh_cookie(&cookie.value).await;
    assert_eq!(retry.status, StatusCode::OK);
    assert!(
        retry.headers.get("set-cookie").is_none(),
        "no cookie at all"
    );
    // A token minted with a key the server no longer holds cannot be told
    // from a forgery: refused, and nothing revoked.
    assert_token_error(
        &replaced.refresh_body(&lost_body).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    );

    // With the old key retired, they are sent again.
    let rotated = app
        .replica_with(&[
            ("REFRESH_TOKEN_KEY_FILE", new_key.path()),
            (
                "RETIRED_REFRESH_TOKEN_KEY_FILES",
                &format!("{},{}", old_key.path(), first_key.path()),
            ),
        ])
        .await;
    let retry = rotated.refresh_body(&body).await;
    assert_eq!(retry.refresh_token().as_deref(), Some(lost_body.as_str()));
    let retry = rotated.refresh_cookie(&cookie.value).await;
    assert_eq!(retry.cookie().unwrap().value, lost_cookie.value);

    // New rotations mint with the new key, and their successors are sent
    // again by any server that holds it.
    let next = rotated
        .refresh_body(&lost_body)
        .await
        .refresh_token()
        .unwrap();
    let other = app
        .replica_with(&[
            ("REFRESH_TOKEN_KEY_FILE", first_key.path()),
            (
                "RETIRED_REFRESH_TOKEN_KEY_FILES",
                &format!("{},{}", new_key.path(), old_key.path()),
            ),
        ])
        .await;
    let again = other.refresh_body(&lost_body).await;
    assert_eq!(again.refresh_token().as_deref(), Some(next.as_str()));
}

#[tokio::test]
async fn a_token_is_the_mac_of_its_session_generation_and_secret_and_is_not_stored() {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    use sha2::Digest;
    let key = TokenKeyFile::new();
    let app = spawn_app_with(&[("REFRESH_TOKEN_KEY_FILE", key.path())]).await;
    let email = app.registered_user().await;
    let login = app.login_body(&email).await;
    let first = login.refresh_token().unwrap();
    let second = app.refresh_body(&first).await.refresh_token().unwrap();
    let sid = app.validate(&login.access_token()).await.sid;

    // base64url(2 || sid || generation || key id || SHA-256(u || secret)),
    // u = HMAC(key, "refresh-v2" 0 || sid || generation).
    let material = std::fs::read_to_string(&key.path).unwrap();
    let hmac = |parts: &[&[u8]]| {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(material.trim_end().as_bytes()).unwrap();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes()
    };
    let key_id = hmac(&[b"token-key-id\0"])[0];
    #[derive(diesel::QueryableByName)]
    struct Secret {
        #[diesel(sql_type = diesel::sql_types::Bytea)]
        token_secret: Vec<u8>,
    }
    let secret = {
        use diesel::RunQueryDsl;
        diesel::sql_query(format!(
            "SELECT token_secret FROM sessions WHERE id = '{sid}'"
        ))
        .get_result::<Secret>(&mut app.conn())
        .unwrap()
        .token_secret
    };
    assert_eq!(secret.len(), 32);
    for (generation, token) in [(1u64, &first), (2, &second)] {
        let u = hmac(&[b"refresh-v2\0", sid.as_bytes(), &generation.to_be_bytes()]);
        let mut bytes = vec![2u8];
        bytes.extend_from_slice(sid.as_bytes());
        bytes.extend_from_slice(&generation.to_be_bytes());
        bytes.push(key_id);
        bytes.extend_from_slice(
            &sha2::Sha256::new()
                .chain_update(u)
                .chain_update(&secret)
                .finalize(),
        );
        let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
        assert_eq!(token, &expected, "generation {generation}");
        // Nothing of it is stored: the database alone cannot make it.
        assert_eq!(
            app.count(&format!(
                "SELECT count(*) AS n FROM sessions WHERE position('\\x{}'::bytea in token_secret) > 0",
                mac_hex(token)
            )),
            0
        );
    }
    assert_eq!(app.count("SELECT count(*) AS n FROM refresh_tokens"), 0);
}

#[tokio::test]
async fn reuse_after_the_grace_revokes_the_whole_session() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let login = app.login_cookie(&email).await;
    let first = login.cookie().unwrap();
    let sid = app.validate(&login.access_token()).await.sid;
    let second = app.refresh_cookie(&first.value).await.cookie().unwrap();
    // The first token was consumed a minute ago.
    app.consumed_ago("1 minute");

    let reuse = app.refresh_cookie(&first.value).await;
    assert_token_error(&reuse, StatusCode::UNAUTHORIZED, "invalid_grant");
    let cleared = reuse
        .cookie()
        .expect("revoking the session clears the cookie");
    assert_eq!(cleared.value, "");
    assert_eq!(cleared.max_age(), 0);
    assert_eq!(
        app.session_revoked_reason(sid).as_deref(),
        Some("reuse_detected")
    );

    // Every token of the session is dead, including the legitimate successor,
    // and so is its access token at the auth server's own endpoints.
    assert_token_error(
        &app.refresh_cookie(&second.value).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    );
    assert_error(
        app.get_sessions(&login.access_token()).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn a_zero_grace_makes_every_replay_a_reuse() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "0s")]).await;
    let email = app.registered_user().await;
    let first = app.login_body(&email).await.refresh_token().unwrap();
    assert_eq!(app.refresh_body(&first).await.status, StatusCode::OK);
    assert_token_error(
        &app.refresh_body(&first).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM sessions WHERE revoked_reason = 'reuse_detected'"),
        1
    );
}

/// Twenty requests present one token at once: one rotates it, the others
/// queue on its row lock and fall under the grace. Every answer carries the
/// one successor, and the database holds exactly one rotation.
async fn assert_one_rotation(app: &TestApp, results: &[Tokens], carried: &[Option<String>]) {
    let statuses: Vec<StatusCode> = results.iter().map(|r| r.status).collect();
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "no 5xx, no 401: {statuses:?}"
    );
    assert!(
        carried.iter().all(Option::is_some),
        "every 200 carries the refresh token: {carried:?}"
    );
    let successors: HashSet<&String> = carried.iter().flatten().collect();
    assert_eq!(successors.len(), 1, "one and the same successor for all");
    let sids: HashSet<Uuid> = futures_util::future::join_all(
        results
            .iter()
            .map(|r| async { app.validate(&r.access_token()).await.sid }),
    )
    .await
    .into_iter()
    .collect();
    assert_eq!(sids.len(), 1, "one session");
    assert_eq!(
        app.count("SELECT count(*) AS n FROM sessions WHERE generation = 2"),
        1,
        "exactly one rotation"
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM sessions WHERE cardinality(consumed_at) = 1"),
        1,
        "no fork: one consumption, one live generation"
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM sessions WHERE revoked_at IS NULL"),
        1
    );
}

#[tokio::test]
async fn twenty_concurrent_refreshes_in_body_mode_all_carry_the_one_successor() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let token = app.login_body(&email).await.refresh_token().unwrap();

    let results = futures_util::future::join_all((0..20).map(|_| app.refresh_body(&token))).await;
    let carried: Vec<Option<String>> = results.iter().map(Tokens::refresh_token).collect();
    assert!(results.iter().all(|r| r.cookie().is_none()));
    assert_one_rotation(&app, &results, &carried).await;
    assert_eq!(app.count("SELECT count(*) AS n FROM refresh_tokens"), 0);
    assert_eq!(app.count("SELECT count(*) AS n FROM sessions"), 1);

    // The one successor carries on.
    let successor = carried[0].clone().unwrap();
    let next = app.refresh_body(&successor).await;
    assert_eq!(next.status, StatusCode::OK);
    assert_ne!(next.refresh_token().unwrap(), successor);
}

#[tokio::test]
async fn twenty_concurrent_refreshes_in_cookie_mode_all_set_the_one_successor() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let cookie = app.login_cookie(&email).await.cookie().unwrap();

    let results =
        futures_util::future::join_all((0..20).map(|_| app.refresh_cookie(&cookie.value))).await;
    let carried: Vec<Option<String>> = results
        .iter()
        .map(|r| r.cookie().map(|c| c.value))
        .collect();
    assert!(results.iter().all(|r| r.refresh_token().is_none()));
    assert!(
        carried.iter().flatten().all(|v| !v.is_empty()),
        "nobody clears the cookie"
    );
    assert_one_rotation(&app, &results, &carried).await;

    let successor = carried[0].clone().unwrap();
    assert_eq!(app.refresh_cookie(&successor).await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_expired_refresh_token_is_refused() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let login = app.login_cookie(&email).await;
    app.execute("UPDATE sessions SET token_expires_at = now() - interval '1 second'");
    let refused = app.refresh_cookie(&login.cookie().unwrap().value).await;
    assert_token_error(&refused, StatusCode::UNAUTHORIZED, "invalid_grant");
    assert!(
        refused.headers.get("set-cookie").is_none(),
        "an expired token revokes nothing, so clears nothing"
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM sessions WHERE revoked_at IS NULL"),
        1
    );
}

#[tokio::test]
async fn the_absolute_session_lifetime_is_enforced_and_never_extended() {
    let app = spawn_app_with(&[("SESSION_MAX_LIFETIME", "1h"), ("REFRESH_TOKEN_TTL", "7d")]).await;
    let email = app.registered_user().await;
    let login = app.login_cookie(&email).await;
    let cookie = login.cookie().unwrap();
    assert!(
        cookie.max_age() <= 3600,
        "the first token ends with the session: {}",
        cookie.max_age()
    );
    let rotated = app.refresh_cookie(&cookie.value).await;
    let rotated_cookie = rotated.cookie().unwrap();
    assert!(
        rotated_cookie.max_age() <= 3600,
        "rotation does not extend: {}",
        rotated_cookie.max_age()
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM sessions WHERE token_expires_at > expires_at"),
        0
    );

    // The session reaches its end while its newest token is still fresh.
    app.execute("UPDATE sessions SET expires_at = now() - interval '1 second'");
    app.execute("UPDATE sessions SET token_expires_at = now() + interval '1 day'");
    let refused = app.refresh_cookie(&rotated_cookie.value).await;
    assert_token_error(&refused, StatusCode::UNAUTHORIZED, "invalid_grant");
    assert!(
        refused.body["error_description"]
            .as_str()
            .unwrap()
            .contains("lifetime")
    );
}

#[tokio::test]
async fn missing_unknown_and_malformed_tokens_are_invalid_grant() {
    let app = spawn_app().await;
    let missing = Tokens::read(
        app.client
            .post(app.url("/auth/refresh"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_token_error(&missing, StatusCode::UNAUTHORIZED, "invalid_grant");
    for token in [
        "",
        "short",
        &"A".repeat(43),
        &"A".repeat(78),
        &"x".repeat(5000),
    ] {
        assert_token_error(
            &app.refresh_body(token).await,
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
        );
        assert_token_error(
            &app.refresh_cookie(token).await,
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
        );
    }
    let wrong_type = app
        .post_json("/auth/refresh", &json!({ "refresh_token": 42 }))
        .await;
    let description = assert_error(
        wrong_type,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    )
    .await;
    assert!(description.starts_with("refresh_token"), "{description}");
}

#[tokio::test]
async fn a_lock_held_too_long_is_503_with_retry_after_and_keeps_the_cookie() {
    let app = spawn_app_with(&[("DATABASE_LOCK_TIMEOUT", "200ms")]).await;
    let email = app.registered_user().await;
    let cookie = app.login_cookie(&email).await.cookie().unwrap();

    // Another transaction holds the session's row lock.
    let mut blocker = app.conn();
    use diesel::connection::SimpleConnection;
    blocker
        .batch_execute("BEGIN; SELECT * FROM sessions FOR UPDATE;")
        .unwrap();
    let contended = app.refresh_cookie(&cookie.value).await;
    assert_eq!(
        contended.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        contended.body
    );
    assert_eq!(contended.body["error"], "unavailable");
    assert_eq!(contended.headers["retry-after"], "1");
    assert!(contended.headers.get("set-cookie").is_none());
    blocker.batch_execute("ROLLBACK").unwrap();

    // Nothing was consumed: the same token rotates once the lock is gone.
    assert_eq!(
        app.refresh_cookie(&cookie.value).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn refresh_is_rate_limited_per_client_ip() {
    let app = spawn_app_with(&[("REFRESH_RATE_LIMIT", "2/1m")]).await;
    let email = app.registered_user().await;
    let token = app.login_body(&email).await.refresh_token().unwrap();
    let second = app.refresh_body(&token).await.refresh_token().unwrap();
    let third = app.refresh_body(&second).await.refresh_token().unwrap();
    let limited = app.refresh_body(&third).await;
    assert_token_error(&limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(limited.headers.get("retry-after").is_some());
}

#[tokio::test]
async fn a_refresh_with_two_refresh_cookies_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let cookie = app.login_cookie(&email).await.cookie().unwrap();
    // A sibling subdomain planted a second one with a longer Path.
    let planted = "refresh_token=planted-by-a-sibling-subdomain";
    for cookies in [
        vec![format!("{planted}; refresh_token={}", cookie.value)],
        vec![
            planted.to_owned(),
            format!("refresh_token={}", cookie.value),
        ],
        vec![
            format!("refresh_token={}", cookie.value),
            format!("refresh_token={}", cookie.value),
        ],
    ] {
        let mut request = app.client.post(app.url("/auth/refresh"));
        for line in &cookies {
            request = request.header("Cookie", line);
        }
        let refused = Tokens::read(request.send().await.unwrap()).await;
        assert_token_error(&refused, StatusCode::BAD_REQUEST, "invalid_request");
        assert!(refused.headers.get("set-cookie").is_none(), "{cookies:?}");
    }
    assert_eq!(
        app.count("SELECT count(*) AS n FROM sessions WHERE generation <> 1"),
        0,
        "nothing was rotated"
    );
    let rotated = app.refresh_cookie(&cookie.value).await;
    assert_eq!(rotated.status, StatusCode::OK);

    // In body mode the cookies, duplicates included, are ignored.
    let body_token = app.login_body(&email).await.refresh_token().unwrap();
    let response = app
        .client
        .post(app.url("/auth/refresh"))
        .header("Cookie", format!("{planted}; refresh_token=x"))
        .json(&json!({ "refresh_token": body_token }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
