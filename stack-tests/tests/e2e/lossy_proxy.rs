//! Test support: a proxy that loses a refresh answer, for the browser tests.
//!
//! A reverse proxy in front of the auth server that can lose an answer: once
//! armed, it forwards the next `POST /auth/refresh` (so the server rotates
//! the token) and holds the answer back for longer than the web app waits,
//! as a dropped mobile connection or a proxy timeout would. Everything else
//! passes through untouched. The browser sees it on another port of the
//! same host, so cookies (scoped by host, not port) are shared with the
//! auth server itself.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

/// Longer than the web app's refresh timeout (`REFRESH_TIMEOUT_MS`, 5 s).
const HELD_BACK: Duration = Duration::from_secs(7);

pub struct LossyProxy {
    pub url: String,
    armed: Arc<AtomicBool>,
}

impl LossyProxy {
    pub fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let armed = Arc::new(AtomicBool::new(false));
        let state = web::Data::new(Upstream {
            url: upstream.to_owned(),
            // A fresh connection per request: the test idles longer than the
            // auth server's keep-alive, and a pooled connection it is closing
            // as the next request goes out fails that request (a 502 the
            // browser reports as unreachable), which the test would blame on
            // the app.
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            armed: Arc::clone(&armed),
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .default_service(web::to(forward))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Self { url, armed }
    }

    /// The next refresh's answer is lost.
    pub fn lose_next_refresh_answer(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }
}

struct Upstream {
    url: String,
    client: reqwest::Client,
    armed: Arc<AtomicBool>,
}

/// Headers that describe one hop's connection, not the message.
fn hop_by_hop(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "host" | "connection" | "keep-alive" | "transfer-encoding" | "content-length"
    )
}

async fn forward(req: HttpRequest, body: web::Bytes, up: web::Data<Upstream>) -> HttpResponse {
    let target = format!(
        "{}{}",
        up.url,
        req.uri().path_and_query().map_or("/", |p| p.as_str())
    );
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).unwrap();
    let mut request = up.client.request(method, target).body(body.to_vec());
    for (name, value) in req.headers() {
        if !hop_by_hop(name.as_str()) {
            request = request.header(name.as_str(), value.as_bytes());
        }
    }
    let lose = req.method() == actix_web::http::Method::POST
        && req.path() == "/auth/refresh"
        && up.armed.swap(false, Ordering::SeqCst);
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(e) => {
            eprintln!("lossy proxy: {} {}: {e}", req.method(), req.path());
            return HttpResponse::BadGateway().finish();
        }
    };
    let mut response = HttpResponse::build(
        actix_web::http::StatusCode::from_u16(answer.status().as_u16()).unwrap(),
    );
    for (name, value) in answer.headers() {
        if !hop_by_hop(name.as_str()) {
            response.append_header((name.as_str(), value.as_bytes()));
        }
    }
    let body = answer.bytes().await.unwrap_or_default();
    if lose {
        // The rotation has happened; its answer arrives after the client
        // gave up, on a connection it has closed.
        tokio::time::sleep(HELD_BACK).await;
    }
    response.body(body.to_vec())
}
