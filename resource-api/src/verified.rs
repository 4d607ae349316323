//! Access tokens already verified, so a client presenting the same token on
//! every request pays for the Ed25519 check once, not on each call: that
//! check is most of `/api/me`'s cost (BENCHMARKS.md).
//!
//! What is cached is only the outcome of the full validation routine; on a
//! hit the entry must be for the very key set in use now (any JWKS refetch
//! starts afresh), and the time rules are rechecked, because they move with
//! the clock. Revocation and freshness are checked on every request by the
//! caller, cached or not. Entries are keyed by the token's SHA-256, so no
//! lookup compares a secret in variable time.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use shared_claims::{AccessClaims, KeySet};

struct Entry {
    keys: Arc<KeySet>,
    claims: AccessClaims,
}

pub struct VerifiedTokens {
    entries: RwLock<HashMap<[u8; 32], Entry>>,
    capacity: usize,
    leeway: i64,
}

impl VerifiedTokens {
    pub fn new(capacity: usize, leeway: Duration) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            capacity,
            leeway: i64::try_from(leeway.as_secs()).unwrap_or(i64::MAX),
        }
    }

    fn key(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    /// The claims of `token` if it was verified against `keys` and is still
    /// within its validity window at `now` (Unix seconds).
    pub fn get(&self, token: &str, keys: &Arc<KeySet>, now: i64) -> Option<AccessClaims> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let entry = entries.get(&Self::key(token))?;
        // The same comparisons as the validation routine's.
        let in_window = entry.claims.exp >= now.saturating_sub(self.leeway)
            && entry.claims.nbf <= now.saturating_add(self.leeway);
        (Arc::ptr_eq(&entry.keys, keys) && in_window).then(|| entry.claims.clone())
    }

    /// Remembers a token that passed the full validation against `keys`.
    pub fn insert(&self, token: &str, keys: Arc<KeySet>, claims: AccessClaims) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        // A crude bound, and enough: a full cache only means re-verifying.
        if entries.len() >= self.capacity {
            entries.clear();
        }
        entries.insert(Self::key(token), Entry { keys, claims });
    }
}

#[cfg(test)]
mod tests {
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
            "after a refetch, verify again"
        );
        assert!(
            cache.get("token", &keys, 2_005).is_some(),
            "within the leeway"
        );
        assert!(cache.get("token", &keys, 2_006).is_none(), "expired");
        assert!(cache.get("token", &keys, 994).is_none(), "not yet valid");
    }

    #[test]
    fn stays_bounded() {
        let cache = VerifiedTokens::new(3, Duration::ZERO);
        let keys = Arc::new(KeySet::default());
        for i in 0..10 {
            cache.insert(
                &format!("token-{i}"),
                Arc::clone(&keys),
                claims(0, i64::MAX),
            );
        }
        assert!(cache.entries.read().unwrap().len() <= 3);
        assert!(cache.get("token-9", &keys, 1).is_some());
    }
}
