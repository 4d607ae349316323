//! Request bodies and the rules their fields must meet, and the refresh
//! token a request presents.

use actix_web::HttpRequest;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use utoipa::ToSchema;

use super::body::JsonBody;
use super::cookies::refresh_cookie;
use super::delivery::Delivery;
use crate::error::ApiError;

pub const MAX_EMAIL_LENGTH: usize = 254;
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

#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// Trimmed, stored and returned in lower case.
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

/// Trimmed and lower-cased; refused unless it looks like an address.
pub fn normalize_email(raw: &str) -> Result<String, ApiError> {
    let email = raw.trim().to_lowercase();
    let invalid = |problem: &str| Err(ApiError::unprocessable("email", problem));
    if email.is_empty() {
        return invalid("is required");
    }
    if email.len() > MAX_EMAIL_LENGTH {
        return invalid("must be at most 254 characters");
    }
    let Some((local, domain)) = email.split_once('@') else {
        return invalid("is not an email address");
    };
    let well_formed = !local.is_empty()
        && local.len() <= 64
        && !domain.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !well_formed {
        return invalid("is not an email address");
    }
    Ok(email)
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
    fn emails_are_trimmed_lowercased_and_checked() {
        assert_eq!(
            normalize_email("  Alice@Example.COM ").unwrap(),
            "alice@example.com"
        );
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "alice@example",
            "a b@example.com",
            "a@b@example.com",
            "alice@.example.com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
        assert!(normalize_email(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn passwords_are_8_to_256_characters() {
        assert!(check_password(&SecretString::from("1234567")).is_err());
        assert!(check_password(&SecretString::from("12345678")).is_ok());
        assert!(check_password(&SecretString::from("é".repeat(256))).is_ok());
        assert!(check_password(&SecretString::from("x".repeat(257))).is_err());
    }
}
