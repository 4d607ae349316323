//! The actix-web plumbing every service shares (feature `actix`), so the
//! services cannot drift in what they log, measure, send, or allow across
//! origins.

use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::{DefaultHeaders, Next};
use actix_web::{Error, HttpResponse, web};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};
use tracing_subscriber::EnvFilter;

use crate::challenge::ErrorBody;
use crate::headers::{HSTS, SECURITY_HEADERS};

/// Installs the global subscriber: text for people, JSON in production.
/// Safe to call more than once (tests): later calls do nothing.
pub fn init_tracing(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// tracing-actix-web's root span (request id, route, status), with room for
/// who is calling. Nothing here records a body, a cookie or a header value
/// that could carry a credential.
pub struct RootSpan;

impl RootSpanBuilder for RootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        tracing_actix_web::root_span!(
            request,
            user_id = tracing::field::Empty,
            session_id = tracing::field::Empty
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// Records the user and session on the request's root span.
pub fn record_identity(user_id: impl std::fmt::Display, session_id: impl std::fmt::Display) {
    let span = Span::current();
    span.record("user_id", tracing::field::display(user_id));
    span.record("session_id", tracing::field::display(session_id));
}

/// The security headers of every response (see [`crate::headers`]).
pub fn security_headers(production: bool) -> DefaultHeaders {
    let headers = SECURITY_HEADERS
        .iter()
        .fold(DefaultHeaders::new(), |h, header| h.add(*header));
    if production {
        headers.add(HSTS)
    } else {
        headers
    }
}

/// Requests and latency by route pattern, method and status. Patterns
/// (`/auth/sessions/{id}`), never raw paths, so a scanner cannot blow up the
/// label space.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    latency: HistogramVec,
}

impl HttpMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route and method",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0, 30.0,
            ]),
            &["route", "method"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        Ok(Self { requests, latency })
    }
}

/// Middleware counting and timing every request; reads the app's
/// `web::Data<HttpMetrics>`.
pub async fn track_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, Error> {
    let metrics = req.app_data::<web::Data<HttpMetrics>>().cloned();
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.call(req).await?;
    if let Some(metrics) = metrics {
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        let status = response.status().as_u16().to_string();
        metrics
            .requests
            .with_label_values(&[&route, &method, &status])
            .inc();
        metrics
            .latency
            .with_label_values(&[&route, &method])
            .observe(started.elapsed().as_secs_f64());
    }
    Ok(response)
}

/// A registry in Prometheus's text format.
pub fn render(registry: &Registry) -> Result<String, prometheus::Error> {
    use prometheus::Encoder;
    let mut buffer = Vec::new();
    prometheus::TextEncoder::new().encode(&registry.gather(), &mut buffer)?;
    Ok(String::from_utf8_lossy(&buffer).into_owned())
}

/// The origins of `ALLOWED_ORIGINS`, lower case as configuration parsing
/// leaves them. One matcher for CORS and the Origin guard, so the two never
/// disagree about an origin.
#[derive(Debug, Clone)]
pub struct AllowedOrigins(pub std::sync::Arc<Vec<String>>);

impl AllowedOrigins {
    pub fn allows(&self, origin: &str) -> bool {
        self.0
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(origin))
    }
}

/// CORS for the browser app: preflights answered for the allowed origins
/// only, the origin echoed back (never `*`, which credentials forbid).
pub fn cors(
    origins: AllowedOrigins,
    credentials: bool,
    methods: &[Method],
    headers: &[HeaderName],
) -> actix_cors::Cors {
    let cors = actix_cors::Cors::default()
        .allowed_origin_fn(move |origin, _| origin.to_str().is_ok_and(|o| origins.allows(o)))
        .allowed_methods(methods.to_vec())
        .allowed_headers(headers.to_vec())
        .max_age(600);
    if credentials {
        cors.supports_credentials()
    } else {
        cors
    }
}

/// actix-cors refuses a preflight with a plain-text `400`; every answer has
/// the contract's error body, so give it one: `403 forbidden_origin` for an
/// origin that is not allowed, else `400 invalid_request`.
pub async fn refused_preflight_as_error(
    origins: AllowedOrigins,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, Error> {
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let origin_allowed = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .is_some_and(|o| origins.allows(o));
    let response = next.call(req).await?;
    let refused = preflight
        && response.status() == StatusCode::BAD_REQUEST
        && !response
            .headers()
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN);
    if !refused {
        return Ok(response.map_into_left_body());
    }
    let (status, error, error_description) = if origin_allowed {
        (
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the preflight asks for a method or header that is not allowed",
        )
    } else {
        (
            StatusCode::FORBIDDEN,
            "forbidden_origin",
            "requests from this origin are not allowed",
        )
    };
    let body = HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ErrorBody {
            error,
            error_description,
        });
    Ok(response.into_response(body).map_into_right_body())
}
