//! Signing keys kept in PostgreSQL (`KEY_ENCRYPTION_KEY_FILE`): created and
//! rotated by whichever replica takes the keys' lock first, loaded by every
//! replica at start, on every `signing_keys` notification and every
//! [`KeyStore::check_interval`] (the rules: [`crate::keys::keyring`]; the
//! statements: [`crate::db::signing_keys`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use tokio::sync::Notify;

use super::ServiceError;
use crate::config::Settings;
use crate::db::signing_keys::{self, Candidate, Lock, StoredKey};
use crate::db::{Database, DbError};
use crate::keys::keyring::{self, KeyTimes, Keyring, Schedule, SigningKeys};
use crate::keys::sealing::KeyEncryptionKey;
use crate::keys::signing::SigningKey;

/// Kept past the end of a key's publication before it is deleted, for
/// `auth-server keys list` and for APIs slow to notice.
const FORGET_AFTER: Duration = Duration::from_secs(7 * 86_400);
/// The longest between two checks of the keys.
const MAX_CHECK_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct KeyStore {
    pub database: Database,
    pub kek: Arc<KeyEncryptionKey>,
    pub schedule: Schedule,
    /// How long a retired key stays published: the access tokens' lifetime
    /// and leeway.
    pub last_token: Duration,
    /// `RETIRED_SIGNING_KEY_FILES`: keys that signed before the database's
    /// (a former `SIGNING_KEY_FILE`), published and accepted while listed.
    pub retired_files: Vec<PathBuf>,
}

/// What `auth-server keys rotate` did.
#[derive(Debug, Clone)]
pub struct Rotated {
    pub kid: String,
    pub activate_at: DateTime<Utc>,
}

impl KeyStore {
    /// The store `KEY_ENCRYPTION_KEY_FILE` asks for; `None` when the keys
    /// are elsewhere (`SIGNING_KEY_FILE`, or an ephemeral development key).
    pub fn from_settings(settings: &Settings, database: &Database) -> anyhow::Result<Option<Self>> {
        let tokens = &settings.tokens;
        let (None, Some(kek_file)) = (&tokens.signing_key_file, &tokens.key_encryption_key_file)
        else {
            return Ok(None);
        };
        Ok(Some(Self {
            database: database.clone(),
            kek: Arc::new(KeyEncryptionKey::from_file(kek_file)?),
            schedule: Schedule {
                rotation: tokens.signing_key_rotation,
                publish_ahead: tokens.signing_key_publish_ahead,
            },
            last_token: tokens.access_ttl + tokens.leeway,
            retired_files: tokens.retired_key_files.clone(),
        }))
    }

    /// How often every replica checks the keys: often enough that a next
    /// key published [`Schedule::publish_ahead`] ahead is loaded everywhere
    /// well before it signs, even without its notification.
    pub fn check_interval(&self) -> Duration {
        (self.schedule.publish_ahead / 4).clamp(Duration::from_millis(200), MAX_CHECK_INTERVAL)
    }

    /// A fresh key, its private half sealed under the key-encryption key.
    fn candidate(&self) -> Result<Candidate, ServiceError> {
        let key = SigningKey::ephemeral().map_err(ServiceError::Internal)?;
        let seed = key.seed().map_err(ServiceError::Internal)?;
        let sealed = self
            .kek
            .seal(seed.expose_secret(), key.kid().as_bytes())
            .map_err(|e| ServiceError::Internal(e.into()))?;
        Ok(Candidate {
            kid: key.kid().to_owned(),
            public_key: key.public_key().to_vec(),
            sealed_private_key: sealed,
        })
    }

    /// Creates the first key, or the next one when the schedule says so;
    /// the kid created, if any.
    pub async fn rotate_if_due(&self, lock: Lock) -> Result<Option<String>, ServiceError> {
        let candidate = self.candidate()?;
        let schedule = self.schedule;
        let kid = candidate.kid.clone();
        let created = self
            .database
            .run(move |conn| {
                signing_keys::create_if(conn, lock, false, &candidate, |now, stored| {
                    let keys: Vec<KeyTimes> = stored.iter().map(times).collect();
                    keyring::due(now, &keys, schedule).map(|new| new.activate_at)
                })
            })
            .await?;
        Ok(created.map(|_| kid))
    }

    /// `auth-server keys rotate`: a next key, published now and signing
    /// `publish_ahead` later (not while another is waiting to sign); with
    /// `now`, signing at once, replacing any key waiting to.
    pub async fn rotate(&self, now: bool) -> Result<Option<Rotated>, ServiceError> {
        let candidate = self.candidate()?;
        let ahead = chrono::Duration::from_std(self.schedule.publish_ahead)
            .map_err(|e| ServiceError::Internal(e.into()))?;
        let kid = candidate.kid.clone();
        let created = self
            .database
            .run(move |conn| {
                signing_keys::create_if(conn, Lock::Wait, now, &candidate, |at, keys| {
                    // With no key yet (no server started), it signs at once.
                    if now || keys.is_empty() {
                        return Some(at);
                    }
                    let waiting = keys.iter().any(|k| k.activate_at > at);
                    (!waiting).then(|| at + ahead)
                })
            })
            .await?;
        Ok(created.map(|activate_at| Rotated { kid, activate_at }))
    }

    /// Every key stored (`auth-server keys list`).
    pub async fn list(&self) -> Result<Vec<StoredKey>, ServiceError> {
        Ok(self.database.run(signing_keys::all).await?)
    }

    /// The keys still published or about to be, opened: a keyring. A key
    /// that does not open (another key-encryption key, a tampered row) is
    /// an error, never skipped: signing with an older key instead would go
    /// unnoticed.
    pub async fn load(&self) -> Result<Keyring, ServiceError> {
        let since = Utc::now()
            - chrono::Duration::from_std(self.last_token).unwrap_or(chrono::Duration::days(1));
        let forget_before =
            since - chrono::Duration::from_std(FORGET_AFTER).unwrap_or(chrono::Duration::days(7));
        let stored = self
            .database
            .run(move |conn| {
                signing_keys::forget(conn, forget_before)?;
                signing_keys::since(conn, since)
            })
            .await?;
        let mut keys: Vec<(SigningKey, KeyTimes)> = Vec::with_capacity(stored.len());
        for row in stored {
            let seed = self
                .kek
                .open(&row.sealed_private_key, row.kid.as_bytes())
                .map_err(|e| {
                    ServiceError::Internal(anyhow::anyhow!(
                        "signing key {}: {e} (is KEY_ENCRYPTION_KEY_FILE the one the keys were sealed with?)",
                        row.kid
                    ))
                })?;
            let key =
                SigningKey::from_seed(seed.expose_secret()).map_err(ServiceError::Internal)?;
            if key.kid() != row.kid || key.public_key()[..] != row.public_key[..] {
                return Err(ServiceError::Internal(anyhow::anyhow!(
                    "signing key {}: the private half does not match the stored public key",
                    row.kid
                )));
            }
            keys.push((key, times(&row)));
        }
        if keys.is_empty() {
            return Err(ServiceError::Unavailable(
                "no signing key stored yet".to_owned(),
            ));
        }
        for path in &self.retired_files {
            let key = SigningKey::from_pem_file(path).map_err(ServiceError::Internal)?;
            keys.push((key, KeyTimes::CONFIGURED_RETIRED));
        }
        Ok(Keyring::new(keys, self.last_token))
    }

    /// At start: the first key if there is none (one replica creates it,
    /// the others wait for the lock and find it), the next one if due; then
    /// the keyring.
    pub async fn start(&self) -> Result<Keyring, ServiceError> {
        if let Some(kid) = self.rotate_if_due(Lock::Wait).await? {
            tracing::info!(kid, "created a signing key");
        }
        self.load().await
    }

    /// Keeps `keys` current for as long as the runtime runs: rotates when
    /// due, reloads on every check and every notification on `wake`, and
    /// wakes `reloaded` after each reload.
    pub fn spawn(self, keys: Arc<SigningKeys>, wake: Arc<Notify>, reloaded: Arc<Notify>) {
        let interval = self.check_interval();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(interval) => {}
                }
                match self.rotate_if_due(Lock::Try).await {
                    Ok(Some(kid)) => tracing::info!(kid, "published the next signing key"),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "checking the signing keys' rotation failed; will retry")
                    }
                }
                match self.load().await {
                    Ok(ring) => {
                        keys.replace(ring);
                        reloaded.notify_waiters();
                    }
                    Err(ServiceError::Unavailable(cause))
                        if cause == DbError::Stopped.to_string() =>
                    {
                        return;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "reloading the signing keys failed; keeping those loaded")
                    }
                }
            }
        });
    }
}

/// A stored key's dates, as the keyring reads them.
fn times(stored: &StoredKey) -> KeyTimes {
    KeyTimes {
        publish_at: stored.publish_at,
        activate_at: stored.activate_at,
        retire_at: stored.retire_at,
    }
}
