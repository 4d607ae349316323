//! CSRF defence for the cookie endpoints: a state-changing request whose
//! `Origin` is present and not allowed is refused before any handler runs.
//! Requests without `Origin` (native apps, curl) pass.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError, web};

use service_kit::cors::AllowedOrigins;

use crate::error::ApiError;

pub async fn require_allowed_origin(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, Error> {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if let (false, Some(origin)) = (safe, req.headers().get(header::ORIGIN)) {
        let allowed = req.app_data::<web::Data<AllowedOrigins>>();
        let permitted = match (origin.to_str(), allowed) {
            (Ok(origin), Some(allowed)) => allowed.allows(origin),
            _ => false,
        };
        if !permitted {
            // A response, not an `Err`: errors skip the outer middleware
            // (the security headers among them).
            let refused = ApiError::ForbiddenOrigin.error_response();
            return Ok(req.into_response(refused).map_into_right_body());
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// `PUT` is allowed across origins only under `/admin/` (the roles of a
/// user), so a preflight asking for it anywhere else is refused as the CORS
/// layer refuses one (a bare `400` with no grant, which the outer layer
/// turns into the contract's body). Sits just outside the CORS layer.
pub async fn put_only_under_admin(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, Error> {
    let asks_put = req.method() == Method::OPTIONS
        && req
            .headers()
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .is_some_and(|m| m.as_bytes() == b"PUT");
    if asks_put && !req.path().starts_with("/admin/") {
        let refused = actix_web::HttpResponse::BadRequest().finish();
        return Ok(req.into_response(refused).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}
