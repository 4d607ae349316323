//! Accounts: how long e-mail links live, whether an unverified address
//! may log in, and how recent an authentication sensitive actions need.

use std::time::Duration;

use service_kit::env::{ConfigError, Env, invalid};

#[derive(Debug, Clone)]
pub struct AccountSettings {
    pub password_reset_ttl: Duration,
    pub email_verify_ttl: Duration,
    /// A correct password for an unverified address gets
    /// `403 email_not_verified`.
    pub require_verified_email: bool,
    /// How recent an authentication the sensitive actions (password change,
    /// removing a factor, new recovery codes) need (`REAUTH_MAX_AGE`).
    pub reauth_max_age: Duration,
    /// How long a login may wait between its password and its second
    /// factor (`MFA_TOKEN_TTL`).
    pub mfa_token_ttl: Duration,
}

impl AccountSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let settings = Self {
            password_reset_ttl: env.duration("PASSWORD_RESET_TTL", "30m")?,
            email_verify_ttl: env.duration("EMAIL_VERIFY_TTL", "24h")?,
            require_verified_email: env.flag("REQUIRE_VERIFIED_EMAIL", false)?,
            reauth_max_age: env.duration("REAUTH_MAX_AGE", "10m")?,
            mfa_token_ttl: env.duration("MFA_TOKEN_TTL", "5m")?,
        };
        for (variable, value) in [
            ("PASSWORD_RESET_TTL", settings.password_reset_ttl),
            ("EMAIL_VERIFY_TTL", settings.email_verify_ttl),
            ("REAUTH_MAX_AGE", settings.reauth_max_age),
            ("MFA_TOKEN_TTL", settings.mfa_token_ttl),
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
        assert_eq!(a.reauth_max_age, Duration::from_secs(10 * 60));
        assert_eq!(a.mfa_token_ttl, Duration::from_secs(5 * 60));
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
            ("REAUTH_MAX_AGE", "0s"),
            ("MFA_TOKEN_TTL", "31d"),
        ] {
            assert_eq!(
                accounts(&[(variable, value)]).unwrap_err().variable,
                variable
            );
        }
    }
}
