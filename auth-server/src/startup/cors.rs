//! CORS for the browser app. The refresh cookie travels with its requests, so
//! credentials are allowed, and therefore the allowed origin is echoed back,
//! never `*`. The Origin guard in `http::origin` still refuses state-changing
//! requests from other origins: CORS only decides what a browser may read.

use actix_cors::Cors;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError};

use crate::error::ApiError;
use crate::http::origin::AllowedOrigins;

pub fn cors(origins: AllowedOrigins) -> Cors {
    Cors::default()
        // The same case-insensitive match as the Origin guard, so the two
        // never disagree about an origin.
        .allowed_origin_fn(move |origin, _| origin.to_str().is_ok_and(|o| origins.allows(o)))
        .allowed_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allowed_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
        .supports_credentials()
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
        .and_then(|origin| origin.to_str().ok())
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
    let error = if origin_allowed {
        ApiError::bad_request("the preflight asks for a method or header that is not allowed")
    } else {
        ApiError::ForbiddenOrigin
    };
    Ok(response
        .into_response(error.error_response())
        .map_into_right_body())
}
