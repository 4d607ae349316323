//! The internal API that resource APIs pull revocations from: the shared
//! secret it is authenticated by.

use secrecy::SecretString;
use service_kit::env::{ConfigError, DEVELOPMENT_INTERNAL_TOKEN, Env};

#[derive(Debug, Clone)]
pub struct InternalApiSettings {
    /// `INTERNAL_API_TOKEN` (or the file `INTERNAL_API_TOKEN_FILE` names);
    /// a public development value when unset, which production refuses.
    pub token: SecretString,
}

impl InternalApiSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
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
