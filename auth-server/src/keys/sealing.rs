//! The key-encryption key (`KEY_ENCRYPTION_KEY_FILE`) and what it seals: the
//! private halves of the signing keys kept in PostgreSQL, so that a copy of
//! the database (a backup, a replica, a dump) signs nothing without it.
//!
//! ChaCha20-Poly1305 (RustCrypto's AEAD): a fresh random 96-bit nonce per
//! seal, and the key's `kid` as associated data, so a sealed key moved to
//! another row (another kid, other dates) no longer opens. Sealed form:
//! a version byte, the nonce, then the ciphertext and its tag.

use std::fmt;
use std::path::Path;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use secrecy::{ExposeSecret, SecretBox};

const VERSION: u8 = 1;
const NONCE_BYTES: usize = 12;
/// Length of the sealed form of a secret of `n` bytes.
pub const fn sealed_len(n: usize) -> usize {
    1 + NONCE_BYTES + n + 16
}

/// 256 bits that seal and open, never shown in `Debug`.
pub struct KeyEncryptionKey(SecretBox<[u8; 32]>);

impl fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyEncryptionKey(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("no randomness for a nonce")]
    Randomness,
    /// A wrong key, a tampered or moved value, or not a sealed value at all.
    #[error(
        "the sealed value does not open under this key-encryption key (another key, or tampered)"
    )]
    Open,
}

impl KeyEncryptionKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(SecretBox::new(Box::new(bytes)))
    }

    /// `KEY_ENCRYPTION_KEY_FILE`: 32 bytes, raw or base64 (standard or
    /// URL-safe, padded or not; what `auth-server secret --out` writes),
    /// surrounding whitespace ignored.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let raw = std::fs::read(path)
            .with_context(|| format!("reading KEY_ENCRYPTION_KEY_FILE {}", path.display()))?;
        Self::parse(&raw).with_context(|| {
            format!(
                "KEY_ENCRYPTION_KEY_FILE {} must hold 32 random bytes, raw or base64 (create one with `auth-server secret --out FILE`)",
                path.display()
            )
        })
    }

    fn parse(raw: &[u8]) -> anyhow::Result<Self> {
        if let Ok(bytes) = <[u8; 32]>::try_from(raw) {
            return Ok(Self::from_bytes(bytes));
        }
        let text = std::str::from_utf8(raw).context("neither 32 raw bytes nor text")?;
        let text = text.trim();
        let decoded = [URL_SAFE_NO_PAD, URL_SAFE, STANDARD, STANDARD_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(text).ok())
            .context("not base64")?;
        let bytes = <[u8; 32]>::try_from(decoded.as_slice())
            .map_err(|_| anyhow::anyhow!("{} bytes once decoded, not 32", decoded.len()))?;
        Ok(Self::from_bytes(bytes))
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&Key::from(*self.0.expose_secret()))
    }

    /// Seals `secret`, bound to `associated` (the kid).
    pub fn seal(&self, secret: &[u8], associated: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|_| SealError::Randomness)?;
        let ciphertext = self
            .cipher()
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: secret,
                    aad: associated,
                },
            )
            .map_err(|_| SealError::Open)?;
        let mut sealed = Vec::with_capacity(1 + NONCE_BYTES + ciphertext.len());
        sealed.push(VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// Opens what [`Self::seal`] made of a secret bound to `associated`.
    pub fn open(&self, sealed: &[u8], associated: &[u8]) -> Result<SecretBox<[u8]>, SealError> {
        let (version, rest) = sealed.split_first().ok_or(SealError::Open)?;
        if *version != VERSION || rest.len() < NONCE_BYTES + 16 {
            return Err(SealError::Open);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| SealError::Open)?;
        let plain = self
            .cipher()
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: associated,
                },
            )
            .map_err(|_| SealError::Open)?;
        Ok(SecretBox::from(plain.into_boxed_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek(byte: u8) -> KeyEncryptionKey {
        KeyEncryptionKey::from_bytes([byte; 32])
    }

    #[test]
    fn what_is_sealed_opens_under_the_same_key_and_kid_only() {
        let secret = [9u8; 32];
        let sealed = kek(1).seal(&secret, b"kid-a").unwrap();
        assert_eq!(sealed.len(), sealed_len(32));
        assert!(!sealed.windows(32).any(|w| w == secret), "not in the clear");
        let opened = kek(1).open(&sealed, b"kid-a").unwrap();
        assert_eq!(opened.expose_secret(), &secret[..]);
        assert!(kek(2).open(&sealed, b"kid-a").is_err(), "another key");
        assert!(
            kek(1).open(&sealed, b"kid-b").is_err(),
            "moved to another kid"
        );
        for i in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[i] ^= 1;
            assert!(kek(1).open(&tampered, b"kid-a").is_err(), "byte {i}");
        }
        assert!(kek(1).open(&sealed[..20], b"kid-a").is_err(), "truncated");
        assert!(kek(1).open(&[], b"kid-a").is_err());
    }

    #[test]
    fn every_seal_has_its_own_nonce() {
        let a = kek(1).seal(&[0; 32], b"k").unwrap();
        let b = kek(1).seal(&[0; 32], b"k").unwrap();
        assert_ne!(a[1..13], b[1..13]);
        assert_ne!(a, b);
    }

    #[test]
    fn key_files_are_raw_or_base64_of_32_bytes() {
        let bytes: [u8; 32] = std::array::from_fn(|i| i as u8 * 7);
        let sealed = KeyEncryptionKey::from_bytes(bytes)
            .seal(b"s", b"k")
            .unwrap();
        let opens = |raw: &[u8]| {
            KeyEncryptionKey::parse(raw)
                .map(|key| key.open(&sealed, b"k").is_ok())
                .unwrap_or(false)
        };
        assert!(opens(&bytes), "raw");
        assert!(
            opens(format!("{}\n", URL_SAFE_NO_PAD.encode(bytes)).as_bytes()),
            "secret --out"
        );
        assert!(opens(STANDARD.encode(bytes).as_bytes()), "standard, padded");
        assert!(KeyEncryptionKey::parse(b"too short").is_err());
        assert!(KeyEncryptionKey::parse(STANDARD.encode([0u8; 16]).as_bytes()).is_err());
        assert_eq!(format!("{:?}", kek(1)), "KeyEncryptionKey(..)");
    }
}
