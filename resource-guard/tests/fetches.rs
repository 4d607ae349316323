//! Feature: resource-guard's fetches from the auth server (capped, never redirected).
//!
//! What the guard fetches from the auth server (the JWKS, the revocation
//! feed) is read with a cap and never redirected: against a small local
//! server that answers with a huge body, streamed or declared, or with a
//! redirect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use resource_guard::feed_client::{FeedClient, FeedError};
use resource_guard::jwks::{JwksCache, JwksError, JwksSettings};
use secrecy::SecretString;

/// Far more than any cap (JWKS 256 KiB, feed 4 MiB).
const HUGE: usize = 256 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;
/// What a reader that stops at its cap leaves unproduced: the cap, and
/// whatever the sockets buffer, are far below this.
const READ_NOT_ALL: usize = 32 * 1024 * 1024;

#[derive(Clone, Copy)]
enum Answer {
    /// Chunked, no length: only reading tells.
    HugeStreamed,
    /// A `Content-Length` past the cap.
    HugeDeclared,
    /// `302` to `/elsewhere`, which would answer well.
    Redirect,
}

#[derive(Default)]
struct Counters {
    /// Bytes of the huge body the server produced (the client pulled).
    produced: AtomicUsize,
    /// Requests that followed the redirect.
    followed: AtomicUsize,
}

struct Server {
    url: String,
    counters: Arc<Counters>,
}

fn serve(answer: Answer, good_body: &'static str) -> Server {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let counters = Arc::new(Counters::default());
    let shared = Arc::clone(&counters);
    let server = HttpServer::new(move || {
        let counters = Arc::clone(&shared);
        App::new().default_service(web::to(move |req: HttpRequest| {
            let counters = Arc::clone(&counters);
            async move { respond(&req, answer, good_body, counters) }
        }))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    Server { url, counters }
}

fn respond(
    req: &HttpRequest,
    answer: Answer,
    good_body: &'static str,
    counters: Arc<Counters>,
) -> HttpResponse {
    if req.path() == "/elsewhere" {
        counters.followed.fetch_add(1, Ordering::SeqCst);
        return HttpResponse::Ok()
            .content_type("application/json")
            .body(good_body);
    }
    let huge = futures_util::stream::unfold(0usize, move |sent| {
        let counters = Arc::clone(&counters);
        async move {
            (sent < HUGE).then(|| {
                counters.produced.fetch_add(CHUNK, Ordering::SeqCst);
                (
                    Ok::<_, std::convert::Infallible>(Bytes::from(vec![b' '; CHUNK])),
                    sent + CHUNK,
                )
            })
        }
    });
    match answer {
        Answer::HugeStreamed => HttpResponse::Ok()
            .content_type("application/json")
            .streaming(huge),
        Answer::HugeDeclared => HttpResponse::Ok()
            .content_type("application/json")
            .no_chunking(HUGE as u64)
            .streaming(huge),
        Answer::Redirect => HttpResponse::Found()
            .insert_header(("Location", "/elsewhere"))
            .finish(),
    }
}

const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","use":"sig","kid":"k","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
const FEED: &str = r#"{"revocations":[],"cursor":"c.0.0","more":false,"held":0}"#;

fn jwks_from(server: &Server) -> Arc<JwksCache> {
    JwksCache::new(JwksSettings {
        timeout: Duration::from_secs(10),
        ..JwksSettings::for_auth_url(&server.url)
    })
    .unwrap()
}

fn feed_from(server: &Server) -> FeedClient {
    FeedClient::new(
        &server.url,
        SecretString::from("internal-token"),
        Duration::from_secs(10),
    )
    .unwrap()
}

/// Gives the server a moment to notice the closed connection, then checks
/// it was not read to the end.
async fn assert_stopped_early(server: &Server) {
    tokio::time::sleep(Duration::from_millis(100)).await;
    let produced = server.counters.produced.load(Ordering::SeqCst);
    assert!(produced < READ_NOT_ALL, "{produced} bytes produced");
}

#[tokio::test]
async fn the_jwks_fetch_refuses_an_oversized_answer_without_reading_it_all() {
    for answer in [Answer::HugeStreamed, Answer::HugeDeclared] {
        let server = serve(answer, JWKS);
        let fetched = jwks_from(&server).fetch().await;
        assert!(matches!(fetched, Err(JwksError::TooLarge)), "{fetched:?}");
        assert_stopped_early(&server).await;
    }
}

#[tokio::test]
async fn the_feed_read_refuses_an_oversized_answer_without_reading_it_all() {
    for answer in [Answer::HugeStreamed, Answer::HugeDeclared] {
        let server = serve(answer, FEED);
        let read = feed_from(&server).read(None, Duration::ZERO).await;
        assert!(matches!(read, Err(FeedError::TooLarge)), "{read:?}");
        assert_stopped_early(&server).await;
    }
}

#[tokio::test]
async fn neither_fetch_follows_a_redirect() {
    let server = serve(Answer::Redirect, JWKS);
    let fetched = jwks_from(&server).fetch().await;
    assert!(
        matches!(fetched, Err(JwksError::Status(status)) if status.as_u16() == 302),
        "{fetched:?}"
    );
    let server_feed = serve(Answer::Redirect, FEED);
    let read = feed_from(&server_feed).read(None, Duration::ZERO).await;
    assert!(
        matches!(&read, Err(FeedError::Status(status)) if status.as_u16() == 302),
        "{read:?}"
    );
    for server in [server, server_feed] {
        assert_eq!(server.counters.followed.load(Ordering::SeqCst), 0);
    }
}

/// The servers above answer well at `/elsewhere`: what the clients would
/// have read had they followed.
#[tokio::test]
async fn the_stand_in_answers_parse_when_read_directly() {
    let server = serve(Answer::Redirect, JWKS);
    let cache = JwksCache::new(JwksSettings {
        url: format!("{}/elsewhere", server.url),
        ..JwksSettings::for_auth_url(&server.url)
    })
    .unwrap();
    assert_eq!(cache.fetch().await.unwrap(), 1);
}
