use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The JOSE `typ` of an access token (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The claims of an access token, with RFC 9068 names.
///
/// Every field but `rv`, `amr`, `acr` and `auth_time` (which tokens
/// signed before they existed lack) is required: a token missing any of them fails to
/// deserialize and is rejected.
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
    /// The user's roles version when the token was issued: an API refuses
    /// it once the feed says the user's roles changed since. Optional, so
    /// tokens signed before it existed still parse (as version 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rv: Option<i64>,
    /// How the user proved who they are (RFC 8176 values, see
    /// [`crate::assurance::method`]). Empty in tokens from before second
    /// factors existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// `aal1` or `aal2` ([`crate::assurance::Aal`]); absent means `aal1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// When the user last proved a factor in this session (Unix seconds);
    /// absent means never recent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
}

impl AccessClaims {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// The roles version the token was issued under (0 before there was one).
    pub fn roles_version(&self) -> i64 {
        self.rv.unwrap_or(0)
    }
}
