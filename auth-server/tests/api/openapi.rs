//! Contract § Standards endpoints: the auth server's `/openapi.json`.
//!
//! The OpenAPI document: served at `/openapi.json`, the same as the one
//! committed at `docs/openapi/auth-server.json`, and true of the server at
//! least as far as a request without credentials goes.

use std::path::PathBuf;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::*;

const REGENERATE: &str = "UPDATE_OPENAPI=1 cargo test -p auth-server --test api openapi";

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi/auth-server.json")
}

async fn served(app: &TestApp) -> String {
    let response = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.text().await.unwrap()
}

/// Fails when the code's document and the committed one differ; with
/// `UPDATE_OPENAPI=1` writes the committed one instead.
#[tokio::test]
async fn openapi_the_committed_document_is_the_served_one() {
    let app = spawn_app().await;
    let document = served(&app).await;
    let path = committed_path();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &document).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == document,
        "{} differs from the document the code generates: regenerate it with `{REGENERATE}` and commit it",
        path.display()
    );
}

#[tokio::test]
async fn openapi_documents_every_contract_endpoint_and_security_scheme() {
    let app = spawn_app().await;
    let text = served(&app).await;
    let document: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    // The stateful links (register → login → refresh → logout), in
    // OpenAPI's own field names.
    let login = &document["paths"]["/auth/register"]["post"]["responses"]["201"]["links"]["Login"];
    assert_eq!(login["operationId"], "login");
    assert!(login["requestBody"].is_object());
    assert!(!text.contains("\"operation_id\""), "links in snake case");
    for (method, path) in [
        ("post", "/auth/register"),
        ("post", "/auth/login"),
        ("post", "/auth/refresh"),
        ("post", "/auth/logout"),
        ("post", "/auth/logout-all"),
        ("get", "/auth/sessions"),
        ("delete", "/auth/sessions/{id}"),
        ("post", "/auth/password"),
        ("post", "/auth/password/forgot"),
        ("post", "/auth/password/reset"),
        ("post", "/auth/email/verify"),
        ("post", "/auth/email/verify/resend"),
        ("get", "/auth/events"),
        ("get", "/admin/users"),
        ("get", "/admin/users/{id}"),
        ("post", "/admin/users/{id}/disable"),
        ("post", "/admin/users/{id}/enable"),
        ("put", "/admin/users/{id}/roles"),
        ("delete", "/admin/users/{id}"),
        ("get", "/admin/audit"),
        ("get", "/.well-known/jwks.json"),
        ("get", "/.well-known/oauth-authorization-server"),
        ("post", "/oauth/token"),
        ("post", "/oauth/revoke"),
        ("post", "/oauth/introspect"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/openapi.json"),
    ] {
        assert!(
            document["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
    // Every error code the server answers with (`server_error` aside: a
    // bug, never documented) is named where a client reads the document.
    for code in [
        "invalid_request",
        "invalid_credentials",
        "invalid_grant",
        "unsupported_grant_type",
        "invalid_token",
        "insufficient_scope",
        "forbidden_origin",
        "not_found",
        "email_taken",
        "already_verified",
        "email_not_verified",
        "account_disabled",
        "last_admin",
        "payload_too_large",
        "rate_limited",
        "unavailable",
    ] {
        assert!(
            text.contains(&format!("`{code}`")),
            "the error code {code} is named nowhere in the document"
        );
    }
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["refresh_cookie"]["in"], "cookie");
    assert_eq!(schemes["refresh_cookie"]["name"], "refresh_token");
    assert_eq!(schemes["resource_server"]["scheme"], "bearer");
    assert_references_resolve(&document);
    let error = &document["components"]["schemas"]["Error"];
    assert_eq!(
        error["required"],
        serde_json::json!(["error", "error_description"])
    );
}

/// Every documented operation, called without credentials or body, and
/// again from a foreign `Origin`, answers one of the statuses it documents
/// (never a 404 or 405 of a route that does not exist), with the
/// contract's error body when it fails.
#[tokio::test]
async fn openapi_every_documented_operation_answers_as_documented() {
    let app = spawn_app().await;
    let document: Value = serde_json::from_str(&served(&app).await).unwrap();
    let paths = document["paths"].as_object().unwrap();
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().unwrap() {
            for origin in [None, Some("https://evil.example.com")] {
                let url = app.url(&path.replace("{id}", &uuid::Uuid::new_v4().to_string()));
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let mut request = app.client.request(method.clone(), url);
                if let Some(origin) = origin {
                    request = request.header("origin", origin);
                }
                let response = request.send().await.unwrap();
                let status = response.status().as_u16().to_string();
                assert!(
                    operation["responses"][&status].is_object(),
                    "{method} {path} (Origin {origin:?}) answered {status}, which it does not document"
                );
                if response.status().as_u16() >= 400 {
                    let body: Value = response.json().await.unwrap();
                    assert!(body["error"].is_string(), "{method} {path}: {body}");
                }
            }
        }
    }
}

/// Every `$ref` of the document points at something in it.
fn assert_references_resolve(document: &Value) {
    fn walk(node: &Value, document: &Value) {
        match node {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = map.get("$ref") {
                    let pointer = reference.strip_prefix('#').unwrap_or(reference);
                    assert!(
                        document.pointer(pointer).is_some(),
                        "unresolvable reference {reference}"
                    );
                }
                map.values().for_each(|v| walk(v, document));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, document)),
            _ => {}
        }
    }
    walk(document, document);
}

/// The `/admin/*` operations, called by an administrator (made-up ids, no
/// body), answer a status they document; a `200` holds every property its
/// schema requires.
#[tokio::test]
async fn openapi_admin_operations_answer_as_documented_to_an_admin() {
    let app = spawn_app().await;
    let (admin_id, admin) = app.admin().await;
    let document: Value = serde_json::from_str(&served(&app).await).unwrap();
    let paths = document["paths"].as_object().unwrap();
    let mut called = 0;
    for (path, operations) in paths.iter().filter(|(p, _)| p.starts_with("/admin/")) {
        for (method, operation) in operations.as_object().unwrap() {
            for id in [uuid::Uuid::new_v4(), admin_id] {
                if id == admin_id && *method != "get" {
                    continue;
                }
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let url = path.replace("{id}", &id.to_string());
                let response = app.admin_call(method.clone(), &url, &admin, None).await;
                let status = response.status().as_u16().to_string();
                let documented = &operation["responses"][&status];
                assert!(
                    documented.is_object(),
                    "{method} {url} answered {status}, which it does not document"
                );
                let body: Value = response.json().await.unwrap_or(Value::Null);
                if status == "200" {
                    let reference = documented["content"]["application/json"]["schema"]["$ref"]
                        .as_str()
                        .unwrap();
                    let schema = document.pointer(reference.trim_start_matches('#')).unwrap();
                    for field in schema["required"].as_array().unwrap() {
                        let field = field.as_str().unwrap();
                        assert!(
                            body.get(field).is_some(),
                            "{method} {url}: {field} in {body}"
                        );
                    }
                } else {
                    assert!(body["error"].is_string(), "{method} {url}: {body}");
                }
                called += 1;
            }
        }
    }
    assert_eq!(called, 11);
}
