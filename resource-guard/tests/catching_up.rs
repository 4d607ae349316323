//! Contract § Resource API (revocation freshness): the guard's feed reader.
//!
//! A revocation sync counts only once the reader has caught up: a feed that
//! answers page after page (`"more": true`) is being read, not read, and
//! must not keep the guard fresh. Against a small local stand-in for the
//! auth server's JWKS and feed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use resource_guard::{Guard, GuardSettings, Readiness, Unready};

const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","use":"sig","kid":"k","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;

/// The JWKS, and a feed whose every answer says `more` as given.
fn serve(more: bool) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let feed = format!(r#"{{"revocations":[],"cursor":"c.0.0","more":{more},"held":0}}"#);
    let server = HttpServer::new(move || {
        let feed = feed.clone();
        App::new().default_service(web::to(move |req: HttpRequest| {
            let body = if req.path() == "/.well-known/jwks.json" {
                JWKS.to_owned()
            } else {
                feed.clone()
            };
            async move {
                HttpResponse::Ok()
                    .content_type("application/json")
                    .body(body)
            }
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

fn guard_of(url: &str) -> Guard {
    let settings = GuardSettings::from_lookup(|name| match name {
        "AUTH_URL" | "AUTH_INTERNAL_URL" => Some(url.to_owned()),
        "REVOCATION_SYNC_INTERVAL" => Some("100ms".to_owned()),
        "REVOCATION_MAX_STALENESS" => Some("1s".to_owned()),
        _ => None,
    })
    .unwrap();
    Guard::start(settings).unwrap()
}

#[tokio::test]
async fn a_feed_that_is_caught_up_makes_the_guard_ready() {
    let guard = guard_of(&serve(false));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !matches!(guard.readiness(), Readiness::Ready) {
        assert!(Instant::now() < deadline, "{:?}", guard.readiness());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(guard.stats().syncs_ok >= 1);
}

#[tokio::test]
async fn pages_of_more_never_count_as_a_sync() {
    let guard = guard_of(&serve(true));
    // Past the staleness bound, with pages read all along.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let stats = guard.stats();
    assert!(stats.syncs_partial > 10, "the pages were read: {stats:?}");
    assert_eq!(stats.syncs_ok, 0, "{stats:?}");
    assert_eq!(stats.sync_age, None, "{stats:?}");
    assert!(
        matches!(
            guard.readiness(),
            Readiness::NotReady {
                reason: Unready::RevocationsStale,
                ..
            }
        ),
        "{:?}",
        guard.readiness()
    );
    assert!(guard.authenticate(Some("a.b.c")).is_err(), "fails closed");
}
