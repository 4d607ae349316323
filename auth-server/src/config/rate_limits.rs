//! Rate limits: per client address on login, register, refresh and the
//! requests that send mail (in memory), and failed logins per account and
//! client (in PostgreSQL; see `crate::limits::login_throttle`).

use std::time::Duration;

use service_kit::env::{ConfigError, Env, invalid};

use crate::limits::{RateLimit, parse_rate_limit};

/// The longest window `LOGIN_ACCOUNT_RATE_LIMIT` may have.
const MAX_ACCOUNT_WINDOW: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone)]
pub struct RateLimitSettings {
    /// Per client IP, shared by login and register. `None` turns it off.
    pub login: Option<RateLimit>,
    /// Failed logins: N per account and client, then W; past N for an
    /// account, clients it does not know wait a doubling delay (at most W).
    /// `None` turns it off.
    pub account: Option<RateLimit>,
    /// Per client IP on refresh. `None` turns it off.
    pub refresh: Option<RateLimit>,
    /// Per client IP on the requests that send mail (forgot password,
    /// resend verification): the only limit they answer `429` for.
    pub mail_requests: Option<RateLimit>,
}

impl RateLimitSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let account = rate_limit(env, "LOGIN_ACCOUNT_RATE_LIMIT", "10/5m")?;
        // Whatever the failures, nobody waits longer than the window: keep
        // it short enough that the throttle never amounts to a lockout.
        if account.is_some_and(|limit| limit.per > MAX_ACCOUNT_WINDOW) {
            return Err(invalid(
                "LOGIN_ACCOUNT_RATE_LIMIT",
                "the window must be at most 24h: the throttle slows guessing, it must never lock an owner out for long",
            ));
        }
        Ok(Self {
            login: rate_limit(env, "LOGIN_RATE_LIMIT", "20/1m")?,
            account,
            refresh: rate_limit(env, "REFRESH_RATE_LIMIT", "300/1m")?,
            mail_requests: rate_limit(env, "MAIL_REQUEST_RATE_LIMIT", "10/10m")?,
        })
    }
}

pub(super) fn rate_limit<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    variable: &'static str,
    default: &str,
) -> Result<Option<RateLimit>, ConfigError> {
    parse_rate_limit(&env.string(variable, default)).map_err(|m| invalid(variable, m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::lookup;

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

    #[test]
    fn defaults_and_off() {
        let limits =
            RateLimitSettings::from_env(&Env(lookup(&[("REFRESH_RATE_LIMIT", "0")]))).unwrap();
        assert_eq!(
            limits.login,
            Some(RateLimit {
                requests: 20,
                per: Duration::from_secs(60)
            })
        );
        assert_eq!(
            limits.account,
            Some(RateLimit {
                requests: 10,
                per: Duration::from_secs(300)
            })
        );
        assert_eq!(limits.refresh, None);
        assert_eq!(
            limits.mail_requests,
            Some(RateLimit {
                requests: 10,
                per: Duration::from_secs(600)
            })
        );
        for bad in ["x", "10/2d"] {
            let bad =
                RateLimitSettings::from_env(&Env(lookup(&[("LOGIN_ACCOUNT_RATE_LIMIT", bad)])));
            assert_eq!(bad.unwrap_err().variable, "LOGIN_ACCOUNT_RATE_LIMIT");
        }
    }
}
