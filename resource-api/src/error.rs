//! The one place where the resource API's failures become HTTP answers.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use shared_claims::challenge::{ErrorBody, bearer_challenge};

const REALM: &str = "resource-api";

#[derive(Debug)]
pub enum ApiError {
    /// `token_sent` decides whether the challenge carries `error="invalid_token"`.
    InvalidToken {
        description: String,
        token_sent: bool,
    },
    InsufficientScope(&'static str),
    /// Keys not loaded, or revocation state too stale to trust.
    Unavailable(String),
    NotFound,
    MethodNotAllowed,
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidToken { .. } => "invalid_token",
            Self::InsufficientScope(_) => "insufficient_scope",
            Self::Unavailable(_) => "unavailable",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "invalid_request",
        }
    }

    fn description(&self) -> String {
        match self {
            Self::InvalidToken { description, .. } => description.clone(),
            Self::InsufficientScope(role) => format!("this resource requires the `{role}` role"),
            Self::Unavailable(why) => why.clone(),
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
            Self::InvalidToken { .. } => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let description = self.description();
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        match self {
            Self::InvalidToken { token_sent, .. } => {
                let error = token_sent.then_some(("invalid_token", description.as_str()));
                response.insert_header((header::WWW_AUTHENTICATE, bearer_challenge(REALM, error)));
            }
            Self::InsufficientScope(_) => {
                let error = Some(("insufficient_scope", description.as_str()));
                response.insert_header((header::WWW_AUTHENTICATE, bearer_challenge(REALM, error)));
            }
            Self::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            Self::NotFound | Self::MethodNotAllowed => {}
        }
        response.json(ErrorBody {
            error: self.code(),
            error_description: &description,
        })
    }
}
