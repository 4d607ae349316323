//! Contract § Resource API: CORS for the browser app (`ALLOWED_ORIGINS`).
//!
//! CORS on the resource API: the browser app's origin may send a Bearer
//! token and read the answer, refusals included; no other origin may, and
//! no credentials are ever allowed (the API has no cookie to protect).

use reqwest::{Method, Response, StatusCode};
use serde_json::Value;

use crate::helpers::*;

const FOREIGN: &str = "https://evil.example";

async fn preflight(stack: &Stack, origin: &str, method: &str, headers: &str) -> Response {
    stack
        .client
        .request(Method::OPTIONS, format!("{}/api/me", stack.api_url))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", method)
        .header("Access-Control-Request-Headers", headers)
        .send()
        .await
        .unwrap()
}

async fn get_me(stack: &Stack, origin: &str, token: Option<&str>) -> Response {
    let mut request = stack
        .client
        .get(format!("{}/api/me", stack.api_url))
        .header("Origin", origin);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

fn allow_origin(response: &Response) -> Option<&str> {
    response
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn the_web_origin_may_call_the_api_with_a_bearer_token() {
    let stack = spawn_stack().await;
    let response = preflight(&stack, WEB_ORIGIN, "GET", "authorization").await;
    assert!(response.status().is_success(), "{response:?}");
    assert_eq!(allow_origin(&response), Some(WEB_ORIGIN));
    let allowed_headers = response.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed_headers.contains("authorization"),
        "{allowed_headers}"
    );
    assert!(
        response
            .headers()
            .get("access-control-allow-credentials")
            .is_none()
    );

    let login = stack.login().await;
    let me = get_me(&stack, WEB_ORIGIN, Some(&login.access_token)).await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(allow_origin(&me), Some(WEB_ORIGIN));
    assert!(
        me.headers()
            .get("access-control-allow-credentials")
            .is_none()
    );

    // The app must be able to read a refusal to know it should refresh.
    for token in [None, Some("garbage")] {
        let refused = get_me(&stack, WEB_ORIGIN, token).await;
        assert_eq!(allow_origin(&refused), Some(WEB_ORIGIN));
        assert_unauthorized(refused, token.is_some()).await;
    }
}

#[tokio::test]
async fn a_foreign_origin_gets_no_grant() {
    let stack = spawn_stack().await;
    for origin in [FOREIGN, "null", "http://localhost:3000.evil.example"] {
        let response = preflight(&stack, origin, "GET", "authorization").await;
        assert_eq!(allow_origin(&response), None, "{origin}");
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "forbidden_origin");
    }
    // Bearer tokens are not ambient, so the API answers a foreign origin's
    // request as any other; the browser just does not let that page read it.
    let login = stack.login().await;
    let me = get_me(&stack, FOREIGN, Some(&login.access_token)).await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(allow_origin(&me), None);
}

#[tokio::test]
async fn a_preflight_for_another_method_gets_no_grant() {
    let stack = spawn_stack().await;
    let response = preflight(&stack, WEB_ORIGIN, "DELETE", "authorization").await;
    assert_eq!(allow_origin(&response), None);
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}
