//! Refresh tokens, in two forms.
//!
//! **Version 2** (every token issued now): base64url of
//! `2 || session id (16) || generation (u64 BE) || key id (1) || mac (32)`,
//! 78 characters. `u = HMAC-SHA256(token key[key id], "refresh-v2" || session
//! id || generation)` and `mac = SHA-256(u || token_secret)`, where
//! `token_secret` is 32 random bytes kept in the session's row. So the key
//! alone (no secret) and the database alone (no key) cannot mint a token;
//! the server, holding both, mints any generation again (the grace resends
//! the successor a lost answer carried). The session's row is all the
//! storage a session's tokens need, whatever its number of rotations.
//!
//! **Legacy** (issued before version 2): 256 random bits, 43 base64url
//! characters, stored only as SHA-256 in `refresh_tokens`; accepted until
//! they expire, and a rotation of one converts its session.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::tokens::keys::TokenKeys;

/// Bytes of randomness in a legacy token.
const TOKEN_BYTES: usize = 32;
/// base64url of 32 bytes, unpadded: a legacy refresh token (and an e-mail
/// token).
pub const TOKEN_LENGTH: usize = 43;
/// The version byte of the current form.
const V2_VERSION: u8 = 2;
/// Bytes of a version 2 token: version, session id, generation, key id, mac.
const V2_BYTES: usize = 1 + 16 + 8 + 1 + 32;
/// base64url of [`V2_BYTES`], unpadded.
pub const V2_LENGTH: usize = 78;
/// The [`TokenKeys`] domain of version 2 MACs: no other derivation collides.
pub const V2_DOMAIN: &str = "refresh-v2";
/// Bytes of a session's token secret.
pub const SECRET_BYTES: usize = 32;

/// A refresh token as handed to a client. Its `Debug` is redacted.
pub struct RefreshToken(SecretString);

impl RefreshToken {
    /// A new legacy token from the operating system's CSPRNG (what sessions
    /// got before version 2; kept for tests of the upgrade).
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(Self::encode(&bytes))
    }

    fn encode(bytes: &[u8; TOKEN_BYTES]) -> Self {
        Self(SecretString::from(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// A legacy token a client presented. Anything that cannot be one is
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

/// A token shaped like a refresh token of either form: what introspection
/// and revocation tell refresh tokens from access tokens by.
pub fn is_refresh_shaped(presented: &str) -> bool {
    (presented.len() == TOKEN_LENGTH || presented.len() == V2_LENGTH)
        && presented
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A refresh token as a client presented it, parsed: nothing malformed
/// reaches the database.
#[derive(Debug)]
pub enum Presented {
    V2(V2Token),
    Legacy(RefreshToken),
}

impl Presented {
    pub fn parse(presented: &str) -> Option<Self> {
        match presented.len() {
            TOKEN_LENGTH => RefreshToken::parse(presented).map(Self::Legacy),
            V2_LENGTH => V2Token::parse(presented).map(Self::V2),
            _ => None,
        }
    }
}

/// A version 2 token's fields. Its `Debug` shows none of them.
pub struct V2Token {
    session_id: uuid::Uuid,
    generation: i64,
    key_id: u8,
    mac: [u8; 32],
}

impl fmt::Debug for V2Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("V2Token([REDACTED])")
    }
}

impl V2Token {
    /// The fields of a version 2 token: the right length, charset and
    /// version, and a generation of at least 1 that the database can hold.
    pub fn parse(presented: &str) -> Option<Self> {
        if presented.len() != V2_LENGTH
            || !presented
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(presented).ok()?;
        let bytes: [u8; V2_BYTES] = bytes.try_into().ok()?;
        if bytes[0] != V2_VERSION {
            return None;
        }
        let session_id = uuid::Uuid::from_bytes(bytes[1..17].try_into().ok()?);
        let generation = u64::from_be_bytes(bytes[17..25].try_into().ok()?);
        let generation = i64::try_from(generation).ok().filter(|g| *g >= 1)?;
        Some(Self {
            session_id,
            generation,
            key_id: bytes[25],
            mac: bytes[26..].try_into().ok()?,
        })
    }

    pub fn session_id(&self) -> uuid::Uuid {
        self.session_id
    }

    pub fn generation(&self) -> i64 {
        self.generation
    }

    /// What checking the token needs from the server's side: `None` when
    /// the ring no longer holds the key that minted it (then no token of
    /// that key can be told from junk).
    pub fn proof(&self, keys: &TokenKeys) -> Option<Proof> {
        Some(Proof {
            session_id: self.session_id,
            generation: self.generation,
            u: keys.derive_with(
                self.key_id,
                V2_DOMAIN,
                &mac_input(self.session_id, self.generation),
            )?,
            mac: self.mac,
            mac_hash: Sha256::digest(self.mac).into(),
        })
    }
}

fn mac_input(session_id: uuid::Uuid, generation: i64) -> [u8; 24] {
    let mut input = [0u8; 24];
    input[..16].copy_from_slice(session_id.as_bytes());
    // Generations are at least 1 (parse and mint refuse others).
    input[16..].copy_from_slice(&generation.unsigned_abs().to_be_bytes());
    input
}

fn mac(u: &[u8; 32], secret: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(u);
    hasher.update(secret);
    hasher.finalize().into()
}

/// A presented version 2 token with its keyed half computed: the database's
/// half (the session's secret) completes the check. Its `Debug` is
/// redacted.
#[derive(Clone)]
pub struct Proof {
    pub session_id: uuid::Uuid,
    pub generation: i64,
    u: [u8; 32],
    mac: [u8; 32],
    mac_hash: [u8; 32],
}

impl fmt::Debug for Proof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proof")
            .field("session_id", &self.session_id)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl Proof {
    /// `u = HMAC(key, "refresh-v2" || sid || generation)`, for the SQL check
    /// `sha256(sha256(u || token_secret)) = sha256(mac)`.
    pub fn keyed(&self) -> &[u8] {
        &self.u
    }

    /// SHA-256 of the presented mac. The SQL compares hashes of the mac,
    /// never the mac itself: whatever an early-exit comparison leaks is
    /// about a hash no one can steer.
    pub fn mac_hash(&self) -> [u8; 32] {
        self.mac_hash
    }

    /// [`Proof::mac_hash`], borrowed (for a statement's parameter).
    pub fn mac_hash_ref(&self) -> &[u8] {
        &self.mac_hash
    }

    /// A proof for the nil session id, which no session has: for preparing
    /// statements.
    pub fn nobody() -> Self {
        Self {
            session_id: uuid::Uuid::nil(),
            generation: 1,
            u: [0; 32],
            mac: [0; 32],
            mac_hash: [0; 32],
        }
    }

    /// Whether the token is the one `secret` makes, in constant time.
    pub fn verifies(&self, secret: &[u8]) -> bool {
        mac(&self.u, secret).ct_eq(&self.mac).into()
    }
}

/// The token of a session's `generation`, minted with the key `key_id`
/// and the session's secret; `None` when the ring no longer holds that key.
pub fn mint(
    keys: &TokenKeys,
    key_id: u8,
    session_id: uuid::Uuid,
    generation: i64,
    secret: &[u8],
) -> Option<RefreshToken> {
    if generation < 1 {
        return None;
    }
    let u = keys.derive_with(key_id, V2_DOMAIN, &mac_input(session_id, generation))?;
    let mut bytes = [0u8; V2_BYTES];
    bytes[0] = V2_VERSION;
    bytes[1..17].copy_from_slice(session_id.as_bytes());
    bytes[17..25].copy_from_slice(&generation.unsigned_abs().to_be_bytes());
    bytes[25] = key_id;
    bytes[26..].copy_from_slice(&mac(&u, secret));
    Some(RefreshToken(SecretString::from(
        URL_SAFE_NO_PAD.encode(bytes),
    )))
}

/// A session's token secret: 32 bytes from the CSPRNG, stored in its row.
/// Its `Debug` is redacted.
#[derive(Clone)]
pub struct SessionSecret([u8; SECRET_BYTES]);

impl SessionSecret {
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; SECRET_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// A secret as the database holds it; `None` unless 32 bytes.
    pub fn from_stored(stored: Vec<u8>) -> Option<Self> {
        stored.try_into().ok().map(Self)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionSecret([REDACTED])")
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

    fn minted(keys: &TokenKeys, secret: &[u8]) -> (uuid::Uuid, RefreshToken) {
        let sid = uuid::Uuid::new_v4();
        let token = mint(keys, keys.current_id(), sid, 7, secret).unwrap();
        (sid, token)
    }

    #[test]
    fn a_v2_token_round_trips_and_verifies_with_key_and_secret_only() {
        let keys = TokenKeys::ephemeral().unwrap();
        let secret = SessionSecret::generate().unwrap();
        let (sid, token) = minted(&keys, secret.as_bytes());
        assert_eq!(token.expose().len(), V2_LENGTH);
        assert!(is_refresh_shaped(token.expose()));
        let Some(Presented::V2(parsed)) = Presented::parse(token.expose()) else {
            panic!("a minted token parses as version 2");
        };
        assert_eq!((parsed.session_id(), parsed.generation()), (sid, 7));
        let proof = parsed.proof(&keys).unwrap();
        assert!(proof.verifies(secret.as_bytes()));
        // Another session's secret: refused.
        assert!(!proof.verifies(SessionSecret::generate().unwrap().as_bytes()));
        // The SQL's check: sha256(sha256(u || secret)) = sha256(mac).
        let recomputed: [u8; 32] = Sha256::digest(mac(
            proof.u.as_slice().try_into().unwrap(),
            secret.as_bytes(),
        ))
        .into();
        assert_eq!(recomputed, proof.mac_hash());
        // Minting again gives the very same token.
        let again = mint(&keys, keys.current_id(), sid, 7, secret.as_bytes()).unwrap();
        assert_eq!(again.expose(), token.expose());
        // Nothing of it in Debug.
        let shown = format!("{parsed:?} {proof:?} {secret:?} {token:?}");
        assert!(!shown.contains(token.expose()));
        assert!(!shown.contains(&URL_SAFE_NO_PAD.encode(proof.mac)));
    }

    #[test]
    fn tampering_with_any_byte_of_a_v2_token_is_refused() {
        let keys = TokenKeys::ephemeral().unwrap();
        let secret = SessionSecret::generate().unwrap();
        let (sid, token) = minted(&keys, secret.as_bytes());
        let bytes = URL_SAFE_NO_PAD.decode(token.expose()).unwrap();
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x80] {
                let mut tampered = bytes.clone();
                tampered[i] ^= flip;
                let encoded = URL_SAFE_NO_PAD.encode(&tampered);
                let accepted = match Presented::parse(&encoded) {
                    Some(Presented::V2(t)) => t.proof(&keys).is_some_and(|p| {
                        p.session_id == sid && p.generation == 7 && p.verifies(secret.as_bytes())
                    }),
                    Some(Presented::Legacy(_)) => unreachable!("78 characters are never legacy"),
                    None => false,
                };
                assert!(!accepted, "byte {i} flipped by {flip:#x} was accepted");
            }
        }
    }

    #[test]
    fn a_v2_token_under_another_key_or_of_the_wrong_shape_is_refused() {
        let keys = TokenKeys::ephemeral().unwrap();
        let other = TokenKeys::ephemeral().unwrap();
        let secret = SessionSecret::generate().unwrap();
        let (_, token) = minted(&other, secret.as_bytes());
        let Some(Presented::V2(parsed)) = Presented::parse(token.expose()) else {
            panic!("well formed");
        };
        // Under a ring without the minting key: no proof, or (on a one-byte
        // id collision) one that does not verify.
        assert!(
            !parsed
                .proof(&keys)
                .is_some_and(|p| p.verifies(secret.as_bytes()))
        );
        let t = token.expose();
        for junk in [
            String::new(),
            t[..77].to_owned(),
            format!("{t}A"),
            format!("{}=", &t[..77]),
            format!("{}+", &t[..77]),
        ] {
            assert!(Presented::parse(&junk).is_none(), "{junk:?}");
        }
        // Version byte other than 2, and generation 0 or beyond i64.
        let mut bytes = URL_SAFE_NO_PAD.decode(t).unwrap();
        bytes[0] = 3;
        assert!(Presented::parse(&URL_SAFE_NO_PAD.encode(&bytes)).is_none());
        bytes[0] = 2;
        bytes[17..25].copy_from_slice(&0u64.to_be_bytes());
        assert!(Presented::parse(&URL_SAFE_NO_PAD.encode(&bytes)).is_none());
        bytes[17..25].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(Presented::parse(&URL_SAFE_NO_PAD.encode(&bytes)).is_none());
        // A legacy token still parses as one.
        let legacy = RefreshToken::generate().unwrap();
        assert!(matches!(
            Presented::parse(legacy.expose()),
            Some(Presented::Legacy(_))
        ));
    }
}
