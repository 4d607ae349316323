use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The JOSE `typ` of an access token (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The claims of an access token, with RFC 9068 names.
///
/// Every field is required: a token missing any of them fails to deserialize
/// and is rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: Uuid,
    /// The session id: what revocation is keyed on.
    pub sid: Uuid,
    pub jti: Uuid,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub email: String,
    /// Whether the address was proven by a verification link (both sides
    /// deploy together, so it is required like every other claim).
    pub email_verified: bool,
    pub roles: Vec<String>,
}

impl AccessClaims {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}
