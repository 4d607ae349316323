//! Opaque refresh tokens: 256 bits, base64url, stored only as SHA-256.
//!
//! A session's first token comes from the CSPRNG. Each later one is derived
//! from the token it replaces: HMAC-SHA256 under the server's token key
//! ([`TokenKeys`], domain [`SUCCESSOR_DOMAIN`]). So every request presenting
//! one token derives the same successor, and a retry within the reuse grace
//! is sent the very token the lost answer carried, while the database still
//! holds nothing but hashes: without the key, a copy of it yields no token.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::token_keys::TokenKeys;

/// Bytes of randomness in a token.
const TOKEN_BYTES: usize = 32;
/// base64url of 32 bytes, unpadded.
pub const TOKEN_LENGTH: usize = 43;
/// The [`TokenKeys`] domain of successors: no other derivation collides.
pub const SUCCESSOR_DOMAIN: &str = "refresh-successor";

/// A refresh token as handed to a client. Its `Debug` is redacted.
pub struct RefreshToken(SecretString);

impl RefreshToken {
    /// A new token from the operating system's CSPRNG: a session's first.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(Self::encode(&bytes))
    }

    fn encode(bytes: &[u8; TOKEN_BYTES]) -> Self {
        Self(SecretString::from(URL_SAFE_NO_PAD.encode(bytes)))
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

    /// The token that rotating this one issues, as each key of the ring
    /// derives it (the current key's first).
    pub fn successors(&self, keys: &TokenKeys) -> Successors {
        let input = self.expose().as_bytes();
        Successors {
            current: Self::encode(&keys.derive(SUCCESSOR_DOMAIN, input)),
            retired: keys
                .derive_all(SUCCESSOR_DOMAIN, input)
                .skip(1)
                .map(|derived| Self::encode(&derived))
                .collect(),
        }
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

    /// Whether `stored` is this hash, in constant time.
    pub fn matches(&self, stored: &[u8]) -> bool {
        self.0.ct_eq(stored).into()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash([REDACTED])")
    }
}

/// A presented token's successor under each key of the ring: rotation
/// issues the current key's; the grace recognises any of them.
#[derive(Debug)]
pub struct Successors {
    current: RefreshToken,
    retired: Vec<RefreshToken>,
}

impl Successors {
    /// The one a rotation issues now.
    pub fn current(&self) -> &RefreshToken {
        &self.current
    }

    /// The hashes, for the rotation transaction.
    pub fn hashes(&self) -> SuccessorHashes {
        SuccessorHashes {
            current: self.current.hash(),
            retired: self.retired.iter().map(RefreshToken::hash).collect(),
        }
    }

    /// The successor [`SuccessorHashes::recognise`] named.
    pub fn take(mut self, key: KeyIndex) -> Option<RefreshToken> {
        match key.0.checked_sub(1) {
            None => Some(self.current),
            Some(retired) => {
                (retired < self.retired.len()).then(|| self.retired.swap_remove(retired))
            }
        }
    }
}

/// Which key of the ring derived a successor: 0 the current one, then the
/// retired ones in their configured order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyIndex(usize);

impl KeyIndex {
    pub const CURRENT: Self = Self(0);
}

/// The hashes of [`Successors`].
#[derive(Debug, Clone)]
pub struct SuccessorHashes {
    current: TokenHash,
    retired: Vec<TokenHash>,
}

impl SuccessorHashes {
    /// The hash a rotation stores now.
    pub fn current(&self) -> &TokenHash {
        &self.current
    }

    /// Which key derived the stored successor, if any the ring still holds
    /// did; each comparison in constant time.
    pub fn recognise(&self, stored: &[u8]) -> Option<KeyIndex> {
        std::iter::once(&self.current)
            .chain(&self.retired)
            .position(|hash| hash.matches(stored))
            .map(KeyIndex)
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

    #[test]
    fn successors_are_well_formed_deterministic_and_keyed() {
        let keys = TokenKeys::ephemeral().unwrap();
        let token = RefreshToken::generate().unwrap();
        let successors = token.successors(&keys);
        let successor = successors.current();
        assert!(RefreshToken::parse(successor.expose()).is_some());
        assert_ne!(successor.expose(), token.expose());
        // Every request presenting the token derives the same one...
        assert_eq!(
            token.successors(&keys).current().expose(),
            successor.expose()
        );
        // ...and its own successor is another token again.
        assert_ne!(
            successor.successors(&keys).current().expose(),
            successor.expose()
        );
        // Another key, another successor.
        let other = TokenKeys::ephemeral().unwrap();
        assert_ne!(
            token.successors(&other).current().expose(),
            successor.expose()
        );
        assert!(!format!("{successors:?}").contains(successor.expose()));
    }

    #[test]
    fn the_stored_successor_is_recognised_by_its_hash_only() {
        let keys = TokenKeys::ephemeral().unwrap();
        let token = RefreshToken::generate().unwrap();
        let hashes = token.successors(&keys).hashes();
        let stored = token.successors(&keys).current().hash();
        assert_eq!(hashes.recognise(stored.as_bytes()), Some(KeyIndex::CURRENT));
        assert_eq!(hashes.current(), &stored);
        let other = RefreshToken::generate().unwrap().hash();
        assert_eq!(hashes.recognise(other.as_bytes()), None);
        assert_eq!(hashes.recognise(&stored.as_bytes()[..31]), None);
        let taken = token.successors(&keys).take(KeyIndex::CURRENT).unwrap();
        assert_eq!(taken.hash(), stored);
        assert!(token.successors(&keys).take(KeyIndex(1)).is_none());
    }
}
