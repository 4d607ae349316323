//! Contract § Tokens and § Resource API: which access tokens `/api/me` accepts.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn login_then_api_me() {
    let stack = spawn_stack().await;
    let login = stack.login().await;
    let response = stack.api("/api/me", Some(&login.access_token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let claims = claims_of(&login.access_token);
    assert_eq!(body["user_id"], claims["sub"]);
    assert_eq!(body["session_id"], claims["sid"]);
    assert_eq!(body["email"], login.email.as_str());
    assert_eq!(body["roles"], json!([]));
    assert_eq!(body["email_verified"], false, "a new account's address");
    assert_eq!(claims["email_verified"], false);
    let expires_at =
        chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(expires_at.timestamp(), claims["exp"].as_i64().unwrap());
}

#[tokio::test]
async fn no_token_is_401_without_an_error_attribute() {
    let stack = spawn_stack().await;
    let description = assert_unauthorized(stack.api("/api/me", None).await, false).await;
    assert_eq!(description, "missing bearer token");
    assert_unauthorized(stack.api("/api/admin", None).await, false).await;
}

#[tokio::test]
async fn garbage_is_401_invalid_token() {
    let stack = spawn_stack().await;
    let overlong = "a".repeat(10_000);
    for token in [
        "garbage",
        "a.b.c",
        "...",
        "eyJhbGciOiJFZERTQSJ9.e30.",
        overlong.as_str(),
    ] {
        assert_unauthorized(stack.api("/api/me", Some(token)).await, true).await;
    }
    for header in ["Basic dXNlcjpwYXNz", "Bearer", "bearer", "Token abc"] {
        let response = stack
            .client
            .get(format!("{}/api/me", stack.api_url))
            .header("Authorization", header)
            .send()
            .await
            .unwrap();
        assert_unauthorized(response, true).await;
    }
}

#[tokio::test]
async fn a_tampered_signature_or_payload_is_refused() {
    let stack = spawn_stack().await;
    let token = stack.login().await.access_token;
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
    bytes[10] ^= 0x01;
    let tampered = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(bytes));
    let description = assert_unauthorized(stack.api("/api/me", Some(&tampered)).await, true).await;
    assert!(description.contains("signature"), "{description}");

    let (header, _) = signed.split_once('.').unwrap();
    let mut claims = claims_of(&token);
    claims["roles"] = json!(["admin"]);
    let escalated = format!(
        "{header}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    assert_unauthorized(stack.api("/api/admin", Some(&escalated)).await, true).await;
}

#[tokio::test]
async fn alg_none_is_refused() {
    let stack = spawn_stack().await;
    let token = stack.login().await.access_token;
    let kid = stack.kid().await;
    let header =
        URL_SAFE_NO_PAD.encode(json!({ "alg": "none", "typ": "at+jwt", "kid": kid }).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims_of(&token).to_string());
    for unsigned in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}"),
    ] {
        assert_unauthorized(stack.api("/api/me", Some(&unsigned)).await, true).await;
    }
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    let stack = spawn_stack().await;
    let token = stack.login().await.access_token;
    let jwks: Value = stack.jwks().await;
    let jwk = &jwks["keys"][0];
    let public_key = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("at+jwt".to_owned());
    header.kid = jwk["kid"].as_str().map(str::to_owned);
    // The classic confusion attack: the public key (as bytes, or as published)
    // used as an HMAC secret.
    for secret in [
        public_key,
        jwk.to_string().into_bytes(),
        jwks.to_string().into_bytes(),
    ] {
        let forged = jsonwebtoken::encode(
            &header,
            &claims_of(&token),
            &EncodingKey::from_secret(&secret),
        )
        .unwrap();
        let description =
            assert_unauthorized(stack.api("/api/me", Some(&forged)).await, true).await;
        assert!(description.contains("algorithm"), "{description}");
    }
}

#[tokio::test]
async fn a_foreign_key_is_refused_with_our_kid_or_its_own() {
    let stack = spawn_stack().await;
    let token = stack.login().await.access_token;
    let foreign_pem = auth_server::keys::signing::generate_pem().unwrap();
    let ours = forge(
        &foreign_pem,
        &access_header(&stack.kid().await),
        &claims_of(&token),
    );
    assert_unauthorized(stack.api("/api/me", Some(&ours)).await, true).await;
    let unknown = forge(
        &foreign_pem,
        &access_header("a-kid-nobody-published"),
        &claims_of(&token),
    );
    let description = assert_unauthorized(stack.api("/api/me", Some(&unknown)).await, true).await;
    assert!(description.contains("unknown key"), "{description}");
    let no_kid = {
        let mut header = access_header("x");
        header.kid = None;
        forge(&foreign_pem, &header, &claims_of(&token))
    };
    assert_unauthorized(stack.api("/api/me", Some(&no_kid)).await, true).await;
}

/// Tokens signed with the real key whose claims or header break one rule.
#[tokio::test]
async fn each_claim_rule_is_enforced() {
    let stack = spawn_stack().await;
    let Some(pem) = stack.signing_pem("each_claim_rule_is_enforced") else {
        return;
    };
    let token = stack.login().await.access_token;
    let kid = stack.kid().await;
    let good = claims_of(&token);
    let now = now();

    // The template itself passes: what fails below fails for its one change.
    assert_eq!(
        stack
            .me_status(&forge(pem, &access_header(&kid), &good))
            .await,
        StatusCode::OK
    );

    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = good.clone();
        change(&mut claims);
        forge(pem, &access_header(&kid), &claims)
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            with(&|c| {
                c["iat"] = json!(now - 3600);
                c["nbf"] = json!(now - 3600);
                c["exp"] = json!(now - 60)
            }),
            "expired",
        ),
        (
            "nbf in the future",
            with(&|c| c["nbf"] = json!(now + 120)),
            "not valid yet",
        ),
        (
            "wrong aud",
            with(&|c| c["aud"] = json!("another-api")),
            "audience",
        ),
        (
            "wrong iss",
            with(&|c| c["iss"] = json!("https://evil.example")),
            "issuer",
        ),
        (
            "no sid",
            with(&|c| {
                c.as_object_mut().unwrap().remove("sid");
            }),
            "claim",
        ),
        (
            "no jti",
            with(&|c| {
                c.as_object_mut().unwrap().remove("jti");
            }),
            "claim",
        ),
        (
            "no sub",
            with(&|c| {
                c.as_object_mut().unwrap().remove("sub");
            }),
            "claim",
        ),
        (
            "no exp",
            with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            "claim",
        ),
        (
            "sub not a uuid",
            with(&|c| c["sub"] = json!("admin")),
            "claim",
        ),
    ];
    for (case, forged, expected) in cases {
        let description =
            assert_unauthorized(stack.api("/api/me", Some(&forged)).await, true).await;
        assert!(description.contains(expected), "{case}: {description}");
    }

    let mut jwt_typ = access_header(&kid);
    jwt_typ.typ = Some("JWT".to_owned());
    let description = assert_unauthorized(
        stack
            .api("/api/me", Some(&forge(pem, &jwt_typ, &good)))
            .await,
        true,
    )
    .await;
    assert!(description.contains("at+jwt"), "{description}");

    // Within the leeway (5s) a just-expired token still passes.
    let just_expired = with(&|c| c["exp"] = json!(now - 2));
    assert_eq!(stack.me_status(&just_expired).await, StatusCode::OK);
}
