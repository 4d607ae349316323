//! The one place where failures become HTTP answers.
//!
//! Policy (after crates.io's): model code returns typed errors, the service
//! layer [`ServiceError`]; handlers return [`ApiError`]; internal causes are
//! logged here and never sent to the client. Every answer has the contract's body:
//! `{"error": "<code>", "error_description": "<text>"}`.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use shared_claims::challenge::{ErrorBody, bearer_challenge};

use crate::service::ServiceError;

#[derive(Debug)]
pub enum ApiError {
    /// 400 (unparseable) or 422 (parsed, but a field is wrong); the
    /// description names the field.
    InvalidRequest {
        status: StatusCode,
        description: String,
    },
    InvalidCredentials,
    /// A wrong current password on a password change: `403`, not `401`,
    /// which clients read as "refresh and retry".
    WrongCurrentPassword,
    InvalidGrant(&'static str),
    /// The token endpoint refused a grant: `400 invalid_grant`, as RFC 6749
    /// §5.2 answers (where `/auth/refresh` answers `401`).
    GrantRefused(&'static str),
    /// The token endpoint does not do this grant (RFC 6749 §5.2).
    UnsupportedGrantType,
    /// An unusable reset or verification token: `400 invalid_grant`.
    InvalidEmailToken(&'static str),
    EmailNotVerified,
    AlreadyVerified,
    AccountDisabled,
    LastAdmin,
    /// A valid token without the role the endpoint needs (`403`, RFC 6750
    /// §3.1 `insufficient_scope`).
    InsufficientScope,
    /// A Bearer endpoint refused the request. `token_sent` decides whether
    /// `WWW-Authenticate` carries `error="invalid_token"` (RFC 6750 §3.1).
    InvalidToken {
        description: String,
        token_sent: bool,
    },
    ForbiddenOrigin,
    NotFound(&'static str),
    MethodNotAllowed,
    EmailTaken,
    PayloadTooLarge,
    /// The client took longer than `CLIENT_TIMEOUT` to send its body.
    RequestTimeout,
    UnsupportedMediaType,
    RateLimited {
        retry_after_secs: u64,
    },
    /// The database or another dependency is down or saturated.
    Unavailable {
        retry_after_secs: u64,
        cause: String,
    },
    /// A bug. Logged with its cause, answered without it.
    Internal(anyhow::Error),
}

impl ApiError {
    pub fn unprocessable(field: &str, problem: &str) -> Self {
        Self::InvalidRequest {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            description: format!("{field}: {problem}"),
        }
    }

    pub fn bad_request(description: impl Into<String>) -> Self {
        Self::InvalidRequest {
            status: StatusCode::BAD_REQUEST,
            description: description.into(),
        }
    }

    /// `429` with a `Retry-After` of whole seconds, rounded up (a client
    /// that waits as told is not refused again), at least 1.
    pub fn rate_limited(wait: std::time::Duration) -> Self {
        let whole = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Self::RateLimited {
            retry_after_secs: whole.max(1),
        }
    }

    pub fn unavailable(cause: impl fmt::Display) -> Self {
        Self::Unavailable {
            retry_after_secs: 1,
            cause: cause.to_string(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest { .. }
            | Self::UnsupportedMediaType
            | Self::RequestTimeout
            | Self::MethodNotAllowed => "invalid_request",
            Self::InvalidCredentials | Self::WrongCurrentPassword => "invalid_credentials",
            Self::InvalidGrant(_) | Self::GrantRefused(_) | Self::InvalidEmailToken(_) => {
                "invalid_grant"
            }
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::EmailNotVerified => "email_not_verified",
            Self::AlreadyVerified => "already_verified",
            Self::AccountDisabled => "account_disabled",
            Self::LastAdmin => "last_admin",
            Self::InsufficientScope => "insufficient_scope",
            Self::InvalidToken { .. } => "invalid_token",
            Self::ForbiddenOrigin => "forbidden_origin",
            Self::NotFound(_) => "not_found",
            Self::EmailTaken => "email_taken",
            Self::PayloadTooLarge => "payload_too_large",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable { .. } => "unavailable",
            Self::Internal(_) => "server_error",
        }
    }

    fn description(&self) -> String {
        match self {
            Self::InvalidRequest { description, .. } => description.clone(),
            Self::InvalidCredentials => "the email or password is incorrect".to_owned(),
            Self::WrongCurrentPassword => "current_password: the password is incorrect".to_owned(),
            Self::InvalidGrant(why) | Self::GrantRefused(why) | Self::InvalidEmailToken(why) => {
                (*why).to_owned()
            }
            Self::UnsupportedGrantType => {
                "grant_type: only refresh_token is supported here".to_owned()
            }
            Self::EmailNotVerified => {
                "the e-mail address is not verified yet: open the link we sent to it".to_owned()
            }
            Self::AlreadyVerified => "the e-mail address is already verified".to_owned(),
            Self::AccountDisabled => "the account is disabled".to_owned(),
            Self::LastAdmin => {
                "the last enabled administrator cannot be disabled, deleted or lose `admin`"
                    .to_owned()
            }
            Self::InsufficientScope => "this endpoint needs the `admin` role".to_owned(),
            Self::InvalidToken { description, .. } => description.clone(),
            Self::ForbiddenOrigin => "requests from this origin are not allowed".to_owned(),
            Self::NotFound(what) => format!("{what} not found"),
            Self::MethodNotAllowed => "method not allowed on this resource".to_owned(),
            Self::EmailTaken => "email: an account with this email already exists".to_owned(),
            Self::PayloadTooLarge => "the request body is larger than 64 KiB".to_owned(),
            Self::RequestTimeout => "the request body was not received in time".to_owned(),
            Self::UnsupportedMediaType => {
                "the request body must be JSON (Content-Type: application/json)".to_owned()
            }
            Self::RateLimited { .. } => "too many requests; retry later".to_owned(),
            Self::Unavailable { .. } => {
                "the service is temporarily unavailable; retry later".to_owned()
            }
            Self::Internal(_) => "an internal error occurred".to_owned(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // What tracing-actix-web records for a failed request: the code and
        // our own description, never request data.
        write!(f, "{}: {}", self.code(), self.description())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidRequest { status, .. } => *status,
            Self::InvalidCredentials | Self::InvalidGrant(_) | Self::InvalidToken { .. } => {
                StatusCode::UNAUTHORIZED
            }
            Self::ForbiddenOrigin
            | Self::WrongCurrentPassword
            | Self::EmailNotVerified
            | Self::AccountDisabled
            | Self::InsufficientScope => StatusCode::FORBIDDEN,
            Self::InvalidEmailToken(_) | Self::GrantRefused(_) | Self::UnsupportedGrantType => {
                StatusCode::BAD_REQUEST
            }
            Self::AlreadyVerified | Self::LastAdmin => StatusCode::CONFLICT,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::EmailTaken => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Unavailable { cause, .. } => tracing::warn!(%cause, "answering 503"),
            Self::Internal(cause) => tracing::error!(error = ?cause, "internal error"),
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        match self {
            Self::RateLimited { retry_after_secs }
            | Self::Unavailable {
                retry_after_secs, ..
            } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            Self::InvalidToken {
                description,
                token_sent,
            } => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    www_authenticate(description, *token_sent),
                ));
            }
            Self::InsufficientScope => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    bearer_challenge(REALM, Some(("insufficient_scope", &self.description()))),
                ));
            }
            _ => {}
        }
        let description = self.description();
        response.json(ErrorBody {
            error: self.code(),
            error_description: &description,
        })
    }
}

/// The auth server's own Bearer endpoints answer as the resource APIs do.
const REALM: &str = "auth-server";

fn www_authenticate(description: &str, token_sent: bool) -> String {
    bearer_challenge(REALM, token_sent.then_some(("invalid_token", description)))
}

impl ApiError {
    /// A service failure on the token endpoint (RFC 6749 §5.2): a refused
    /// grant, an unverified user's (`REQUIRE_VERIFIED_EMAIL`) included, is
    /// `400 invalid_grant`; the rest (`429`, `503`) as anywhere.
    pub fn from_token_grant(error: ServiceError) -> Self {
        match error {
            ServiceError::InvalidGrant(why) => Self::GrantRefused(why),
            ServiceError::EmailNotVerified => Self::GrantRefused(
                crate::tokens::rotation::Rejection::EmailNotVerified.description(),
            ),
            other => other.into(),
        }
    }
}

/// What the service layer's failures are over HTTP.
impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::InvalidCredentials => Self::InvalidCredentials,
            ServiceError::InvalidGrant(why) => Self::InvalidGrant(why),
            ServiceError::EmailTaken => Self::EmailTaken,
            ServiceError::WrongPassword => Self::WrongCurrentPassword,
            ServiceError::InvalidEmailToken(why) => Self::InvalidEmailToken(why),
            ServiceError::EmailNotVerified => Self::EmailNotVerified,
            ServiceError::AlreadyVerified => Self::AlreadyVerified,
            ServiceError::AccountDisabled => Self::AccountDisabled,
            ServiceError::LastAdmin => Self::LastAdmin,
            ServiceError::Invalid(field, problem) => Self::unprocessable(field, problem),
            ServiceError::NotFound(what) => Self::NotFound(what),
            ServiceError::Throttled(wait) | ServiceError::RateLimited(wait) => {
                Self::rate_limited(wait)
            }
            ServiceError::Unavailable(cause) => Self::unavailable(cause),
            ServiceError::Contended => Self::unavailable("lock wait timed out"),
            ServiceError::Internal(cause) => Self::Internal(cause),
        }
    }
}
