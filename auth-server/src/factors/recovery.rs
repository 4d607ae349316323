//! Recovery codes: what lets a user whose phone is lost sign in again.
//!
//! Ten at a time, each 80 random bits written as four groups of four
//! lower-case base32 letters (`k3xq-7p2m-…`), shown once. The database
//! keeps only SHA-256 of each: at 80 bits a dump gives nothing to try a
//! dictionary against, so a fast hash is enough and a code is looked up
//! by its hash. Single use (the statement that uses one says so).

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// How many codes a user holds at a time.
pub const CODES: usize = 10;
const CODE_BYTES: usize = 10;
const GROUP: usize = 4;
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A code as shown to the user once. `Debug` redacted.
pub struct RecoveryCode(SecretString);

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode([REDACTED])")
    }
}

impl RecoveryCode {
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn hash(&self) -> [u8; 32] {
        hash_normalised(&normalise(self.expose()).unwrap_or_default())
    }
}

/// Ten fresh codes from the operating system's CSPRNG.
pub fn generate() -> Result<Vec<RecoveryCode>, getrandom::Error> {
    (0..CODES)
        .map(|_| {
            let mut bytes = [0u8; CODE_BYTES];
            getrandom::fill(&mut bytes)?;
            Ok(RecoveryCode(SecretString::from(format_code(&bytes))))
        })
        .collect()
}

/// The hash a presented code is looked up by; `None` for anything that
/// cannot be a code (so junk of any length never reaches the database).
/// Case, spaces and dashes do not matter: people type these by hand.
pub fn presented_hash(presented: &str) -> Option<[u8; 32]> {
    if presented.len() > 64 {
        return None;
    }
    normalise(presented).map(|code| hash_normalised(&code))
}

fn normalise(presented: &str) -> Option<String> {
    let code: String = presented
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (code.len() == CODE_BYTES * 8 / 5 && code.bytes().all(|b| ALPHABET.contains(&b)))
        .then_some(code)
}

fn hash_normalised(code: &str) -> [u8; 32] {
    Sha256::digest(code.as_bytes()).into()
}

fn format_code(bytes: &[u8; CODE_BYTES]) -> String {
    let mut letters = Vec::with_capacity(CODE_BYTES * 8 / 5);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            letters.push(ALPHABET[((buffer >> bits) & 31) as usize]);
        }
    }
    letters
        .chunks(GROUP)
        .map(|group| String::from_utf8_lossy(group).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_distinct_codes_of_80_bits() {
        let codes = generate().unwrap();
        assert_eq!(codes.len(), CODES);
        let mut shown: Vec<&str> = codes.iter().map(RecoveryCode::expose).collect();
        for code in &shown {
            assert_eq!(code.len(), 19, "{code}");
            assert_eq!(code.split('-').count(), 4);
        }
        shown.sort_unstable();
        shown.dedup();
        assert_eq!(shown.len(), CODES);
    }

    #[test]
    fn typed_codes_match_their_hash_and_junk_does_not() {
        let code = &generate().unwrap()[0];
        let typed = code.expose().to_uppercase().replace('-', " ");
        assert_eq!(presented_hash(&typed), Some(code.hash()));
        assert_eq!(
            presented_hash(&code.expose().replace('-', "")),
            Some(code.hash())
        );
        for junk in [
            "",
            "abcd",
            "abcd-efgh-ijkl-mno1",
            &"a".repeat(100),
            "abcd-efgh-ijkl-mnop-q",
        ] {
            assert_eq!(presented_hash(junk), None, "{junk:?}");
        }
        assert!(!format!("{code:?}").contains(code.expose()));
    }
}
