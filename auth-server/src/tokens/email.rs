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

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};

use crate::tokens::refresh::{TokenHash, is_well_formed};

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

/// A token as it goes into a link or comes back from one. `Debug` redacted.
pub struct EmailToken(SecretString);

impl EmailToken {
    /// A fresh token: 256 bits from the CSPRNG.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(Self(SecretString::from(URL_SAFE_NO_PAD.encode(bytes))))
    }

    /// A token a client presented; anything that cannot be one is refused
    /// before it reaches the database.
    pub fn parse(presented: &str) -> Option<Self> {
        is_well_formed(presented).then(|| Self(SecretString::from(presented.to_owned())))
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(self.0.expose_secret())
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for EmailToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EmailToken([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_256_bits_and_differ() {
        let tokens: Vec<EmailToken> = (0..64).map(|_| EmailToken::generate().unwrap()).collect();
        for token in &tokens {
            assert_eq!(token.expose().len(), 43, "256 bits in base64url");
            assert!(EmailToken::parse(token.expose()).is_some());
            assert_eq!(URL_SAFE_NO_PAD.decode(token.expose()).unwrap().len(), 32);
        }
        let mut distinct: Vec<&str> = tokens.iter().map(EmailToken::expose).collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), tokens.len());
    }

    #[test]
    fn junk_is_refused_and_debug_is_redacted() {
        assert!(EmailToken::parse("").is_none());
        assert!(EmailToken::parse(&"a".repeat(44)).is_none());
        assert!(EmailToken::parse(&"!".repeat(43)).is_none());
        let token = EmailToken::generate().unwrap();
        assert!(!format!("{token:?}").contains(token.expose()));
        assert_eq!(Purpose::parse("email_verify"), Some(Purpose::EmailVerify));
        assert_eq!(Purpose::parse("other"), None);
    }
}
