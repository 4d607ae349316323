//! CORS for the browser app. Access tokens travel in `Authorization`, never
//! in cookies, so credentials are not allowed: the browser sends nothing
//! ambient here that another origin could ride on.

use std::sync::Arc;

use actix_cors::Cors;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse};
use shared_claims::challenge::ErrorBody;

/// The allowed origins, lower case (as configuration parsing leaves them).
#[derive(Clone)]
pub struct AllowedOrigins(pub Arc<Vec<String>>);

impl AllowedOrigins {
    fn allows(&self, origin: &HeaderValue) -> bool {
        origin.to_str().is_ok_and(|origin| {
            self.0
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(origin))
        })
    }
}

pub fn cors(origins: AllowedOrigins) -> Cors {
    Cors::default()
        .allowed_origin_fn(move |origin, _| origins.allows(origin))
        .allowed_methods([Method::GET, Method::OPTIONS])
        .allowed_header(header::AUTHORIZATION)
        .max_age(600)
}

/// actix-cors refuses a preflight with a plain-text `400`; every answer of
/// this service has the contract's error body, so give it one: `403
/// forbidden_origin` for an origin that is not allowed, else `400`.
pub async fn refused_preflight_as_api_error(
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
        .is_some_and(|origin| origins.allows(origin));
    let response = next.call(req).await?;
    let refused = preflight
        && response.status() == StatusCode::BAD_REQUEST
        && !response
            .headers()
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN);
    if !refused {
        return Ok(response.map_into_left_body());
    }
    let (status, error, description) = if origin_allowed {
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
    let body = HttpResponse::build(status).json(ErrorBody {
        error,
        error_description: description,
    });
    Ok(response.into_response(body).map_into_right_body())
}
