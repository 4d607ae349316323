//! Sessions: how many live ones a user may hold at once.

use std::num::NonZeroU32;

use service_kit::env::{ConfigError, Env};

#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// `MAX_SESSIONS_PER_USER`: past it, a login revokes the user's oldest
    /// live sessions (`session_evicted`). `None` (set to `0`): no cap.
    pub max_per_user: Option<NonZeroU32>,
}

impl SessionSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let max: u32 = env.parsed("MAX_SESSIONS_PER_USER", 100, "a whole number (0: no cap)")?;
        Ok(Self {
            max_per_user: NonZeroU32::new(max),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::lookup;

    fn sessions(vars: &[(&str, &str)]) -> Result<SessionSettings, ConfigError> {
        SessionSettings::from_env(&Env(lookup(vars)))
    }

    #[test]
    fn a_hundred_by_default_and_zero_turns_the_cap_off() {
        assert_eq!(sessions(&[]).unwrap().max_per_user, NonZeroU32::new(100));
        let off = sessions(&[("MAX_SESSIONS_PER_USER", "0")]).unwrap();
        assert_eq!(off.max_per_user, None);
        for bad in ["-1", "many", "4294967296"] {
            assert_eq!(
                sessions(&[("MAX_SESSIONS_PER_USER", bad)])
                    .unwrap_err()
                    .variable,
                "MAX_SESSIONS_PER_USER"
            );
        }
    }
}
