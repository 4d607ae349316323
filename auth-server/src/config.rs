//! Typed configuration, read once at start from the environment and passed in.
//!
//! Every setting is validated here with a message that names the variable, so
//! a misconfigured deployment fails at start rather than on the first request.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use service_kit::duration::parse_duration;
use service_kit::env::{ConfigError, Env, invalid};

use crate::proxies::TrustedProxies;

pub use service_kit::env::DEVELOPMENT_INTERNAL_TOKEN;

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@localhost:5432/auth";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub environment: Environment,
    pub bind: SocketAddr,
    /// HTTP worker threads (each runs many requests concurrently).
    pub http_workers: usize,
    /// How long a client may take to send a request's head, and its body.
    pub client_timeout: Duration,
    pub database: DatabaseSettings,
    pub tokens: TokenSettings,
    pub cookie_secure: bool,
    pub allowed_origins: Vec<String>,
    /// Peers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
    pub internal_api_token: SecretString,
    pub password: PasswordSettings,
    pub rate_limits: RateLimitSettings,
    pub janitor: JanitorSettings,
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub pool_size: u32,
    /// How long a request waits for a pooled connection before `503`.
    pub checkout_timeout: Duration,
    /// How long a transaction waits for a row lock before `503`.
    pub lock_timeout: Duration,
    pub run_migrations: bool,
    /// Create the database when it does not exist (development only).
    pub create_if_missing: bool,
}

#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub issuer: String,
    pub audience: String,
    pub signing_key_file: Option<PathBuf>,
    /// Keys that no longer sign but are still published and accepted, so
    /// their tokens live out their lifetime after a key rotation.
    pub retired_key_files: Vec<PathBuf>,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub session_max_lifetime: Duration,
    pub reuse_grace: Duration,
    pub leeway: Duration,
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub per: Duration,
}

#[derive(Debug, Clone)]
pub struct RateLimitSettings {
    /// Per client IP, shared by login and register. `None` turns it off.
    pub login: Option<RateLimit>,
    /// Per account (normalised email), shared by login and register: slows
    /// guessing one account's password from many addresses.
    pub account: Option<RateLimit>,
    /// Per client IP on refresh. `None` turns it off.
    pub refresh: Option<RateLimit>,
}

#[derive(Debug, Clone)]
pub struct JanitorSettings {
    pub interval: Duration,
    /// How long sessions are kept after they expire or are revoked.
    pub session_retention: Duration,
}

fn rate_limit<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    variable: &'static str,
    default: &str,
) -> Result<Option<RateLimit>, ConfigError> {
    parse_rate_limit(&env.string(variable, default)).map_err(|m| invalid(variable, m))
}

/// `20/1m` is twenty requests a minute; `0` turns the limit off.
pub fn parse_rate_limit(raw: &str) -> Result<Option<RateLimit>, String> {
    let raw = raw.trim();
    if raw == "0" {
        return Ok(None);
    }
    let expected = || format!("`{raw}` is not a rate such as `20/1m`, or `0` for none");
    let (count, window) = raw.split_once('/').ok_or_else(expected)?;
    let requests: u32 = count.trim().parse().map_err(|_| expected())?;
    let per = parse_duration(window).map_err(|_| expected())?;
    if requests == 0 {
        return Ok(None);
    }
    if per.is_zero() {
        return Err(expected());
    }
    Ok(Some(RateLimit { requests, per }))
}

impl Settings {
    /// Settings from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Settings from any lookup: the environment, or a map in tests.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(lookup);
        let production = env.production()?;
        let environment = if production {
            Environment::Production
        } else {
            Environment::Development
        };

        let bind = env.parsed(
            "AUTH_BIND",
            default_bind(),
            "an address such as 127.0.0.1:8080",
        )?;
        let workers_default = std::thread::available_parallelism().map_or(2, |n| n.get());
        let http_workers = env.parsed("HTTP_WORKERS", workers_default, "a whole number")?;
        if http_workers == 0 {
            return Err(invalid("HTTP_WORKERS", "must be at least 1"));
        }
        let explicit_database_url = env.get("DATABASE_URL");
        let database = DatabaseSettings {
            create_if_missing: !production && explicit_database_url.is_none(),
            url: SecretString::from(
                explicit_database_url.unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()),
            ),
            pool_size: env.parsed("DATABASE_POOL_SIZE", 16, "a whole number")?,
            checkout_timeout: env.duration("DATABASE_TIMEOUT", "3s")?,
            lock_timeout: env.duration("DATABASE_LOCK_TIMEOUT", "2s")?,
            run_migrations: env.flag("RUN_MIGRATIONS", true)?,
        };
        let client_timeout = env.duration("CLIENT_TIMEOUT", "10s")?;
        if client_timeout < Duration::from_millis(100) {
            return Err(invalid("CLIENT_TIMEOUT", "must be at least 100ms"));
        }
        if database.pool_size == 0 {
            return Err(invalid("DATABASE_POOL_SIZE", "must be at least 1"));
        }
        if database.checkout_timeout.is_zero() {
            return Err(invalid("DATABASE_TIMEOUT", "must be more than 0s"));
        }

        let tokens = TokenSettings {
            issuer: env.string("JWT_ISSUER", "http://localhost:8080"),
            audience: env.string("JWT_AUDIENCE", "resource-api"),
            signing_key_file: env.get("SIGNING_KEY_FILE").map(PathBuf::from),
            retired_key_files: env
                .string("RETIRED_SIGNING_KEY_FILES", "")
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .collect(),
            access_ttl: env.duration("ACCESS_TOKEN_TTL", "15m")?,
            refresh_ttl: env.duration("REFRESH_TOKEN_TTL", "7d")?,
            session_max_lifetime: env.duration("SESSION_MAX_LIFETIME", "30d")?,
            reuse_grace: env.duration("REFRESH_REUSE_GRACE", "10s")?,
            leeway: env.duration("JWT_LEEWAY", "5s")?,
        };
        for (variable, value) in [
            ("ACCESS_TOKEN_TTL", tokens.access_ttl),
            ("REFRESH_TOKEN_TTL", tokens.refresh_ttl),
            ("SESSION_MAX_LIFETIME", tokens.session_max_lifetime),
        ] {
            if value < Duration::from_secs(1) {
                return Err(invalid(variable, "must be at least 1s"));
            }
        }
        if tokens.access_ttl > Duration::from_secs(24 * 3600) {
            return Err(invalid(
                "ACCESS_TOKEN_TTL",
                "must be at most 24h: access tokens are meant to be short-lived",
            ));
        }

        let cookie_secure = env.flag("COOKIE_SECURE", true)?;
        let allowed_origins = env.origins("ALLOWED_ORIGINS", "http://localhost:3000")?;
        let trusted_proxies = TrustedProxies::parse(&env.string("TRUSTED_PROXIES", ""))
            .map_err(|m| invalid("TRUSTED_PROXIES", m))?;

        let internal_api_token = SecretString::from(
            env.secret("INTERNAL_API_TOKEN", "INTERNAL_API_TOKEN_FILE")?
                .unwrap_or_else(|| DEVELOPMENT_INTERNAL_TOKEN.to_owned()),
        );

        let password = PasswordSettings {
            memory_kib: env.parsed("ARGON2_MEMORY_KIB", 19 * 1024, "a whole number of KiB")?,
            iterations: env.parsed("ARGON2_ITERATIONS", 2, "a whole number")?,
            parallelism: env.parsed("ARGON2_PARALLELISM", 1, "a whole number")?,
            // Half the cores: a login flood must leave CPU to the refreshes
            // and to PostgreSQL (BENCHMARKS.md: refresh p99 under a flood
            // went from 3.1–6.0× to 1.5× of at rest).
            workers: env.parsed(
                "PASSWORD_HASH_WORKERS",
                (workers_default / 2).max(1),
                "a whole number",
            )?,
            queue: env.parsed("PASSWORD_HASH_QUEUE", 256, "a whole number")?,
        };
        if password.workers == 0 {
            return Err(invalid("PASSWORD_HASH_WORKERS", "must be at least 1"));
        }

        let rate_limits = RateLimitSettings {
            login: rate_limit(&env, "LOGIN_RATE_LIMIT", "20/1m")?,
            account: rate_limit(&env, "LOGIN_ACCOUNT_RATE_LIMIT", "10/5m")?,
            refresh: rate_limit(&env, "REFRESH_RATE_LIMIT", "300/1m")?,
        };
        let janitor = JanitorSettings {
            interval: env.duration("CLEANUP_INTERVAL", "1h")?,
            session_retention: env.duration("SESSION_RETENTION", "7d")?,
        };
        if janitor.interval.is_zero() {
            return Err(invalid("CLEANUP_INTERVAL", "must be more than 0s"));
        }

        let settings = Self {
            environment,
            bind,
            http_workers,
            client_timeout,
            database,
            tokens,
            cookie_secure,
            allowed_origins,
            trusted_proxies,
            internal_api_token,
            password,
            rate_limits,
            janitor,
        };
        settings.check_argon2()?;
        if production {
            settings.refuse_insecure_production()?;
        }
        Ok(settings)
    }

    fn check_argon2(&self) -> Result<(), ConfigError> {
        let p = &self.password;
        argon2::Params::new(p.memory_kib, p.iterations, p.parallelism, None)
            .map(|_| ())
            .map_err(|e| {
                invalid(
                    "ARGON2_MEMORY_KIB",
                    format!("argon2 parameters rejected: {e}"),
                )
            })
    }

    fn refuse_insecure_production(&self) -> Result<(), ConfigError> {
        if self.tokens.signing_key_file.is_none() {
            return Err(invalid(
                "SIGNING_KEY_FILE",
                "must be set in production: an ephemeral key would invalidate every token on restart (create one with `auth-server keygen --out FILE`)",
            ));
        }
        if self.internal_api_token.expose_secret() == DEVELOPMENT_INTERNAL_TOKEN {
            return Err(invalid(
                "INTERNAL_API_TOKEN",
                "must be set in production: the development value is public",
            ));
        }
        if self.internal_api_token.expose_secret().len() < 32 {
            return Err(invalid(
                "INTERNAL_API_TOKEN",
                "must be at least 32 characters in production",
            ));
        }
        if !self.cookie_secure {
            return Err(invalid(
                "COOKIE_SECURE",
                "must be true in production: refresh tokens must never travel over plain HTTP",
            ));
        }
        Ok(())
    }

    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }
}

fn default_bind() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(move |k| map.get(k).cloned())
    }

    #[test]
    fn development_needs_no_settings() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.tokens.access_ttl, Duration::from_secs(900));
        assert_eq!(s.tokens.refresh_ttl, Duration::from_secs(7 * 86_400));
        assert_eq!(s.tokens.reuse_grace, Duration::from_secs(10));
        assert_eq!(s.allowed_origins, vec!["http://localhost:3000"]);
        assert!(s.cookie_secure);
        assert!(s.database.create_if_missing);
        assert_eq!(s.password.memory_kib, 19 * 1024);
    }

    #[test]
    fn production_names_each_insecure_setting() {
        let key = ("SIGNING_KEY_FILE", "/keys/signing.pem");
        let token = ("INTERNAL_API_TOKEN", "0123456789abcdef0123456789abcdef");
        let prod = ("APP_ENV", "production");
        assert_eq!(
            settings(&[prod, token]).unwrap_err().variable,
            "SIGNING_KEY_FILE"
        );
        assert_eq!(
            settings(&[prod, key]).unwrap_err().variable,
            "INTERNAL_API_TOKEN"
        );
        assert_eq!(
            settings(&[prod, key, token, ("COOKIE_SECURE", "false")])
                .unwrap_err()
                .variable,
            "COOKIE_SECURE"
        );
        assert!(settings(&[prod, key, token]).is_ok());
    }

    #[test]
    fn bad_values_name_their_variable() {
        assert_eq!(
            settings(&[("ACCESS_TOKEN_TTL", "15")])
                .unwrap_err()
                .variable,
            "ACCESS_TOKEN_TTL"
        );
        assert_eq!(
            settings(&[("COOKIE_SECURE", "maybe")])
                .unwrap_err()
                .variable,
            "COOKIE_SECURE"
        );
        assert_eq!(
            settings(&[("ALLOWED_ORIGINS", "*")]).unwrap_err().variable,
            "ALLOWED_ORIGINS"
        );
        assert_eq!(
            settings(&[("LOGIN_RATE_LIMIT", "lots")])
                .unwrap_err()
                .variable,
            "LOGIN_RATE_LIMIT"
        );
        assert_eq!(
            settings(&[("AUTH_BIND", "nowhere")]).unwrap_err().variable,
            "AUTH_BIND"
        );
    }

    #[test]
    fn rate_limits_parse() {
        assert_eq!(
            parse_rate_limit("20/1m"),
            Ok(Some(RateLimit {
                requests: 20,
                per: Duration::from_secs(60)
            }))
        );
        assert_eq!(parse_rate_limit("0"), Ok(None));
        assert!(parse_rate_limit("20").is_err());
        assert!(parse_rate_limit("20/0s").is_err());
    }
}
