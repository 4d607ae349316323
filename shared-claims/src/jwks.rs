//! The auth server's public keys, fetched from its JWKS and kept in memory.
//!
//! The request path only reads the in-memory set ([`JwksCache::keys`]); all
//! fetching happens in a background task. A token with an unknown `kid` asks
//! that task for a refetch ([`JwksCache::request_refetch`]), which it does at
//! most once per `min_refetch_interval`, so a flood of junk `kid`s cannot
//! make it hammer the auth server.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use tokio::sync::Notify;

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
    keys: RwLock<Arc<KeySet>>,
    last_fetch: Mutex<Option<Instant>>,
    wanted: Notify,
}

impl JwksCache {
    pub fn new(settings: JwksSettings) -> Result<Arc<Self>, JwksError> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()
            .map_err(|e| JwksError::Fetch(e.to_string()))?;
        Ok(Arc::new(Self {
            settings,
            client,
            keys: RwLock::new(Arc::new(KeySet::default())),
            last_fetch: Mutex::new(None),
            wanted: Notify::new(),
        }))
    }

    /// The keys as last fetched: a lock-free-in-practice read, no I/O.
    pub fn keys(&self) -> Arc<KeySet> {
        match self.keys.read() {
            Ok(keys) => Arc::clone(&keys),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub fn is_loaded(&self) -> bool {
        !self.keys().is_empty()
    }

    /// Asks the background task for a fetch soon (rate-limited there).
    pub fn request_refetch(&self) {
        self.wanted.notify_one();
    }

    /// Fetches now and replaces the key set.
    pub async fn fetch(&self) -> Result<usize, JwksError> {
        *self.last_fetch.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        let response = self
            .client
            .get(&self.settings.url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| JwksError::Fetch(e.without_url().to_string()))?;
        if response
            .content_length()
            .is_some_and(|n| n as usize > MAX_JWKS_BYTES)
        {
            return Err(JwksError::TooLarge);
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| JwksError::Fetch(e.to_string()))?;
        if body.len() > MAX_JWKS_BYTES {
            return Err(JwksError::TooLarge);
        }
        let set: JwkSet =
            serde_json::from_slice(&body).map_err(|e| JwksError::Parse(e.to_string()))?;
        let keys = KeySet::from_jwks(&set);
        if keys.is_empty() {
            return Err(JwksError::Empty);
        }
        let count = keys.len();
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
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
