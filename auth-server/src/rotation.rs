//! The refresh-token rotation rules, as a pure function of the locked rows.
//!
//! Kept apart from the SQL so every branch can be tested without a database;
//! [`crate::db::tokens::refresh`] runs the decision inside the transaction
//! that holds the presented token's row lock.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// What the database knows about a presented token and its session.
#[derive(Debug, Clone, Copy)]
pub struct Presented {
    pub token_expires_at: DateTime<Utc>,
    pub token_consumed_at: Option<DateTime<Utc>>,
    pub session_expires_at: DateTime<Utc>,
    pub session_revoked: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Consume the token and issue its one successor.
    Rotate {
        successor_expires_at: DateTime<Utc>,
    },
    /// A consumed token within the grace: a new access token for the same
    /// session, and no refresh token, so the session never forks.
    Grace,
    /// A consumed token after the grace: someone holds a copy. Revoke the
    /// whole session.
    RevokeForReuse,
    Reject(Rejection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    SessionRevoked,
    SessionExpired,
    TokenExpired,
}

impl Rejection {
    pub fn description(self) -> &'static str {
        match self {
            Self::SessionRevoked => "the session has been revoked",
            Self::SessionExpired => "the session has reached its maximum lifetime",
            Self::TokenExpired => "the refresh token has expired",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub refresh_ttl: Duration,
    pub reuse_grace: Duration,
}

pub fn decide(presented: &Presented, now: DateTime<Utc>, policy: &Policy) -> Decision {
    if presented.session_revoked {
        return Decision::Reject(Rejection::SessionRevoked);
    }
    if now >= presented.session_expires_at {
        return Decision::Reject(Rejection::SessionExpired);
    }
    // An expired token is dead whether or not it was consumed: after expiry
    // the janitor deletes it, and a deleted token cannot be told from junk.
    if now >= presented.token_expires_at {
        return Decision::Reject(Rejection::TokenExpired);
    }
    if let Some(consumed_at) = presented.token_consumed_at {
        // Clocks of replicas may disagree slightly: a consumption "in the
        // future" is as fresh as can be.
        let since = (now - consumed_at).to_std().unwrap_or(Duration::ZERO);
        return if since <= policy.reuse_grace && !policy.reuse_grace.is_zero() {
            Decision::Grace
        } else {
            Decision::RevokeForReuse
        };
    }
    Decision::Rotate {
        successor_expires_at: successor_expiry(
            now,
            presented.session_expires_at,
            policy.refresh_ttl,
        ),
    }
}

/// A fresh token lives `refresh_ttl`, but never past the session's absolute
/// end: rotation must not extend a session.
pub fn successor_expiry(
    now: DateTime<Utc>,
    session_expires_at: DateTime<Utc>,
    refresh_ttl: Duration,
) -> DateTime<Utc> {
    let wanted = chrono::Duration::from_std(refresh_ttl)
        .ok()
        .and_then(|ttl| now.checked_add_signed(ttl))
        .unwrap_or(session_expires_at);
    wanted.min(session_expires_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap_or_default()
    }

    fn policy() -> Policy {
        Policy {
            refresh_ttl: Duration::from_secs(100),
            reuse_grace: Duration::from_secs(10),
        }
    }

    fn live() -> Presented {
        Presented {
            token_expires_at: at(100),
            token_consumed_at: None,
            session_expires_at: at(1_000),
            session_revoked: false,
        }
    }

    #[test]
    fn a_live_token_rotates_within_the_session_lifetime() {
        assert_eq!(
            decide(&live(), at(10), &policy()),
            Decision::Rotate {
                successor_expires_at: at(110)
            }
        );
        let near_end = Presented {
            session_expires_at: at(50),
            ..live()
        };
        assert_eq!(
            decide(&near_end, at(10), &policy()),
            Decision::Rotate {
                successor_expires_at: at(50)
            }
        );
    }

    #[test]
    fn a_consumed_token_gets_the_grace_then_revokes() {
        let consumed = Presented {
            token_consumed_at: Some(at(20)),
            ..live()
        };
        assert_eq!(decide(&consumed, at(20), &policy()), Decision::Grace);
        assert_eq!(decide(&consumed, at(30), &policy()), Decision::Grace);
        assert_eq!(
            decide(&consumed, at(31), &policy()),
            Decision::RevokeForReuse
        );
        // A consumption stamped slightly ahead by another replica's clock.
        assert_eq!(decide(&consumed, at(19), &policy()), Decision::Grace);
    }

    #[test]
    fn a_zero_grace_turns_the_grace_off() {
        let consumed = Presented {
            token_consumed_at: Some(at(20)),
            ..live()
        };
        let no_grace = Policy {
            reuse_grace: Duration::ZERO,
            ..policy()
        };
        assert_eq!(
            decide(&consumed, at(20), &no_grace),
            Decision::RevokeForReuse
        );
    }

    #[test]
    fn dead_sessions_and_tokens_are_rejected_first() {
        let revoked = Presented {
            session_revoked: true,
            token_consumed_at: Some(at(0)),
            ..live()
        };
        assert_eq!(
            decide(&revoked, at(50), &policy()),
            Decision::Reject(Rejection::SessionRevoked)
        );
        assert_eq!(
            decide(&live(), at(1_000), &policy()),
            Decision::Reject(Rejection::SessionExpired)
        );
        assert_eq!(
            decide(&live(), at(100), &policy()),
            Decision::Reject(Rejection::TokenExpired)
        );
    }
}
