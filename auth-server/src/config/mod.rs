//! Typed configuration, read once at start from the environment and passed in.
//!
//! One section per file, each read and checked by its own `from_env` with a
//! message that names the variable, so a misconfigured deployment fails at
//! start rather than on the first request. This file composes them; a new
//! section (administration) is a new file and a new field here.

mod accounts;
mod database;
mod http;
mod internal_api;
mod janitor;
pub mod libpq;
mod mail;
mod passwords;
mod production;
mod rate_limits;
mod sessions;
mod tokens;
mod webauthn;

use service_kit::env::{ConfigError, Env, invalid};

pub use accounts::AccountSettings;
pub use database::{DEFAULT_DATABASE_URL, DatabaseSettings};
pub use http::HttpSettings;
pub use internal_api::InternalApiSettings;
pub use janitor::JanitorSettings;
pub use mail::MailSettings;
pub use passwords::PasswordSettings;
pub use rate_limits::RateLimitSettings;
pub use service_kit::env::DEVELOPMENT_INTERNAL_TOKEN;
pub use sessions::SessionSettings;
pub use tokens::TokenSettings;
pub use webauthn::WebauthnSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

impl Environment {
    /// `APP_ENV`.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(if env.production()? {
            Self::Production
        } else {
            Self::Development
        })
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub environment: Environment,
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub tokens: TokenSettings,
    pub internal_api: InternalApiSettings,
    pub password: PasswordSettings,
    pub rate_limits: RateLimitSettings,
    pub janitor: JanitorSettings,
    pub mail: MailSettings,
    pub accounts: AccountSettings,
    pub sessions: SessionSettings,
    pub webauthn: WebauthnSettings,
}

impl Settings {
    /// Settings from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Settings from any lookup: the environment, or a map in tests.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(lookup);
        let environment = Environment::from_env(&env)?;
        let tokens = TokenSettings::from_env(&env)?;
        let mail = MailSettings::from_env(&env)?;
        let webauthn = WebauthnSettings::from_env(&env, &mail.public_url, &tokens.issuer)?;
        let settings = Self {
            environment,
            http: HttpSettings::from_env(&env)?,
            database: DatabaseSettings::from_env(&env, environment)?,
            tokens,
            internal_api: InternalApiSettings::from_env(&env)?,
            password: PasswordSettings::from_env(&env)?,
            rate_limits: RateLimitSettings::from_env(&env)?,
            janitor: JanitorSettings::from_env(&env)?,
            mail,
            accounts: AccountSettings::from_env(&env)?,
            sessions: SessionSettings::from_env(&env)?,
            webauthn,
        };
        if settings.internal_api.bind == settings.http.bind && settings.http.bind.port() != 0 {
            return Err(invalid(
                "AUTH_INTERNAL_BIND",
                "must differ from AUTH_BIND: the internal listener is never the public one",
            ));
        }
        if settings.is_production() {
            production::refuse_insecure(&settings)?;
        }
        Ok(settings)
    }

    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }

    /// What is accepted but worth a line in the log at start (production).
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = if self.is_production() {
            production::warnings(self)
        } else {
            Vec::new()
        };
        if self.tokens.signing_key_file.is_some() && self.tokens.key_encryption_key_file.is_some() {
            warnings.push(
                "KEY_ENCRYPTION_KEY_FILE is ignored while SIGNING_KEY_FILE is set: the file's key signs, and keys do not rotate on their own"
                    .to_owned(),
            );
        }
        warnings
    }
}

/// The machine's threads: the default for the HTTP and password workers.
fn available_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// A lookup over fixed variables, for the sections' tests.
#[cfg(test)]
fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: std::collections::HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k| map.get(k).cloned()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::from_lookup(lookup(vars))
    }

    #[test]
    fn development_needs_no_settings() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.tokens.access_ttl, Duration::from_secs(900));
        assert_eq!(s.tokens.refresh_ttl, Duration::from_secs(7 * 86_400));
        assert_eq!(s.tokens.reuse_grace, Duration::from_secs(10));
        assert_eq!(s.http.allowed_origins, vec!["http://localhost:3000"]);
        assert!(s.http.cookie_secure);
        assert!(s.database.create_if_missing);
        assert_eq!(s.password.memory_kib, 19 * 1024);
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
        assert_eq!(
            settings(&[("AUTH_INTERNAL_BIND", "127.0.0.1:8080")])
                .unwrap_err()
                .variable,
            "AUTH_INTERNAL_BIND"
        );
    }

    #[test]
    fn the_environment_is_development_or_production() {
        assert_eq!(
            settings(&[("APP_ENV", "staging")]).unwrap_err().variable,
            "APP_ENV"
        );
        let dev = Env(lookup(&[("APP_ENV", "dev")]));
        assert_eq!(
            Environment::from_env(&dev).unwrap(),
            Environment::Development
        );
    }
}
