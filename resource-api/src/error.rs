//! The one place where the resource API's failures become HTTP answers:
//! the guard's refusals as `resource-guard` answers them (a `503` of
//! `/readyz` included), and the API's own `404` and `405`. What a client
//! reads is our own words; internal causes go to the log only.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use resource_guard::GuardError;
use shared_claims::challenge::ErrorBody;

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
    fn code(&self) -> &'static str {
        match self {
            Self::Guard(e) => e.code(),
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "invalid_request",
        }
    }

    fn description(&self) -> String {
        match self {
            Self::Guard(e) => e.description(),
            Self::NotFound => "resource not found".to_owned(),
            Self::MethodNotAllowed => "method not allowed on this resource".to_owned(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.description())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Guard(e) => e.status_code(),
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Guard(e) = self {
            return e.error_response();
        }
        HttpResponse::build(self.status_code())
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .json(ErrorBody {
                error: self.code(),
                error_description: &self.description(),
            })
    }
}
