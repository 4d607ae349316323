//! The one place where the resource API's failures become HTTP answers.
//! What a client reads is our own words; internal causes (errors from the
//! auth server, how stale the state is) go to the log only.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use shared_claims::challenge::{ErrorBody, bearer_challenge};

const REALM: &str = "resource-api";

/// Why the API cannot answer, in words that give nothing away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unready {
    KeysNotLoaded,
    RevocationsStale,
    Internal,
}

impl Unready {
    pub fn words(self) -> &'static str {
        match self {
            Self::KeysNotLoaded => "the auth server's signing keys are not loaded yet",
            Self::RevocationsStale => "revocation state is stale",
            Self::Internal => "the service is temporarily unavailable",
        }
    }
}

#[derive(Debug)]
pub enum ApiError {
    /// `token_sent` decides whether the challenge carries `error="invalid_token"`.
    InvalidToken {
        description: String,
        token_sent: bool,
    },
    InsufficientScope(&'static str),
    /// Keys not loaded, or revocation state too stale to trust: `reason` is
    /// what the client is told, `detail` is logged.
    Unavailable {
        reason: Unready,
        detail: String,
    },
    NotFound,
    MethodNotAllowed,
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidToken { .. } => "invalid_token",
            Self::InsufficientScope(_) => "insufficient_scope",
            Self::Unavailable { .. } => "unavailable",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "invalid_request",
        }
    }

    fn description(&self) -> String {
        match self {
            Self::InvalidToken { description, .. } => description.clone(),
            Self::InsufficientScope(role) => format!("this resource requires the `{role}` role"),
            Self::Unavailable { reason, .. } => reason.words().to_owned(),
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
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Unavailable { detail, .. } = self {
            tracing::warn!(%detail, "answering 503");
        }
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
            Self::Unavailable { .. } => {
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
