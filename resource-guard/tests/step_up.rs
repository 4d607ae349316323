//! Contract § Second factors and step-up: resource-guard's per-route step-up, through both adapters.
//!
//! One route demands `aal2` proven within five minutes, served once by the
//! actix-web adapter and once by the axum one, both on a guard fed by a
//! small local stand-in for the auth server's JWKS and revocation feed;
//! tokens are signed with the stand-in's key (RFC 8037's example key).
//! Each adapter must answer the same: `200` to a fresh `aal2`, else `401
//! insufficient_user_authentication` with RFC 9470's challenge.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::IntoFuture;
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use resource_guard::{Aal, Guard, GuardError, GuardSettings, Readiness, StepUp};
use serde_json::{Value, json};
use uuid::Uuid;

const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","use":"sig","kid":"k","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;

/// RFC 8037's example Ed25519 key as PKCS#8 DER: the private half of the
/// JWKS above.
const PRIVATE_KEY: [u8; 48] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
];

const MAX_AGE: u64 = 300;

/// The route's demand: a second factor, proven in the last five minutes.
const RECENT_AAL2: StepUp = StepUp {
    acr: Some(Aal::Aal2),
    max_age: Some(Duration::from_secs(MAX_AGE)),
};

/// The stand-in auth server: the JWKS, and a feed that is caught up.
fn serve_auth() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = HttpServer::new(|| {
        App::new().default_service(web::to(|req: HttpRequest| async move {
            let body = if req.path() == "/.well-known/jwks.json" {
                JWKS
            } else {
                r#"{"revocations":[],"cursor":"c.0.0","more":false,"held":0}"#
            };
            HttpResponse::Ok()
                .content_type("application/json")
                .body(body)
        }))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    url
}

/// A guard on the stand-in, once it has the keys and a first sync.
async fn ready_guard() -> Guard {
    let url = serve_auth();
    let settings = GuardSettings::from_lookup(|name| match name {
        "AUTH_URL" | "AUTH_INTERNAL_URL" => Some(url.clone()),
        "REVOCATION_SYNC_INTERVAL" => Some("100ms".to_owned()),
        _ => None,
    })
    .unwrap();
    let guard = Guard::start(settings).unwrap();
    let started = Instant::now();
    while guard.readiness() != Readiness::Ready {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            guard.readiness()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    guard
}

/// What both adapters' step-up route answers for an accepted caller.
fn stepped_up(user: &resource_guard::Principal) -> Value {
    json!({
        "user_id": user.user_id(),
        "acr": user.acr().as_str(),
        "amr": user.amr(),
        "auth_time": user.auth_time(),
    })
}

/// The actix-web adapter: the guard in the app data.
fn serve_actix(guard: Guard) -> String {
    use resource_guard::actix_web::Authenticated;

    async fn step_up(Authenticated(user): Authenticated) -> Result<HttpResponse, GuardError> {
        user.require_step_up(RECENT_AAL2)?;
        Ok(HttpResponse::Ok().json(stepped_up(&user)))
    }

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(guard.clone())
            .route("/step-up", web::get().to(step_up))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    url
}

/// The axum adapter: the guard as the router's state.
async fn serve_axum(guard: Guard) -> String {
    use axum::Json;
    use resource_guard::axum::Authenticated;

    async fn step_up(Authenticated(user): Authenticated) -> Result<Json<Value>, GuardError> {
        user.require_step_up(RECENT_AAL2)?;
        Ok(Json(stepped_up(&user)))
    }

    let app = axum::Router::new()
        .route("/step-up", axum::routing::get(step_up))
        .with_state(guard);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, app).into_future());
    url
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A token as the auth server signs them, with these second-factor claims
/// (`None` leaves the claim out, as tokens from before second factors).
fn token(amr: &[&str], acr: Option<&str>, auth_time: Option<i64>) -> String {
    let now = now();
    let mut claims = json!({
        "iss": "http://localhost:8080", "aud": "resource-api",
        "sub": Uuid::new_v4(), "sid": Uuid::new_v4(), "jti": Uuid::new_v4(),
        "iat": now, "nbf": now, "exp": now + 60,
        "email": "a@example.com", "email_verified": true, "roles": [],
    });
    if !amr.is_empty() {
        claims["amr"] = json!(amr);
    }
    if let Some(acr) = acr {
        claims["acr"] = json!(acr);
    }
    if let Some(auth_time) = auth_time {
        claims["auth_time"] = json!(auth_time);
    }
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".into());
    header.kid = Some("k".into());
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&PRIVATE_KEY)).unwrap()
}

const DESCRIPTION: &str = "a more recent or stronger authentication is required: reauthenticate";

/// The RFC 9470 challenge, and `acr_values` exactly when the level is
/// what is missing.
fn challenge(acr_missing: bool) -> String {
    let mut value = format!(
        r#"Bearer realm="resource-api", error="insufficient_user_authentication", error_description="{DESCRIPTION}", max_age={MAX_AGE}"#
    );
    if acr_missing {
        value.push_str(r#", acr_values="aal2""#);
    }
    value
}

async fn get(client: &reqwest::Client, url: &str, token: &str) -> reqwest::Response {
    client
        .get(format!("{url}/step-up"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Asserts the `401` of a missing step-up: RFC 9470's challenge and the
/// contract's body.
async fn assert_step_up_needed(response: reqwest::Response, acr_missing: bool, case: &str) {
    assert_eq!(response.status(), 401, "{case}");
    assert_eq!(
        response.headers()["www-authenticate"].to_str().unwrap(),
        challenge(acr_missing),
        "{case}"
    );
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "{case}"
    );
    assert_eq!(response.headers()["cache-control"], "no-store", "{case}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "error": "insufficient_user_authentication", "error_description": DESCRIPTION }),
        "{case}"
    );
}

#[tokio::test]
async fn both_adapters_answer_a_step_up_alike() {
    let guard = ready_guard().await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let adapters = [
        ("actix-web", serve_actix(guard.clone())),
        ("axum", serve_axum(guard).await),
    ];
    let mfa = ["pwd", "otp", "mfa"];
    for (adapter, url) in &adapters {
        let fresh = now() - 10;
        let ok = get(&client, url, &token(&mfa, Some("aal2"), Some(fresh))).await;
        assert_eq!(ok.status(), 200, "{adapter}: aal2, fresh");
        let body: Value = ok.json().await.unwrap();
        assert_eq!(body["acr"], "aal2", "{adapter}");
        assert_eq!(body["amr"], json!(mfa), "{adapter}");
        assert_eq!(body["auth_time"], fresh, "{adapter}");

        let weak = token(&["pwd"], Some("aal1"), Some(fresh));
        let case = format!("{adapter}: aal1, fresh");
        assert_step_up_needed(get(&client, url, &weak).await, true, &case).await;

        let stale = token(&mfa, Some("aal2"), Some(now() - 3_600));
        let case = format!("{adapter}: aal2, an hour old");
        assert_step_up_needed(get(&client, url, &stale).await, false, &case).await;

        let old_style = token(&[], None, None);
        let case = format!("{adapter}: no acr, no auth_time");
        assert_step_up_needed(get(&client, url, &old_style).await, true, &case).await;

        let no_time = token(&mfa, Some("aal2"), None);
        let case = format!("{adapter}: aal2, no auth_time");
        assert_step_up_needed(get(&client, url, &no_time).await, false, &case).await;

        let missing = client.get(format!("{url}/step-up")).send().await.unwrap();
        assert_eq!(missing.status(), 401, "{adapter}: no token");
        assert_eq!(
            missing.headers()["www-authenticate"],
            r#"Bearer realm="resource-api""#,
            "{adapter}: no token, no step-up challenge"
        );
    }
}
