//! Why a request is refused, and the one mapping of it to an HTTP answer
//! (status, challenge, body) that every adapter sends as it is. What a
//! client reads is our own words: causes from inside (errors from the auth
//! server, how stale the state is) go to the log only.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use shared_claims::TokenError;
use shared_claims::assurance::Insufficient;
use shared_claims::challenge::bearer_challenge;
use shared_claims::error::{ErrorBody, ErrorCode};

/// Why the guard cannot decide, in words that give nothing away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unready {
    KeysNotLoaded,
    RevocationsStale,
    /// The application is not set up (an adapter found no guard).
    Internal,
}

impl Unready {
    /// What a client, or a public `/readyz`, may be told.
    pub fn words(self) -> &'static str {
        match self {
            Self::KeysNotLoaded => "the auth server's signing keys are not loaded yet",
            Self::RevocationsStale => "revocation state is stale",
            Self::Internal => "the service is temporarily unavailable",
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization` header: `401` with a bare challenge.
    MissingToken,
    /// An `Authorization` header that carries no Bearer token.
    NotBearer,
    /// A token that fails a rule, or whose session is revoked.
    InvalidToken(TokenError),
    /// A valid token without the role the resource needs: `403`.
    InsufficientScope { role: String },
    /// A valid token whose authentication is too weak or too old for the
    /// route (RFC 9470): `401 insufficient_user_authentication`, its
    /// challenge naming the max age and, when the level is what is missing,
    /// `acr_values`.
    InsufficientUserAuthentication(Insufficient),
    /// Keys not loaded, or revocation state too stale to trust (and the
    /// guard fails closed): `503`. `detail` is for the log only.
    Unavailable { reason: Unready, detail: String },
}

/// A refusal, with the realm its challenge names. Adapters turn it into
/// their framework's response through [`GuardError::answer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardError {
    pub refusal: Refusal,
    realm: Arc<str>,
}

/// A refusal as HTTP, framework-free: send the status, these headers (with
/// `Content-Type: application/json`) and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// `Cache-Control: no-store` always; `WWW-Authenticate` on `401` and
    /// `403` (RFC 9470's challenge for a step-up); `Retry-After` on `503`.
    pub headers: Vec<(&'static str, String)>,
    /// `{"error": "<code>", "error_description": "<text>"}`.
    pub body: String,
}

impl GuardError {
    pub fn new(refusal: Refusal, realm: Arc<str>) -> Self {
        Self { refusal, realm }
    }

    /// The one table of what each refusal is on the wire: its status, its
    /// code and what the client is told.
    fn wire(&self) -> (u16, ErrorCode, Cow<'static, str>) {
        match &self.refusal {
            Refusal::MissingToken => (401, ErrorCode::InvalidToken, "missing bearer token".into()),
            Refusal::NotBearer => (
                401,
                ErrorCode::InvalidToken,
                "the Authorization header is not a Bearer token".into(),
            ),
            Refusal::InvalidToken(e) => (401, ErrorCode::InvalidToken, e.to_string().into()),
            Refusal::InsufficientScope { role } => (
                403,
                ErrorCode::InsufficientScope,
                format!("this resource requires the `{role}` role").into(),
            ),
            Refusal::InsufficientUserAuthentication(_) => (
                401,
                ErrorCode::InsufficientUserAuthentication,
                Insufficient::DESCRIPTION.into(),
            ),
            Refusal::Unavailable { reason, .. } => {
                (503, ErrorCode::Unavailable, reason.words().into())
            }
        }
    }

    /// The contract's error code.
    pub fn code(&self) -> ErrorCode {
        self.wire().1
    }

    /// What the client is told.
    pub fn description(&self) -> String {
        self.wire().2.into_owned()
    }

    pub fn status(&self) -> u16 {
        self.wire().0
    }

    /// The HTTP answer: RFC 6750 challenges (`error="invalid_token"` only
    /// when a token was sent), RFC 9470's for a step-up, `Retry-After: 1`
    /// on `503`, never cached.
    /// Logs the cause of a `503`, which the answer does not carry.
    pub fn answer(&self) -> Answer {
        let (status, code, description) = self.wire();
        let mut headers = vec![("cache-control", "no-store".to_owned())];
        match &self.refusal {
            Refusal::MissingToken => {
                headers.push(("www-authenticate", bearer_challenge(&self.realm, None)));
            }
            Refusal::NotBearer | Refusal::InvalidToken(_) | Refusal::InsufficientScope { .. } => {
                let error = Some((code, &*description));
                headers.push(("www-authenticate", bearer_challenge(&self.realm, error)));
            }
            Refusal::InsufficientUserAuthentication(insufficient) => {
                headers.push(("www-authenticate", insufficient.challenge(&self.realm)));
            }
            Refusal::Unavailable { detail, .. } => {
                tracing::warn!(%detail, "answering 503");
                headers.push(("retry-after", "1".to_owned()));
            }
        }
        let body = serde_json::to_string(&ErrorBody {
            error: code,
            error_description: &description,
        })
        // Two strings always serialise; the fallback only keeps us panic-free.
        .unwrap_or_else(|_| format!(r#"{{"error":"{code}"}}"#));
        Answer {
            status,
            headers,
            body,
        }
    }
}

impl fmt::Display for GuardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (_, code, description) = self.wire();
        write!(f, "{code}: {description}")
    }
}

impl std::error::Error for GuardError {}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use shared_claims::assurance::Aal;

    use super::*;

    fn answer(refusal: Refusal) -> Answer {
        GuardError::new(refusal, Arc::from("api")).answer()
    }

    fn header<'a>(answer: &'a Answer, name: &str) -> Option<&'a str> {
        answer
            .headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_missing_token_gets_a_bare_challenge() {
        let missing = answer(Refusal::MissingToken);
        assert_eq!(missing.status, 401);
        assert_eq!(
            header(&missing, "www-authenticate"),
            Some(r#"Bearer realm="api""#)
        );
        assert_eq!(
            missing.body,
            r#"{"error":"invalid_token","error_description":"missing bearer token"}"#
        );
        assert_eq!(header(&missing, "cache-control"), Some("no-store"));
    }

    #[test]
    fn a_refused_token_says_why_in_the_challenge() {
        let expired = answer(Refusal::InvalidToken(TokenError::Expired));
        assert_eq!(expired.status, 401);
        assert_eq!(
            header(&expired, "www-authenticate"),
            Some(
                r#"Bearer realm="api", error="invalid_token", error_description="the access token has expired""#
            )
        );
        let not_bearer = answer(Refusal::NotBearer);
        assert!(
            header(&not_bearer, "www-authenticate")
                .is_some_and(|c| c.contains(r#"error="invalid_token""#))
        );
    }

    #[test]
    fn a_missing_role_is_403_insufficient_scope() {
        let forbidden = answer(Refusal::InsufficientScope {
            role: "admin".into(),
        });
        assert_eq!(forbidden.status, 403);
        assert_eq!(
            header(&forbidden, "www-authenticate"),
            Some(
                r#"Bearer realm="api", error="insufficient_scope", error_description="this resource requires the `admin` role""#
            )
        );
    }

    #[test]
    fn a_step_up_is_401_with_rfc_9470s_challenge() {
        let weak = answer(Refusal::InsufficientUserAuthentication(Insufficient {
            max_age: Some(Duration::from_secs(300)),
            acr: Some(Aal::Aal2),
        }));
        assert_eq!(weak.status, 401);
        assert_eq!(
            header(&weak, "www-authenticate"),
            Some(
                r#"Bearer realm="api", error="insufficient_user_authentication", error_description="a more recent or stronger authentication is required: reauthenticate", max_age=300, acr_values="aal2""#
            )
        );
        assert_eq!(
            weak.body,
            r#"{"error":"insufficient_user_authentication","error_description":"a more recent or stronger authentication is required: reauthenticate"}"#
        );
        assert_eq!(header(&weak, "cache-control"), Some("no-store"));
        let stale = answer(Refusal::InsufficientUserAuthentication(Insufficient {
            max_age: Some(Duration::from_secs(300)),
            acr: None,
        }));
        let challenge = header(&stale, "www-authenticate").unwrap();
        assert!(challenge.ends_with(", max_age=300"), "{challenge}");
        assert!(!challenge.contains("acr_values"), "{challenge}");
    }

    #[test]
    fn unavailable_says_fixed_words_and_when_to_retry() {
        let stale = answer(Refusal::Unavailable {
            reason: Unready::RevocationsStale,
            detail: "last sync 31s ago: connection refused (10.0.0.7)".into(),
        });
        assert_eq!(stale.status, 503);
        assert_eq!(header(&stale, "retry-after"), Some("1"));
        assert_eq!(header(&stale, "www-authenticate"), None);
        assert_eq!(
            stale.body,
            r#"{"error":"unavailable","error_description":"revocation state is stale"}"#
        );
    }
}
