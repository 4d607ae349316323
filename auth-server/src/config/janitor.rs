//! The janitor: how often it sweeps, how long ended sessions are kept, and
//! how long the audit trail is (`AUDIT_RETENTION`).

use std::time::Duration;

use service_kit::env::{ConfigError, Env, invalid};

#[derive(Debug, Clone)]
pub struct JanitorSettings {
    pub interval: Duration,
    /// How long sessions are kept after they expire or are revoked.
    pub session_retention: Duration,
    /// How long audit events are kept (`AUDIT_RETENTION`, `90d`).
    pub audit_retention: Duration,
}

impl JanitorSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let janitor = Self {
            interval: env.duration("CLEANUP_INTERVAL", "1h")?,
            session_retention: env.duration("SESSION_RETENTION", "7d")?,
            audit_retention: env.duration("AUDIT_RETENTION", "90d")?,
        };
        if janitor.audit_retention.is_zero() {
            return Err(invalid("AUDIT_RETENTION", "must be more than 0s"));
        }
        if janitor.interval.is_zero() {
            return Err(invalid("CLEANUP_INTERVAL", "must be more than 0s"));
        }
        Ok(janitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::lookup;

    #[test]
    fn sweeps_hourly_and_never_continuously() {
        let janitor = JanitorSettings::from_env(&Env(lookup(&[]))).unwrap();
        assert_eq!(janitor.interval, Duration::from_secs(3600));
        assert_eq!(janitor.session_retention, Duration::from_secs(7 * 86_400));
        assert_eq!(janitor.audit_retention, Duration::from_secs(90 * 86_400));
        let audit = JanitorSettings::from_env(&Env(lookup(&[("AUDIT_RETENTION", "400d")])));
        assert_eq!(
            audit.unwrap().audit_retention,
            Duration::from_secs(400 * 86_400)
        );
        let zero = JanitorSettings::from_env(&Env(lookup(&[("AUDIT_RETENTION", "0s")])));
        assert_eq!(zero.unwrap_err().variable, "AUDIT_RETENTION");
        let zero = JanitorSettings::from_env(&Env(lookup(&[("CLEANUP_INTERVAL", "0s")])));
        assert_eq!(zero.unwrap_err().variable, "CLEANUP_INTERVAL");
    }
}
