//! How a user proved who they are, as access tokens carry it (`amr`, `acr`,
//! `auth_time`), and the step-up rule both sides apply to it: a route may
//! ask for a level (`aal2`) and a recent proof (a max age), and a token
//! that falls short is answered with RFC 9470's challenge.
//!
//! The level is derived from the methods, never stored beside them, so the
//! two cannot disagree: two different factors (`mfa`), or a passkey that
//! verified its user (`hwk` with `user`), are `aal2`; anything else `aal1`.

use std::time::Duration;

use crate::claims::AccessClaims;

/// RFC 8176 method values this project writes.
pub mod method {
    /// A password.
    pub const PASSWORD: &str = "pwd";
    /// A one-time password: a TOTP or a recovery code.
    pub const OTP: &str = "otp";
    /// A key held in hardware: a passkey.
    pub const HARDWARE_KEY: &str = "hwk";
    /// The authenticator verified its user (a fingerprint, a PIN).
    pub const USER_PRESENCE_VERIFIED: &str = "user";
    /// Two different factors were used.
    pub const MULTI_FACTOR: &str = "mfa";
}

/// An authentication assurance level (NIST SP 800-63B), as `acr` carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Aal {
    Aal1,
    Aal2,
}

impl Aal {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Aal1 => "aal1",
            Self::Aal2 => "aal2",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "aal1" => Some(Self::Aal1),
            "aal2" => Some(Self::Aal2),
            _ => None,
        }
    }

    /// The level the methods reach.
    pub fn of_methods<S: AsRef<str>>(amr: &[S]) -> Self {
        let has = |m: &str| amr.iter().any(|a| a.as_ref() == m);
        if has(method::MULTI_FACTOR)
            || (has(method::HARDWARE_KEY) && has(method::USER_PRESENCE_VERIFIED))
        {
            Self::Aal2
        } else {
            Self::Aal1
        }
    }
}

/// What a route demands of how the user signed in: a level, and a proof no
/// older than a max age. Both optional; the default demands nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepUp {
    pub acr: Option<Aal>,
    pub max_age: Option<Duration>,
}

/// A token that does not meet a [`StepUp`]: what its challenge says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insufficient {
    /// The max age the route demands, when it demands one.
    pub max_age: Option<Duration>,
    /// The level, named only when the level is what is missing.
    pub acr: Option<Aal>,
}

impl StepUp {
    /// Whether `claims` meets the demand at `now` (Unix seconds). A token
    /// with no `acr` is `aal1`; one with no `auth_time` is never recent.
    pub fn check(&self, claims: &AccessClaims, now: i64) -> Result<(), Insufficient> {
        let level = claims
            .acr
            .as_deref()
            .and_then(Aal::parse)
            .unwrap_or(Aal::Aal1);
        let low = self.acr.filter(|wanted| level < *wanted);
        let stale = self.max_age.is_some_and(|max_age| {
            let max_age = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
            claims
                .auth_time
                .is_none_or(|at| now.saturating_sub(at) > max_age)
        });
        if low.is_none() && !stale {
            return Ok(());
        }
        Err(Insufficient {
            max_age: self.max_age,
            acr: low,
        })
    }
}

impl Insufficient {
    pub const DESCRIPTION: &'static str =
        "a more recent or stronger authentication is required: reauthenticate";

    /// The `WWW-Authenticate` value (RFC 9470 §3): `Bearer realm="…",
    /// error="insufficient_user_authentication", …, max_age=…,
    /// acr_values="aal2"`.
    pub fn challenge(&self, realm: &str) -> String {
        let mut value = crate::challenge::bearer_challenge(
            realm,
            Some((
                crate::error::ErrorCode::InsufficientUserAuthentication,
                Self::DESCRIPTION,
            )),
        );
        if let Some(max_age) = self.max_age {
            value.push_str(&format!(", max_age={}", max_age.as_secs()));
        }
        if let Some(acr) = self.acr {
            value.push_str(&format!(r#", acr_values="{}""#, acr.as_str()));
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn claims(acr: Option<&str>, auth_time: Option<i64>) -> AccessClaims {
        AccessClaims {
            iss: "i".into(),
            aud: "a".into(),
            sub: Uuid::nil(),
            sid: Uuid::nil(),
            jti: Uuid::nil(),
            iat: 0,
            nbf: 0,
            exp: 0,
            email: "a@b.c".into(),
            email_verified: true,
            roles: vec![],
            rv: None,
            amr: vec![],
            acr: acr.map(str::to_owned),
            auth_time,
        }
    }

    #[test]
    fn the_level_follows_the_methods() {
        assert_eq!(Aal::of_methods(&["pwd"]), Aal::Aal1);
        assert_eq!(Aal::of_methods(&["pwd", "otp", "mfa"]), Aal::Aal2);
        assert_eq!(Aal::of_methods(&["hwk", "user"]), Aal::Aal2);
        assert_eq!(Aal::of_methods(&["hwk"]), Aal::Aal1);
        assert_eq!(Aal::of_methods::<&str>(&[]), Aal::Aal1);
    }

    #[test]
    fn step_up_demands_level_and_age() {
        let rule = StepUp {
            acr: Some(Aal::Aal2),
            max_age: Some(Duration::from_secs(300)),
        };
        assert_eq!(
            rule.check(&claims(Some("aal2"), Some(1_000)), 1_300),
            Ok(())
        );
        let stale = rule
            .check(&claims(Some("aal2"), Some(1_000)), 1_301)
            .unwrap_err();
        assert_eq!(stale.acr, None);
        let low = rule
            .check(&claims(Some("aal1"), Some(1_000)), 1_000)
            .unwrap_err();
        assert_eq!(low.acr, Some(Aal::Aal2));
        assert!(rule.check(&claims(None, Some(1_000)), 1_000).is_err());
        assert!(rule.check(&claims(Some("aal2"), None), 1_000).is_err());
        assert!(
            rule.check(&claims(Some("aal9"), Some(1_000)), 1_000)
                .is_err()
        );
        assert_eq!(StepUp::default().check(&claims(None, None), 0), Ok(()));
    }

    #[test]
    fn the_challenge_is_rfc_9470s() {
        let missing = Insufficient {
            max_age: Some(Duration::from_secs(300)),
            acr: Some(Aal::Aal2),
        };
        assert_eq!(
            missing.challenge("resource-api"),
            format!(
                r#"Bearer realm="resource-api", error="insufficient_user_authentication", error_description="{}", max_age=300, acr_values="aal2""#,
                Insufficient::DESCRIPTION
            )
        );
        let stale = Insufficient {
            max_age: Some(Duration::from_secs(600)),
            acr: None,
        };
        assert!(stale.challenge("auth-server").ends_with("max_age=600"));
    }
}
