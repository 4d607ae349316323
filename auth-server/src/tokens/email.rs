//! E-mail tokens: what a reset or verification link carries.
//!
//! A token is 256 bits from the operating system's CSPRNG, base64url, and
//! is never stored anywhere, not even in the mail queue: the
//! `email_tokens` row keeps only its SHA-256. The mail worker draws the
//! token when it renders the message and holds it in memory only for the
//! send; a later attempt (the mail server was down) draws a fresh one and
//! replaces the stored hash, so whatever an earlier attempt may have let
//! through stops working. No key and no copy of the database can rebuild
//! a link. A presented token is simply hashed and looked up.

/// A link's token: 256 bits, hash only, as every opaque token.
pub use super::opaque::OpaqueToken as EmailToken;

/// What a token allows; stored in `email_tokens.purpose` and
/// `mail_outbox.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    PasswordReset,
    EmailVerify,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PasswordReset => "password_reset",
            Self::EmailVerify => "email_verify",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        match stored {
            "password_reset" => Some(Self::PasswordReset),
            "email_verify" => Some(Self::EmailVerify),
            _ => None,
        }
    }

    /// The fragment key of the web app's link: `#reset=…`, `#verify=…`.
    pub fn fragment(self) -> &'static str {
        match self {
            Self::PasswordReset => "reset",
            Self::EmailVerify => "verify",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_round_trip() {
        assert_eq!(Purpose::parse("email_verify"), Some(Purpose::EmailVerify));
        assert_eq!(
            Purpose::parse("password_reset"),
            Some(Purpose::PasswordReset)
        );
        assert_eq!(Purpose::parse("other"), None);
    }
}
