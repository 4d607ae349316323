//! What a guard needs to know: where the auth server is, what its tokens
//! must say, and how stale the revocation state may grow. Read from the
//! same environment variables as the contract's resource API, so a service
//! built on the guard is configured like it.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use service_kit::env::{ConfigError, DEVELOPMENT_INTERNAL_TOKEN, Env, invalid};
use service_kit::secret_strength;

/// `JWT_AUDIENCE` when unset, in development only.
pub const DEFAULT_AUDIENCE: &str = "resource-api";

/// The longest `JWT_LEEWAY` production accepts: clock skew is seconds.
const MAX_LEEWAY: Duration = Duration::from_secs(60);

/// Verified tokens remembered by default (about 400 bytes each).
pub const DEFAULT_VERIFIED_TOKENS: usize = 10_000;

#[derive(Debug, Clone)]
pub struct GuardSettings {
    /// `APP_ENV=production`: the settings were checked against the
    /// production refusals.
    pub production: bool,
    /// The auth server's public listener, where the JWKS is fetched
    /// (`AUTH_URL`).
    pub auth_url: String,
    /// The auth server's internal listener, where revocations are fetched
    /// (`AUTH_INTERNAL_URL`).
    pub auth_internal_url: String,
    /// The shared secret of the revocation feed (`INTERNAL_API_TOKEN`, or
    /// the file `INTERNAL_API_TOKEN_FILE` names).
    pub internal_api_token: SecretString,
    /// `iss` of accepted tokens (`JWT_ISSUER`).
    pub issuer: String,
    /// `aud` of accepted tokens (`JWT_AUDIENCE`).
    pub audience: String,
    /// Clock skew allowed on `exp` and `nbf` (`JWT_LEEWAY`).
    pub leeway: Duration,
    /// The `realm` of the `WWW-Authenticate` challenges; the audience
    /// unless set.
    pub realm: String,
    pub revocation: RevocationSettings,
    pub jwks: JwksRefresh,
    /// How many verified tokens to remember, so each is checked with Ed25519
    /// once rather than on every request.
    pub verified_tokens: usize,
}

#[derive(Debug, Clone)]
pub struct RevocationSettings {
    /// Pace of the sync when the auth server answers without waiting, and of
    /// retries after a failure (`REVOCATION_SYNC_INTERVAL`).
    pub sync_interval: Duration,
    /// Past this without a successful sync, requests fail closed (`503`)
    /// (`REVOCATION_MAX_STALENESS`).
    pub max_staleness: Duration,
    /// Past the staleness bound, accept tokens anyway
    /// (`REVOCATION_FAIL_OPEN`).
    pub fail_open: bool,
}

#[derive(Debug, Clone)]
pub struct JwksRefresh {
    /// Routine refetch, for keys added or retired (`JWKS_REFRESH_INTERVAL`).
    pub refresh_interval: Duration,
    /// At most one fetch per this, however many unknown `kid`s arrive
    /// (`JWKS_MIN_REFETCH_INTERVAL`).
    pub min_refetch_interval: Duration,
}

impl GuardSettings {
    /// From the process's environment (call `dotenvy` first for a `.env`).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From any lookup of variables (tests feed a map). Unset variables
    /// take the contract's development defaults; every value is checked,
    /// and an error names the variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(lookup);
        let production = env.production()?;
        // Two APIs that share an audience accept each other's tokens: in
        // production each names its own.
        let audience = match env.get("JWT_AUDIENCE") {
            Some(audience) => audience,
            None if production => {
                return Err(invalid(
                    "JWT_AUDIENCE",
                    format!(
                        "must be set in production, to this API's own audience: the default `{DEFAULT_AUDIENCE}` is every API's that leaves it unset, and APIs that share an audience accept each other's tokens"
                    ),
                ));
            }
            None => DEFAULT_AUDIENCE.to_owned(),
        };
        let settings = Self {
            production,
            auth_url: http_url(&env, "AUTH_URL", "http://127.0.0.1:8080")?,
            auth_internal_url: http_url(&env, "AUTH_INTERNAL_URL", "http://127.0.0.1:9080")?,
            internal_api_token: SecretString::from(
                env.secret("INTERNAL_API_TOKEN", "INTERNAL_API_TOKEN_FILE")?
                    .unwrap_or_else(|| DEVELOPMENT_INTERNAL_TOKEN.to_owned()),
            ),
            issuer: env.string("JWT_ISSUER", "http://localhost:8080"),
            realm: audience.clone(),
            audience,
            leeway: env.duration("JWT_LEEWAY", "5s")?,
            revocation: RevocationSettings {
                sync_interval: env.duration("REVOCATION_SYNC_INTERVAL", "1s")?,
                max_staleness: env.duration("REVOCATION_MAX_STALENESS", "30s")?,
                fail_open: env.flag("REVOCATION_FAIL_OPEN", false)?,
            },
            jwks: JwksRefresh {
                refresh_interval: env.duration("JWKS_REFRESH_INTERVAL", "5m")?,
                min_refetch_interval: env.duration("JWKS_MIN_REFETCH_INTERVAL", "2s")?,
            },
            verified_tokens: DEFAULT_VERIFIED_TOKENS,
        };
        settings.check()?;
        Ok(settings)
    }

    /// The rules every guard's settings must keep (a zero interval would
    /// make a busy loop), and in production the refusals; each error names
    /// the variable. [`crate::Guard::start`] checks them too, for settings
    /// built by hand.
    pub fn check(&self) -> Result<(), ConfigError> {
        let revocation = &self.revocation;
        if revocation.sync_interval < Duration::from_millis(50) {
            return Err(invalid("REVOCATION_SYNC_INTERVAL", "must be at least 50ms"));
        }
        if revocation.max_staleness <= revocation.sync_interval {
            return Err(invalid(
                "REVOCATION_MAX_STALENESS",
                "must be longer than REVOCATION_SYNC_INTERVAL",
            ));
        }
        if self.jwks.refresh_interval < Duration::from_secs(1) {
            return Err(invalid("JWKS_REFRESH_INTERVAL", "must be at least 1s"));
        }
        if self.jwks.min_refetch_interval < Duration::from_millis(100) {
            return Err(invalid(
                "JWKS_MIN_REFETCH_INTERVAL",
                "must be at least 100ms",
            ));
        }
        if self.production {
            self.refuse_insecure()?;
        }
        Ok(())
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
        if let Err(bits) = secret_strength::check(token) {
            return Err(invalid(
                "INTERNAL_API_TOKEN",
                format!(
                    "carries about {bits} bits of entropy by a conservative estimate (repeats, runs, words and few distinct characters count for little); production needs at least {min}, whether it is set here or in the file INTERNAL_API_TOKEN_FILE names: use the auth server's (`auth-server secret --out FILE` makes one; or `openssl rand -base64 32`)",
                    min = secret_strength::MIN_SECRET_BITS
                ),
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
        if self.production && self.auth_url.starts_with("http://") {
            warnings.push(format!(
                "AUTH_URL is plain HTTP ({}): the JWKS it serves decides which tokens are accepted, so fetch it over https:// unless the network path is private",
                self.auth_url
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

    fn settings(vars: &[(&str, &str)]) -> Result<GuardSettings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        GuardSettings::from_lookup(move |k| map.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_contract() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.auth_url, "http://127.0.0.1:8080");
        assert_eq!(s.auth_internal_url, "http://127.0.0.1:9080");
        assert_eq!(s.issuer, "http://localhost:8080");
        assert_eq!(s.audience, "resource-api");
        assert_eq!(s.realm, "resource-api", "the audience");
        assert_eq!(s.revocation.sync_interval, Duration::from_secs(1));
        assert_eq!(s.revocation.max_staleness, Duration::from_secs(30));
        assert!(!s.revocation.fail_open);
        assert_eq!(s.leeway, Duration::from_secs(5));
        assert_eq!(s.jwks.refresh_interval, Duration::from_secs(300));
        assert_eq!(s.jwks.min_refetch_interval, Duration::from_secs(2));
    }

    /// 32 random bytes, base64url: what `auth-server secret` writes.
    const TOKEN: (&str, &str) = (
        "INTERNAL_API_TOKEN",
        "q7Hc2LxV-9tRk3Wm_ZpE8yN4bJfU1sQaD6gT0oXiK5w",
    );
    const AUDIENCE: (&str, &str) = ("JWT_AUDIENCE", "orders-api");

    #[test]
    fn production_refuses_a_guessable_internal_token() {
        let prod = ("APP_ENV", "production");
        let forty = "s".repeat(40);
        for weak in [
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdef",
            forty.as_str(),
            "the-internal-api-token-for-production-use",
        ] {
            let short = ("INTERNAL_API_TOKEN", weak);
            let refused = settings(&[prod, AUDIENCE, short]).unwrap_err();
            assert_eq!(refused.variable, "INTERNAL_API_TOKEN", "{weak}");
            assert!(refused.message.contains("openssl rand -base64 32"));
            assert!(settings(&[short]).is_ok(), "development accepts it");
        }
        assert!(settings(&[prod, AUDIENCE, TOKEN]).is_ok());
    }

    #[test]
    fn production_needs_an_audience_of_its_own() {
        let prod = ("APP_ENV", "production");
        assert_eq!(
            settings(&[prod, TOKEN]).unwrap_err().variable,
            "JWT_AUDIENCE"
        );
        let own = settings(&[prod, TOKEN, AUDIENCE]).unwrap();
        assert_eq!(own.audience, "orders-api");
        // Naming the default explicitly is a choice, and accepted.
        assert!(settings(&[prod, TOKEN, ("JWT_AUDIENCE", "resource-api")]).is_ok());
        assert_eq!(
            settings(&[]).unwrap().audience,
            DEFAULT_AUDIENCE,
            "development"
        );
    }

    #[test]
    fn production_refuses_a_leeway_over_a_minute() {
        let prod = ("APP_ENV", "production");
        assert_eq!(
            settings(&[prod, TOKEN, AUDIENCE, ("JWT_LEEWAY", "61s")])
                .unwrap_err()
                .variable,
            "JWT_LEEWAY"
        );
        assert!(settings(&[prod, TOKEN, AUDIENCE, ("JWT_LEEWAY", "60s")]).is_ok());
        assert!(settings(&[("JWT_LEEWAY", "5m")]).is_ok(), "development");
    }

    #[test]
    fn production_warns_of_plain_http() {
        let prod = ("APP_ENV", "production");
        let warnings = settings(&[prod, TOKEN, AUDIENCE]).unwrap().warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].starts_with("AUTH_URL"), "{warnings:?}");
        let careful = settings(&[
            prod,
            TOKEN,
            AUDIENCE,
            ("AUTH_URL", "https://auth.example.com"),
        ])
        .unwrap();
        assert!(careful.warnings().is_empty());
        assert!(settings(&[]).unwrap().warnings().is_empty(), "development");
    }

    #[test]
    fn bad_settings_are_named() {
        assert_eq!(
            settings(&[("APP_ENV", "production"), AUDIENCE])
                .unwrap_err()
                .variable,
            "INTERNAL_API_TOKEN"
        );
        for (variable, value) in [
            ("AUTH_URL", "auth:8080"),
            ("AUTH_INTERNAL_URL", "auth:9080"),
            ("REVOCATION_MAX_STALENESS", "1s"),
            ("REVOCATION_SYNC_INTERVAL", "10ms"),
            ("REVOCATION_FAIL_OPEN", "perhaps"),
            ("JWKS_REFRESH_INTERVAL", "500ms"),
            ("JWKS_MIN_REFETCH_INTERVAL", "0s"),
            ("JWT_LEEWAY", "soon"),
        ] {
            assert_eq!(
                settings(&[(variable, value)]).unwrap_err().variable,
                variable,
                "{variable}={value}"
            );
        }
    }

    #[test]
    fn settings_built_by_hand_are_checked_too() {
        let mut s = settings(&[]).unwrap();
        s.revocation.sync_interval = Duration::ZERO;
        assert_eq!(s.check().unwrap_err().variable, "REVOCATION_SYNC_INTERVAL");
    }
}
