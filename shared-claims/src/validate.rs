use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Validation, decode, decode_header};

use crate::claims::{ACCESS_TOKEN_TYP, AccessClaims};
use crate::keys::KeySet;

/// Longest token we will look at. Ours are well under 1 KiB; anything this
/// large is junk and is refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// What a token must satisfy, beyond a valid signature by a known key.
#[derive(Debug, Clone)]
pub struct ValidationRules {
    pub issuer: String,
    pub audience: String,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
}

/// Why a token was refused. The text is safe to send to the client: it names
/// the rule, never the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the access token is malformed")]
    Malformed,
    #[error("the access token is too long")]
    TooLong,
    #[error("the access token is not of type at+jwt")]
    WrongType,
    #[error("the access token has no key id")]
    MissingKeyId,
    #[error("the access token was signed with an unknown key")]
    UnknownKey { kid: String },
    #[error("the access token uses an algorithm that is not accepted")]
    WrongAlgorithm,
    #[error("the access token signature is invalid")]
    BadSignature,
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is not valid yet")]
    NotYetValid,
    #[error("the access token is for another audience")]
    WrongAudience,
    #[error("the access token is from another issuer")]
    WrongIssuer,
    #[error("the access token is missing a required claim")]
    MissingClaim,
    #[error("the access token's session has been revoked")]
    Revoked,
}

/// The one validation routine for access tokens, used by every service.
#[derive(Debug, Clone)]
pub struct Validator {
    rules: ValidationRules,
}

impl Validator {
    pub fn new(rules: ValidationRules) -> Self {
        Self { rules }
    }

    pub fn rules(&self) -> &ValidationRules {
        &self.rules
    }

    /// The `kid` a token claims, without verifying anything: lets a caller
    /// notice a key it has not fetched yet.
    pub fn key_id(token: &str) -> Option<String> {
        if token.len() > MAX_TOKEN_BYTES {
            return None;
        }
        decode_header(token).ok()?.kid
    }

    /// Verifies the signature with the key named by the token's `kid` and the
    /// algorithm of that key, then every claim rule.
    pub fn validate(&self, token: &str, keys: &KeySet) -> Result<AccessClaims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLong);
        }
        // An unknown `alg` (including "none") fails here: the header type only
        // admits algorithms the library implements.
        let header = decode_header(token).map_err(|_| TokenError::Malformed)?;
        if !is_access_token_type(header.typ.as_deref()) {
            return Err(TokenError::WrongType);
        }
        let kid = header.kid.ok_or(TokenError::MissingKeyId)?;
        let key = keys
            .get(&kid)
            .ok_or_else(|| TokenError::UnknownKey { kid: kid.clone() })?;
        // Pinned to the key's algorithm: an HS256 token "signed" with our
        // public key, or any other algorithm switch, is refused here.
        if header.alg != key.algorithm {
            return Err(TokenError::WrongAlgorithm);
        }
        let validation = self.validation_for(key.algorithm);
        decode::<AccessClaims>(token, &key.key, &validation)
            .map(|data| data.claims)
            .map_err(|e| map_error(e.kind()))
    }

    fn validation_for(&self, algorithm: jsonwebtoken::Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.leeway = self.rules.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_issuer(&[&self.rules.issuer]);
        validation.set_audience(&[&self.rules.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation
    }
}

/// RFC 9068 §4: `at+jwt`, or its long form `application/at+jwt`; media
/// types compare case-insensitively.
fn is_access_token_type(typ: Option<&str>) -> bool {
    let Some(typ) = typ else { return false };
    let short = typ
        .get(..12)
        .filter(|prefix| prefix.eq_ignore_ascii_case("application/"))
        .map_or(typ, |_| &typ[12..]);
    short.eq_ignore_ascii_case(ACCESS_TOKEN_TYP)
}

fn map_error(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
        ErrorKind::MissingRequiredClaim(_) => TokenError::MissingClaim,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => TokenError::WrongAlgorithm,
        // A claim of the wrong type or missing from our struct (`sid`, `jti`…)
        // surfaces as a JSON error.
        ErrorKind::Json(_) | ErrorKind::InvalidClaimFormat(_) => TokenError::MissingClaim,
        _ => TokenError::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_both_spellings_of_the_access_token_type() {
        assert!(is_access_token_type(Some("at+jwt")));
        assert!(is_access_token_type(Some("AT+JWT")));
        assert!(is_access_token_type(Some("application/at+jwt")));
        assert!(!is_access_token_type(Some("JWT")));
        assert!(!is_access_token_type(Some("application/jwt")));
        assert!(!is_access_token_type(None));
    }
}
