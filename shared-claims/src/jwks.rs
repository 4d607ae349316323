//! The auth server's public keys, fetched from its JWKS and kept in memory.
//!
//! The request path only reads the in-memory set ([`JwksCache::keys`]); all
//! fetching happens in a background task. A token with an unknown `kid` asks
//! that task for a refetch ([`JwksCache::request_refetch`]), which it does at
//! most once per `min_refetch_interval`, so a flood of junk `kid`s cannot
//! make it hammer the auth server. A fetch that finds the keys unchanged
//! keeps the very same [`KeySet`] (the same `Arc`), so what was verified
//! against it (the resource API's cache) stays valid.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use tokio::sync::Notify;

use crate::fetch::{self, FetchError};
use crate::keys::KeySet;

/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub struct JwksSettings {
    /// `…/.well-known/jwks.json` of the auth server.
    pub url: String,
    /// Routine refetch, for keys added or retired.
    pub refresh_interval: Duration,
    /// At most one fetch per this, however many unknown `kid`s arrive.
    pub min_refetch_interval: Duration,
    pub timeout: Duration,
}

impl JwksSettings {
    pub fn for_auth_url(auth_url: &str) -> Self {
        Self {
            url: format!("{}/.well-known/jwks.json", auth_url.trim_end_matches('/')),
            refresh_interval: Duration::from_secs(300),
            min_refetch_interval: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("fetching the JWKS: {0}")]
    Fetch(String),
    /// A redirect included: never followed.
    #[error("the JWKS answer was {0}")]
    Status(reqwest::StatusCode),
    #[error("the JWKS is larger than 256 KiB")]
    TooLarge,
    #[error("the JWKS does not parse: {0}")]
    Parse(String),
    #[error("the JWKS holds no usable signing key")]
    Empty,
}

pub struct JwksCache {
    settings: JwksSettings,
    client: reqwest::Client,
    /// The keys, and the document they were read from: a refetch that
    /// reads the same document keeps the same keys.
    keys: RwLock<(Arc<KeySet>, Option<JwkSet>)>,
    last_fetch: Mutex<Option<Instant>>,
    wanted: Notify,
}

impl JwksCache {
    pub fn new(settings: JwksSettings) -> Result<Arc<Self>, JwksError> {
        let client = fetch::client(settings.timeout, settings.timeout)
            .map_err(|e| JwksError::Fetch(e.to_string()))?;
        Ok(Arc::new(Self {
            settings,
            client,
            keys: RwLock::new((Arc::new(KeySet::default()), None)),
            last_fetch: Mutex::new(None),
            wanted: Notify::new(),
        }))
    }

    /// The keys as last fetched: a lock-free-in-practice read, no I/O.
    pub fn keys(&self) -> Arc<KeySet> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        Arc::clone(&keys.0)
    }

    pub fn is_loaded(&self) -> bool {
        !self.keys().is_empty()
    }

    /// Asks the background task for a fetch soon (rate-limited there).
    pub fn request_refetch(&self) {
        self.wanted.notify_one();
    }

    /// Fetches now and installs what it finds (see [`Self::install`]).
    pub async fn fetch(&self) -> Result<usize, JwksError> {
        *self.last_fetch.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        let request = self.client.get(&self.settings.url);
        let body = fetch::get_capped(request, MAX_JWKS_BYTES)
            .await
            .map_err(|e| match e {
                FetchError::Status(status) => JwksError::Status(status),
                FetchError::TooLarge(_) => JwksError::TooLarge,
                FetchError::Unreachable(e) | FetchError::Read(e) => JwksError::Fetch(e),
            })?;
        let set: JwkSet =
            serde_json::from_slice(&body).map_err(|e| JwksError::Parse(e.to_string()))?;
        self.install(set)
    }

    /// Makes the usable keys of `set` the ones in use, and returns how many
    /// there are. When `set` is the document already in use, the key set is
    /// left as it is (the same `Arc`), so nothing verified against it has
    /// to be verified again.
    pub fn install(&self, set: JwkSet) -> Result<usize, JwksError> {
        let mut current = self.keys.write().unwrap_or_else(|p| p.into_inner());
        if current.1.as_ref() == Some(&set) {
            return Ok(current.0.len());
        }
        let keys = KeySet::from_jwks(&set);
        if keys.is_empty() {
            return Err(JwksError::Empty);
        }
        let count = keys.len();
        *current = (Arc::new(keys), Some(set));
        Ok(count)
    }

    /// How long until a fetch is allowed again.
    fn cooldown(&self) -> Duration {
        let last = *self.last_fetch.lock().unwrap_or_else(|p| p.into_inner());
        last.map_or(Duration::ZERO, |at| {
            self.settings
                .min_refetch_interval
                .saturating_sub(at.elapsed())
        })
    }

    /// Keeps the keys fresh until the process ends: at start (retrying until
    /// the auth server answers), every `refresh_interval`, and soon after an
    /// unknown `kid` is seen.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let cache = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let cooldown = cache.cooldown();
                if !cooldown.is_zero() {
                    tokio::time::sleep(cooldown).await;
                }
                match cache.fetch().await {
                    Ok(count) => tracing::debug!(keys = count, "fetched the JWKS"),
                    Err(e) => tracing::warn!(error = %e, "JWKS fetch failed"),
                }
                // Until keys are loaded, retry at the refetch pace.
                let next = if cache.is_loaded() {
                    cache.settings.refresh_interval
                } else {
                    cache.settings.min_refetch_interval
                };
                tokio::select! {
                    () = cache.wanted.notified() => {}
                    () = tokio::time::sleep(next) => {}
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JWKS of one Ed25519 key (RFC 8037's example public key).
    fn document(kid: &str) -> JwkSet {
        serde_json::from_value(serde_json::json!({ "keys": [{
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid,
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
        }]}))
        .unwrap()
    }

    fn cache() -> Arc<JwksCache> {
        JwksCache::new(JwksSettings::for_auth_url("http://127.0.0.1:9")).unwrap()
    }

    #[test]
    fn an_unchanged_document_keeps_the_same_keys() {
        let cache = cache();
        assert_eq!(cache.install(document("one")).unwrap(), 1);
        let first = cache.keys();
        assert_eq!(cache.install(document("one")).unwrap(), 1);
        assert!(Arc::ptr_eq(&first, &cache.keys()), "the same keys");
        cache.install(document("two")).unwrap();
        assert!(!Arc::ptr_eq(&first, &cache.keys()), "new keys");
        assert!(cache.keys().get("one").is_none());
        assert!(cache.keys().get("two").is_some());
    }

    #[test]
    fn a_document_without_usable_keys_changes_nothing() {
        let cache = cache();
        cache.install(document("one")).unwrap();
        let before = cache.keys();
        let empty: JwkSet = serde_json::from_str(r#"{"keys": []}"#).unwrap();
        assert!(matches!(cache.install(empty), Err(JwksError::Empty)));
        assert!(Arc::ptr_eq(&before, &cache.keys()));
    }
}
