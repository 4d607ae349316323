//! Typed configuration, read once at start from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use service_kit::env::{
    ConfigError, DEFAULT_ALLOWED_ORIGINS, DEVELOPMENT_INTERNAL_TOKEN, Env, invalid,
};

/// Fewest characters of `INTERNAL_API_TOKEN` production accepts (the auth
/// server asks the same).
const MIN_INTERNAL_TOKEN_CHARS: usize = 32;

/// The longest `JWT_LEEWAY` production accepts: clock skew is seconds.
const MAX_LEEWAY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct Settings {
    pub production: bool,
    pub bind: SocketAddr,
    /// `/metrics`, apart from the public listener.
    pub internal_bind: SocketAddr,
    pub http_workers: usize,
    /// The auth server's public listener, where the JWKS is fetched.
    pub auth_url: String,
    /// The auth server's internal listener, where revocations are fetched.
    pub auth_internal_url: String,
    pub issuer: String,
    pub audience: String,
    pub leeway: Duration,
    pub allowed_origins: Vec<String>,
    pub internal_api_token: SecretString,
    pub revocation: RevocationSettings,
    pub jwks_refresh_interval: Duration,
    pub jwks_min_refetch_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct RevocationSettings {
    /// Pace of the sync when the auth server answers without waiting, and of
    /// retries after a failure.
    pub sync_interval: Duration,
    /// Past this without a successful sync, requests fail closed (`503`).
    pub max_staleness: Duration,
    pub fail_open: bool,
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(lookup);
        let production = env.production()?;
        let workers_default = std::thread::available_parallelism().map_or(2, |n| n.get());
        let settings = Self {
            production,
            bind: env.parsed(
                "API_BIND",
                SocketAddr::from(([127, 0, 0, 1], 8081)),
                "an address such as 127.0.0.1:8081",
            )?,
            internal_bind: env.parsed(
                "API_INTERNAL_BIND",
                SocketAddr::from(([127, 0, 0, 1], 9081)),
                "an address such as 127.0.0.1:9081",
            )?,
            http_workers: env.parsed("HTTP_WORKERS", workers_default, "a whole number")?,
            auth_url: http_url(&env, "AUTH_URL", "http://127.0.0.1:8080")?,
            auth_internal_url: http_url(&env, "AUTH_INTERNAL_URL", "http://127.0.0.1:9080")?,
            issuer: env.string("JWT_ISSUER", "http://localhost:8080"),
            audience: env.string("JWT_AUDIENCE", "resource-api"),
            leeway: env.duration("JWT_LEEWAY", "5s")?,
            allowed_origins: env.origins("ALLOWED_ORIGINS", DEFAULT_ALLOWED_ORIGINS)?,
            internal_api_token: SecretString::from(
                env.secret("INTERNAL_API_TOKEN", "INTERNAL_API_TOKEN_FILE")?
                    .unwrap_or_else(|| DEVELOPMENT_INTERNAL_TOKEN.to_owned()),
            ),
            revocation: RevocationSettings {
                sync_interval: env.duration("REVOCATION_SYNC_INTERVAL", "1s")?,
                max_staleness: env.duration("REVOCATION_MAX_STALENESS", "30s")?,
                fail_open: env.flag("REVOCATION_FAIL_OPEN", false)?,
            },
            jwks_refresh_interval: env.duration("JWKS_REFRESH_INTERVAL", "5m")?,
            jwks_min_refetch_interval: env.duration("JWKS_MIN_REFETCH_INTERVAL", "2s")?,
        };
        if settings.internal_bind == settings.bind && settings.bind.port() != 0 {
            return Err(invalid(
                "API_INTERNAL_BIND",
                "must differ from API_BIND: the internal listener is never the public one",
            ));
        }
        if settings.http_workers == 0 {
            return Err(invalid("HTTP_WORKERS", "must be at least 1"));
        }
        if settings.revocation.sync_interval < Duration::from_millis(50) {
            return Err(invalid("REVOCATION_SYNC_INTERVAL", "must be at least 50ms"));
        }
        if settings.revocation.max_staleness <= settings.revocation.sync_interval {
            return Err(invalid(
                "REVOCATION_MAX_STALENESS",
                "must be longer than REVOCATION_SYNC_INTERVAL",
            ));
        }
        if settings.jwks_refresh_interval < Duration::from_secs(1) {
            return Err(invalid("JWKS_REFRESH_INTERVAL", "must be at least 1s"));
        }
        if production {
            settings.refuse_insecure()?;
        }
        Ok(settings)
    }

    /// What production refuses, naming the setting.
    fn refuse_insecure(&self) -> Result<(), ConfigError> {
        let token = self.internal_api_token.expose_secret();
        if token == DEVELOPMENT_INTERNAL_TOKEN {
            return Err(invalid(
                "INTERNAL_API_TOKEN",
                "must be set in production: the development value is public",
            ));
        }
        if token.chars().count() < MIN_INTERNAL_TOKEN_CHARS {
            return Err(invalid(
                "INTERNAL_API_TOKEN",
                "must be at least 32 characters in production",
            ));
        }
        if self.leeway > MAX_LEEWAY {
            return Err(invalid(
                "JWT_LEEWAY",
                "must be at most 60s in production: longer keeps expired tokens alive",
            ));
        }
        Ok(())
    }

    /// What is accepted but worth a line in the log at start (production).
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if !self.production {
            return warnings;
        }
        if self.auth_url.starts_with("http://") {
            warnings.push(format!(
                "AUTH_URL is plain HTTP ({}): the JWKS it serves decides which tokens are accepted, so fetch it over https:// unless the network path is private",
                self.auth_url
            ));
        }
        if self.allowed_origins == [DEFAULT_ALLOWED_ORIGINS] {
            warnings.push(format!(
                "ALLOWED_ORIGINS is the development default ({DEFAULT_ALLOWED_ORIGINS}): set your frontends' origins"
            ));
        }
        warnings
    }
}

/// An http:// or https:// base URL, without a trailing slash.
fn http_url<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    variable: &'static str,
    default: &str,
) -> Result<String, ConfigError> {
    let url = env
        .string(variable, default)
        .trim_end_matches('/')
        .to_owned();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(invalid(
            variable,
            format!("`{url}` is not an http:// or https:// URL"),
        ));
    }
    Ok(url)
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
    fn defaults_match_the_contract() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.bind.port(), 8081);
        assert_eq!(s.internal_bind, SocketAddr::from(([127, 0, 0, 1], 9081)));
        assert_eq!(s.auth_url, "http://127.0.0.1:8080");
        assert_eq!(s.auth_internal_url, "http://127.0.0.1:9080");
        assert_eq!(s.revocation.sync_interval, Duration::from_secs(1));
        assert_eq!(s.revocation.max_staleness, Duration::from_secs(30));
        assert!(!s.revocation.fail_open);
        assert_eq!(s.leeway, Duration::from_secs(5));
    }

    const TOKEN: (&str, &str) = ("INTERNAL_API_TOKEN", "0123456789abcdef0123456789abcdef");

    #[test]
    fn production_refuses_a_short_internal_token() {
        let prod = ("APP_ENV", "production");
        let short = ("INTERNAL_API_TOKEN", "0123456789abcdef0123456789abcde");
        assert_eq!(
            settings(&[prod, short]).unwrap_err().variable,
            "INTERNAL_API_TOKEN"
        );
        assert!(settings(&[short]).is_ok(), "development accepts it");
        assert!(settings(&[prod, TOKEN]).is_ok());
    }

    #[test]
    fn production_refuses_a_leeway_over_a_minute() {
        let prod = ("APP_ENV", "production");
        assert_eq!(
            settings(&[prod, TOKEN, ("JWT_LEEWAY", "61s")])
                .unwrap_err()
                .variable,
            "JWT_LEEWAY"
        );
        assert!(settings(&[prod, TOKEN, ("JWT_LEEWAY", "60s")]).is_ok());
        assert!(settings(&[("JWT_LEEWAY", "5m")]).is_ok(), "development");
    }

    #[test]
    fn production_warns_of_plain_http_and_the_default_origins() {
        let prod = ("APP_ENV", "production");
        let warnings = settings(&[prod, TOKEN]).unwrap().warnings();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with("AUTH_URL"), "{warnings:?}");
        assert!(warnings[1].starts_with("ALLOWED_ORIGINS"), "{warnings:?}");
        let careful = settings(&[
            prod,
            TOKEN,
            ("AUTH_URL", "https://auth.example.com"),
            ("ALLOWED_ORIGINS", "https://app.example.com"),
        ])
        .unwrap();
        assert!(careful.warnings().is_empty());
        assert!(settings(&[]).unwrap().warnings().is_empty(), "development");
    }

    #[test]
    fn bad_settings_are_named() {
        assert_eq!(
            settings(&[("APP_ENV", "production")]).unwrap_err().variable,
            "INTERNAL_API_TOKEN"
        );
        assert_eq!(
            settings(&[("AUTH_URL", "auth:8080")]).unwrap_err().variable,
            "AUTH_URL"
        );
        assert_eq!(
            settings(&[("AUTH_INTERNAL_URL", "auth:9080")])
                .unwrap_err()
                .variable,
            "AUTH_INTERNAL_URL"
        );
        assert_eq!(
            settings(&[("API_INTERNAL_BIND", "127.0.0.1:8081")])
                .unwrap_err()
                .variable,
            "API_INTERNAL_BIND"
        );
        assert_eq!(
            settings(&[("REVOCATION_MAX_STALENESS", "1s")])
                .unwrap_err()
                .variable,
            "REVOCATION_MAX_STALENESS"
        );
        assert_eq!(
            settings(&[("REVOCATION_FAIL_OPEN", "perhaps")])
                .unwrap_err()
                .variable,
            "REVOCATION_FAIL_OPEN"
        );
    }
}
