//! Opaque refresh tokens: 256 random bits, base64url, stored only as SHA-256.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Bytes of randomness in a token.
const TOKEN_BYTES: usize = 32;
/// base64url of 32 bytes, unpadded.
pub const TOKEN_LENGTH: usize = 43;

/// A refresh token as handed to a client. Its `Debug` is redacted.
pub struct RefreshToken(SecretString);

impl RefreshToken {
    /// A new token from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(Self(SecretString::from(URL_SAFE_NO_PAD.encode(bytes))))
    }

    /// A token a client presented. Anything that cannot be one of ours is
    /// refused before it reaches the database.
    pub fn parse(presented: &str) -> Option<Self> {
        is_well_formed(presented).then(|| Self(SecretString::from(presented.to_owned())))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(self.0.expose_secret())
    }
}

/// 43 base64url characters: the shape of every opaque token the server
/// hands out (refresh and e-mail tokens alike).
pub fn is_well_formed(presented: &str) -> bool {
    presented.len() == TOKEN_LENGTH
        && presented
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken([REDACTED])")
    }
}

/// What the database stores and looks tokens up by.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// SHA-256 of a token: the token carries 256 unpredictable bits, so a
    /// fast hash is enough.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_and_differ() {
        let a = RefreshToken::generate().unwrap();
        let b = RefreshToken::generate().unwrap();
        assert_eq!(a.expose().len(), TOKEN_LENGTH);
        assert!(RefreshToken::parse(a.expose()).is_some());
        assert_ne!(a.expose(), b.expose());
        assert_ne!(a.hash(), b.hash());
        assert_eq!(a.hash(), RefreshToken::parse(a.expose()).unwrap().hash());
    }

    #[test]
    fn junk_is_refused_and_nothing_leaks_in_debug() {
        assert!(RefreshToken::parse("").is_none());
        assert!(RefreshToken::parse(&"a".repeat(44)).is_none());
        assert!(RefreshToken::parse(&format!("{}=", "a".repeat(42))).is_none());
        let token = RefreshToken::generate().unwrap();
        assert!(!format!("{token:?} {:?}", token.hash()).contains(token.expose()));
    }
}
