//! Logs: the global subscriber, one root span per request, and the caller's
//! identity on it. Nothing here records a body, a cookie or a header value
//! that could carry a credential.

use std::io::IsTerminal;
use std::net::IpAddr;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Version, header};
use actix_web::{Error, HttpMessage, HttpRequest};
use tracing::Span;
use tracing::field::Empty;
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber: text for people, JSON in production.
/// Safe to call more than once (tests): later calls do nothing.
pub fn init_tracing(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        // Colours for a terminal only: in a file or a collector they are
        // escape codes to strip.
        .with_ansi(std::io::stdout().is_terminal());
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// How a service tells the request log who the client is (registered with
/// `App::app_data`): the auth server's answer follows `TRUSTED_PROXIES`.
/// Without one the log shows the peer's address, never a forwarded header,
/// which anyone can send.
#[derive(Clone)]
pub struct ClientAddress(Arc<Resolve>);

type Resolve = dyn Fn(&HttpRequest) -> Option<IpAddr> + Send + Sync;

impl ClientAddress {
    pub fn new(resolve: impl Fn(&HttpRequest) -> Option<IpAddr> + Send + Sync + 'static) -> Self {
        Self(Arc::new(resolve))
    }

    fn of(request: &ServiceRequest) -> Option<IpAddr> {
        match request.app_data::<Self>() {
            Some(resolve) => (resolve.0)(request.request()),
            None => request.peer_addr().map(|peer| peer.ip()),
        }
    }
}

/// tracing-actix-web's root span (request id, route, status), with the
/// client's address as [`ClientAddress`] says (its `root_span!` takes
/// `realip_remote_addr`, which believes `X-Forwarded-For` from anyone, and a
/// field recorded again is appended rather than replaced), and room for who
/// is calling.
pub struct RootSpan;

impl RootSpanBuilder for RootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let method = request.method().as_str();
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "default".to_owned());
        let user_agent = request
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let client_ip = ClientAddress::of(request).map_or_else(String::new, |ip| ip.to_string());
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map_or_else(String::new, ToString::to_string);
        let connection = request.connection_info();
        tracing::info_span!(
            "HTTP request",
            http.method = %method,
            http.route = %route,
            http.flavor = %flavor(request.version()),
            http.scheme = %connection.scheme(),
            http.host = %connection.host(),
            http.client_ip = %client_ip,
            http.user_agent = %user_agent,
            http.target = %request.uri().path_and_query().map_or("", |p| p.as_str()),
            http.status_code = Empty,
            otel.name = %format!("{method} {route}"),
            otel.kind = "server",
            otel.status_code = Empty,
            trace_id = Empty,
            request_id = %request_id,
            exception.message = Empty,
            exception.details = Empty,
            user_id = Empty,
            session_id = Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

fn flavor(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_11 => "1.1",
        Version::HTTP_2 => "2.0",
        Version::HTTP_3 => "3.0",
        _ => "other",
    }
}

/// Records the user and session on the request's root span.
pub fn record_identity(user_id: impl std::fmt::Display, session_id: impl std::fmt::Display) {
    let span = Span::current();
    span.record("user_id", tracing::field::display(user_id));
    span.record("session_id", tracing::field::display(session_id));
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Mutex;

    use actix_web::test::{TestRequest, call_service, init_service};
    use actix_web::{App, HttpResponse, web};
    use tracing_actix_web::TracingLogger;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    async fn handled() -> HttpResponse {
        tracing::info!("handled");
        HttpResponse::Ok().finish()
    }

    /// The log line of one request with a forged `X-Forwarded-For`.
    async fn logged(client_address: Option<ClientAddress>) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let mut app = App::new()
            .wrap(TracingLogger::<RootSpan>::new())
            .route("/", web::get().to(handled));
        if let Some(resolve) = client_address {
            app = app.app_data(resolve);
        }
        let app = init_service(app).await;
        let request = TestRequest::get()
            .uri("/")
            .peer_addr("10.1.2.3:5000".parse().unwrap())
            .insert_header(("x-forwarded-for", "6.6.6.6"))
            .to_request();
        call_service(&app, request).await;
        let bytes = captured.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[actix_web::test]
    async fn a_forged_forwarded_for_is_not_logged_as_the_client() {
        let line = logged(None).await;
        assert!(line.contains("http.client_ip=10.1.2.3"), "{line}");
        assert!(!line.contains("6.6.6.6"), "{line}");
        assert_eq!(line.matches("http.client_ip=").count(), 1, "{line}");
    }

    #[actix_web::test]
    async fn the_services_own_answer_is_logged_when_it_has_one() {
        let behind_proxy = ClientAddress::new(|_| Some("198.51.100.7".parse().unwrap()));
        let line = logged(Some(behind_proxy)).await;
        assert!(line.contains("http.client_ip=198.51.100.7"), "{line}");
        assert_eq!(line.matches("http.client_ip=").count(), 1, "{line}");
    }
}
