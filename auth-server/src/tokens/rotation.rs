//! The refresh-token rotation rules, as a pure function of the locked rows.
//!
//! Kept apart from the SQL so every branch can be tested without a database;
//! [`crate::db::rotation::refresh`] runs the decision inside the transaction
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
    /// The session's user has proven their e-mail address.
    pub email_verified: bool,
    /// The token its consumption issued, when it was consumed and that token
    /// is still stored.
    pub successor: Option<Successor>,
}

/// The successor of a consumed token, as the grace needs to know it.
#[derive(Debug, Clone, Copy)]
pub struct Successor {
    /// A key the server still holds derives, from the presented token, a
    /// token whose hash is the stored one: the server can send it again.
    pub reproducible: bool,
    pub consumed: bool,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Consume the token and issue its one successor.
    Rotate {
        successor_expires_at: DateTime<Utc>,
    },
    /// A consumed token within the grace: a new access token for the same
    /// session and, when it can, the very successor the consumption issued.
    /// Never another token, so the session never forks.
    Grace(GraceAnswer),
    /// A consumed token after the grace: someone holds a copy. Revoke the
    /// whole session.
    RevokeForReuse,
    Reject(Rejection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraceAnswer {
    /// Send the successor again: the answer that carried it may have been
    /// lost, and a client that keeps what it last received recovers.
    ResendSuccessor,
    /// The successor cannot be produced again (the key that derived it is
    /// gone) or is no longer the live token (it has been consumed in turn):
    /// an access token only.
    AccessTokenOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    SessionRevoked,
    SessionExpired,
    TokenExpired,
    /// `REQUIRE_VERIFIED_EMAIL`, and the user's address is not verified:
    /// the token stays as it was, usable once the address is.
    EmailNotVerified,
}

impl Rejection {
    pub fn description(self) -> &'static str {
        match self {
            Self::SessionRevoked => "the session has been revoked",
            Self::SessionExpired => "the session has reached its maximum lifetime",
            Self::TokenExpired => "the refresh token has expired",
            Self::EmailNotVerified => "the e-mail address is not verified",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub refresh_ttl: Duration,
    pub reuse_grace: Duration,
    /// `REQUIRE_VERIFIED_EMAIL`: no refresh for an unverified user.
    pub require_verified_email: bool,
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
        if since > policy.reuse_grace || policy.reuse_grace.is_zero() {
            return Decision::RevokeForReuse;
        }
    }
    // After reuse detection (a copied token revokes the session whoever
    // holds it), before anything that issues a token.
    if policy.require_verified_email && !presented.email_verified {
        return Decision::Reject(Rejection::EmailNotVerified);
    }
    if presented.token_consumed_at.is_some() {
        let resend = presented
            .successor
            .is_some_and(|s| s.reproducible && !s.consumed && now < s.expires_at);
        return Decision::Grace(if resend {
            GraceAnswer::ResendSuccessor
        } else {
            GraceAnswer::AccessTokenOnly
        });
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
            require_verified_email: false,
        }
    }

    fn live() -> Presented {
        Presented {
            token_expires_at: at(100),
            token_consumed_at: None,
            session_expires_at: at(1_000),
            session_revoked: false,
            email_verified: true,
            successor: None,
        }
    }

    /// Consumed at 20, its successor unused and derivable.
    fn consumed() -> Presented {
        Presented {
            token_consumed_at: Some(at(20)),
            successor: Some(Successor {
                reproducible: true,
                consumed: false,
                expires_at: at(120),
            }),
            ..live()
        }
    }

    const RESEND: Decision = Decision::Grace(GraceAnswer::ResendSuccessor);
    const ACCESS_ONLY: Decision = Decision::Grace(GraceAnswer::AccessTokenOnly);

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
    fn a_consumed_token_gets_its_successor_again_within_the_grace_then_revokes() {
        assert_eq!(decide(&consumed(), at(20), &policy()), RESEND);
        assert_eq!(decide(&consumed(), at(30), &policy()), RESEND);
        assert_eq!(
            decide(&consumed(), at(31), &policy()),
            Decision::RevokeForReuse
        );
        // A consumption stamped slightly ahead by another replica's clock.
        assert_eq!(decide(&consumed(), at(19), &policy()), RESEND);
    }

    #[test]
    fn a_successor_that_cannot_be_sent_again_leaves_an_access_token_only() {
        let successor = consumed().successor.unwrap();
        for gone in [
            // The key that derived it is no longer held.
            Successor {
                reproducible: false,
                ..successor
            },
            // Consumed in turn: it is no longer the session's live token.
            Successor {
                consumed: true,
                ..successor
            },
            // Past its own expiry.
            Successor {
                expires_at: at(25),
                ..successor
            },
        ] {
            let presented = Presented {
                successor: Some(gone),
                ..consumed()
            };
            assert_eq!(decide(&presented, at(25), &policy()), ACCESS_ONLY);
        }
        // Deleted, or consumed before successors were derived.
        let without = Presented {
            successor: None,
            ..consumed()
        };
        assert_eq!(decide(&without, at(25), &policy()), ACCESS_ONLY);
        // The grace still ends the same way.
        assert_eq!(
            decide(&without, at(31), &policy()),
            Decision::RevokeForReuse
        );
    }

    #[test]
    fn a_zero_grace_turns_the_grace_off() {
        let no_grace = Policy {
            reuse_grace: Duration::ZERO,
            ..policy()
        };
        assert_eq!(
            decide(&consumed(), at(20), &no_grace),
            Decision::RevokeForReuse
        );
    }

    #[test]
    fn dead_sessions_and_tokens_are_rejected_first() {
        let revoked = Presented {
            session_revoked: true,
            ..consumed()
        };
        assert_eq!(
            decide(&revoked, at(21), &policy()),
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

    #[test]
    fn an_unverified_user_gets_no_token_when_verification_is_required() {
        let required = Policy {
            require_verified_email: true,
            ..policy()
        };
        let unverified = |presented: Presented| Presented {
            email_verified: false,
            ..presented
        };
        let refused = Decision::Reject(Rejection::EmailNotVerified);
        // Neither a rotation nor a grace answer: nothing is consumed.
        assert_eq!(decide(&unverified(live()), at(10), &required), refused);
        assert_eq!(decide(&unverified(consumed()), at(25), &required), refused);
        // A copy presented after the grace still revokes the session.
        assert_eq!(
            decide(&unverified(consumed()), at(31), &required),
            Decision::RevokeForReuse
        );
        // Dead sessions and tokens say so first.
        let revoked = Presented {
            session_revoked: true,
            ..unverified(live())
        };
        assert_eq!(
            decide(&revoked, at(10), &required),
            Decision::Reject(Rejection::SessionRevoked)
        );
        // Verified, or not required: as before.
        assert!(matches!(
            decide(&live(), at(10), &required),
            Decision::Rotate { .. }
        ));
        assert!(matches!(
            decide(&unverified(live()), at(10), &policy()),
            Decision::Rotate { .. }
        ));
    }
}
