//! The database: where it is and how the connections to it are secured (as
//! libpq reads `DATABASE_URL` and its variables: [`super::libpq`]), how
//! many connections, how long a request may wait for one or for a row
//! lock, and what to do at start.

use std::time::Duration;

use secrecy::SecretString;
use service_kit::env::{ConfigError, Env, invalid};

use super::Environment;
use super::libpq::{self, LibpqEnv, Tls};

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@localhost:5432/auth";

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// For libpq (the blocking pool, the LISTEN connection, migrations):
    /// `DATABASE_URL` with its TLS parameters as resolved, each explicit.
    pub url: SecretString,
    /// For the rotation's connections (tokio-postgres): `DATABASE_URL`
    /// without libpq's TLS parameters, whose meaning is [`Self::tls`].
    pub rotation: tokio_postgres::Config,
    pub tls: Tls,
    /// Every host is this machine or a Unix socket.
    pub local: bool,
    /// Connections of the blocking pool (everything but the rotation).
    pub pool_size: u32,
    /// Connections of the rotation's asynchronous pool, shared out between
    /// the HTTP workers.
    pub rotation_pool_size: u32,
    /// How long a request waits for a pooled connection before `503`.
    pub checkout_timeout: Duration,
    /// How long a transaction waits for a row lock before `503`.
    pub lock_timeout: Duration,
    pub run_migrations: bool,
    /// Create the database when it does not exist (development only).
    pub create_if_missing: bool,
    /// `DATABASE_ALLOW_UNVERIFIED_TLS`: production accepts an `sslmode`
    /// below `verify-full` to a host that is not this machine.
    pub allow_unverified_tls: bool,
}

impl DatabaseSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        environment: Environment,
    ) -> Result<Self, ConfigError> {
        let explicit_url = env.get("DATABASE_URL");
        // A password kept out of the URL and the environment (Compose's
        // generated one, a mounted secret).
        let password = env.secret("DATABASE_PASSWORD", "DATABASE_PASSWORD_FILE")?;
        let connection = libpq::read(
            explicit_url.as_deref().unwrap_or(DEFAULT_DATABASE_URL),
            &LibpqEnv::from_env(env)?,
            password.as_deref(),
        )?;
        let settings = Self {
            // Only the development default is ours to create: a URL someone
            // set names a database they manage.
            create_if_missing: environment == Environment::Development && explicit_url.is_none(),
            url: connection.libpq_url,
            rotation: connection.rotation,
            tls: connection.tls,
            local: connection.local,
            pool_size: env.parsed("DATABASE_POOL_SIZE", 16, "a whole number")?,
            rotation_pool_size: env.parsed("DATABASE_ROTATION_POOL_SIZE", 16, "a whole number")?,
            checkout_timeout: env.duration("DATABASE_TIMEOUT", "3s")?,
            lock_timeout: env.duration("DATABASE_LOCK_TIMEOUT", "2s")?,
            run_migrations: env.flag("RUN_MIGRATIONS", true)?,
            allow_unverified_tls: env.flag("DATABASE_ALLOW_UNVERIFIED_TLS", false)?,
        };
        if settings.pool_size == 0 {
            return Err(invalid("DATABASE_POOL_SIZE", "must be at least 1"));
        }
        if settings.rotation_pool_size == 0 {
            return Err(invalid("DATABASE_ROTATION_POOL_SIZE", "must be at least 1"));
        }
        if settings.checkout_timeout.is_zero() {
            return Err(invalid("DATABASE_TIMEOUT", "must be more than 0s"));
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;
    use crate::config::lookup;

    fn database(
        vars: &[(&str, &str)],
        environment: Environment,
    ) -> Result<DatabaseSettings, ConfigError> {
        DatabaseSettings::from_env(&Env(lookup(vars)), environment)
    }

    #[test]
    fn only_the_development_default_is_created() {
        let default = database(&[], Environment::Development).unwrap();
        assert_eq!(
            default.url.expose_secret(),
            format!("{DEFAULT_DATABASE_URL}?sslmode=prefer")
        );
        assert!(default.local);
        assert!(default.create_if_missing);
        assert_eq!(default.pool_size, 16);
        assert_eq!(default.rotation_pool_size, 16);
        assert_eq!(default.checkout_timeout, Duration::from_secs(3));
        assert_eq!(default.lock_timeout, Duration::from_secs(2));
        assert!(default.run_migrations);
        let explicit = [("DATABASE_URL", "postgres://db.internal/auth")];
        assert!(
            !database(&explicit, Environment::Development)
                .unwrap()
                .create_if_missing
        );
        assert!(
            !database(&[], Environment::Production)
                .unwrap()
                .create_if_missing
        );
    }

    #[test]
    fn an_empty_pool_or_no_wait_is_refused() {
        for (variable, value) in [
            ("DATABASE_POOL_SIZE", "0"),
            ("DATABASE_ROTATION_POOL_SIZE", "0"),
            ("DATABASE_TIMEOUT", "0s"),
        ] {
            assert_eq!(
                database(&[(variable, value)], Environment::Development)
                    .unwrap_err()
                    .variable,
                variable
            );
        }
    }
}
