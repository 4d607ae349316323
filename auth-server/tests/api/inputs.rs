//! Contract § Auth server: inputs and the error body (malformed, mistyped, oversized).

use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn malformed_json_is_400_in_the_contract_shape() {
    let app = spawn_app().await;
    for path in [
        "/auth/register",
        "/auth/login",
        "/auth/refresh",
        "/auth/logout",
    ] {
        for body in ["{", "not json", "{\"email\": }", "[1,2", "{} trailing"] {
            let response = app
                .client
                .post(app.url(path))
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
        }
    }
}

#[tokio::test]
async fn a_wrong_content_type_is_400() {
    let app = spawn_app().await;
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let response = app
            .client
            .post(app.url("/auth/login"))
            .header("Content-Type", content_type)
            .body("email=a@b.co&password=12345678")
            .send()
            .await
            .unwrap();
        let description = assert_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert!(description.contains("JSON"));
    }
}

#[tokio::test]
async fn the_wrong_shape_is_422_naming_the_field_without_echoing_values() {
    let app = spawn_app().await;
    let secret = "my-secret-password-value";
    let cases = [
        (serde_json::json!([]), "body"),
        (
            serde_json::json!({ "email": 1, "password": secret }),
            "email",
        ),
        (
            serde_json::json!({ "email": "a@example.com", "password": [secret] }),
            "password",
        ),
        (serde_json::json!({ "password": secret }), "email"),
    ];
    for (body, field) in cases {
        let response = app.post_json("/auth/login", &body).await;
        let description = assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        )
        .await;
        assert!(
            description.starts_with(field),
            "{description} should name {field}"
        );
        assert!(!description.contains(secret));
    }
}

#[tokio::test]
async fn oversized_bodies_are_413_and_nothing_is_hashed() {
    let app = spawn_app().await;
    let huge = format!(
        r#"{{"email":"a@example.com","password":"{}"}}"#,
        "x".repeat(70 * 1024)
    );
    for path in [
        "/auth/register",
        "/auth/login",
        "/auth/refresh",
        "/auth/logout",
    ] {
        let response = app
            .client
            .post(app.url(path))
            .header("Content-Type", "application/json")
            .body(huge.clone())
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    }
    // Chunked, with no Content-Length to refuse it up front.
    let stream =
        futures_util::stream::iter((0..100).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024])));
    let response = app
        .client
        .post(app.url("/auth/login"))
        .header("Content-Type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert_eq!(app.count("SELECT count(*) AS n FROM users"), 0);
}

#[tokio::test]
async fn unknown_paths_and_methods_get_json_errors() {
    let app = spawn_app().await;
    assert_error(
        app.client.get(app.url("/nope")).send().await.unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.client.get(app.url("/auth/login")).send().await.unwrap(),
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request",
    )
    .await;
}
