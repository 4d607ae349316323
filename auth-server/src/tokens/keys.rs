//! The server's secret for tokens it must be able to produce again without
//! storing them: HMAC-SHA256 keys, shared by every replica.
//!
//! The database keeps only SHA-256 hashes of refresh and e-mail tokens, so a
//! copy of it yields no usable token. Where the server must produce a token
//! again (the refresh successor a lost answer carried; the link of an e-mail
//! still waiting in the queue), it derives the token from something the
//! database holds under this key, and checks the result against the stored
//! hash before using it. Without the key, the database alone is not enough.
//!
//! Rotation: the current key derives; retired keys
//! (`RETIRED_REFRESH_TOKEN_KEY_FILES`) are still tried when recognising what
//! an older key derived, for as long as they are configured.
//!
//! Each key has a one-byte id, derived from the key itself (so every replica
//! agrees without configuring it): a refresh token names the key that minted
//! it. Two keys of one ring with the same id are refused at start.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;

/// Fewest bytes of key material accepted (`auth-server secret` writes 43).
pub const MIN_KEY_BYTES: usize = 32;

/// A derived value: 256 bits.
pub type Derived = [u8; 32];

struct Key(SecretSlice<u8>);

/// The domain of a key's id.
const KEY_ID_DOMAIN: &str = "token-key-id";

impl Key {
    /// The key's one-byte id: the first byte of its own HMAC over a fixed
    /// domain, public by design (it says which key to try, nothing more).
    fn id(&self) -> u8 {
        self.derive(KEY_ID_DOMAIN, &[])[0]
    }

    fn derive(&self, domain: &str, input: &[u8]) -> Derived {
        // new_from_slice fails only for fixed-size MACs; HMAC takes any key.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.expose_secret())
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        // Domain separation: the same input under two purposes never gives
        // the same value, and no domain is a prefix of another's input.
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(input);
        mac.finalize().into_bytes().into()
    }
}

pub struct TokenKeys {
    current: Key,
    retired: Vec<Key>,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKeys")
            .field("retired", &self.retired.len())
            .finish_non_exhaustive()
    }
}

impl TokenKeys {
    /// The keys from their files (`REFRESH_TOKEN_KEY_FILE`, then
    /// `RETIRED_REFRESH_TOKEN_KEY_FILES`).
    pub fn from_files(current: &Path, retired: &[PathBuf]) -> anyhow::Result<Self> {
        let keys = Self {
            current: read_key(current, "REFRESH_TOKEN_KEY_FILE")?,
            retired: retired
                .iter()
                .map(|path| read_key(path, "RETIRED_REFRESH_TOKEN_KEY_FILES"))
                .collect::<anyhow::Result<_>>()?,
        };
        let mut seen = [false; 256];
        for key in keys.all() {
            let id = usize::from(key.id());
            anyhow::ensure!(
                !seen[id],
                "two refresh token keys (REFRESH_TOKEN_KEY_FILE, RETIRED_REFRESH_TOKEN_KEY_FILES) share the key id {id} (or are the same key): create a new current key with `auth-server secret --out FILE`"
            );
            seen[id] = true;
        }
        Ok(keys)
    }

    fn all(&self) -> impl Iterator<Item = &Key> {
        std::iter::once(&self.current).chain(&self.retired)
    }

    /// The id of the current key: what new refresh tokens name.
    pub fn current_id(&self) -> u8 {
        self.current.id()
    }

    /// Whether the ring still holds the key with this id.
    pub fn holds(&self, id: u8) -> bool {
        self.all().any(|key| key.id() == id)
    }

    /// HMAC-SHA256 of `input` for `domain` under the key with this id, if
    /// the ring holds it.
    pub fn derive_with(&self, id: u8, domain: &str, input: &[u8]) -> Option<Derived> {
        self.all()
            .find(|key| key.id() == id)
            .map(|key| key.derive(domain, input))
    }

    /// A key that lives as long as the process: development only. A restart
    /// (or another replica) then refuses the refresh tokens it minted: their
    /// users log in again.
    pub fn ephemeral() -> anyhow::Result<Self> {
        let mut bytes = vec![0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for a key: {e}"))?;
        Ok(Self::from_material(bytes))
    }

    fn from_material(material: Vec<u8>) -> Self {
        Self {
            current: Key(SecretSlice::from(material)),
            retired: Vec::new(),
        }
    }

    /// HMAC-SHA256 of `input` under the current key, for `domain`.
    pub fn derive(&self, domain: &str, input: &[u8]) -> Derived {
        self.current.derive(domain, input)
    }

    /// The same under every key, the current one first: for recognising a
    /// value a retired key derived.
    pub fn derive_all<'a>(
        &'a self,
        domain: &'a str,
        input: &'a [u8],
    ) -> impl Iterator<Item = Derived> + 'a {
        std::iter::once(&self.current)
            .chain(&self.retired)
            .map(move |key| key.derive(domain, input))
    }
}

fn read_key(path: &Path, variable: &str) -> anyhow::Result<Key> {
    let raw =
        std::fs::read(path).with_context(|| format!("reading {variable} {}", path.display()))?;
    // A trailing newline from an editor or `echo` is not key material.
    let end = raw
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    let material = raw[..end].to_vec();
    anyhow::ensure!(
        material.len() >= MIN_KEY_BYTES,
        "{variable} {} holds {} bytes; at least {MIN_KEY_BYTES} are needed (create one with `auth-server secret --out FILE`)",
        path.display(),
        material.len()
    );
    Ok(Key(SecretSlice::from(material)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(material: &[u8]) -> TokenKeys {
        TokenKeys::from_material(material.to_vec())
    }

    #[test]
    fn derivation_is_deterministic_and_domain_separated() {
        let k = keys(&[7; 32]);
        assert_eq!(k.derive("a", b"x"), k.derive("a", b"x"));
        assert_ne!(k.derive("a", b"x"), k.derive("b", b"x"));
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(k.derive("ab", b"c"), k.derive("a", b"bc"));
        assert_ne!(k.derive("a", b"x"), keys(&[8; 32]).derive("a", b"x"));
    }

    #[test]
    fn retired_keys_are_tried_after_the_current_one() {
        let old = keys(&[1; 32]);
        let mut new = keys(&[2; 32]);
        new.retired.push(Key(SecretSlice::from(vec![1; 32])));
        let all: Vec<_> = new.derive_all("d", b"i").collect();
        assert_eq!(all, vec![new.derive("d", b"i"), old.derive("d", b"i")]);
        // Each key is found by its id.
        assert!(new.holds(old.current_id()));
        assert_eq!(
            new.derive_with(old.current_id(), "d", b"i"),
            Some(old.derive("d", b"i"))
        );
        assert_eq!(
            new.derive_with(new.current_id(), "d", b"i"),
            Some(new.derive("d", b"i"))
        );
        let stranger = keys(&[3; 32]).current_id();
        if stranger != new.current_id() && stranger != old.current_id() {
            assert!(!new.holds(stranger));
            assert_eq!(new.derive_with(stranger, "d", b"i"), None);
        }
    }

    #[test]
    fn key_files_need_enough_material_and_lose_trailing_whitespace() {
        let dir = std::env::temp_dir().join(format!("token-keys-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let short = dir.join("short");
        std::fs::write(&short, b"0123456789\n").unwrap();
        assert!(TokenKeys::from_files(&short, &[]).is_err());
        let good = dir.join("good");
        std::fs::write(
            &good,
            [b'k'; 43].iter().chain(b"\n").copied().collect::<Vec<_>>(),
        )
        .unwrap();
        let loaded = TokenKeys::from_files(&good, &[]).unwrap();
        assert_eq!(
            loaded.derive("d", b"i"),
            keys(&[b'k'; 43]).derive("d", b"i")
        );
        assert!(!format!("{loaded:?}").contains("kkkk"), "Debug is redacted");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
