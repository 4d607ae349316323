//! The public HTTP server: where it listens, how many workers, how patient it
//! is with slow clients, the refresh cookie, which origins may call it, and
//! which peers' `X-Forwarded-For` is believed.

use std::net::SocketAddr;
use std::time::Duration;

use service_kit::env::{ConfigError, DEFAULT_ALLOWED_ORIGINS, Env, invalid};

use crate::limits::proxies::TrustedProxies;

#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub bind: SocketAddr,
    /// HTTP worker threads (each runs many requests concurrently).
    pub workers: usize,
    /// How long a client may take to send a request's head, and its body.
    pub client_timeout: Duration,
    pub cookie_secure: bool,
    pub allowed_origins: Vec<String>,
    /// Peers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
}

impl HttpSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let bind = env.parsed(
            "AUTH_BIND",
            SocketAddr::from(([127, 0, 0, 1], 8080)),
            "an address such as 127.0.0.1:8080",
        )?;
        let workers = env.parsed("HTTP_WORKERS", super::available_threads(), "a whole number")?;
        if workers == 0 {
            return Err(invalid("HTTP_WORKERS", "must be at least 1"));
        }
        let client_timeout = env.duration("CLIENT_TIMEOUT", "10s")?;
        if client_timeout < Duration::from_millis(100) {
            return Err(invalid("CLIENT_TIMEOUT", "must be at least 100ms"));
        }
        Ok(Self {
            bind,
            workers,
            client_timeout,
            cookie_secure: env.flag("COOKIE_SECURE", true)?,
            allowed_origins: env.origins("ALLOWED_ORIGINS", DEFAULT_ALLOWED_ORIGINS)?,
            trusted_proxies: TrustedProxies::parse(&env.string("TRUSTED_PROXIES", ""))
                .map_err(|m| invalid("TRUSTED_PROXIES", m))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::lookup;

    fn http(vars: &[(&str, &str)]) -> Result<HttpSettings, ConfigError> {
        HttpSettings::from_env(&Env(lookup(vars)))
    }

    #[test]
    fn defaults_listen_on_loopback_with_a_secure_cookie() {
        let s = http(&[]).unwrap();
        assert_eq!(s.bind, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert!(s.workers >= 1);
        assert_eq!(s.client_timeout, Duration::from_secs(10));
        assert!(s.cookie_secure);
        assert!(s.trusted_proxies.is_empty());
    }

    #[test]
    fn bounds_are_named() {
        for (variable, value) in [
            ("HTTP_WORKERS", "0"),
            ("CLIENT_TIMEOUT", "50ms"),
            ("TRUSTED_PROXIES", "not-an-address"),
        ] {
            assert_eq!(http(&[(variable, value)]).unwrap_err().variable, variable);
        }
    }
}
