//! The contract's error body, `{"error": "<code>", "error_description":
//! "<text>"}`, and the codes it may carry: one wire type for every service,
//! so a code cannot be misspelt in one of them and the OpenAPI documents
//! describe the body the services send.
//!
//! With the `openapi` feature the body is also a `utoipa` schema, named
//! `Error` in the documents.

use std::fmt;

use serde::Serialize;

/// A stable code clients can match on. Only the codes some service sends
/// are here; a code the contract adds comes with the code that sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// `400` (unparseable) or `422` (a field is wrong, and named).
    InvalidRequest,
    InvalidCredentials,
    InvalidGrant,
    UnsupportedGrantType,
    EmailNotVerified,
    AlreadyVerified,
    AccountDisabled,
    LastAdmin,
    /// A valid token without the role the resource needs (RFC 6750 §3.1).
    InsufficientScope,
    /// A token whose authentication is too old or too weak for the route
    /// (RFC 9470): reauthenticate and retry.
    InsufficientUserAuthentication,
    /// A correct password for a user with a second factor: the login goes
    /// on at `/auth/login/mfa`.
    MfaRequired,
    AlreadyEnrolled,
    /// A missing, malformed, expired or revoked Bearer token (RFC 6750
    /// §3.1).
    InvalidToken,
    ForbiddenOrigin,
    NotFound,
    EmailTaken,
    PayloadTooLarge,
    RateLimited,
    /// The database or another dependency is down: retry later.
    Unavailable,
    /// A bug; the cause is logged, never sent.
    ServerError,
}

impl ErrorCode {
    /// The code as it is written on the wire (and in a challenge's `error`
    /// attribute): what serde writes.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidGrant => "invalid_grant",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::EmailNotVerified => "email_not_verified",
            Self::AlreadyVerified => "already_verified",
            Self::AccountDisabled => "account_disabled",
            Self::LastAdmin => "last_admin",
            Self::InsufficientScope => "insufficient_scope",
            Self::InsufficientUserAuthentication => "insufficient_user_authentication",
            Self::MfaRequired => "mfa_required",
            Self::AlreadyEnrolled => "already_enrolled",
            Self::InvalidToken => "invalid_token",
            Self::ForbiddenOrigin => "forbidden_origin",
            Self::NotFound => "not_found",
            Self::EmailTaken => "email_taken",
            Self::PayloadTooLarge => "payload_too_large",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::ServerError => "server_error",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The contract's error body, everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Error))]
pub struct ErrorBody<'a> {
    /// A stable code clients can match on (`invalid_request`,
    /// `invalid_grant`, `account_disabled`, `insufficient_scope`,
    /// `last_admin`, `rate_limited`, …).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub error: ErrorCode,
    /// Text for a person; a `422` names the offending field.
    pub error_description: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ErrorCode; 20] = [
        ErrorCode::InvalidRequest,
        ErrorCode::InvalidCredentials,
        ErrorCode::InvalidGrant,
        ErrorCode::UnsupportedGrantType,
        ErrorCode::EmailNotVerified,
        ErrorCode::AlreadyVerified,
        ErrorCode::AccountDisabled,
        ErrorCode::LastAdmin,
        ErrorCode::InsufficientScope,
        ErrorCode::InsufficientUserAuthentication,
        ErrorCode::MfaRequired,
        ErrorCode::AlreadyEnrolled,
        ErrorCode::InvalidToken,
        ErrorCode::ForbiddenOrigin,
        ErrorCode::NotFound,
        ErrorCode::EmailTaken,
        ErrorCode::PayloadTooLarge,
        ErrorCode::RateLimited,
        ErrorCode::Unavailable,
        ErrorCode::ServerError,
    ];

    #[test]
    fn as_str_is_what_serde_writes() {
        for code in ALL {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                code.as_str(),
                "{code:?}"
            );
            assert_eq!(code.to_string(), code.as_str());
        }
    }

    #[test]
    fn the_body_is_the_contracts() {
        let body = ErrorBody {
            error: ErrorCode::NotFound,
            error_description: "session not found",
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":"not_found","error_description":"session not found"}"#
        );
    }
}
