//! Typed configuration, read once at start from the environment: the
//! listeners here, the guard's settings by `resource-guard` (the same
//! variables any service built on the guard reads).

use std::net::SocketAddr;
use std::time::Duration;

use resource_guard::{Aal, GuardSettings, StepUp};
use service_kit::env::{ConfigError, DEFAULT_ALLOWED_ORIGINS, Env, invalid};

/// The contract's realm for this API's challenges, whatever the audience.
pub const REALM: &str = "resource-api";

#[derive(Debug, Clone)]
pub struct Settings {
    pub production: bool,
    pub bind: SocketAddr,
    /// `/metrics`, apart from the public listener.
    pub internal_bind: SocketAddr,
    pub http_workers: usize,
    pub allowed_origins: Vec<String>,
    /// `STEP_UP_MAX_AGE`: how recently the user of a token must have proven
    /// a factor for `GET /api/step-up`.
    pub step_up_max_age: Duration,
    /// The auth server, the token rules and the revocation sync.
    pub guard: GuardSettings,
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let guard = GuardSettings {
            realm: REALM.to_owned(),
            ..GuardSettings::from_lookup(&lookup)?
        };
        let env = Env(lookup);
        let workers_default = std::thread::available_parallelism().map_or(2, |n| n.get());
        let settings = Self {
            production: guard.production,
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
            allowed_origins: env.origins("ALLOWED_ORIGINS", DEFAULT_ALLOWED_ORIGINS)?,
            step_up_max_age: env.duration("STEP_UP_MAX_AGE", "5m")?,
            guard,
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
        if settings.step_up_max_age < Duration::from_secs(1) {
            return Err(invalid(
                "STEP_UP_MAX_AGE",
                "must be at least 1s: auth_time is in whole seconds",
            ));
        }
        Ok(settings)
    }

    /// What `GET /api/step-up` demands: `aal2`, proven within
    /// `STEP_UP_MAX_AGE`.
    pub fn step_up(&self) -> StepUp {
        StepUp {
            acr: Some(Aal::Aal2),
            max_age: Some(self.step_up_max_age),
        }
    }

    /// What is accepted but worth a line in the log at start (production);
    /// the guard logs its own ([`GuardSettings::warnings`]) when it starts.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.production && self.allowed_origins == [DEFAULT_ALLOWED_ORIGINS] {
            warnings.push(format!(
                "ALLOWED_ORIGINS is the development default ({DEFAULT_ALLOWED_ORIGINS}): set your frontends' origins"
            ));
        }
        warnings
    }
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
        assert_eq!(s.guard.auth_url, "http://127.0.0.1:8080");
        assert_eq!(s.guard.auth_internal_url, "http://127.0.0.1:9080");
        assert_eq!(s.guard.realm, "resource-api");
        assert_eq!(
            s.step_up(),
            StepUp {
                acr: Some(Aal::Aal2),
                max_age: Some(Duration::from_secs(300)),
            }
        );
        assert_eq!(
            settings(&[("STEP_UP_MAX_AGE", "90s")])
                .unwrap()
                .step_up_max_age,
            Duration::from_secs(90)
        );
        let elsewhere = settings(&[("JWT_AUDIENCE", "orders")]).unwrap();
        assert_eq!(
            elsewhere.guard.realm, "resource-api",
            "the contract's realm"
        );
    }

    /// 32 random bytes, base64url: what `auth-server secret` writes.
    const TOKEN: (&str, &str) = (
        "INTERNAL_API_TOKEN",
        "q7Hc2LxV-9tRk3Wm_ZpE8yN4bJfU1sQaD6gT0oXiK5w",
    );
    const AUDIENCE: (&str, &str) = ("JWT_AUDIENCE", "resource-api");

    #[test]
    fn production_warns_of_the_default_origins() {
        let prod = ("APP_ENV", "production");
        let warnings = settings(&[prod, TOKEN, AUDIENCE]).unwrap().warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].starts_with("ALLOWED_ORIGINS"), "{warnings:?}");
        let careful = settings(&[
            prod,
            TOKEN,
            AUDIENCE,
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
            "JWT_AUDIENCE",
            "the guard's refusals: this API's audience, named"
        );
        assert_eq!(
            settings(&[("APP_ENV", "production"), AUDIENCE])
                .unwrap_err()
                .variable,
            "INTERNAL_API_TOKEN"
        );
        assert_eq!(
            settings(&[("API_INTERNAL_BIND", "127.0.0.1:8081")])
                .unwrap_err()
                .variable,
            "API_INTERNAL_BIND"
        );
        assert_eq!(
            settings(&[("HTTP_WORKERS", "0")]).unwrap_err().variable,
            "HTTP_WORKERS"
        );
        for bad in ["0s", "500ms", "5", "soon"] {
            assert_eq!(
                settings(&[("STEP_UP_MAX_AGE", bad)]).unwrap_err().variable,
                "STEP_UP_MAX_AGE",
                "{bad}"
            );
        }
    }
}
