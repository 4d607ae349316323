//! Accounts: how long e-mail links live, and whether an unverified address
//! may log in.

use std::time::Duration;

use service_kit::env::{ConfigError, Env, invalid};

#[derive(Debug, Clone)]
pub struct AccountSettings {
    pub password_reset_ttl: Duration,
    pub email_verify_ttl: Duration,
    /// A correct password for an unverified address gets
    /// `403 email_not_verified`.
    pub require_verified_email: bool,
}

impl AccountSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let settings = Self {
            password_reset_ttl: env.duration("PASSWORD_RESET_TTL", "30m")?,
            email_verify_ttl: env.duration("EMAIL_VERIFY_TTL", "24h")?,
            require_verified_email: env.flag("REQUIRE_VERIFIED_EMAIL", false)?,
        };
        for (variable, value) in [
            ("PASSWORD_RESET_TTL", settings.password_reset_ttl),
            ("EMAIL_VERIFY_TTL", settings.email_verify_ttl),
        ] {
            if value < Duration::from_secs(1) {
                return Err(invalid(variable, "must be at least 1s"));
            }
            if value > Duration::from_secs(30 * 86_400) {
                return Err(invalid(variable, "must be at most 30d"));
            }
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::lookup;

    fn accounts(vars: &[(&str, &str)]) -> Result<AccountSettings, ConfigError> {
        AccountSettings::from_env(&Env(lookup(vars)))
    }

    #[test]
    fn defaults_match_the_contract() {
        let a = accounts(&[]).unwrap();
        assert_eq!(a.password_reset_ttl, Duration::from_secs(30 * 60));
        assert_eq!(a.email_verify_ttl, Duration::from_secs(24 * 3600));
        assert!(!a.require_verified_email);
        assert!(
            accounts(&[("REQUIRE_VERIFIED_EMAIL", "true")])
                .unwrap()
                .require_verified_email
        );
    }

    #[test]
    fn lifetimes_are_bounded_and_named() {
        for (variable, value) in [
            ("PASSWORD_RESET_TTL", "0s"),
            ("PASSWORD_RESET_TTL", "31d"),
            ("EMAIL_VERIFY_TTL", "soon"),
            ("REQUIRE_VERIFIED_EMAIL", "perhaps"),
        ] {
            assert_eq!(
                accounts(&[(variable, value)]).unwrap_err().variable,
                variable
            );
        }
    }
}
