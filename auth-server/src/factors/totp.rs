//! TOTP (RFC 6238) as authenticator apps use it: SHA-1, 6 digits, 30-second
//! steps, one step either side accepted. The codes come from `totp-rs`;
//! this module owns what the server adds: the secret sealed at rest, and
//! the step a code matched, so that no code (nor an older one) is accepted
//! twice.
//!
//! The secret is sealed (ChaCha20-Poly1305) under a key derived from the
//! server's token key (`REFRESH_TOKEN_KEY_FILE`), bound to the user's id:
//! a dump of the database yields no secret, and a sealed secret copied to
//! another user's row does not open. The sealing key's id is stored with
//! it, so a retired token key (`RETIRED_REFRESH_TOKEN_KEY_FILES`) still
//! opens the secrets it sealed.

use std::fmt;

use secrecy::{ExposeSecret, SecretBox};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};
use uuid::Uuid;

use crate::keys::sealing::KeyEncryptionKey;
use crate::tokens::keys::TokenKeys;

/// 160 bits, as RFC 4226 recommends and the contract asks.
pub const SECRET_BYTES: usize = 20;
const DIGITS: usize = 6;
const STEP_SECONDS: u64 = 30;
/// Domain of the sealing key under the token key ring.
const SEAL_DOMAIN: &str = "totp secret seal";

/// A TOTP secret in memory, never shown in `Debug`.
pub struct TotpSecret(SecretBox<[u8; SECRET_BYTES]>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

/// A secret sealed for the database, with the id of the key that sealed it.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub bytes: Vec<u8>,
    pub key_id: u8,
}

impl TotpSecret {
    /// A fresh secret from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; SECRET_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(Self(SecretBox::new(Box::new(bytes))))
    }

    /// The secret as authenticator apps take it when typed in: base32
    /// without padding (RFC 4648).
    pub fn base32(&self) -> String {
        base32_encode(self.0.expose_secret())
    }

    /// `otpauth://totp/Issuer:account?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`,
    /// what the QR code holds. `None` when the issuer or account holds a
    /// `:` (an e-mail address never does).
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> Option<String> {
        self.totp(Some(issuer.to_owned()), account.to_owned())
            .map(|totp| totp.get_url())
    }

    /// The step whose code `code` is, among the current step and one
    /// either side of it at `unix_time`, if it is later than `after` (the
    /// last step accepted for this user): the latest such step.
    pub fn matching_step(&self, code: &str, unix_time: u64, after: Option<i64>) -> Option<i64> {
        let code = code.trim();
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let totp = self.totp(None, String::new())?;
        let current = unix_time / STEP_SECONDS;
        let mut matched = None;
        for step in [current.saturating_sub(1), current, current + 1] {
            let expected = totp.generate(step * STEP_SECONDS);
            let equal: bool = expected.as_bytes().ct_eq(code.as_bytes()).into();
            let step = i64::try_from(step).ok()?;
            if equal && after.is_none_or(|last| step > last) {
                matched = Some(step);
            }
        }
        matched
    }

    /// Seals the secret for `user_id` under the current token key.
    pub fn seal(&self, keys: &TokenKeys, user_id: Uuid) -> anyhow::Result<Sealed> {
        let key_id = keys.current_id();
        let bytes = sealing_key(keys, key_id)?
            .seal(self.0.expose_secret(), user_id.as_bytes())
            .map_err(|e| anyhow::anyhow!("sealing a TOTP secret: {e}"))?;
        Ok(Sealed { bytes, key_id })
    }

    /// Opens what [`Self::seal`] made for `user_id`. `None` when the key is
    /// no longer in the ring or the value was tampered with or moved.
    pub fn open(keys: &TokenKeys, sealed: &Sealed, user_id: Uuid) -> Option<Self> {
        let opened = sealing_key(keys, sealed.key_id)
            .ok()?
            .open(&sealed.bytes, user_id.as_bytes())
            .ok()?;
        let bytes: [u8; SECRET_BYTES] = opened.expose_secret().try_into().ok()?;
        Some(Self(SecretBox::new(Box::new(bytes))))
    }

    fn totp(&self, issuer: Option<String>, account: String) -> Option<TOTP> {
        TOTP::new(
            Algorithm::SHA1,
            DIGITS,
            1,
            STEP_SECONDS,
            self.0.expose_secret().to_vec(),
            issuer,
            account,
        )
        .ok()
    }
}

fn sealing_key(keys: &TokenKeys, key_id: u8) -> anyhow::Result<KeyEncryptionKey> {
    keys.derive_with(key_id, SEAL_DOMAIN, &[])
        .map(KeyEncryptionKey::from_bytes)
        .ok_or_else(|| anyhow::anyhow!("the token key {key_id} that sealed a TOTP secret is gone"))
}

/// RFC 4648 base32, upper case, no padding.
fn base32_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows (8 digits, the RFC's seed).
    #[test]
    fn rfc_6238_appendix_b() {
        let totp = TOTP::new(
            Algorithm::SHA1,
            8,
            0,
            30,
            b"12345678901234567890".to_vec(),
            None,
            String::new(),
        )
        .unwrap();
        for (time, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(totp.generate(time), code, "T = {time}");
        }
    }

    fn secret() -> TotpSecret {
        TotpSecret(SecretBox::new(Box::new(*b"12345678901234567890")))
    }

    fn code_at(secret: &TotpSecret, time: u64) -> String {
        secret.totp(None, String::new()).unwrap().generate(time)
    }

    #[test]
    fn one_step_either_side_and_never_twice() {
        let s = secret();
        let now = 1_111_111_111; // step 37037037
        let step = (now / 30) as i64;
        assert_eq!(s.matching_step(&code_at(&s, now), now, None), Some(step));
        assert_eq!(
            s.matching_step(&code_at(&s, now - 30), now, None),
            Some(step - 1)
        );
        assert_eq!(
            s.matching_step(&code_at(&s, now + 30), now, None),
            Some(step + 1)
        );
        assert_eq!(s.matching_step(&code_at(&s, now - 60), now, None), None);
        assert_eq!(s.matching_step(&code_at(&s, now + 60), now, None), None);
        // Accepted once: that step and older ones are refused.
        assert_eq!(s.matching_step(&code_at(&s, now), now, Some(step)), None);
        assert_eq!(
            s.matching_step(&code_at(&s, now - 30), now, Some(step)),
            None
        );
        assert_eq!(
            s.matching_step(&code_at(&s, now + 30), now, Some(step)),
            Some(step + 1)
        );
        for junk in ["", "12345", "1234567", "12a456", "１２３４５６"] {
            assert_eq!(s.matching_step(junk, now, None), None, "{junk:?}");
        }
    }

    #[test]
    fn sealed_secrets_open_only_for_their_user() {
        let keys = TokenKeys::ephemeral().unwrap();
        let s = TotpSecret::generate().unwrap();
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let sealed = s.seal(&keys, alice).unwrap();
        assert!(
            !sealed
                .bytes
                .windows(SECRET_BYTES)
                .any(|w| w == s.0.expose_secret())
        );
        let opened = TotpSecret::open(&keys, &sealed, alice).unwrap();
        assert_eq!(opened.base32(), s.base32());
        assert!(TotpSecret::open(&keys, &sealed, bob).is_none());
        let other = TokenKeys::ephemeral().unwrap();
        assert!(TotpSecret::open(&other, &sealed, alice).is_none());
    }

    #[test]
    fn base32_and_the_uri() {
        assert_eq!(
            base32_encode(b"12345678901234567890"),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
        assert_eq!(base32_encode(b"f"), "MY");
        let uri = secret()
            .otpauth_uri("auth-platform", "ann@example.com")
            .unwrap();
        assert!(
            uri.starts_with("otpauth://totp/auth-platform:ann%40example.com?"),
            "{uri}"
        );
        assert!(
            uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
            "{uri}"
        );
        assert!(uri.contains("issuer=auth-platform"), "{uri}");
    }
}
