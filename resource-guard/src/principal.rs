//! Who a request's token says is calling: what the guard hands a handler
//! once every check has passed, and the per-route demands a handler makes
//! of it (a role, a step-up).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use shared_claims::AccessClaims;
use shared_claims::assurance::{Aal, StepUp};
use uuid::Uuid;

use crate::error::{GuardError, Refusal};

#[derive(Debug, Clone)]
pub struct Principal {
    claims: AccessClaims,
    /// For the challenges of a missing role or step-up.
    realm: Arc<str>,
}

impl Principal {
    pub(crate) fn new(claims: AccessClaims, realm: Arc<str>) -> Self {
        Self { claims, realm }
    }

    /// The user (`sub`).
    pub fn user_id(&self) -> Uuid {
        self.claims.sub
    }

    /// The session (`sid`): what a revocation names.
    pub fn session_id(&self) -> Uuid {
        self.claims.sid
    }

    pub fn email(&self) -> &str {
        &self.claims.email
    }

    /// Whether the address was proven by a verification link.
    pub fn email_verified(&self) -> bool {
        self.claims.email_verified
    }

    pub fn roles(&self) -> &[String] {
        &self.claims.roles
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.claims.has_role(role)
    }

    /// `Ok` when the token holds `role`, else the `403 insufficient_scope`
    /// refusal, ready to return from a handler.
    pub fn require_role(&self, role: &str) -> Result<(), GuardError> {
        if self.has_role(role) {
            return Ok(());
        }
        Err(GuardError::new(
            Refusal::InsufficientScope {
                role: role.to_owned(),
            },
            Arc::clone(&self.realm),
        ))
    }

    /// How the user proved who they are (`amr`, RFC 8176 values such as
    /// `pwd`, `otp`, `hwk`, `mfa`); empty in tokens that do not say.
    pub fn amr(&self) -> &[String] {
        &self.claims.amr
    }

    /// The level the token's `acr` claims: `aal1` when it has none (or one
    /// this version does not know), as [`StepUp`] reads it.
    pub fn acr(&self) -> Aal {
        self.claims
            .acr
            .as_deref()
            .and_then(Aal::parse)
            .unwrap_or(Aal::Aal1)
    }

    /// When the user last proved a factor in this session (`auth_time`,
    /// Unix seconds); `None` in tokens that do not say, which are never
    /// recent.
    pub fn auth_time(&self) -> Option<i64> {
        self.claims.auth_time
    }

    /// `Ok` when the token meets the route's step-up (its level, and an
    /// `auth_time` no older than its max age, now), else the `401
    /// insufficient_user_authentication` refusal with RFC 9470's challenge
    /// (`max_age`, and `acr_values` when the level is what is missing),
    /// ready to return from a handler.
    pub fn require_step_up(&self, step_up: StepUp) -> Result<(), GuardError> {
        self.require_step_up_at(step_up, Utc::now().timestamp())
    }

    /// [`Self::require_step_up`] at `now` (Unix seconds).
    pub(crate) fn require_step_up_at(&self, step_up: StepUp, now: i64) -> Result<(), GuardError> {
        step_up.check(&self.claims, now).map_err(|insufficient| {
            GuardError::new(
                Refusal::InsufficientUserAuthentication(insufficient),
                Arc::clone(&self.realm),
            )
        })
    }

    /// When the token expires (`exp`); `None` only for a time past what
    /// `chrono` can hold.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(self.claims.exp, 0)
    }

    /// Every claim, for what the accessors above do not cover.
    pub fn claims(&self) -> &AccessClaims {
        &self.claims
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use shared_claims::assurance::Insufficient;

    use super::*;

    fn principal(amr: &[&str], acr: Option<&str>, auth_time: Option<i64>) -> Principal {
        let claims = AccessClaims {
            iss: "i".into(),
            aud: "a".into(),
            sub: Uuid::nil(),
            sid: Uuid::nil(),
            jti: Uuid::nil(),
            iat: 0,
            nbf: 0,
            exp: 0,
            email: "a@example.com".into(),
            email_verified: true,
            roles: vec![],
            rv: None,
            amr: amr.iter().map(|m| (*m).to_owned()).collect(),
            acr: acr.map(str::to_owned),
            auth_time,
        };
        Principal::new(claims, Arc::from("api"))
    }

    const STEP_UP: StepUp = StepUp {
        acr: Some(Aal::Aal2),
        max_age: Some(Duration::from_secs(300)),
    };

    fn refusal(result: Result<(), GuardError>) -> Refusal {
        result.unwrap_err().refusal
    }

    #[test]
    fn the_accessors_read_the_claims_and_default_to_aal1() {
        let strong = principal(&["pwd", "otp", "mfa"], Some("aal2"), Some(1_000));
        assert_eq!(strong.amr(), ["pwd", "otp", "mfa"]);
        assert_eq!(strong.acr(), Aal::Aal2);
        assert_eq!(strong.auth_time(), Some(1_000));
        let old = principal(&[], None, None);
        assert!(old.amr().is_empty());
        assert_eq!(old.acr(), Aal::Aal1);
        assert_eq!(old.auth_time(), None);
        assert_eq!(principal(&[], Some("aal9"), None).acr(), Aal::Aal1);
    }

    #[test]
    fn a_step_up_asks_for_what_is_missing() {
        let fresh = principal(&["pwd", "otp", "mfa"], Some("aal2"), Some(1_000));
        assert!(fresh.require_step_up_at(STEP_UP, 1_300).is_ok());
        assert_eq!(
            refusal(fresh.require_step_up_at(STEP_UP, 1_301)),
            Refusal::InsufficientUserAuthentication(Insufficient {
                max_age: Some(Duration::from_secs(300)),
                acr: None,
            }),
            "stale: the level is there, only the age is asked for"
        );
        let weak = principal(&["pwd"], Some("aal1"), Some(1_000));
        let refused = weak.require_step_up_at(STEP_UP, 1_000).unwrap_err();
        assert_eq!(refused.status(), 401);
        assert_eq!(refused.code().as_str(), "insufficient_user_authentication");
        assert_eq!(
            refused.refusal,
            Refusal::InsufficientUserAuthentication(Insufficient {
                max_age: Some(Duration::from_secs(300)),
                acr: Some(Aal::Aal2),
            })
        );
        assert!(matches!(
            refusal(principal(&[], None, None).require_step_up_at(STEP_UP, 1_000)),
            Refusal::InsufficientUserAuthentication(Insufficient {
                acr: Some(Aal::Aal2),
                ..
            })
        ));
        assert!(
            weak.require_step_up_at(StepUp::default(), 1_000_000)
                .is_ok(),
            "no demand"
        );
    }
}
