//! Contract § Standards endpoints: the resource API's `/openapi.json`.
//!
//! The resource API's OpenAPI document: served at `/openapi.json`, the same
//! as the one committed at `docs/openapi/resource-api.json`, and true of
//! the running API for a caller with and without a token.

use std::path::PathBuf;

use serde_json::Value;

use crate::helpers::*;

const REGENERATE: &str = "UPDATE_OPENAPI=1 cargo test -p stack-tests --test e2e openapi";

async fn served(stack: &Stack) -> String {
    let response = stack.api("/openapi.json", None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.text().await.unwrap()
}

/// The committed document, built into the test binary, so the check also
/// runs against a deployment (URL mode, in the compose stack's container).
const COMMITTED: &str = include_str!("../../../docs/openapi/resource-api.json");

/// Fails when the code's document and the committed one differ; with
/// `UPDATE_OPENAPI=1` writes the committed one instead.
#[tokio::test]
async fn openapi_the_committed_document_is_the_served_one() {
    let stack = spawn_stack().await;
    let document = served(&stack).await;
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        let path =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi/resource-api.json");
        std::fs::write(&path, &document).unwrap();
        return;
    }
    assert!(
        COMMITTED == document,
        "docs/openapi/resource-api.json differs from the document the code generates: regenerate it with `{REGENERATE}` and commit it"
    );
}

/// Every documented operation answers one of its documented statuses, with
/// a user's token and without one.
#[tokio::test]
async fn openapi_every_documented_operation_answers_as_documented() {
    let stack = spawn_stack().await;
    stack.wait_until_ready().await;
    let document: Value = serde_json::from_str(&served(&stack).await).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    // Every error response's schema is in the document (schemathesis found
    // `#/components/schemas/Error` missing once).
    assert_references_resolve(&document);
    let login = stack.login().await;
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/api/me",
        "/api/admin",
        "/api/step-up",
        "/healthz",
        "/readyz",
        "/openapi.json",
    ] {
        assert!(paths[path]["get"].is_object(), "GET {path} is documented");
    }
    for (path, operations) in paths {
        let operation = &operations["get"];
        for token in [None, Some(login.access_token.as_str())] {
            let response = stack.api(path, token).await;
            let status = response.status().as_u16().to_string();
            assert!(
                operation["responses"][&status].is_object(),
                "GET {path} answered {status}, which it does not document"
            );
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
