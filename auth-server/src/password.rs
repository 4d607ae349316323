//! argon2id hashing and verification on a bounded pool of dedicated threads.
//!
//! Memory-hard hashing must never run on the async workers, and must not be
//! able to exhaust the machine: `workers` threads each hold at most one hash's
//! memory, and at most `queue` jobs wait. Past that, callers get
//! [`PasswordError::Saturated`] at once (a `503`), instead of queueing without
//! bound. The threads are separate from the pool that runs database queries,
//! so a flood of logins cannot starve refreshes.

use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::oneshot;

use crate::config::PasswordSettings;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password hashing queue is full")]
    Saturated,
    #[error("the password hashing pool has stopped")]
    Stopped,
    #[error("hashing failed: {0}")]
    Hash(String),
}

type Job = Box<dyn FnOnce() + Send + 'static>;

#[derive(Clone)]
pub struct PasswordPool {
    jobs: SyncSender<Job>,
    hasher: Arc<Argon2<'static>>,
    /// A hash of a random password with the configured parameters: what an
    /// unknown email is verified against, so its timing matches a real one.
    dummy_hash: Arc<str>,
}

impl PasswordPool {
    pub fn start(settings: &PasswordSettings) -> anyhow::Result<Self> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        let hasher = Arc::new(Argon2::new(Algorithm::Argon2id, Version::V0x13, params));

        let (jobs, receiver) = mpsc::sync_channel::<Job>(settings.queue);
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..settings.workers {
            let receiver = Arc::clone(&receiver);
            std::thread::Builder::new()
                .name(format!("password-{index}"))
                .spawn(move || work(&receiver))?;
        }

        let mut random = [0u8; 32];
        getrandom::fill(&mut random)
            .map_err(|e| anyhow::anyhow!("no randomness for the dummy hash: {e}"))?;
        let dummy_hash = hasher
            .hash_password(&random)
            .map_err(|e| anyhow::anyhow!("computing the dummy hash: {e}"))?
            .to_string();
        Ok(Self {
            jobs,
            hasher,
            dummy_hash: dummy_hash.into(),
        })
    }

    /// The PHC string of a new salted hash.
    pub async fn hash(&self, password: SecretString) -> Result<String, PasswordError> {
        let hasher = Arc::clone(&self.hasher);
        self.run(move || {
            hasher
                .hash_password(password.expose_secret().as_bytes())
                .map(|hash| hash.to_string())
                .map_err(|e| PasswordError::Hash(e.to_string()))
        })
        .await?
    }

    /// Whether `password` matches `stored`; with `None` (no such user) it
    /// verifies against the dummy hash and answers `false`, taking as long.
    pub async fn verify(
        &self,
        password: SecretString,
        stored: Option<String>,
    ) -> Result<bool, PasswordError> {
        let hasher = Arc::clone(&self.hasher);
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        self.run(move || {
            // A stored hash that does not parse verifies nothing; it still
            // costs one dummy verification, so the answer's timing stays even.
            let matched = match PasswordHash::new(&stored) {
                Ok(parsed) => hasher
                    .verify_password(password.expose_secret().as_bytes(), &parsed)
                    .is_ok(),
                Err(_) => {
                    tracing::error!("a stored password hash does not parse");
                    false
                }
            };
            matched && known
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let (done, result) = oneshot::channel();
        let span = tracing::Span::current();
        let job: Job = Box::new(move || {
            let _entered = span.enter();
            let _ = done.send(job());
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(PasswordError::Saturated),
            Err(TrySendError::Disconnected(_)) => return Err(PasswordError::Stopped),
        }
        result.await.map_err(|_| PasswordError::Stopped)
    }
}

fn work(receiver: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        // Hold the lock only to take a job, not while running it.
        let job = match receiver.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> PasswordSettings {
        PasswordSettings {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
            workers: 1,
            queue: 4,
        }
    }

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let pool = PasswordPool::start(&small()).unwrap();
        let hash = pool
            .hash(SecretString::from("correct horse"))
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert!(
            pool.verify(SecretString::from("correct horse"), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !pool
                .verify(SecretString::from("wrong horse"), Some(hash))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn unknown_users_never_verify() {
        let pool = PasswordPool::start(&small()).unwrap();
        assert!(
            !pool
                .verify(SecretString::from("anything"), None)
                .await
                .unwrap()
        );
        assert!(
            !pool
                .verify(
                    SecretString::from("anything"),
                    Some("not a phc string".into())
                )
                .await
                .unwrap()
        );
    }
}
