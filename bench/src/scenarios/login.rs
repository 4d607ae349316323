//! `POST /auth/login` against raw argon2id verification on as many threads
//! as the server has password workers.

use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail};
use argon2::password_hash::PasswordHasher as _;
use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::load::{Load, op};
use crate::report::{self, Row};

use super::{Bench, locked, with_cpu};

impl Bench<'_> {
    /// `POST /auth/login` against raw argon2id verification on as many
    /// threads as the server has password workers.
    pub(super) async fn login(&self) -> anyhow::Result<Row> {
        eprintln!("POST /auth/login against raw argon2id verification");
        let login = self.login_load();
        let p = &self.settings.password;
        let params = Params::new(p.memory_kib, p.iterations, p.parallelism, None)
            .map_err(|e| anyhow!("argon2 parameters: {e}"))?;
        let blocks = params.block_count();
        let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let ceiling = Arc::new(Argon2Ceiling {
            phc: hasher
                .hash_password(self.password.as_bytes())
                .map_err(|e| anyhow!("hashing: {e}"))?
                .to_string(),
            password: Arc::clone(&self.password),
            // One block of memory per thread, written once here so that no
            // verification pays for page faults.
            memories: Mutex::new(vec![vec![Block::default(); blocks]; p.workers]),
        });
        let argon = Load {
            name: "argon2id verify",
            concurrency: p.workers,
            op: op(move |_| {
                let ceiling = Arc::clone(&ceiling);
                async move { tokio::task::spawn_blocking(move || ceiling.verify()).await? }
            }),
        };
        let (login_m, argon_m) = self.compare(&login, &argon).await?;
        self.progress(login.name, &login_m, Some("auth-server"));
        self.progress(argon.name, &argon_m, None);
        let ratio = login_m.rate() / argon_m.rate();
        Ok(Row {
            scenario: "`POST /auth/login`".to_owned(),
            figure: with_cpu(&login_m, "auth-server"),
            ceiling: format!(
                "argon2id verify on {} threads: {}",
                p.workers,
                report::rate(argon_m.rate())
            ),
            ratio: report::ratio(ratio),
            goal: "≥ 0.90".to_owned(),
            met: report::verdict(Some(ratio >= 0.9 && login_m.recorder.failures == 0)),
        })
    }

    pub(super) fn login_load(&self) -> Load {
        let client = Arc::clone(&self.client);
        let (email, password) = (Arc::clone(&self.email), Arc::clone(&self.password));
        Load {
            name: "POST /auth/login",
            concurrency: self.args.login_concurrency,
            op: op(move |_| {
                let client = Arc::clone(&client);
                let (email, password) = (Arc::clone(&email), Arc::clone(&password));
                async move { client.login(&email, &password).await.map(|_| ()) }
            }),
        }
    }
}

/// argon2id verification as its algorithm costs: the PHC string parsed and
/// the hash recomputed with the stored parameters, in memory allocated once.
/// The library's `verify_password` allocates and zeroes `m` KiB on every
/// call; that is overhead a server can avoid, so the ceiling leaves it out.
struct Argon2Ceiling {
    phc: String,
    password: Arc<str>,
    memories: Mutex<Vec<Vec<Block>>>,
}

impl Argon2Ceiling {
    fn verify(&self) -> anyhow::Result<()> {
        let phc = PasswordHash::new(&self.phc).map_err(|e| anyhow!("PHC: {e}"))?;
        let (Some(salt), Some(expected)) = (&phc.salt, &phc.hash) else {
            bail!("the PHC string has no salt or hash");
        };
        let params = Params::try_from(&phc).map_err(|e| anyhow!("PHC parameters: {e}"))?;
        let version = phc
            .version
            .map(Version::try_from)
            .transpose()
            .map_err(|e| anyhow!("PHC version: {e}"))?
            .unwrap_or_default();
        let algorithm =
            Algorithm::try_from(phc.algorithm.as_str()).map_err(|e| anyhow!("PHC: {e}"))?;
        let blocks = params.block_count();
        let argon = Argon2::new(algorithm, version, params);
        let mut memory = locked(&self.memories).pop().unwrap_or_default();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        let mut out = vec![0u8; expected.len()];
        let hashed = argon.hash_password_into_with_memory(
            self.password.as_bytes(),
            salt.as_ref(),
            &mut out,
            &mut memory[..blocks],
        );
        locked(&self.memories).push(memory);
        hashed.map_err(|e| anyhow!("argon2: {e}"))?;
        if out.as_slice() != expected.as_bytes() {
            bail!("argon2 ceiling: the password did not verify");
        }
        Ok(())
    }
}
