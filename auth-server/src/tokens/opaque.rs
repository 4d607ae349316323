//! Opaque tokens: 256 bits from the operating system's CSPRNG, base64url,
//! of which the database keeps only the SHA-256. What e-mail links carry
//! ([`super::email`]) and what carries a login from its password to its
//! second factor (the `mfa_token`). A presented token is hashed and looked
//! up; no key and no copy of the database can rebuild one.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};

use crate::tokens::refresh::{TokenHash, is_well_formed};

/// A token as it goes out and comes back. `Debug` redacted.
pub struct OpaqueToken(SecretString);

impl OpaqueToken {
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

impl fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OpaqueToken([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_256_bits_and_differ() {
        let tokens: Vec<OpaqueToken> = (0..64).map(|_| OpaqueToken::generate().unwrap()).collect();
        for token in &tokens {
            assert_eq!(token.expose().len(), 43, "256 bits in base64url");
            assert!(OpaqueToken::parse(token.expose()).is_some());
            assert_eq!(URL_SAFE_NO_PAD.decode(token.expose()).unwrap().len(), 32);
        }
        let mut distinct: Vec<&str> = tokens.iter().map(OpaqueToken::expose).collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), tokens.len());
    }

    #[test]
    fn junk_is_refused_and_debug_is_redacted() {
        assert!(OpaqueToken::parse("").is_none());
        assert!(OpaqueToken::parse(&"a".repeat(44)).is_none());
        assert!(OpaqueToken::parse(&"!".repeat(43)).is_none());
        let token = OpaqueToken::generate().unwrap();
        assert!(!format!("{token:?}").contains(token.expose()));
    }
}
