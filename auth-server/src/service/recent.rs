//! The rule that guards the sensitive actions (a password change, removing
//! a factor or a passkey, new recovery codes, a new passkey or TOTP): the
//! access token's `auth_time` within `REAUTH_MAX_AGE` and, for a user with
//! a second factor, `acr` `aal2`; otherwise RFC 9470's challenge.

use chrono::Utc;
use shared_claims::AccessClaims;
use shared_claims::assurance::{Aal, StepUp};

use super::ServiceError;
use crate::db;
use crate::db::factors::Factors;
use crate::state::AppState;

/// The sensitive actions' rule: the token's `auth_time` within
/// `REAUTH_MAX_AGE` and, for a user with a second factor, `acr` `aal2`.
/// The user's factors, when it holds.
pub async fn require(state: &AppState, claims: &AccessClaims) -> Result<Factors, ServiceError> {
    let user_id = claims.sub;
    let factors = state
        .database
        .run(move |conn| Ok(db::factors::of_user(conn, user_id)?))
        .await?;
    let rule = StepUp {
        acr: factors.any().then_some(Aal::Aal2),
        max_age: Some(state.settings.accounts.reauth_max_age),
    };
    rule.check(claims, Utc::now().timestamp())
        .map_err(ServiceError::NeedsReauthentication)?;
    Ok(factors)
}
