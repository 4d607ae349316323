//! Contract § Standards endpoints: RFC 8414 metadata, token, revocation, introspection.
//!
//! The standard endpoints: RFC 8414 metadata, the token endpoint's
//! `refresh_token` grant (RFC 6749 §5), revocation (RFC 7009) and
//! introspection (RFC 7662).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

const RESOURCE_SERVER_TOKEN: &str = auth_server::config::DEVELOPMENT_INTERNAL_TOKEN;
const FORM: &str = "application/x-www-form-urlencoded";

impl TestApp {
    pub async fn post_form(&self, path: &str, params: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", FORM)
            .body(serde_urlencoded::to_string(params).unwrap())
            .send()
            .await
            .unwrap()
    }

    pub async fn oauth_refresh(&self, refresh_token: &str) -> Tokens {
        Tokens::read(
            self.post_form(
                "/oauth/token",
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token),
                ],
            )
            .await,
        )
        .await
    }

    pub async fn revoke(&self, token: &str) -> reqwest::Response {
        self.post_form("/oauth/revoke", &[("token", token)]).await
    }

    pub async fn introspect_as(&self, bearer: &str, token: &str) -> reqwest::Response {
        self.client
            .post(self.url("/oauth/introspect"))
            .bearer_auth(bearer)
            .header("content-type", FORM)
            .body(serde_urlencoded::to_string([("token", token)]).unwrap())
            .send()
            .await
            .unwrap()
    }

    pub async fn introspect(&self, token: &str) -> Value {
        let response = self.introspect_as(RESOURCE_SERVER_TOKEN, token).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        response.json().await.unwrap()
    }
}

fn inactive() -> Value {
    json!({ "active": false })
}

#[tokio::test]
async fn metadata_names_the_endpoints_under_the_configured_public_url() {
    let app = spawn_app_with(&[
        ("JWT_ISSUER", "https://issuer.example.com"),
        ("AUTH_PUBLIC_URL", "https://auth.example.com/"),
    ])
    .await;
    let response = app
        .client
        .get(app.url("/.well-known/oauth-authorization-server"))
        // A forged Host changes nothing.
        .header("host", "evil.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let metadata: Value = response.json().await.unwrap();
    assert_eq!(metadata["issuer"], "https://issuer.example.com");
    assert_eq!(
        metadata["jwks_uri"],
        "https://auth.example.com/.well-known/jwks.json"
    );
    assert_eq!(
        metadata["token_endpoint"],
        "https://auth.example.com/oauth/token"
    );
    assert_eq!(
        metadata["revocation_endpoint"],
        "https://auth.example.com/oauth/revoke"
    );
    assert_eq!(
        metadata["introspection_endpoint"],
        "https://auth.example.com/oauth/introspect"
    );
    assert_eq!(metadata["grant_types_supported"], json!(["refresh_token"]));
    assert_eq!(
        metadata["token_endpoint_auth_methods_supported"],
        json!(["none"])
    );
    assert!(metadata["response_types_supported"].is_array());
    assert!(metadata["revocation_endpoint_auth_methods_supported"].is_array());
    assert!(metadata["introspection_endpoint_auth_methods_supported"].is_array());
}

#[tokio::test]
async fn the_token_endpoint_rotates_exactly_as_refresh_does() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let login = app.login_body(&email).await;
    let first = login.refresh_token().unwrap();

    let rotated = app.oauth_refresh(&first).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    assert_eq!(rotated.body["token_type"], "Bearer");
    assert_eq!(rotated.body["expires_in"], 900);
    assert_eq!(rotated.headers["cache-control"], "no-store");
    assert!(
        rotated.headers.get("set-cookie").is_none(),
        "never a cookie"
    );
    let second = rotated.refresh_token().expect("the rotated refresh token");
    assert_ne!(second, first);
    let claims = app.validate(&rotated.access_token()).await;
    assert_eq!(
        claims.sid,
        app.validate(&login.access_token()).await.sid,
        "the same session"
    );

    // Within the grace, the first token gets the very same successor.
    let again = app.oauth_refresh(&first).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.refresh_token().as_deref(), Some(second.as_str()));

    // The JSON endpoint and the form endpoint are one rotation.
    let third = app.refresh_body(&second).await.refresh_token().unwrap();
    let fourth = app.oauth_refresh(&third).await.refresh_token().unwrap();
    assert_ne!(fourth, third);
}

#[tokio::test]
async fn a_grace_answer_whose_successor_is_used_carries_the_access_token_only() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let first = app.login_body(&email).await.refresh_token().unwrap();
    let second = app.oauth_refresh(&first).await.refresh_token().unwrap();
    let third = app.oauth_refresh(&second).await;
    assert_eq!(third.status, StatusCode::OK);

    let late = app.oauth_refresh(&first).await;
    assert_eq!(late.status, StatusCode::OK, "{}", late.body);
    assert!(!late.access_token().is_empty());
    assert_eq!(late.refresh_token(), None, "never another refresh token");
    assert_eq!(late.body["token_type"], "Bearer");
}

#[tokio::test]
async fn reuse_after_the_grace_is_invalid_grant_400_and_revokes_the_session() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "0s")]).await;
    let email = app.registered_user().await;
    let login = app.login_body(&email).await;
    let first = login.refresh_token().unwrap();
    let sid = app.validate(&login.access_token()).await.sid;
    let second = app.oauth_refresh(&first).await.refresh_token().unwrap();

    let reused = app.oauth_refresh(&first).await;
    assert_token_error(&reused, StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(reused.headers["cache-control"], "no-store");
    assert_eq!(
        app.session_revoked_reason(sid).as_deref(),
        Some("reuse_detected")
    );
    assert_token_error(
        &app.oauth_refresh(&second).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
}

#[tokio::test]
async fn token_endpoint_errors_are_rfc_6749_shaped() {
    let app = spawn_app().await;
    let cases: [(&[(&str, &str)], &str); 6] = [
        (&[], "invalid_request"),
        (&[("refresh_token", "x")], "invalid_request"),
        (&[("grant_type", "refresh_token")], "invalid_request"),
        (
            &[
                ("grant_type", "password"),
                ("username", "a"),
                ("password", "b"),
            ],
            "unsupported_grant_type",
        ),
        (
            &[("grant_type", "refresh_token"), ("refresh_token", "junk")],
            "invalid_grant",
        ),
        (
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &"Z".repeat(43)),
            ],
            "invalid_grant",
        ),
    ];
    for (params, code) in cases {
        assert_error(
            app.post_form("/oauth/token", params).await,
            StatusCode::BAD_REQUEST,
            code,
        )
        .await;
    }
    // A parameter twice (RFC 6749 §3.2).
    let twice = app
        .client
        .post(app.url("/oauth/token"))
        .header("content-type", FORM)
        .body("grant_type=refresh_token&grant_type=refresh_token&refresh_token=x")
        .send()
        .await
        .unwrap();
    assert_error(twice, StatusCode::BAD_REQUEST, "invalid_request").await;
    // JSON is not a form.
    let json = app
        .client
        .post(app.url("/oauth/token"))
        .json(&json!({ "grant_type": "refresh_token", "refresh_token": "x" }))
        .send()
        .await
        .unwrap();
    assert_error(json, StatusCode::BAD_REQUEST, "invalid_request").await;
    // Bounded.
    let huge = app
        .post_form("/oauth/token", &[("grant_type", &"x".repeat(70_000))])
        .await;
    assert_error(huge, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    let get = app
        .client
        .get(app.url("/oauth/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn the_token_endpoint_shares_the_refresh_rate_limit() {
    let app = spawn_app_with(&[("REFRESH_RATE_LIMIT", "2/1m")]).await;
    for _ in 0..2 {
        let refused = app.oauth_refresh("junk").await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    }
    let limited = app
        .post_form(
            "/oauth/token",
            &[("grant_type", "refresh_token"), ("refresh_token", "junk")],
        )
        .await;
    assert!(limited.headers().contains_key("retry-after"));
    assert_error(limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_its_session() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let login = app.login_body(&email).await;
    let refresh = login.refresh_token().unwrap();
    let sid = app.validate(&login.access_token()).await.sid;
    assert_eq!(app.introspect(&refresh).await["active"], true);

    let response = app
        .post_form(
            "/oauth/revoke",
            &[("token", &refresh), ("token_type_hint", "refresh_token")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.session_revoked_reason(sid).as_deref(), Some("logout"));
    assert_token_error(
        &app.oauth_refresh(&refresh).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
    assert_eq!(app.introspect(&refresh).await, inactive());
    assert_eq!(app.introspect(&login.access_token()).await, inactive());
    // Through the feed, as every logout.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM audit_events WHERE type = 'logout' AND session_id = '{sid}'"
        )),
        1
    );
    // Again: still 200, nothing more.
    assert_eq!(app.revoke(&refresh).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn revoking_an_access_token_ends_its_session_when_it_verifies() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let login = app.login_body(&email).await;
    let access = login.access_token();
    let sid = app.validate(&access).await.sid;

    // A forged signature revokes nothing.
    let mut forged = access.clone();
    forged.pop();
    forged.push(if access.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(app.revoke(&forged).await.status(), StatusCode::OK);
    assert_eq!(app.session_revoked_reason(sid), None);

    // The hint is only a hint.
    let response = app
        .post_form(
            "/oauth/revoke",
            &[("token", &access), ("token_type_hint", "refresh_token")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.session_revoked_reason(sid).as_deref(), Some("logout"));
    assert_token_error(
        &app.refresh_body(&login.refresh_token().unwrap()).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    );
}

#[tokio::test]
async fn revocation_answers_200_to_any_well_formed_request() {
    let app = spawn_app().await;
    for token in ["junk", "a.b.c", &"Z".repeat(43), &"x".repeat(5000)] {
        assert_eq!(app.revoke(token).await.status(), StatusCode::OK, "{token}");
    }
    assert_error(
        app.post_form("/oauth/revoke", &[("token_type_hint", "access_token")])
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    let json = app
        .client
        .post(app.url("/oauth/revoke"))
        .json(&json!({ "token": "x" }))
        .send()
        .await
        .unwrap();
    assert_error(json, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn introspection_needs_the_resource_servers_token() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/oauth/introspect"))
        .header("content-type", FORM)
        .body("token=x")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer realm="auth-server""#
    );
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
    for wrong in ["wrong", &format!("{RESOURCE_SERVER_TOKEN}x"), ""] {
        assert_error(
            app.introspect_as(wrong, "x").await,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        )
        .await;
    }
    // Authentication comes before the form is even read.
    let unauthenticated_json = app
        .client
        .post(app.url("/oauth/introspect"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated_json.status(), StatusCode::UNAUTHORIZED);
    let no_token = app
        .client
        .post(app.url("/oauth/introspect"))
        .bearer_auth(RESOURCE_SERVER_TOKEN)
        .header("content-type", FORM)
        .body("token_type_hint=access_token")
        .send()
        .await
        .unwrap();
    assert_error(no_token, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn introspection_describes_live_tokens_and_nothing_of_dead_ones() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let login = app.login_body(&email).await;
    let access = login.access_token();
    let claims = app.validate(&access).await;

    let answer = app.introspect(&access).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["token_type"], "access_token");
    assert_eq!(answer["sub"], claims.sub.to_string());
    assert_eq!(answer["sid"], claims.sid.to_string());
    assert_eq!(answer["iss"], claims.iss);
    assert_eq!(answer["aud"], claims.aud);
    assert_eq!(answer["exp"], claims.exp);
    assert_eq!(answer["iat"], claims.iat);
    assert_eq!(answer["username"], email);
    assert_eq!(answer["roles"], json!(claims.roles));

    let refresh = login.refresh_token().unwrap();
    let answer = app.introspect(&refresh).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["token_type"], "refresh_token");
    assert_eq!(answer["sid"], claims.sid.to_string());
    assert_eq!(answer["sub"], claims.sub.to_string());

    // A consumed refresh token is not active, its successor is.
    let next = app.refresh_body(&refresh).await.refresh_token().unwrap();
    assert_eq!(app.introspect(&refresh).await, inactive());
    assert_eq!(app.introspect(&next).await["active"], true);

    // Unknown, garbage, forged: inactive, and nothing else said.
    let mut forged = access.clone();
    forged.insert(access.find('.').unwrap() + 2, 'x');
    for token in ["junk", &"Z".repeat(43), &forged, "a.b.c"] {
        assert_eq!(app.introspect(token).await, inactive(), "{token}");
    }

    // After logout-all (revoked sessions), at once: no feed delay.
    let response = app.post_bearer("/auth/logout-all", &access, None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.introspect(&access).await, inactive());
    assert_eq!(app.introspect(&next).await, inactive());
}

/// What the administration does shows in introspection at once: a
/// disabled or deleted user's tokens, and an access token issued before a
/// change of its user's roles, are inactive; the token refreshed after the
/// change is active with the new roles.
#[tokio::test]
async fn introspection_follows_the_administration_at_once() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;

    let disabled = app.registered_user().await;
    let login = app.login_body(&disabled).await;
    let (access, refresh) = (login.access_token(), login.refresh_token().unwrap());
    let id = app.validate(&access).await.sub;
    assert_eq!(app.introspect(&access).await["active"], true);
    let path = format!("/admin/users/{id}/disable");
    let response = app.admin_call(Method::POST, &path, &admin, None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.introspect(&access).await, inactive());
    assert_eq!(app.introspect(&refresh).await, inactive());
    // Enabled again, the old tokens stay dead.
    let path = format!("/admin/users/{id}/enable");
    let response = app.admin_call(Method::POST, &path, &admin, None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.introspect(&access).await, inactive());

    let deleted = app.registered_user().await;
    let login = app.login_body(&deleted).await;
    let (access, refresh) = (login.access_token(), login.refresh_token().unwrap());
    let id = app.validate(&access).await.sub;
    let path = format!("/admin/users/{id}");
    let response = app.admin_call(Method::DELETE, &path, &admin, None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.introspect(&access).await, inactive());
    assert_eq!(app.introspect(&refresh).await, inactive());

    let promoted = app.registered_user().await;
    let login = app.login_body(&promoted).await;
    let (access, refresh) = (login.access_token(), login.refresh_token().unwrap());
    let id = app.validate(&access).await.sub;
    let path = format!("/admin/users/{id}/roles");
    let body = json!({"roles": ["user", "billing"]});
    let response = app
        .admin_call(Method::PUT, &path, &admin, Some(&body))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.introspect(&access).await, inactive());
    // The session lives on: its refresh token is active, and the access
    // token it yields, issued within the same second, carries the new roles.
    assert_eq!(app.introspect(&refresh).await["active"], true);
    let next = app.refresh_body(&refresh).await.access_token();
    let answer = app.introspect(&next).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["roles"], json!(["user", "billing"]));
    assert_eq!(answer["scope"], "user billing");

    // The administrator's own token is untouched throughout.
    assert_eq!(app.introspect(&admin).await["active"], true);
}

#[tokio::test]
async fn expired_tokens_are_inactive() {
    let app = spawn_app_with(&[("ACCESS_TOKEN_TTL", "1s"), ("JWT_LEEWAY", "0s")]).await;
    let email = app.registered_user().await;
    let login = app.login_body(&email).await;
    let refresh = login.refresh_token().unwrap();
    app.execute("UPDATE sessions SET token_expires_at = now() - interval '1 second'");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(app.introspect(&login.access_token()).await, inactive());
    assert_eq!(app.introspect(&refresh).await, inactive());
}

/// An independent client library (Python's Authlib) drives discovery, the
/// refresh_token grant and its rotation, its own automatic refresh,
/// revocation and introspection against a real server
/// (`scripts/oauth_interop.py`). CI installs Authlib (`.ci/run`); without
/// it this test fails, saying how to install it.
#[tokio::test]
async fn authlib_interoperates() {
    // The metadata must name where the server really is: bind a free port
    // first and announce it as AUTH_PUBLIC_URL.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bind = format!("127.0.0.1:{port}");
    let public = format!("http://{bind}");
    let app = spawn_app_with(&[("AUTH_BIND", &bind), ("AUTH_PUBLIC_URL", &public)]).await;
    assert_eq!(app.address, public);
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/oauth_interop.py");
    let address = app.address.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .env("AUTH_URL", address)
            .env("INTERNAL_API_TOKEN", RESOURCE_SERVER_TOKEN)
            .output()
    })
    .await
    .unwrap()
    .expect("python3 runs (CI installs it, with Authlib: see .ci/run)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named 'authlib'"),
        "Authlib is missing: python3 -m pip install 'authlib==1.9.6'"
    );
    assert!(
        output.status.success(),
        "the Authlib client failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}

/// One introspection from `client`, as the tests' own trusted proxy
/// forwards it; `bearer` `None` sends no `Authorization`.
async fn introspect_from(app: &TestApp, client: &str, bearer: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/oauth/introspect"))
        .header("X-Forwarded-For", client)
        .header("content-type", FORM)
        .body("token=x");
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn introspection_answers_429_past_20_failed_authentications_a_minute() {
    let app = spawn_app_with(&[("TRUSTED_PROXIES", "127.0.0.1")]).await;
    // Started first: the refusal's wait (one interval, 3 s) must not run
    // out while it starts.
    let replica = app.another_instance().await;
    let guesser = "192.0.2.10";
    for i in 0..20 {
        let bearer = if i % 2 == 0 { Some("a guess") } else { None };
        let response = introspect_from(&app, guesser, bearer).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "failure {i}");
    }
    let refused = introspect_from(&app, guesser, Some("one more guess")).await;
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_error(refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Refused whatever it sends now: a right guess is not even checked.
    let right = introspect_from(&app, guesser, Some(RESOURCE_SERVER_TOKEN)).await;
    assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another replica shares the count.
    let elsewhere = app
        .client
        .post(format!("{replica}/oauth/introspect"))
        .header("X-Forwarded-For", guesser)
        .header("content-type", FORM)
        .bearer_auth("a guess at another replica")
        .body("token=x")
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), StatusCode::TOO_MANY_REQUESTS);
    // Other clients are not affected, and successes are never counted.
    for _ in 0..30 {
        let ok = introspect_from(&app, "192.0.2.11", Some(RESOURCE_SERVER_TOKEN)).await;
        assert_eq!(ok.status(), StatusCode::OK);
    }
    let other = introspect_from(&app, "192.0.2.12", Some("wrong")).await;
    assert_eq!(other.status(), StatusCode::UNAUTHORIZED);
}
