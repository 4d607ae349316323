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

use std::cell::RefCell;

use argon2::password_hash::PasswordHasher as _;
use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
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
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        self.run(move || {
            // A stored hash that does not parse verifies nothing; it still
            // costs one dummy verification, so the answer's timing stays even.
            let matched = match PasswordHash::new(&stored) {
                Ok(parsed) => {
                    verify_with_reused_memory(password.expose_secret().as_bytes(), &parsed)
                }
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

thread_local! {
    /// Each password thread's argon2 working memory, allocated once. The
    /// library's verifier allocates and zeroes it (19 MiB by default) on
    /// every call: page faults and memset that cost a third of a login, and
    /// allocator arenas that tripled the server's peak memory (BENCHMARKS.md).
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// What `PasswordVerifier::verify_password` does (the stored hash's own
/// algorithm, version and parameters; a constant-time comparison of the
/// outputs), on this thread's reused memory.
fn verify_with_reused_memory(password: &[u8], stored: &PasswordHash) -> bool {
    let (Some(salt), Some(expected)) = (&stored.salt, &stored.hash) else {
        return false;
    };
    let argon2 = (|| {
        let algorithm = Algorithm::try_from(stored.algorithm.as_str()).ok()?;
        let version = stored
            .version
            .map(Version::try_from)
            .transpose()
            .ok()?
            .unwrap_or_default();
        let params = Params::try_from(stored).ok()?;
        Some((Argon2::new(algorithm, version, params.clone()), params))
    })();
    let Some((argon2, params)) = argon2 else {
        tracing::error!("a stored password hash has parameters argon2 refuses");
        return false;
    };
    let mut output = vec![0u8; expected.len()];
    let hashed = MEMORY.with_borrow_mut(|memory| {
        let blocks = params.block_count();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        argon2.hash_password_into_with_memory(
            password,
            salt.as_ref(),
            &mut output,
            &mut memory[..blocks],
        )
    });
    hashed.is_ok() && bool::from(output.as_slice().ct_eq(expected.as_bytes()))
}

/// The calling thread gets the lowest CPU priority (nice 19; on Linux the
/// nice value is the thread's own). Under a login flood the hashing then
/// takes what the other threads leave: refreshes and every other request
/// keep their latency (in the bench, refresh p99 under a flood 1.5–1.6× its
/// p99 at rest over three runs, 1.2–2.2× without), and logins wait in their
/// queue instead. It is not a guarantee: on some hosts any busy core adds a
/// scheduler tick to the tail whatever its priority (BENCHMARKS.md).
/// With nothing else to run, hashing has the CPU to itself as before.
fn lowest_cpu_priority() {
    let thread = rustix::thread::gettid();
    if let Err(error) = rustix::process::setpriority_process(Some(thread), 19) {
        tracing::warn!(%error, "could not lower the password thread's CPU priority");
    }
}

fn work(receiver: &Mutex<mpsc::Receiver<Job>>) {
    lowest_cpu_priority();
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

    /// The nice value of each of this process's threads named `password-…`.
    fn password_thread_nice_values() -> Vec<i64> {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| {
                let task = task.ok()?.path();
                let name = std::fs::read_to_string(task.join("comm")).ok()?;
                if !name.starts_with("password-") {
                    return None;
                }
                let stat = std::fs::read_to_string(task.join("stat")).ok()?;
                // Field 19 of stat(5); the fields after the name start at 3.
                let after_name = &stat[stat.rfind(')')? + 2..];
                after_name.split(' ').nth(19 - 3)?.parse().ok()
            })
            .collect()
    }

    #[tokio::test]
    async fn hashing_threads_run_at_the_lowest_cpu_priority() {
        let pool = PasswordPool::start(&small()).unwrap();
        // A job done means the thread is past setting its priority.
        pool.hash(SecretString::from("x")).await.unwrap();
        let nice = password_thread_nice_values();
        assert!(!nice.is_empty(), "no password thread found");
        assert!(nice.iter().all(|n| *n == 19), "{nice:?}");
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
    async fn hashes_of_other_parameters_verify_on_reused_memory() {
        // Hashed under other settings (a configuration change), verified by
        // one worker whose memory must grow and shrink to each hash.
        let big = PasswordPool::start(&PasswordSettings {
            memory_kib: 4096,
            ..small()
        })
        .unwrap();
        let small_pool = PasswordPool::start(&small()).unwrap();
        let big_hash = big.hash(SecretString::from("correct horse")).await.unwrap();
        let small_hash = small_pool
            .hash(SecretString::from("correct horse"))
            .await
            .unwrap();
        for (hash, ok) in [(&small_hash, true), (&big_hash, true), (&small_hash, true)] {
            assert_eq!(
                small_pool
                    .verify(SecretString::from("correct horse"), Some(hash.clone()))
                    .await
                    .unwrap(),
                ok
            );
            assert!(
                !small_pool
                    .verify(SecretString::from("correct horsE"), Some(hash.clone()))
                    .await
                    .unwrap()
            );
        }
        // The library's own verifier agrees with ours.
        use argon2::password_hash::PasswordVerifier;
        let parsed = PasswordHash::new(&big_hash).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
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
