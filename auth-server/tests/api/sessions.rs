//! Contract § Auth server: `/auth/sessions` and the session cap (`MAX_SESSIONS_PER_USER`).

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn the_sessions_list_marks_the_current_one() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let first = app.login_body(&email).await;
    let second = app.login_body(&email).await;
    let current = app.validate(&second.access_token()).await.sid;

    let response = app.get_sessions(&second.access_token()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let sessions = body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    for session in sessions {
        let fields: Vec<&str> = session
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            fields,
            [
                "created_at",
                "current",
                "expires_at",
                "id",
                "last_used_at",
                "user_agent"
            ]
        );
        for field in ["created_at", "expires_at", "last_used_at"] {
            assert!(chrono::DateTime::parse_from_rfc3339(session[field].as_str().unwrap()).is_ok());
        }
        assert_eq!(session["user_agent"], "auth-server-tests/1.0");
        assert_eq!(session["current"], session["id"] == current.to_string());
    }
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    // A revoked session is no longer listed.
    app.logout_body(&first.refresh_token().unwrap()).await;
    let body: Value = app
        .get_sessions(&second.access_token())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["sessions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_user_agent_shown_is_the_last_seen() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let login = app.login_body(&email).await;
    let response = app
        .client
        .post(app.url("/auth/refresh"))
        .header("User-Agent", "NewBrowser/2.0")
        .json(&serde_json::json!({ "refresh_token": login.refresh_token().unwrap() }))
        .send()
        .await
        .unwrap();
    let tokens = Tokens::read(response).await;
    let body: Value = app
        .get_sessions(&tokens.access_token())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["sessions"][0]["user_agent"], "NewBrowser/2.0");
}

#[tokio::test]
async fn deleting_a_session_revokes_it_and_another_users_is_404() {
    let app = spawn_app().await;
    let alice = app.registered_user().await;
    let bob = app.registered_user().await;
    let alice_phone = app.login_body(&alice).await;
    let alice_laptop = app.login_body(&alice).await;
    let bob_login = app.login_body(&bob).await;
    let phone_sid = app.validate(&alice_phone.access_token()).await.sid;
    let bob_sid = app.validate(&bob_login.access_token()).await.sid;

    // Bob cannot touch Alice's session: the same 404 as for no session.
    let response = app
        .delete_session(&bob_login.access_token(), &phone_sid.to_string())
        .await;
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    assert!(app.session_revoked_reason(phone_sid).is_none());
    for id in [uuid::Uuid::new_v4().to_string(), "not-a-uuid".to_owned()] {
        assert_error(
            app.delete_session(&bob_login.access_token(), &id).await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }

    let response = app
        .delete_session(&alice_laptop.access_token(), &phone_sid.to_string())
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.session_revoked_reason(phone_sid).as_deref(),
        Some("session_deleted")
    );
    assert_token_error(
        &app.refresh_body(&alice_phone.refresh_token().unwrap())
            .await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    );
    // Deleting it again is still the user's own session: 204.
    assert_eq!(
        app.delete_session(&alice_laptop.access_token(), &phone_sid.to_string())
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert!(app.session_revoked_reason(bob_sid).is_none());
}

/// Reasons of the user's sessions, oldest first.
fn reasons(app: &TestApp, email: &str) -> Vec<Option<String>> {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Reason {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        revoked_reason: Option<String>,
    }
    diesel::sql_query(format!(
        "SELECT s.revoked_reason FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE u.email = '{email}' ORDER BY s.created_at, s.id"
    ))
    .load::<Reason>(&mut app.conn())
    .unwrap()
    .into_iter()
    .map(|r| r.revoked_reason)
    .collect()
}

#[tokio::test]
async fn a_login_past_the_cap_evicts_the_oldest_session() {
    let app = spawn_app_with(&[("MAX_SESSIONS_PER_USER", "3")]).await;
    let email = app.registered_user().await;
    let other = app.registered_user().await;
    let mut logins = Vec::new();
    for _ in 0..3 {
        logins.push(app.login_body(&email).await);
    }
    app.login_body(&other).await;
    assert_eq!(reasons(&app, &email), [None, None, None], "within the cap");

    let fourth = app.login_body(&email).await;
    assert_eq!(
        reasons(&app, &email),
        [Some("session_evicted".to_owned()), None, None, None]
    );
    // The evicted session is over; the others, and the other user's, live.
    let evicted = app.refresh_body(&logins[0].refresh_token().unwrap()).await;
    assert_token_error(&evicted, StatusCode::UNAUTHORIZED, "invalid_grant");
    for login in logins.iter().skip(1).chain([&fourth]) {
        let refreshed = app.refresh_body(&login.refresh_token().unwrap()).await;
        assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    }
    let listed: Value = app
        .get_sessions(&fourth.access_token())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 3);
    assert_eq!(reasons(&app, &other), [None]);

    let metrics = app.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l == r#"auth_session_revocations_total{reason="session_evicted"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn expired_sessions_do_not_count_against_the_cap() {
    let app = spawn_app_with(&[("MAX_SESSIONS_PER_USER", "2")]).await;
    let email = app.registered_user().await;
    let old = app.login_body(&email).await;
    let sid = app.validate(&old.access_token()).await.sid;
    app.execute(&format!(
        "UPDATE sessions SET expires_at = now() - interval '1 second' WHERE id = '{sid}'"
    ));
    app.login_body(&email).await;
    app.login_body(&email).await;
    assert_eq!(reasons(&app, &email), [None, None, None]);
}

/// Two logins of one user at once, with `MAX_SESSIONS_PER_USER=1`: the
/// second waits on the user's row until the first commits, then sees its
/// session and evicts it. Without the lock, neither would see the other's
/// session, and both would stay live.
#[test]
fn concurrent_logins_of_one_user_take_turns_on_its_row() {
    use std::num::NonZeroU32;

    use auth_server::db::models::ClientInfo;
    use auth_server::db::sessions::{FirstToken, create_within_cap};
    use auth_server::tokens::refresh::SessionSecret;
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;

    let db = TestDatabase::create();
    let user = uuid::Uuid::new_v4();
    let mut first = PgConnection::establish(&db.url).unwrap();
    first
        .batch_execute(&format!(
            "INSERT INTO users (id, email, password_hash) VALUES ('{user}', '{user}@example.com', 'x')"
        ))
        .unwrap();
    let now = chrono::Utc::now();
    let expiry = (
        now + chrono::Duration::days(1),
        now + chrono::Duration::hours(1),
    );
    let cap = NonZeroU32::new(1);
    let login = move |conn: &mut PgConnection| {
        let secret = SessionSecret::generate().unwrap();
        let token = FirstToken {
            secret: &secret,
            key_id: 0,
        };
        create_within_cap(
            conn,
            user,
            Some("x"),
            auth_server::db::sessions::Proven::password(),
            &ClientInfo::default(),
            token,
            expiry,
            cap,
        )
        .unwrap()
        .unwrap()
    };

    // The first login's transaction (inside an outer one here) stays open
    // while a second login runs.
    let url = db.url.clone();
    let second = first
        .transaction::<_, diesel::result::Error, _>(|conn| {
            login(conn);
            let second =
                std::thread::spawn(move || login(&mut PgConnection::establish(&url).unwrap()));
            std::thread::sleep(std::time::Duration::from_millis(300));
            Ok(second)
        })
        .unwrap();
    let second = second.join().unwrap();
    assert_eq!(
        second.evicted.len(),
        1,
        "the second saw the first's session"
    );

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let live = diesel::sql_query(format!(
        "SELECT count(*) AS n FROM sessions WHERE user_id = '{user}' AND revoked_at IS NULL"
    ))
    .get_result::<Count>(&mut first)
    .unwrap();
    assert_eq!(live.n, 1);
}

#[tokio::test]
async fn zero_turns_the_cap_off() {
    let app = spawn_app_with(&[("MAX_SESSIONS_PER_USER", "0")]).await;
    let email = app.registered_user().await;
    for _ in 0..4 {
        app.login_body(&email).await;
    }
    assert_eq!(reasons(&app, &email), [None, None, None, None]);
}

#[tokio::test]
async fn a_login_that_evicts_writes_its_events_in_one_statement() {
    use auth_server::db::models::ClientInfo;
    use auth_server::db::sessions::{FirstToken, create_within_cap};
    use auth_server::tokens::refresh::SessionSecret;
    use std::num::NonZeroU32;

    let app = spawn_app().await;
    let email = app.registered_user().await;
    let mut logins = Vec::new();
    for _ in 0..3 {
        logins.push(app.login_body(&email).await);
    }
    let user_id = app.validate(&logins[0].access_token()).await.sub;

    let (mut conn, sent) = app.recording_conn();
    let later = chrono::Utc::now() + chrono::Duration::days(1);
    let secret = SessionSecret::generate().unwrap();
    let token = FirstToken {
        secret: &secret,
        key_id: 0,
    };
    let hash: String = {
        use auth_server::db::schema::users;
        use diesel::prelude::*;
        users::table
            .find(user_id)
            .select(users::password_hash)
            .first(&mut app.conn())
            .unwrap()
    };
    let created = create_within_cap(
        &mut conn,
        user_id,
        Some(&hash),
        auth_server::db::sessions::Proven::password(),
        &ClientInfo::default(),
        token,
        (later, later),
        NonZeroU32::new(1),
    )
    .unwrap()
    .unwrap();
    assert_eq!(created.evicted.len(), 3, "every older session evicted");

    let statements = std::mem::take(&mut *sent.lock().unwrap());
    let audit = statements
        .iter()
        .filter(|s| s.contains("audit_events"))
        .count();
    assert_eq!(audit, 1, "{statements:#?}");
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM audit_events WHERE user_id = '{user_id}' \
             AND ((type = 'login' AND session_id = '{}' AND actor_id = user_id) \
               OR (type = 'session_evicted' AND actor_id IS NULL))",
            created.session.id
        )),
        4,
        "the login and three evictions, each with its actor"
    );
}
