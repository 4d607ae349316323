//! Which origins may call a service from a browser: one matcher for CORS and
//! the auth server's Origin guard, so the two never disagree about an origin,
//! and refused preflights answered with the contract's error body.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse};
use shared_claims::error::{ErrorBody, ErrorCode};

/// The origins of `ALLOWED_ORIGINS`, lower case as configuration parsing
/// leaves them.
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
            ErrorCode::InvalidRequest,
            "the preflight asks for a method or header that is not allowed",
        )
    } else {
        (
            StatusCode::FORBIDDEN,
            ErrorCode::ForbiddenOrigin,
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
