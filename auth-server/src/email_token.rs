//! E-mail tokens: what a reset or verification link carries.
//!
//! A token is never stored, not even in the mail queue: it is
//! HMAC-SHA256 under the server's token key ([`TokenKeys`], domain
//! `email-token`, input `purpose || 0 || row id`) of the `email_tokens` row
//! it belongs to, base64url. The row (its id a fresh random UUID) keeps
//! only SHA-256 of the token. The mail worker derives the token again from
//! the row id when it renders the message, and sends it only when its hash
//! is the stored one; so a reader of the database alone can neither use a
//! stored hash nor rebuild a link, and a link derived under a key that has
//! since changed (and is no longer among the retired keys) is dropped, not
//! sent. A presented token is simply hashed and looked up: no key needed.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::refresh_token::{TokenHash, is_well_formed};
use crate::token_keys::TokenKeys;

/// The HMAC domain of e-mail tokens, apart from every other derivation.
const DOMAIN: &str = "email-token";

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
    /// The token of row `id`, under the current key.
    pub fn derive(keys: &TokenKeys, purpose: Purpose, id: Uuid) -> Self {
        Self::encode(keys.derive(DOMAIN, &input(purpose, id)))
    }

    /// The token of row `id` whose hash is `stored`, under whichever key
    /// derived it; `None` when no key we hold did (the key changed).
    pub fn recover(keys: &TokenKeys, purpose: Purpose, id: Uuid, stored: &[u8]) -> Option<Self> {
        let input = input(purpose, id);
        keys.derive_all(DOMAIN, &input)
            .map(Self::encode)
            .find(|token| bool::from(token.hash().as_bytes().ct_eq(stored)))
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

    fn encode(derived: [u8; 32]) -> Self {
        Self(SecretString::from(URL_SAFE_NO_PAD.encode(derived)))
    }
}

impl fmt::Debug for EmailToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EmailToken([REDACTED])")
    }
}

fn input(purpose: Purpose, id: Uuid) -> Vec<u8> {
    let mut input = purpose.as_str().as_bytes().to_vec();
    input.push(0);
    input.extend_from_slice(id.as_bytes());
    input
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::ephemeral().unwrap()
    }

    #[test]
    fn tokens_are_per_row_per_purpose_and_per_key() {
        let k = keys();
        let id = Uuid::new_v4();
        let reset = EmailToken::derive(&k, Purpose::PasswordReset, id);
        assert_eq!(reset.expose().len(), 43);
        assert!(EmailToken::parse(reset.expose()).is_some());
        assert_eq!(
            reset.expose(),
            EmailToken::derive(&k, Purpose::PasswordReset, id).expose(),
            "the worker derives the same token again"
        );
        for other in [
            EmailToken::derive(&k, Purpose::EmailVerify, id),
            EmailToken::derive(&k, Purpose::PasswordReset, Uuid::new_v4()),
            EmailToken::derive(&keys(), Purpose::PasswordReset, id),
        ] {
            assert_ne!(reset.expose(), other.expose());
        }
    }

    #[test]
    fn recovery_needs_the_key_that_derived_the_stored_hash() {
        let k = keys();
        let id = Uuid::new_v4();
        let stored = EmailToken::derive(&k, Purpose::EmailVerify, id).hash();
        let recovered = EmailToken::recover(&k, Purpose::EmailVerify, id, stored.as_bytes());
        assert_eq!(recovered.unwrap().hash(), stored);
        assert!(
            EmailToken::recover(&keys(), Purpose::EmailVerify, id, stored.as_bytes()).is_none()
        );
        assert!(EmailToken::recover(&k, Purpose::PasswordReset, id, stored.as_bytes()).is_none());
    }

    #[test]
    fn junk_is_refused_and_debug_is_redacted() {
        assert!(EmailToken::parse("").is_none());
        assert!(EmailToken::parse(&"a".repeat(44)).is_none());
        assert!(EmailToken::parse(&"!".repeat(43)).is_none());
        let token = EmailToken::derive(&keys(), Purpose::PasswordReset, Uuid::new_v4());
        assert!(!format!("{token:?}").contains(token.expose()));
        assert_eq!(Purpose::parse("email_verify"), Some(Purpose::EmailVerify));
        assert_eq!(Purpose::parse("other"), None);
    }
}
