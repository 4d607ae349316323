//! Who a request's token says is calling: what the guard hands a handler
//! once every check has passed.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use shared_claims::AccessClaims;
use uuid::Uuid;

use crate::error::{GuardError, Refusal};

#[derive(Debug, Clone)]
pub struct Principal {
    claims: AccessClaims,
    /// For the challenge of a missing role.
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
