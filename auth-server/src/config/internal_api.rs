//! The internal listener (the revocation feed resource APIs pull, and
//! `/metrics`): where it listens, and the shared secret the feed is
//! authenticated by.

use std::net::SocketAddr;

use secrecy::SecretString;
use service_kit::env::{ConfigError, DEVELOPMENT_INTERNAL_TOKEN, Env};

#[derive(Debug, Clone)]
pub struct InternalApiSettings {
    /// `AUTH_INTERNAL_BIND`: never the public listener's address.
    pub bind: SocketAddr,
    /// `INTERNAL_API_TOKEN` (or the file `INTERNAL_API_TOKEN_FILE` names);
    /// a public development value when unset, which production refuses.
    pub token: SecretString,
}

impl InternalApiSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            bind: env.parsed(
                "AUTH_INTERNAL_BIND",
                SocketAddr::from(([127, 0, 0, 1], 9080)),
                "an address such as 127.0.0.1:9080",
            )?,
            token: SecretString::from(
                env.secret("INTERNAL_API_TOKEN", "INTERNAL_API_TOKEN_FILE")?
                    .unwrap_or_else(|| DEVELOPMENT_INTERNAL_TOKEN.to_owned()),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;
    use crate::config::lookup;

    #[test]
    fn listens_on_loopback_by_default() {
        let settings = InternalApiSettings::from_env(&Env(lookup(&[]))).unwrap();
        assert_eq!(settings.bind, SocketAddr::from(([127, 0, 0, 1], 9080)));
        let bad = InternalApiSettings::from_env(&Env(lookup(&[("AUTH_INTERNAL_BIND", "9080")])));
        assert_eq!(bad.unwrap_err().variable, "AUTH_INTERNAL_BIND");
    }

    #[test]
    fn the_development_token_stands_in_when_unset() {
        let unset = InternalApiSettings::from_env(&Env(lookup(&[]))).unwrap();
        assert_eq!(unset.token.expose_secret(), DEVELOPMENT_INTERNAL_TOKEN);
        let set = InternalApiSettings::from_env(&Env(lookup(&[(
            "INTERNAL_API_TOKEN",
            "0123456789abcdef0123456789abcdef",
        )])))
        .unwrap();
        assert_eq!(
            set.token.expose_secret(),
            "0123456789abcdef0123456789abcdef"
        );
    }
}
