//! Contract § Account lifecycle: the user's own security events (`GET /auth/events`).
//!
//! `GET /auth/events`: the user's own security events, newest first.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn events_are_the_users_own_newest_first_with_the_contracts_fields() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let first = app.login_body(&email).await;
    let second = app.login_body(&email).await;
    let other = app.login_body(&app.registered_user().await).await;
    // A failed login, a logout, a session deleted, a reuse, logout-all.
    app.login_with(&email, "not the password").await;
    let third = app.login_body(&email).await;
    app.logout_body(&third.refresh_token().unwrap()).await;
    let second_sid = app.validate(&second.access_token()).await.sid;
    app.delete_session(&first.access_token(), &second_sid.to_string())
        .await;
    let fourth = app.login_body(&email).await;
    let rotated = app.refresh_body(&fourth.refresh_token().unwrap()).await;
    app.consumed_ago("1 hour");
    app.refresh_body(&fourth.refresh_token().unwrap()).await;
    let _ = rotated;
    let last = app.login_body(&email).await;
    assert_eq!(
        app.logout_all(&first.access_token()).await.status(),
        StatusCode::NO_CONTENT
    );
    let access = app.login_body(&email).await.access_token();

    let response = app.events(&access, "").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    let events = body["events"].as_array().unwrap();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "login",
            "logout_all",
            "login",
            "refresh_reuse_detected",
            "login",
            "session_deleted",
            "logout",
            "login",
            "login_failed",
            "login",
            "login",
            "register"
        ]
    );
    assert_eq!(body["next_cursor"], Value::Null);
    let event = &events[0];
    let mut fields: Vec<&str> = event
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["at", "id", "ip", "session_id", "type", "user_agent"]
    );
    assert_eq!(event["ip"], "127.0.0.1");
    assert_eq!(event["user_agent"], "auth-server-tests/1.0");
    assert_eq!(
        event["session_id"].as_str().unwrap(),
        app.validate(&access).await.sid.to_string()
    );
    assert!(chrono::DateTime::parse_from_rfc3339(event["at"].as_str().unwrap()).is_ok());
    assert_eq!(
        events[5]["session_id"].as_str().unwrap(),
        second_sid.to_string()
    );
    let _ = last;

    // The other user sees only their own.
    assert_eq!(
        app.event_types(&other.access_token()).await,
        ["login", "register"]
    );
    // Every event carries the request id of the request that made it.
    assert_eq!(
        app.count("SELECT count(*) AS n FROM audit_events WHERE request_id IS NULL"),
        0
    );
}

#[tokio::test]
async fn pages_follow_the_cursor_to_a_null_one() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    for _ in 0..4 {
        app.login_body(&email).await;
    }
    let access = app.login_body(&email).await.access_token(); // 6 events.
    let mut seen = Vec::new();
    let mut query = "?limit=4".to_owned();
    let mut pages = 0;
    loop {
        let body: Value = app.events(&access, &query).await.json().await.unwrap();
        pages += 1;
        for e in body["events"].as_array().unwrap() {
            seen.push(e["id"].as_str().unwrap().to_owned());
        }
        match body["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=4&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 2);
    assert_eq!(seen.len(), 6);
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!(unique.len(), 6, "no event twice");
    assert_eq!(
        app.event_types(&access).await.len(),
        6,
        "the default page holds them all"
    );
}

#[tokio::test]
async fn bad_paging_is_422_naming_the_parameter_and_no_token_is_401() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let access = app.login_body(&email).await.access_token();
    for (query, field) in [
        ("?limit=101", "limit"),
        ("?limit=0", "limit"),
        ("?limit=ten", "limit"),
        ("?cursor=not-ours", "cursor"),
    ] {
        let d = assert_error(
            app.events(&access, query).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        )
        .await;
        assert!(d.starts_with(field), "{query}: {d}");
    }
    assert_eq!(
        app.events(&access, "?limit=100").await.status(),
        StatusCode::OK
    );
    let response = app
        .client
        .get(app.url("/auth/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn failed_logins_are_stored_once_per_address_and_window_and_counted() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    for _ in 0..5 {
        app.login_with(&email, "not the password").await;
    }
    for _ in 0..3 {
        app.login_with(&unique_email(), "not the password").await;
    }
    assert_eq!(
        app.count("SELECT count(*) AS n FROM audit_events WHERE type = 'login_failed'"),
        1
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM audit_events WHERE user_id IS NULL"),
        0,
        "unknown addresses leave nothing"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("auth_login_failures_unrecorded_total 7"),
        "{metrics}"
    );
}

#[tokio::test]
async fn failed_logins_from_one_ipv6_64_are_one_client() {
    let app = spawn_app_with(&[("TRUSTED_PROXIES", "127.0.0.1")]).await;
    let email = app.registered_user().await;
    // A client picks a new address of its /64 for every guess.
    for address in ["2001:db8:5:6::1", "2001:db8:5:6::2", "2001:db8:5:6:a:b:c:d"] {
        let wrong = app
            .login_from(&email, "not the password", address, None)
            .await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
    // Another /64, and an IPv4 address: other clients.
    for address in ["2001:db8:5:7::1", "198.51.100.9"] {
        app.login_from(&email, "not the password", address, None)
            .await;
    }
    let stored = "SELECT count(*) AS n FROM audit_events WHERE type = 'login_failed'";
    assert_eq!(app.count(stored), 3);
    assert_eq!(
        app.count(&format!("{stored} AND ip LIKE '2001:db8:5:6:%'")),
        1,
        "the full address is kept, once for the /64"
    );
}

/// An administrator's disable, enable and role change are the user's events
/// too, but the administrator's address, user agent and session stay in the
/// administrators' audit trail; the user's own events keep theirs.
#[tokio::test]
async fn an_administrators_details_are_not_in_the_users_events() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let email = app.registered_user().await;
    let user_access = app.login_body(&email).await.access_token();
    let user_id = app.validate(&user_access).await.sub;
    for (method, path, body) in [
        (reqwest::Method::POST, "disable", None),
        (reqwest::Method::POST, "enable", None),
        (
            reqwest::Method::PUT,
            "roles",
            Some(serde_json::json!({"roles": ["editor"]})),
        ),
    ] {
        let response = app
            .admin_call(
                method,
                &format!("/admin/users/{user_id}/{path}"),
                &admin,
                body.as_ref(),
            )
            .await;
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
    }
    // The disable ended the user's sessions: a new one, to read the events.
    let access = app.login_body(&email).await.access_token();
    let body: Value = app.events(&access, "").await.json().await.unwrap();
    let events = body["events"].as_array().unwrap();
    let by_admin: Vec<&Value> = events
        .iter()
        .filter(|e| {
            ["user_disabled", "user_enabled", "roles_changed"]
                .contains(&e["type"].as_str().unwrap())
        })
        .collect();
    assert_eq!(by_admin.len(), 3, "{events:?}");
    for event in by_admin {
        for field in ["ip", "user_agent", "session_id"] {
            assert_eq!(event[field], Value::Null, "{field} of {event}");
        }
    }
    // The user's own logins show where they came from.
    let login = events.iter().find(|e| e["type"] == "login").unwrap();
    assert_eq!(login["ip"], "127.0.0.1");
    assert!(login["session_id"].is_string());
    // The administrators' trail keeps what the user does not see.
    let audit = app
        .admin_get(
            &format!("/admin/audit?user_id={user_id}&type=user_disabled"),
            &admin,
        )
        .await;
    let recorded = &audit["events"][0];
    assert_eq!(recorded["user_agent"], "admin-test/1.0");
    assert!(recorded["session_id"].is_string());
}
