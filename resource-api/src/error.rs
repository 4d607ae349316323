//! The one place where the resource API's failures become HTTP answers:
//! the guard's refusals as `resource-guard` answers them (a `503` of
//! `/readyz` included), and the API's own `404` and `405`. What a client
//! reads is our own words; internal causes go to the log only.

use std::borrow::Cow;
use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use resource_guard::GuardError;
use shared_claims::error::{ErrorBody, ErrorCode};

#[derive(Debug)]
pub enum ApiError {
    Guard(GuardError),
    NotFound,
    MethodNotAllowed,
}

impl From<GuardError> for ApiError {
    fn from(e: GuardError) -> Self {
        Self::Guard(e)
    }
}

impl ApiError {
    /// The one table of what each failure is on the wire: its status, its
    /// code and what the client is told. The guard's refusals are answered
    /// by the guard, headers included.
    fn wire(&self) -> (StatusCode, ErrorCode, Cow<'static, str>) {
        match self {
            Self::Guard(e) => (e.status_code(), e.code(), e.description().into()),
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
                "resource not found".into(),
            ),
            Self::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorCode::InvalidRequest,
                "method not allowed on this resource".into(),
            ),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (_, code, description) = self.wire();
        write!(f, "{code}: {description}")
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.wire().0
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Guard(e) = self {
            return e.error_response();
        }
        let (status, code, description) = self.wire();
        HttpResponse::build(status)
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .json(ErrorBody {
                error: code,
                error_description: &description,
            })
    }
}
