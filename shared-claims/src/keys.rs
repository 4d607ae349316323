use std::collections::HashMap;
use std::fmt;

use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};

/// A public key a token may be verified with, and the one algorithm it is
/// used with. The algorithm comes from the key, never from the token.
#[derive(Clone)]
pub struct VerificationKey {
    pub algorithm: Algorithm,
    pub key: DecodingKey,
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// The verification keys by `kid`.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: HashMap<String, VerificationKey>,
}

impl KeySet {
    pub fn insert(&mut self, kid: String, key: VerificationKey) {
        self.keys.insert(kid, key);
    }

    pub fn get(&self, kid: &str) -> Option<&VerificationKey> {
        self.keys.get(kid)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The usable signing keys of a JWKS document. Keys without a `kid`, not
    /// meant for signatures, of an algorithm we do not accept, or that do not
    /// parse are skipped: one odd entry must not hide the good ones.
    pub fn from_jwks(set: &JwkSet) -> Self {
        let mut keys = Self::default();
        for jwk in &set.keys {
            if let Some((kid, key)) = usable_key(jwk) {
                keys.insert(kid, key);
            }
        }
        keys
    }
}

/// Only asymmetric signature algorithms: a symmetric key in a JWKS would let
/// anyone who read it sign tokens.
fn accepted_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    match jwk.common.key_algorithm? {
        KeyAlgorithm::EdDSA => Some(Algorithm::EdDSA),
        KeyAlgorithm::ES256 => Some(Algorithm::ES256),
        KeyAlgorithm::ES384 => Some(Algorithm::ES384),
        KeyAlgorithm::RS256 => Some(Algorithm::RS256),
        KeyAlgorithm::PS256 => Some(Algorithm::PS256),
        _ => None,
    }
}

fn usable_key(jwk: &Jwk) -> Option<(String, VerificationKey)> {
    use jsonwebtoken::jwk::PublicKeyUse;
    let kid = jwk.common.key_id.clone()?;
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let algorithm = accepted_algorithm(jwk)?;
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some((kid, VerificationKey { algorithm, key }))
}
