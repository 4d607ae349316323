//! Contract § Administration and audit, as the resource API sees it.
//!
//! Administration seen from a resource API: `/api/admin` needs the `admin`
//! role; a disabled or deleted user's tokens, a user's tokens after an
//! administrator reset their second factors, and a user's tokens from
//! before a change of roles, are refused within a second; a token issued
//! after the change never is; the last enabled admin stays.

use std::time::Duration;

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

/// The contract's bound, after the change is acknowledged.
const WITHIN: Duration = Duration::from_secs(1);

impl Stack {
    /// A new user given `admin`, logged in; `None` (the test skips) without
    /// the database to grant it through.
    async fn admin(&mut self, test: &str) -> Option<Login> {
        let login = self.login().await;
        self.control(test)?.grant_role(&login.email, "admin");
        Some(self.login_as(&login.email).await)
    }

    async fn admin_call(
        &self,
        method: Method,
        path: &str,
        admin: &Login,
        body: Option<&Value>,
    ) -> Response {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.auth_url))
            .bearer_auth(&admin.access_token);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.unwrap()
    }

    fn user_id(login: &Login) -> String {
        claims_of(&login.access_token)["sub"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

async fn refused_within(stack: &Stack, access_token: &str) -> Duration {
    eventually(WITHIN, || async {
        stack.me_status(access_token).await == StatusCode::UNAUTHORIZED
    })
    .await
    .expect("the API refuses the token within 1 second")
}

#[tokio::test]
async fn the_admin_route_needs_the_admin_role() {
    let mut stack = spawn_stack().await;
    let login = stack.login().await;
    let response = stack.api("/api/admin", Some(&login.access_token)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer realm="resource-api", error="insufficient_scope", error_description="this resource requires the `admin` role""#
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope");

    let Some(control) = stack.control("the_admin_route_needs_the_admin_role (granting the role)")
    else {
        return;
    };
    control.grant_role(&login.email, "admin");
    // Roles are in the token: a new one carries the grant.
    let admin = stack.login_as(&login.email).await;
    assert_eq!(
        stack
            .api("/api/admin", Some(&admin.access_token))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        stack
            .api("/api/admin", Some(&login.access_token))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn a_disabled_users_token_is_refused_at_the_api_within_a_second() {
    let mut stack = spawn_stack().await;
    let Some(admin) = stack.admin("a_disabled_users_token_is_refused…").await else {
        return;
    };
    let user = stack.login().await;
    assert_eq!(stack.me_status(&user.access_token).await, StatusCode::OK);
    let response = stack
        .admin_call(
            Method::POST,
            &format!("/admin/users/{}/disable", Stack::user_id(&user)),
            &admin,
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    refused_within(&stack, &user.access_token).await;
    assert_unauthorized(stack.api("/api/me", Some(&user.access_token)).await, true).await;
    assert_eq!(
        stack.refresh(&user.refresh_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(stack.me_status(&admin.access_token).await, StatusCode::OK);
}

#[tokio::test]
async fn a_second_factor_reset_ends_the_users_sessions_at_the_api_within_a_second() {
    let mut stack = spawn_stack().await;
    let Some(admin) = stack.admin("a_second_factor_reset_ends…").await else {
        return;
    };
    let user = stack.login().await;
    assert_eq!(stack.me_status(&user.access_token).await, StatusCode::OK);
    let response = stack
        .admin_call(
            Method::DELETE,
            &format!("/admin/users/{}/mfa", Stack::user_id(&user)),
            &admin,
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    refused_within(&stack, &user.access_token).await;
    assert_eq!(
        stack.refresh(&user.refresh_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // The user signs in again with the password alone.
    let again = stack.login_as(&user.email).await;
    assert_eq!(stack.me_status(&again.access_token).await, StatusCode::OK);
}

#[tokio::test]
async fn a_deleted_users_token_is_refused_at_the_api_within_a_second() {
    let mut stack = spawn_stack().await;
    let Some(admin) = stack.admin("a_deleted_users_token_is_refused…").await else {
        return;
    };
    let user = stack.login().await;
    let other_session = stack.login_as(&user.email).await;
    assert_eq!(stack.me_status(&user.access_token).await, StatusCode::OK);
    let response = stack
        .admin_call(
            Method::DELETE,
            &format!("/admin/users/{}", Stack::user_id(&user)),
            &admin,
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    refused_within(&stack, &user.access_token).await;
    refused_within(&stack, &other_session.access_token).await;
    assert_unauthorized(stack.api("/api/me", Some(&user.access_token)).await, true).await;
}

#[tokio::test]
async fn a_change_of_roles_refuses_older_tokens_and_never_newer_ones() {
    let mut stack = spawn_stack().await;
    let Some(admin) = stack.admin("a_change_of_roles_refuses_older_tokens…").await else {
        return;
    };
    let user = stack.login().await;
    assert_eq!(stack.me_status(&user.access_token).await, StatusCode::OK);
    let response = stack
        .admin_call(
            Method::PUT,
            &format!("/admin/users/{}/roles", Stack::user_id(&user)),
            &admin,
            Some(&json!({"roles": ["admin", "editor"]})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    // Issued right after the change, within the same second: never refused.
    let fresh = stack.login_as(&user.email).await;
    // The client's normal refresh, in the same session.
    let refreshed: Value = stack
        .refresh(&user.refresh_token)
        .await
        .json()
        .await
        .unwrap();
    let refreshed = refreshed["access_token"].as_str().unwrap().to_owned();
    let claims = claims_of(&refreshed);
    assert_eq!(claims["roles"], json!(["admin", "editor"]));
    assert_eq!(claims["sid"], claims_of(&user.access_token)["sid"]);

    refused_within(&stack, &user.access_token).await;
    let description =
        assert_unauthorized(stack.api("/api/me", Some(&user.access_token)).await, true).await;
    assert!(!description.is_empty());
    // Past the time the feed takes, the newer tokens still pass, and carry
    // the new role.
    for _ in 0..30 {
        assert_eq!(stack.me_status(&fresh.access_token).await, StatusCode::OK);
        assert_eq!(stack.me_status(&refreshed).await, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        stack.api("/api/admin", Some(&refreshed)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_last_enabled_admin_cannot_be_removed() {
    let mut stack = spawn_stack().await;
    let Some(admin) = stack
        .admin("the_last_enabled_admin_cannot_be_removed")
        .await
    else {
        return;
    };
    // In a shared deployment other admins may exist: only in-process is
    // this one the last.
    let id = Stack::user_id(&admin);
    for (method, path, body) in [
        (Method::POST, format!("/admin/users/{id}/disable"), None),
        (Method::DELETE, format!("/admin/users/{id}"), None),
        (
            Method::PUT,
            format!("/admin/users/{id}/roles"),
            Some(json!({"roles": []})),
        ),
    ] {
        let response = stack.admin_call(method, &path, &admin, body.as_ref()).await;
        assert_eq!(response.status(), StatusCode::CONFLICT);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "last_admin");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        stack
            .api("/api/admin", Some(&admin.access_token))
            .await
            .status(),
        StatusCode::OK,
        "nothing changed"
    );
}
