//! The one place where failures become HTTP answers.
//!
//! Policy (after crates.io's): model code returns typed errors, the service
//! layer [`ServiceError`]; handlers return [`ApiError`]; internal causes are
//! logged here and never sent to the client. Every answer has the contract's body:
//! `{"error": "<code>", "error_description": "<text>"}`.

use std::borrow::Cow;
use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use shared_claims::challenge::bearer_challenge;
use shared_claims::error::{ErrorBody, ErrorCode};

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
    /// A correct password; the login goes on with a second factor.
    MfaRequired {
        /// Redacted in `Debug`.
        mfa_token: crate::tokens::opaque::OpaqueToken,
        methods: Vec<&'static str>,
    },
    /// A wrong second factor, or a password asked again: `403`.
    WrongFactor,
    AlreadyEnrolled,
    NoSecondFactor,
    /// RFC 9470: reauthenticate, then retry.
    InsufficientUserAuthentication(shared_claims::assurance::Insufficient),
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

    /// The one table of what each failure is on the wire: its status, its
    /// code and what the client is told.
    fn wire(&self) -> (StatusCode, ErrorCode, Cow<'_, str>) {
        use ErrorCode as Code;
        use StatusCode as Status;
        match self {
            Self::InvalidRequest {
                status,
                description,
            } => (*status, Code::InvalidRequest, description.into()),
            Self::InvalidCredentials => (
                Status::UNAUTHORIZED,
                Code::InvalidCredentials,
                "the email or password is incorrect".into(),
            ),
            Self::WrongCurrentPassword => (
                Status::FORBIDDEN,
                Code::InvalidCredentials,
                "current_password: the password is incorrect".into(),
            ),
            Self::InvalidGrant(why) => (Status::UNAUTHORIZED, Code::InvalidGrant, (*why).into()),
            Self::GrantRefused(why) | Self::InvalidEmailToken(why) => {
                (Status::BAD_REQUEST, Code::InvalidGrant, (*why).into())
            }
            Self::UnsupportedGrantType => (
                Status::BAD_REQUEST,
                Code::UnsupportedGrantType,
                "grant_type: only refresh_token is supported here".into(),
            ),
            Self::MfaRequired { .. } => (
                Status::FORBIDDEN,
                Code::MfaRequired,
                "a second factor is required: POST /auth/login/mfa with the mfa_token".into(),
            ),
            Self::WrongFactor => (
                Status::FORBIDDEN,
                Code::InvalidCredentials,
                "the password or code is incorrect".into(),
            ),
            Self::AlreadyEnrolled => (
                Status::CONFLICT,
                Code::AlreadyEnrolled,
                "this second factor is already enabled: remove it first".into(),
            ),
            Self::NoSecondFactor => (
                Status::CONFLICT,
                Code::InvalidRequest,
                "no second factor is enabled: enable one first".into(),
            ),
            Self::InsufficientUserAuthentication(_) => (
                Status::UNAUTHORIZED,
                Code::InsufficientUserAuthentication,
                shared_claims::assurance::Insufficient::DESCRIPTION.into(),
            ),
            Self::EmailNotVerified => (
                Status::FORBIDDEN,
                Code::EmailNotVerified,
                "the e-mail address is not verified yet: open the link we sent to it".into(),
            ),
            Self::AlreadyVerified => (
                Status::CONFLICT,
                Code::AlreadyVerified,
                "the e-mail address is already verified".into(),
            ),
            Self::AccountDisabled => (
                Status::FORBIDDEN,
                Code::AccountDisabled,
                "the account is disabled".into(),
            ),
            Self::LastAdmin => (
                Status::CONFLICT,
                Code::LastAdmin,
                "the last enabled administrator cannot be disabled, deleted or lose `admin`".into(),
            ),
            Self::InsufficientScope => (
                Status::FORBIDDEN,
                Code::InsufficientScope,
                "this endpoint needs the `admin` role".into(),
            ),
            Self::InvalidToken { description, .. } => {
                (Status::UNAUTHORIZED, Code::InvalidToken, description.into())
            }
            Self::ForbiddenOrigin => (
                Status::FORBIDDEN,
                Code::ForbiddenOrigin,
                "requests from this origin are not allowed".into(),
            ),
            Self::NotFound(what) => (
                Status::NOT_FOUND,
                Code::NotFound,
                format!("{what} not found").into(),
            ),
            Self::MethodNotAllowed => (
                Status::METHOD_NOT_ALLOWED,
                Code::InvalidRequest,
                "method not allowed on this resource".into(),
            ),
            Self::EmailTaken => (
                Status::CONFLICT,
                Code::EmailTaken,
                "email: an account with this email already exists".into(),
            ),
            Self::PayloadTooLarge => (
                Status::PAYLOAD_TOO_LARGE,
                Code::PayloadTooLarge,
                "the request body is larger than 64 KiB".into(),
            ),
            Self::RequestTimeout => (
                Status::REQUEST_TIMEOUT,
                Code::InvalidRequest,
                "the request body was not received in time".into(),
            ),
            Self::UnsupportedMediaType => (
                Status::UNSUPPORTED_MEDIA_TYPE,
                Code::InvalidRequest,
                "the request body must be JSON (Content-Type: application/json)".into(),
            ),
            Self::RateLimited { .. } => (
                Status::TOO_MANY_REQUESTS,
                Code::RateLimited,
                "too many requests; retry later".into(),
            ),
            Self::Unavailable { .. } => (
                Status::SERVICE_UNAVAILABLE,
                Code::Unavailable,
                "the service is temporarily unavailable; retry later".into(),
            ),
            Self::Internal(_) => (
                Status::INTERNAL_SERVER_ERROR,
                Code::ServerError,
                "an internal error occurred".into(),
            ),
        }
    }

    /// The contract's error code.
    pub fn code(&self) -> ErrorCode {
        self.wire().1
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // What tracing-actix-web records for a failed request: the code and
        // our own description, never request data.
        let (_, code, description) = self.wire();
        write!(f, "{code}: {description}")
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.wire().0
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Unavailable { cause, .. } => tracing::warn!(%cause, "answering 503"),
            Self::Internal(cause) => tracing::error!(error = ?cause, "internal error"),
            _ => {}
        }
        let (status, code, description) = self.wire();
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        match self {
            Self::RateLimited { retry_after_secs }
            | Self::Unavailable {
                retry_after_secs, ..
            } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            Self::InvalidToken { token_sent, .. } => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    bearer_challenge(REALM, token_sent.then_some((code, &*description))),
                ));
            }
            Self::InsufficientUserAuthentication(missing) => {
                response.insert_header((header::WWW_AUTHENTICATE, missing.challenge(REALM)));
            }
            Self::MfaRequired { mfa_token, methods } => {
                return response.json(MfaRequiredBody {
                    error: code,
                    error_description: &description,
                    mfa_token: mfa_token.expose(),
                    methods,
                });
            }
            Self::InsufficientScope => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    bearer_challenge(REALM, Some((code, &*description))),
                ));
            }
            _ => {}
        }
        response.json(ErrorBody {
            error: code,
            error_description: &description,
        })
    }
}

/// The contract's body of `403 mfa_required`: the error body, and what
/// the second step needs.
#[derive(serde::Serialize)]
struct MfaRequiredBody<'a> {
    error: ErrorCode,
    error_description: &'a str,
    mfa_token: &'a str,
    methods: &'a [&'static str],
}

/// The auth server's own Bearer endpoints answer as the resource APIs do.
const REALM: &str = "auth-server";

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
            ServiceError::MfaRequired(challenge) => Self::MfaRequired {
                mfa_token: challenge.mfa_token,
                methods: challenge.methods,
            },
            ServiceError::WrongFactor => Self::WrongFactor,
            ServiceError::CeremonyRefused(why) => Self::GrantRefused(why),
            ServiceError::SessionEnded => Self::InvalidToken {
                description: "the access token's session has ended".to_owned(),
                token_sent: true,
            },
            ServiceError::AlreadyEnrolled => Self::AlreadyEnrolled,
            ServiceError::NoSecondFactor => Self::NoSecondFactor,
            ServiceError::NeedsReauthentication(missing) => {
                Self::InsufficientUserAuthentication(missing)
            }
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
