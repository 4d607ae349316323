//! Access tokens already verified, so a client presenting the same token on
//! every request pays for the Ed25519 check once, not on each call: that
//! check is most of `/api/me`'s cost (BENCHMARKS.md).
//!
//! What is cached is only the outcome of the full validation routine; on a
//! hit the entry must be for the very key set in use now (a JWKS refetch
//! that changed the keys starts afresh; one that found them unchanged keeps
//! the same set, see `crate::jwks`), and the time rules are
//! rechecked, because they move with the clock. Revocation and freshness
//! are checked on every request by the caller, cached or not. Entries are
//! keyed by the token's SHA-256, so no lookup compares a secret in variable
//! time.
//!
//! The cache is `quick_cache`'s: bounded, and when full it evicts by
//! S3-FIFO (tokens seen once go first), so a burst of new tokens does not
//! empty it for the clients that present theirs on every call.

use std::sync::Arc;
use std::time::Duration;

use quick_cache::sync::Cache;
use sha2::{Digest, Sha256};
use shared_claims::{AccessClaims, KeySet};

#[derive(Clone)]
struct Entry {
    keys: Arc<KeySet>,
    claims: AccessClaims,
}

pub struct VerifiedTokens {
    entries: Cache<[u8; 32], Entry>,
    leeway: i64,
}

impl VerifiedTokens {
    /// At most about `capacity` tokens.
    pub fn new(capacity: usize, leeway: Duration) -> Self {
        Self {
            entries: Cache::new(capacity),
            leeway: i64::try_from(leeway.as_secs()).unwrap_or(i64::MAX),
        }
    }

    fn key(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    /// The claims of `token` if it was verified against `keys` and is still
    /// within its validity window at `now` (Unix seconds).
    pub fn get(&self, token: &str, keys: &Arc<KeySet>, now: i64) -> Option<AccessClaims> {
        let entry = self.entries.get(&Self::key(token))?;
        // The same comparisons as the validation routine's.
        let in_window = entry.claims.exp >= now.saturating_sub(self.leeway)
            && entry.claims.nbf <= now.saturating_add(self.leeway);
        (Arc::ptr_eq(&entry.keys, keys) && in_window).then_some(entry.claims)
    }

    /// Remembers a token that passed the full validation against `keys`.
    pub fn insert(&self, token: &str, keys: Arc<KeySet>, claims: AccessClaims) {
        self.entries
            .insert(Self::key(token), Entry { keys, claims });
    }

    /// How many tokens are remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use crate::jwks::{JwksCache, JwksSettings};
    use uuid::Uuid;

    use super::*;

    fn claims(nbf: i64, exp: i64) -> AccessClaims {
        AccessClaims {
            iss: "iss".into(),
            aud: "aud".into(),
            sub: Uuid::new_v4(),
            sid: Uuid::new_v4(),
            jti: Uuid::new_v4(),
            iat: nbf,
            nbf,
            exp,
            email: "a@example.com".into(),
            email_verified: false,
            roles: vec![],
            rv: None,
            amr: Vec::new(),
            acr: None,
            auth_time: None,
        }
    }

    #[test]
    fn hits_only_for_the_same_keys_and_inside_the_window() {
        let cache = VerifiedTokens::new(10, Duration::from_secs(5));
        let keys = Arc::new(KeySet::default());
        cache.insert("token", Arc::clone(&keys), claims(1_000, 2_000));
        assert!(cache.get("token", &keys, 1_500).is_some());
        assert!(cache.get("other", &keys, 1_500).is_none());
        assert!(
            cache
                .get("token", &Arc::new(KeySet::default()), 1_500)
                .is_none(),
            "after a refetch that changed the keys, verify again"
        );
        assert!(
            cache.get("token", &keys, 2_005).is_some(),
            "within the leeway"
        );
        assert!(cache.get("token", &keys, 2_006).is_none(), "expired");
        assert!(cache.get("token", &keys, 994).is_none(), "not yet valid");
    }

    /// Tokens with random `kid`s make the API refetch the JWKS every
    /// `JWKS_MIN_REFETCH_INTERVAL`; when the keys did not change, what was
    /// verified stays verified.
    #[test]
    fn survives_a_refetch_of_an_unchanged_key_set() {
        let jwks = JwksCache::new(JwksSettings::for_auth_url("http://127.0.0.1:9")).unwrap();
        let document: jsonwebtoken::jwk::JwkSet = serde_json::from_value(serde_json::json!({
            "keys": [{
                "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": "k1",
                "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
            }]
        }))
        .unwrap();
        jwks.install(document.clone()).unwrap();
        let cache = VerifiedTokens::new(10, Duration::ZERO);
        cache.insert("token", jwks.keys(), claims(0, i64::MAX));
        jwks.install(document).unwrap();
        assert!(cache.get("token", &jwks.keys(), 1).is_some());
    }

    #[test]
    fn stays_bounded_and_keeps_the_tokens_in_use() {
        let cache = VerifiedTokens::new(100, Duration::ZERO);
        let keys = Arc::new(KeySet::default());
        cache.insert("regular", Arc::clone(&keys), claims(0, i64::MAX));
        for i in 0..10_000 {
            // The regular client keeps presenting its token...
            assert!(cache.get("regular", &keys, 1).is_some(), "after {i}");
            // ...while tokens seen once stream past.
            cache.insert(&format!("once-{i}"), Arc::clone(&keys), claims(0, i64::MAX));
            assert!(cache.len() <= 100, "{} entries", cache.len());
        }
    }
}
