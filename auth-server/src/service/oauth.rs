//! The standard OAuth 2.0 face of the server, for generic clients and
//! resource servers: the authorization server metadata (RFC 8414), the
//! `refresh_token` grant of the token endpoint (RFC 6749 §6: the very
//! rotation of `/auth/refresh`), revocation (RFC 7009) and introspection
//! (RFC 7662). The HTTP shapes are `crate::http::oauth`'s; the error
//! bodies `crate::error`'s.

use chrono::Utc;
use serde::Serialize;
use shared_claims::assurance::Aal;
use uuid::Uuid;

use super::ServiceError;
use super::issue::Issued;
use super::refresh::{self, RefreshRefused};
use super::sessions;
use crate::db;
use crate::db::models::{ClientInfo, RevocationReason};
use crate::state::AppState;

/// Where the metadata document is served (RFC 8414 §3).
pub const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";
pub const TOKEN_PATH: &str = "/oauth/token";
pub const REVOCATION_PATH: &str = "/oauth/revoke";
pub const INTROSPECTION_PATH: &str = "/oauth/introspect";
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// The authorization server metadata (RFC 8414 §2). The endpoints are built
/// on `AUTH_PUBLIC_URL` (the issuer by default), never on the request's
/// `Host`, which a client controls.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Metadata {
    pub issuer: String,
    pub jwks_uri: String,
    pub token_endpoint: String,
    pub revocation_endpoint: String,
    pub introspection_endpoint: String,
    /// Only `refresh_token`: sessions start with `/auth/login`, which
    /// takes a password and is not an OAuth grant.
    pub grant_types_supported: Vec<&'static str>,
    /// Empty: there is no authorization endpoint.
    pub response_types_supported: Vec<&'static str>,
    /// Public clients: refresh tokens are bearer secrets of their own.
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    /// Resource servers present `INTERNAL_API_TOKEN` as a Bearer token.
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    pub service_documentation: String,
}

pub fn metadata(state: &AppState) -> Metadata {
    let tokens = &state.settings.tokens;
    let at = |path: &str| format!("{}{path}", tokens.public_url);
    Metadata {
        issuer: tokens.issuer.clone(),
        jwks_uri: at(JWKS_PATH),
        token_endpoint: at(TOKEN_PATH),
        revocation_endpoint: at(REVOCATION_PATH),
        introspection_endpoint: at(INTROSPECTION_PATH),
        grant_types_supported: vec!["refresh_token"],
        response_types_supported: Vec::new(),
        token_endpoint_auth_methods_supported: vec!["none"],
        revocation_endpoint_auth_methods_supported: vec!["none"],
        introspection_endpoint_auth_methods_supported: vec!["bearer"],
        service_documentation: at("/openapi.json"),
    }
}

/// The `refresh_token` grant: exactly `/auth/refresh`'s rotation (grace,
/// reuse detection), the new refresh token always in the body.
pub async fn refresh_grant(
    state: &AppState,
    refresh_token: &str,
    client: ClientInfo,
) -> Result<Issued, RefreshRefused> {
    refresh::refresh(state, Some(refresh_token), client).await
}

/// What a token looks like before anything is looked up: a JWT has two
/// dots, a refresh token is 78 (or, issued before version 2, 43) base64url
/// characters; anything else is nobody's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Access,
    Refresh,
    Neither,
}

fn shape(token: &str) -> Shape {
    if crate::tokens::refresh::is_refresh_shaped(token) {
        Shape::Refresh
    } else if token.bytes().filter(|&b| b == b'.').count() == 2 {
        Shape::Access
    } else {
        Shape::Neither
    }
}

/// RFC 7009: ends the session of a refresh token (in any state, as a
/// logout), or of an access token whose signature and lifetime verify.
/// Unknown, expired or foreign tokens change nothing and are no error (the
/// endpoint answers `200` to any well-formed request). The type hint is not
/// needed: the two kinds cannot be mistaken for each other.
pub async fn revoke(state: &AppState, token: &str, client: ClientInfo) -> Result<(), ServiceError> {
    match shape(token) {
        Shape::Refresh => sessions::logout(state, Some(token), client).await,
        Shape::Access => {
            let Ok(claims) = state
                .validator
                .validate(token, state.signing.ring().verification_keys())
            else {
                return Ok(());
            };
            let session_id = claims.sid;
            let revoked = state
                .database
                .run(move |conn| db::sessions::logout_session(conn, session_id, &client))
                .await?;
            if let Some((user_id, true)) = revoked {
                state.revoked(RevocationReason::Logout, 1);
                tracing::info!(audit = "logout", %user_id, %session_id, "session revoked by OAuth revocation of an access token");
            }
            Ok(())
        }
        Shape::Neither => Ok(()),
    }
}

/// The RFC 7662 answer: `{"active": false}` alone for any token that cannot
/// be used, so it tells nothing about why.
#[derive(Debug, Serialize, Default, PartialEq, utoipa::ToSchema)]
pub struct Introspection {
    pub active: bool,
    /// `access_token` or `refresh_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    /// The user id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<Uuid>,
    /// The session id (what revocation is keyed on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<Uuid>,
    /// The user's e-mail address (access tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<Uuid>,
    /// The roles, space-separated as RFC 7662 writes scopes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The roles as the access token carries them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// How the user proved who they are (RFC 8176), as the token says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// `aal1` or `aal2`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// When a factor was last proven in the session (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
}

impl Introspection {
    pub fn inactive() -> Self {
        Self::default()
    }
}

/// RFC 7662 for resource servers (the caller is authenticated by the
/// handler). An access token is active when it verifies (signature, `typ`,
/// issuer, audience, lifetime) and its session is live right now, so a
/// revocation shows at once, with no feed delay. A refresh token is active
/// while it is unconsumed, unexpired and its session live: a consumed
/// token within the reuse grace is not (it would only yield an access
/// token again, never a fresh refresh token).
pub async fn introspect(state: &AppState, token: &str) -> Result<Introspection, ServiceError> {
    match shape(token) {
        Shape::Access => {
            let Ok(claims) = state
                .validator
                .validate(token, state.signing.ring().verification_keys())
            else {
                return Ok(Introspection::inactive());
            };
            if !sessions::is_live(&state.database, claims.sid, claims.roles_version()).await? {
                return Ok(Introspection::inactive());
            }
            Ok(Introspection {
                active: true,
                token_type: Some("access_token"),
                sub: Some(claims.sub),
                sid: Some(claims.sid),
                username: Some(claims.email),
                iss: Some(claims.iss),
                aud: Some(claims.aud),
                iat: Some(claims.iat),
                nbf: Some(claims.nbf),
                exp: Some(claims.exp),
                jti: Some(claims.jti),
                scope: Some(claims.roles.join(" ")),
                roles: Some(claims.roles),
                email_verified: Some(claims.email_verified),
                acr: Some(claims.acr.unwrap_or_else(|| Aal::Aal1.as_str().to_owned())),
                amr: Some(claims.amr),
                auth_time: claims.auth_time,
            })
        }
        Shape::Refresh => {
            let Some(token) = refresh::presented_token(&state.token_keys, token) else {
                return Ok(Introspection::inactive());
            };
            let found = state
                .database
                .run(move |conn| db::tokens::find(conn, &token))
                .await?;
            let now = Utc::now();
            let Some(row) = found else {
                return Ok(Introspection::inactive());
            };
            let session = row.session;
            let usable = row.live
                && row.expires_at > now
                && session.revoked_at.is_none()
                && session.expires_at > now;
            if !usable {
                return Ok(Introspection::inactive());
            }
            Ok(Introspection {
                active: true,
                token_type: Some("refresh_token"),
                sub: Some(session.user_id),
                sid: Some(session.id),
                iss: Some(state.settings.tokens.issuer.clone()),
                iat: Some(row.issued_at.timestamp()),
                // A rotation never outlives its session.
                exp: Some(row.expires_at.min(session.expires_at).timestamp()),
                ..Introspection::default()
            })
        }
        Shape::Neither => Ok(Introspection::inactive()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_told_apart_by_their_shape() {
        assert_eq!(shape(&"a".repeat(43)), Shape::Refresh);
        assert_eq!(shape(&"a".repeat(78)), Shape::Refresh);
        assert_eq!(shape("eyJ.eyJ.sig"), Shape::Access);
        for other in ["", "a.b", "a.b.c.d", &"a".repeat(42), "not a token"] {
            assert_eq!(shape(other), Shape::Neither, "{other:?}");
        }
    }

    #[test]
    fn an_inactive_answer_says_nothing_else() {
        assert_eq!(
            serde_json::to_value(Introspection::inactive()).unwrap(),
            serde_json::json!({ "active": false })
        );
    }
}
