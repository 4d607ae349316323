use reqwest::StatusCode;

use crate::helpers::*;

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
async fn health_and_unknown_routes() {
    let stack = spawn_stack().await;
    assert_eq!(
        stack
            .client
            .get(format!("{}/healthz", stack.api_url))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let ready: serde_json::Value = stack
        .client
        .get(format!("{}/readyz", stack.api_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    let missing = stack
        .client
        .get(format!("{}/nope", stack.api_url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
}
