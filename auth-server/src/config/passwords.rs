//! Password hashing: the argon2id parameters, and the threads and queue that
//! bound how much hashing can happen at once.

use service_kit::env::{ConfigError, Env, invalid};

#[derive(Debug, Clone)]
pub struct PasswordSettings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Threads that hash and verify passwords; each holds `memory_kib` while busy.
    pub workers: usize,
    /// Jobs that may wait for a worker before login answers `503`.
    pub queue: usize,
}

impl PasswordSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let settings = Self {
            memory_kib: env.parsed("ARGON2_MEMORY_KIB", 19 * 1024, "a whole number of KiB")?,
            iterations: env.parsed("ARGON2_ITERATIONS", 2, "a whole number")?,
            parallelism: env.parsed("ARGON2_PARALLELISM", 1, "a whole number")?,
            // Half the cores: a login flood must leave CPU to the refreshes
            // and to PostgreSQL (BENCHMARKS.md: refresh p99 under a flood
            // went from 3.1–6.0× to 1.5× of at rest).
            workers: env.parsed(
                "PASSWORD_HASH_WORKERS",
                (super::available_threads() / 2).max(1),
                "a whole number",
            )?,
            queue: env.parsed("PASSWORD_HASH_QUEUE", 256, "a whole number")?,
        };
        if settings.workers == 0 {
            return Err(invalid("PASSWORD_HASH_WORKERS", "must be at least 1"));
        }
        argon2::Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(|e| {
            invalid(
                "ARGON2_MEMORY_KIB",
                format!("argon2 parameters rejected: {e}"),
            )
        })?;
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::lookup;

    fn passwords(vars: &[(&str, &str)]) -> Result<PasswordSettings, ConfigError> {
        PasswordSettings::from_env(&Env(lookup(vars)))
    }

    #[test]
    fn defaults_are_owasps_minimum_on_half_the_cores() {
        let p = passwords(&[]).unwrap();
        assert_eq!(
            (p.memory_kib, p.iterations, p.parallelism),
            (19 * 1024, 2, 1)
        );
        assert!(p.workers >= 1);
        assert_eq!(p.queue, 256);
    }

    #[test]
    fn no_workers_or_parameters_argon2_refuses() {
        assert_eq!(
            passwords(&[("PASSWORD_HASH_WORKERS", "0")])
                .unwrap_err()
                .variable,
            "PASSWORD_HASH_WORKERS"
        );
        assert_eq!(
            passwords(&[("ARGON2_MEMORY_KIB", "1")])
                .unwrap_err()
                .variable,
            "ARGON2_MEMORY_KIB"
        );
    }
}
