//! Request bodies and the rules their fields must meet, the paging
//! parameters of a listing, and the refresh token a request presents.

use actix_web::HttpRequest;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use utoipa::ToSchema;

use super::body::JsonBody;
use super::cookies::refresh_cookie;
use super::delivery::Delivery;
use crate::accounts::email::Email;
use crate::error::ApiError;
use crate::service::paging::{self, Cursor};

pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 256;

/// A page's `limit` query parameter, read as text so a bad value is a `422`
/// naming it: `default` when absent or empty, else a whole number from 1 to
/// `max`.
pub fn page_limit(raw: Option<&str>, default: i64, max: i64) -> Result<i64, ApiError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(default),
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::unprocessable("limit", &format!("must be a whole number from 1 to {max}"))
            }),
    }
}

/// A page's `cursor` query parameter: `None` when absent or empty (the
/// first page), else one this API gave, or a `422` naming it.
pub fn page_cursor<C: Cursor>(raw: Option<&str>) -> Result<Option<C>, ApiError> {
    match raw.filter(|c| !c.is_empty()) {
        None => Ok(None),
        Some(raw) => paging::decode(raw)
            .map(Some)
            .ok_or_else(|| ApiError::unprocessable("cursor", "is not a cursor this API gave")),
    }
}

#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// A bare `local@domain` address (no display name, none of
    /// `<>()[]\,;:"`, no whitespace); trimmed, stored and returned in lower
    /// case.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 256)]
    pub password: SecretString,
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 256)]
    pub password: SecretString,
    /// `cookie` (the default) or `body`.
    #[serde(default)]
    pub refresh_token_delivery: Option<Delivery>,
}

#[derive(Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 256)]
    pub current_password: SecretString,
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 256)]
    pub new_password: SecretString,
}

#[derive(Deserialize, ToSchema)]
pub struct ForgotPasswordRequest {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
}

#[derive(Deserialize, ToSchema)]
pub struct ResetPasswordRequest {
    /// The token of the e-mail link (from its URL fragment).
    #[schema(value_type = String)]
    pub token: SecretString,
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 256)]
    pub new_password: SecretString,
}

#[derive(Deserialize, ToSchema)]
pub struct VerifyEmailRequest {
    /// The token of the e-mail link (from its URL fragment).
    #[schema(value_type = String)]
    pub token: SecretString,
}

/// The optional body of refresh and logout.
#[derive(Deserialize, Default, ToSchema)]
pub struct RefreshRequest {
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub refresh_token: Option<SecretString>,
}

/// The refresh token a request presents, and how it came: a token in the
/// JSON body wins, and every cookie is then ignored (duplicates included);
/// otherwise the one `refresh_token` cookie, and more than one is a `400`.
pub fn presented_token(
    req: &HttpRequest,
    body: &JsonBody,
) -> Result<(Option<String>, Delivery), ApiError> {
    let from_body: RefreshRequest = if body.is_empty() {
        RefreshRequest::default()
    } else {
        body.parse()?
    };
    if let Some(token) = from_body.refresh_token {
        return Ok((Some(token.expose_secret().to_owned()), Delivery::Body));
    }
    Ok((refresh_cookie(req)?, Delivery::Cookie))
}

/// The `email` field as an [`Email`]; a `422` naming it otherwise.
pub fn parse_email(raw: &str) -> Result<Email, ApiError> {
    Email::parse(raw).map_err(|e| ApiError::unprocessable("email", e.problem()))
}

/// Bounded before any hashing, so nobody can make the server hash a megabyte.
pub fn check_password(password: &SecretString) -> Result<(), ApiError> {
    check_password_field("password", password)
}

/// The same rule for a password field of another name (`new_password`,
/// `current_password`).
pub fn check_password_field(field: &str, password: &SecretString) -> Result<(), ApiError> {
    let length = password.expose_secret().chars().count();
    if length < MIN_PASSWORD_CHARS {
        return Err(ApiError::unprocessable(
            field,
            "must be at least 8 characters",
        ));
    }
    if length > MAX_PASSWORD_CHARS {
        return Err(ApiError::unprocessable(
            field,
            "must be at most 256 characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_email_is_a_422_naming_the_field() {
        assert_eq!(
            parse_email("  Alice@Example.COM ").unwrap().as_str(),
            "alice@example.com"
        );
        match parse_email("ceo<attacker@evil.example>") {
            Err(ApiError::InvalidRequest {
                status,
                description,
            }) => {
                assert_eq!(status, actix_web::http::StatusCode::UNPROCESSABLE_ENTITY);
                assert!(description.starts_with("email: "), "{description}");
            }
            _ => panic!("a display name must be refused"),
        }
    }

    #[test]
    fn passwords_are_8_to_256_characters() {
        assert!(check_password(&SecretString::from("1234567")).is_err());
        assert!(check_password(&SecretString::from("12345678")).is_ok());
        assert!(check_password(&SecretString::from("é".repeat(256))).is_ok());
        assert!(check_password(&SecretString::from("x".repeat(257))).is_err());
    }
}
