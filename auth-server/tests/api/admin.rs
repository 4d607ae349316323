//! Contract § Administration and audit: `/admin/*` on the auth server.
//!
//! `/admin/*`: who may call it, the user list and one user, disable and
//! enable, roles, delete, `last_admin`, and the audit query; each change
//! with its audit event.

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

const DEV_TOKEN: &str = auth_server::config::DEVELOPMENT_INTERNAL_TOKEN;

impl TestApp {
    /// A new user given `admin` (as an operator's CLI would), logged in;
    /// returns its id and access token.
    pub(crate) async fn admin(&self) -> (Uuid, String) {
        let email = self.registered_user().await;
        let address = auth_server::accounts::email::Email::parse(&email).unwrap();
        auth_server::db::admin::set_role(&mut self.conn(), &address, "admin", true)
            .unwrap()
            .unwrap();
        let access = self.login_body(&email).await.access_token();
        (self.validate(&access).await.sub, access)
    }

    pub(crate) async fn admin_call(
        &self,
        method: Method,
        path: &str,
        access: &str,
        body: Option<&Value>,
    ) -> Response {
        let mut request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(access)
            .header("User-Agent", "admin-test/1.0");
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.unwrap()
    }

    pub(crate) async fn admin_get(&self, path: &str, access: &str) -> Value {
        let response = self.admin_call(Method::GET, path, access, None).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.json().await.unwrap()
    }

    async fn user_id(&self, email: &str) -> Uuid {
        let access = self.login_body(email).await.access_token();
        self.validate(&access).await.sub
    }
}

#[tokio::test]
async fn only_an_admin_bearer_gets_in() {
    let app = spawn_app().await;
    let anonymous = app
        .client
        .get(app.url("/admin/users"))
        .send()
        .await
        .unwrap();
    let challenge = anonymous.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains(r#"realm="auth-server""#), "{challenge}");
    assert_error(anonymous, StatusCode::UNAUTHORIZED, "invalid_token").await;

    let email = app.registered_user().await;
    let access = app.login_body(&email).await.access_token();
    for (method, path) in [
        (Method::GET, "/admin/users"),
        (Method::GET, "/admin/audit"),
        (
            Method::POST,
            &format!("/admin/users/{}/disable", Uuid::new_v4()),
        ),
        (Method::DELETE, &format!("/admin/users/{}", Uuid::new_v4())),
    ] {
        let response = app.admin_call(method, path, &access, None).await;
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            challenge.contains(r#"realm="auth-server""#)
                && challenge.contains(r#"error="insufficient_scope""#),
            "{challenge}"
        );
        assert_error(response, StatusCode::FORBIDDEN, "insufficient_scope").await;
    }
}

#[tokio::test]
async fn users_are_searched_and_paged_with_opaque_cursors() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let tag = Uuid::new_v4().simple().to_string()[..8].to_owned();
    for i in 0..5 {
        let email = format!("user{i}-{tag}@example.com");
        assert_eq!(
            app.register(&email, PASSWORD).await.status(),
            StatusCode::CREATED
        );
    }
    let mut seen = Vec::new();
    let mut path = format!("/admin/users?query={}&limit=2", tag.to_uppercase());
    loop {
        let page = app.admin_get(&path, &admin).await;
        let users = page["users"].as_array().unwrap();
        assert!(users.len() <= 2);
        for user in users {
            for field in [
                "id",
                "email",
                "email_verified",
                "roles",
                "disabled",
                "created_at",
                "last_login_at",
            ] {
                assert!(user.get(field).is_some(), "{field} in {user}");
            }
            seen.push(user["email"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/admin/users?query={tag}&limit=2&cursor={cursor}"),
            None => {
                assert!(page["next_cursor"].is_null());
                break;
            }
        }
    }
    let expected: Vec<String> = (0..5)
        .map(|i| format!("user{i}-{tag}@example.com"))
        .collect();
    assert_eq!(seen, expected, "every match once, in e-mail order");

    let all = app.admin_get("/admin/users", &admin).await;
    assert_eq!(all["users"].as_array().unwrap().len(), 6);
    assert!(all["next_cursor"].is_null());
    let wildcard = app.admin_get("/admin/users?query=%25", &admin).await;
    assert_eq!(wildcard["users"], json!([]), "% is literal");

    for bad in [
        "limit=0",
        "limit=101",
        "limit=x",
        "cursor=%21%21",
        "cursor=QQ",
        // PostgreSQL refuses a NUL in text: schemathesis found this a 503.
        "query=%00%F0%B5%91%85",
        "query=a%0Ab",
        // base64url of "a\0b", a NUL inside a well-formed cursor
        "cursor=YQBi",
    ] {
        let response = app
            .admin_call(Method::GET, &format!("/admin/users?{bad}"), &admin, None)
            .await;
        assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        )
        .await;
    }
    let hundred = app.admin_get("/admin/users?limit=100", &admin).await;
    assert_eq!(hundred["users"].as_array().unwrap().len(), 6);
}

#[tokio::test]
async fn one_user_with_its_live_sessions_and_unknown_ids_are_404() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let email = app.registered_user().await;
    let id = app.user_id(&email).await;
    let second = app.login_body(&email).await;
    app.logout_body(&second.refresh_token().unwrap()).await;

    let user = app.admin_get(&format!("/admin/users/{id}"), &admin).await;
    assert_eq!(user["email"], email.as_str());
    assert_eq!(user["disabled"], false);
    assert!(user["last_login_at"].is_string());
    assert_eq!(user["sessions"].as_array().unwrap().len(), 1, "{user}");

    for path in [
        "/admin/users/not-a-uuid".to_owned(),
        format!("/admin/users/{}", Uuid::new_v4()),
        format!("/admin/users/{}/disable", Uuid::new_v4()),
        "/admin/users/42/enable".to_owned(),
    ] {
        let method = if path.ends_with("able") {
            Method::POST
        } else {
            Method::GET
        };
        let response = app.admin_call(method, &path, &admin, None).await;
        assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    }
    let response = app
        .admin_call(
            Method::PUT,
            &format!("/admin/users/{}/roles", Uuid::new_v4()),
            &admin,
            Some(&json!({"roles": []})),
        )
        .await;
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    let response = app
        .admin_call(
            Method::DELETE,
            &format!("/admin/users/{}", Uuid::new_v4()),
            &admin,
            None,
        )
        .await;
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn a_disabled_user_is_logged_out_everywhere_and_cannot_log_in() {
    let app = spawn_app().await;
    let (admin_id, admin) = app.admin().await;
    let email = app.registered_user().await;
    let login = app.login_body(&email).await;
    let claims = app.validate(&login.access_token()).await;

    let response = app
        .admin_call(
            Method::POST,
            &format!("/admin/users/{}/disable", claims.sub),
            &admin,
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.session_revoked_reason(claims.sid).as_deref(),
        Some("user_disabled")
    );
    let refused = app.refresh_body(&login.refresh_token().unwrap()).await;
    assert_token_error(&refused, StatusCode::UNAUTHORIZED, "invalid_grant");
    let response = app.get_sessions(&login.access_token()).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let correct = app
        .post_json(
            "/auth/login",
            &json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_error(correct, StatusCode::FORBIDDEN, "account_disabled").await;
    let wrong = app
        .post_json(
            "/auth/login",
            &json!({"email": email, "password": "not the password at all"}),
        )
        .await;
    assert_error(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let user = app
        .admin_get(&format!("/admin/users/{}", claims.sub), &admin)
        .await;
    assert_eq!(user["disabled"], true);
    assert_eq!(user["sessions"], json!([]));

    // The feed carries the revoked session to the APIs.
    let feed: Value = app
        .client
        .get(app.internal_url("/internal/revocations"))
        .bearer_auth(DEV_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        feed["revocations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["session_id"] == claims.sid.to_string()),
        "{feed}"
    );

    let response = app
        .admin_call(
            Method::POST,
            &format!("/admin/users/{}/enable", claims.sub),
            &admin,
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    app.login_body(&email).await;

    // Both recorded, with who did it and from where.
    let events = app
        .admin_get(&format!("/admin/audit?user_id={}", claims.sub), &admin)
        .await;
    let events = events["events"].as_array().unwrap();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        &types[..4],
        ["login", "user_enabled", "login_failed", "user_disabled"],
        "{events:?}"
    );
    let disabled = &events[3];
    assert_eq!(disabled["actor_id"], admin_id.to_string());
    assert_eq!(
        disabled["session_id"],
        app.validate(&admin).await.sid.to_string(),
        "the admin's session"
    );
    assert_eq!(disabled["user_id"], claims.sub.to_string());
    assert_eq!(disabled["ip"], "127.0.0.1");
    assert_eq!(disabled["user_agent"], "admin-test/1.0");
    assert!(Uuid::try_parse(disabled["request_id"].as_str().unwrap()).is_ok());
    for field in ["id", "at"] {
        assert!(disabled.get(field).is_some(), "{field}");
    }
}

#[tokio::test]
async fn a_change_of_roles_refuses_older_tokens_and_the_next_refresh_carries_it() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let email = app.registered_user().await;
    let login = app.login_body(&email).await;
    let before = app.validate(&login.access_token()).await;
    assert_eq!(before.rv, Some(0));

    let response = app
        .admin_call(
            Method::PUT,
            &format!("/admin/users/{}/roles", before.sub),
            &admin,
            Some(&json!({"roles": ["editor", "billing:read"]})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["roles"], json!(["editor", "billing:read"]));
    assert_eq!(user["id"], before.sub.to_string());

    // The auth server's own Bearer endpoints refuse the older token.
    let response = app.get_sessions(&login.access_token()).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
    // The same session's refresh carries the new roles and version.
    let refreshed = app.refresh_body(&login.refresh_token().unwrap()).await;
    let after = app.validate(&refreshed.access_token()).await;
    assert_eq!(after.sid, before.sid, "the same session");
    assert_eq!(after.roles, ["editor", "billing:read"]);
    assert_eq!(after.rv, Some(1));
    assert_eq!(
        app.get_sessions(&refreshed.access_token()).await.status(),
        StatusCode::OK
    );

    // The feed tells the APIs.
    let feed: Value = app
        .client
        .get(app.internal_url("/internal/revocations"))
        .bearer_auth(DEV_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let users = feed["users"].as_array().unwrap();
    assert!(
        users
            .iter()
            .any(|u| u["user_id"] == before.sub.to_string() && u["roles_version"] == 1),
        "{feed}"
    );

    // The same roles again: nothing changes.
    let response = app
        .admin_call(
            Method::PUT,
            &format!("/admin/users/{}/roles", before.sub),
            &admin,
            Some(&json!({"roles": ["billing:read", "editor"]})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        app.get_sessions(&refreshed.access_token()).await.status(),
        StatusCode::OK
    );

    let too_many: Vec<String> = (0..21).map(|i| format!("r{i}")).collect();
    for body in [
        json!({"roles": ["Admin"]}),
        json!({"roles": ["a b"]}),
        json!({"roles": [""]}),
        json!({"roles": ["x".repeat(65)]}),
        json!({"roles": too_many}),
        json!({"roles": "admin"}),
        json!({}),
    ] {
        let response = app
            .admin_call(
                Method::PUT,
                &format!("/admin/users/{}/roles", before.sub),
                &admin,
                Some(&body),
            )
            .await;
        assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        )
        .await;
    }
    let twenty: Vec<String> = (0..20).map(|i| format!("r{i}")).collect();
    let response = app
        .admin_call(
            Method::PUT,
            &format!("/admin/users/{}/roles", before.sub),
            &admin,
            Some(&json!({ "roles": twenty })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_last_enabled_admin_stays() {
    let app = spawn_app().await;
    let (admin_id, admin) = app.admin().await;
    for (method, path, body) in [
        (
            Method::POST,
            format!("/admin/users/{admin_id}/disable"),
            None,
        ),
        (Method::DELETE, format!("/admin/users/{admin_id}"), None),
        (
            Method::PUT,
            format!("/admin/users/{admin_id}/roles"),
            Some(json!({"roles": ["editor"]})),
        ),
    ] {
        let response = app.admin_call(method, &path, &admin, body.as_ref()).await;
        assert_error(response, StatusCode::CONFLICT, "last_admin").await;
    }
    // Nothing changed: the admin's token still works.
    let me = app
        .admin_get(&format!("/admin/users/{admin_id}"), &admin)
        .await;
    assert_eq!(me["roles"], json!(["admin"]));
    assert_eq!(me["disabled"], false);

    // Two admins disabling each other at once: exactly one wins.
    let (other_id, other) = app.admin().await;
    let (disable_other, disable_first) = (
        format!("/admin/users/{other_id}/disable"),
        format!("/admin/users/{admin_id}/disable"),
    );
    let (first, second) = tokio::join!(
        app.admin_call(Method::POST, &disable_other, &admin, None),
        app.admin_call(Method::POST, &disable_first, &other, None),
    );
    let mut statuses = [first.status(), second.status()];
    statuses.sort();
    // The loser either hits `last_admin` or (its own session revoked
    // first) is no longer authenticated: never are both disabled.
    assert_eq!(statuses[0], StatusCode::NO_CONTENT, "{statuses:?}");
    assert_ne!(statuses[1], StatusCode::NO_CONTENT, "{statuses:?}");
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM users WHERE 'admin' = ANY (roles) AND disabled_at IS NULL"
        ),
        1
    );
}

#[tokio::test]
async fn a_deleted_user_is_gone_but_its_sessions_stay_in_the_feed_and_its_events_stay() {
    let app = spawn_app().await;
    let (admin_id, admin) = app.admin().await;
    let email = app.registered_user().await;
    let claims = app
        .validate(&app.login_body(&email).await.access_token())
        .await;

    let response = app
        .admin_call(
            Method::DELETE,
            &format!("/admin/users/{}", claims.sub),
            &admin,
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = app
        .admin_call(
            Method::GET,
            &format!("/admin/users/{}", claims.sub),
            &admin,
            None,
        )
        .await;
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM sessions WHERE user_id = '{}'",
            claims.sub
        )),
        0
    );
    let feed: Value = app
        .client
        .get(app.internal_url("/internal/revocations"))
        .bearer_auth(DEV_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        feed["revocations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["session_id"] == claims.sid.to_string()),
        "the deleted session in the feed: {feed}"
    );
    assert!(
        feed["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["user_id"] == claims.sub.to_string() && u["roles_version"] == i64::MAX),
        "{feed}"
    );
    let login = app
        .post_json(
            "/auth/login",
            &json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_error(login, StatusCode::UNAUTHORIZED, "invalid_credentials").await;

    let events = app
        .admin_get(&format!("/admin/audit?user_id={}", claims.sub), &admin)
        .await;
    let events = events["events"].as_array().unwrap();
    assert_eq!(events[0]["type"], "user_deleted");
    assert_eq!(events[0]["actor_id"], admin_id.to_string());
    assert!(events.iter().any(|e| e["type"] == "register"), "{events:?}");
}

#[tokio::test]
async fn the_audit_query_filters_and_pages() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let email = app.registered_user().await;
    let id = app.user_id(&email).await;
    for _ in 0..3 {
        app.login_body(&email).await;
    }
    let logins = app
        .admin_get(
            &format!("/admin/audit?user_id={id}&type=login&limit=2"),
            &admin,
        )
        .await;
    assert_eq!(logins["events"].as_array().unwrap().len(), 2);
    let cursor = logins["next_cursor"].as_str().unwrap().to_owned();
    let rest = app
        .admin_get(
            &format!("/admin/audit?user_id={id}&type=login&limit=2&cursor={cursor}"),
            &admin,
        )
        .await;
    // The user_id lookup logged in once more: four logins.
    assert_eq!(rest["events"].as_array().unwrap().len(), 2);
    assert!(rest["next_cursor"].is_null());
    let all = app.admin_get("/admin/audit?type=register", &admin).await;
    assert_eq!(all["events"].as_array().unwrap().len(), 2);
    assert!(
        all["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["type"] == "register")
    );
    for bad in [
        "type=nope",
        "user_id=42",
        "limit=101",
        "limit=0",
        "cursor=%21",
    ] {
        let response = app
            .admin_call(Method::GET, &format!("/admin/audit?{bad}"), &admin, None)
            .await;
        assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        )
        .await;
    }
    // No event holds a token, a password or a hash.
    let dump = app.dump_tables();
    assert!(!dump.contains(PASSWORD));
}

#[tokio::test]
async fn the_janitor_sweeps_audit_events_past_retention_and_spent_leftovers() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    app.login_body(&email).await;
    let events = app.count("SELECT count(*) AS n FROM audit_events");
    app.execute(
        "INSERT INTO audit_events (id, at, type, user_id) \
         VALUES (gen_random_uuid(), now() - interval '91 days', 'login', gen_random_uuid())",
    );
    app.execute(
        "INSERT INTO feed_events (id, at, user_id, roles_version) \
         VALUES (gen_random_uuid(), now() - interval '8 days', gen_random_uuid(), 3), \
                (gen_random_uuid(), now(), gen_random_uuid(), 4)",
    );
    app.execute(
        "INSERT INTO mail_outbox (id, kind, recipient, sent_at) \
         VALUES (gen_random_uuid(), 'email_verify', 'a@example.com', now() - interval '8 days')",
    );
    let swept = app.sweep().await;
    assert_eq!(swept.audit_events, 1, "{swept:?}");
    assert_eq!(swept.feed_events, 1, "{swept:?}");
    assert!(swept.mail_outbox >= 1, "{swept:?}");
    assert_eq!(
        app.count("SELECT count(*) AS n FROM audit_events"),
        events,
        "recent events stay"
    );
    assert_eq!(app.count("SELECT count(*) AS n FROM feed_events"), 1);
}

/// Each administrator's change and its audit event commit in one
/// transaction, the event one statement of it (counted on the connection as
/// Diesel sends them).
#[tokio::test]
async fn each_change_and_its_event_are_one_transaction_with_one_statement_more() {
    use auth_server::db::admin::{self as admin_db, Admin, Outcome, RolesChange};
    use auth_server::db::models::ClientInfo;

    let app = spawn_app().await;
    let (admin_id, admin) = app.admin().await;
    let actor = Some(Admin {
        user_id: admin_id,
        session_id: app.validate(&admin).await.sid,
    });
    let email = app.registered_user().await;
    let id = app.user_id(&email).await;

    let (mut conn, sent) = app.recording_conn();
    let client = ClientInfo::default();
    let since = chrono::Utc::now() - chrono::Duration::minutes(20);
    let check = |what: &str, outcome_ok: bool| {
        assert!(outcome_ok, "{what}");
        let statements = std::mem::take(&mut *sent.lock().unwrap());
        assert_eq!(
            statements.first().map(String::as_str),
            Some("BEGIN"),
            "{what}: {statements:?}"
        );
        assert_eq!(
            statements.last().map(String::as_str),
            Some("COMMIT"),
            "{what}: {statements:?}"
        );
        let events = statements
            .iter()
            .filter(|s| s.contains("audit_events"))
            .count();
        assert_eq!(events, 1, "{what}: {statements:#?}");
    };
    let ok = matches!(
        admin_db::disable(&mut conn, actor, id, &client).unwrap(),
        Outcome::Done(_)
    );
    check("disable", ok);
    let ok = matches!(
        admin_db::enable(&mut conn, actor, id, &client).unwrap(),
        Outcome::Done(_)
    );
    check("enable", ok);
    let change = RolesChange::Set(vec!["editor".to_owned()]);
    let ok = matches!(
        admin_db::change_roles(&mut conn, actor, id, &change, &client).unwrap(),
        Outcome::Done(_)
    );
    check("roles", ok);
    let ok = matches!(
        admin_db::delete(&mut conn, actor, id, &client, since).unwrap(),
        Outcome::Done(_)
    );
    check("delete", ok);
}
