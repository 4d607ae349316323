//! Logs: the global subscriber, one root span per request, and the caller's
//! identity on it. Nothing here records a body, a cookie or a header value
//! that could carry a credential.

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};
use tracing_subscriber::EnvFilter;

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
/// who is calling.
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
