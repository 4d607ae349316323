//! Passkeys of a signed-in user (register, list, remove), signing in with
//! a passkey alone, and the passkey ceremonies a login's second step and a
//! reauthentication start. Every ceremony's state waits in PostgreSQL
//! (single use, [`CHALLENGE_TTL`]), so any replica finishes what another
//! started. [`verify_assertion`] is the one check of an assertion, shared
//! by the sign-in, the second step and the reauthentication.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::{Connection, PgConnection};
use serde_json::Value;
use shared_claims::AccessClaims;
use shared_claims::assurance::method;
use uuid::Uuid;
use webauthn_rs::Webauthn;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, WebauthnError,
};

use super::ServiceError;
use super::issue::{Issued, NewSession};
use super::notices::notify;
use super::recent;
use crate::db::audit::{self, Event, EventType};
use crate::db::models::{ClientInfo, RevocationReason, TokenSubject};
use crate::db::passkeys::{self, PasskeyRow, Purpose};
use crate::db::sessions::Proven;
use crate::db::{self, DbError, DbResult, factors};
use crate::factors::passkey as rules;
use crate::factors::recovery::{self, RecoveryCode};
use crate::mail::notice::Notice;
use crate::state::AppState;

/// How long a ceremony may take (the contract's 5 minutes).
pub const CHALLENGE_TTL: Duration = Duration::from_secs(5 * 60);

/// A passkey alone: the device and the user verification that unlocked it.
pub const PASSKEY: [&str; 2] = [method::HARDWARE_KEY, method::USER_PRESENCE_VERIFIED];
/// A password and a passkey.
pub const PASSWORD_AND_PASSKEY: [&str; 4] = [
    method::PASSWORD,
    method::HARDWARE_KEY,
    method::USER_PRESENCE_VERIFIED,
    method::MULTI_FACTOR,
];

/// A started ceremony, as the contract answers it.
#[derive(Debug)]
pub struct Started {
    pub challenge_id: Uuid,
    pub options: Value,
}

/// An assertion as presented: the ceremony it answers and the browser's
/// `PublicKeyCredential.toJSON()`.
#[derive(Debug)]
pub struct Assertion {
    pub challenge_id: Uuid,
    pub credential: Box<PublicKeyCredential>,
}

/// A registered passkey.
#[derive(Debug)]
pub struct Registered {
    pub passkey: PasskeyRow,
    /// The recovery codes, when this is the user's first second factor.
    pub recovery_codes: Vec<RecoveryCode>,
}

/// What checking an assertion found.
#[derive(Debug)]
pub enum Verdict {
    Verified(PasskeyRow),
    /// Unknown, expired, used or another's ceremony.
    ChallengeUnusable,
    /// A wrong or unverified assertion, or a passkey that is not this
    /// user's.
    Refused,
    /// The signature counter went backwards: the passkey may be cloned.
    CloneSuspected,
}

fn expiry() -> DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(CHALLENGE_TTL).unwrap_or_default()
}

/// Keeps a ceremony's server-side state until its finish; its id.
async fn keep<T: serde::Serialize>(
    state: &AppState,
    purpose: Purpose,
    user_id: Option<Uuid>,
    ceremony: &T,
) -> Result<Uuid, ServiceError> {
    let saved = serde_json::to_value(ceremony)
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("a WebAuthn state as JSON: {e}")))?;
    Ok(state
        .database
        .run(move |conn| Ok(passkeys::start(conn, purpose, user_id, &saved, expiry())?))
        .await?)
}

fn passkey_of(row: &PasskeyRow) -> Option<Passkey> {
    serde_json::from_value(row.credential.clone()).ok()
}

/// `POST /auth/passkeys/register/start` (recent).
pub async fn register_start(
    state: &AppState,
    claims: &AccessClaims,
) -> Result<Started, ServiceError> {
    recent::require(state, claims).await?;
    let user_id = claims.sub;
    let existing = state
        .database
        .run(move |conn| Ok(passkeys::of_user(conn, user_id)?))
        .await?;
    let exclude = existing
        .iter()
        .filter_map(passkey_of)
        .map(|p| p.cred_id().clone())
        .collect::<Vec<_>>();
    let (challenge, registration) = state
        .webauthn
        .start_passkey_registration(user_id, &claims.email, &claims.email, Some(exclude))
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("starting a registration: {e}")))?;
    let challenge_id = keep(state, Purpose::Register, Some(user_id), &registration).await?;
    Ok(Started {
        challenge_id,
        options: rules::creation_options(&challenge),
    })
}

/// `POST /auth/passkeys/register/finish`.
pub async fn register_finish(
    state: &AppState,
    claims: &AccessClaims,
    challenge_id: Uuid,
    credential: RegisterPublicKeyCredential,
    name: String,
    client: ClientInfo,
) -> Result<Registered, ServiceError> {
    let user_id = claims.sub;
    let saved = state
        .database
        .run(move |conn| {
            Ok(passkeys::take(
                conn,
                challenge_id,
                Purpose::Register,
                Some(user_id),
            )?)
        })
        .await?
        .ok_or(ServiceError::CeremonyRefused(CHALLENGE_UNUSABLE))?;
    let registration: PasskeyRegistration = serde_json::from_value(saved)
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("a stored registration: {e}")))?;
    let passkey = state
        .webauthn
        .finish_passkey_registration(&credential, &registration)
        .map_err(|_| ServiceError::CeremonyRefused("the passkey's registration does not verify"))?;
    let credential_id = passkey.cred_id().to_vec();
    let stored = serde_json::to_value(&passkey)
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("a passkey as JSON: {e}")))?;
    let codes =
        recovery::generate().map_err(|e| ServiceError::Internal(anyhow::anyhow!("CSPRNG: {e}")))?;
    let hashes: Vec<[u8; 32]> = codes.iter().map(RecoveryCode::hash).collect();
    let email = claims.email.clone();
    let outcome = state
        .database
        .run(move |conn| {
            conn.transaction::<_, DbError, _>(|conn| {
                let first = !factors::of_user(conn, user_id)?.any();
                let Some(row) = passkeys::insert(conn, user_id, &credential_id, &name, &stored)?
                else {
                    return Ok(None);
                };
                if first {
                    factors::replace_recovery_codes(conn, user_id, &hashes)?;
                }
                audit::record(conn, Event::new(EventType::PasskeyAdded, user_id, &client))?;
                notify(conn, Notice::FactorAdded, &email, user_id, &client)?;
                Ok(Some((row, first)))
            })
        })
        .await?;
    let Some((passkey, first)) = outcome else {
        return Err(ServiceError::CeremonyRefused(
            "this passkey is already registered",
        ));
    };
    state.mail_queued.notify_one();
    Ok(Registered {
        passkey,
        recovery_codes: if first { codes } else { Vec::new() },
    })
}

pub async fn list(state: &AppState, user_id: Uuid) -> Result<Vec<PasskeyRow>, ServiceError> {
    Ok(state
        .database
        .run(move |conn| Ok(passkeys::of_user(conn, user_id)?))
        .await?)
}

/// `DELETE /auth/passkeys/{id}` (recent): the sessions it signed in end;
/// the recovery codes go when no second factor remains.
pub async fn remove(
    state: &AppState,
    claims: &AccessClaims,
    id: Uuid,
    client: ClientInfo,
) -> Result<(), ServiceError> {
    recent::require(state, claims).await?;
    let (user_id, email) = (claims.sub, claims.email.clone());
    let revoked = state
        .database
        .run(move |conn| {
            conn.transaction::<_, DbError, _>(|conn| {
                if passkeys::delete(conn, user_id, id)?.is_none() {
                    return Ok(None);
                }
                let revoked = db::sessions::revoke_signed_in_with(
                    conn,
                    id,
                    RevocationReason::PasskeyRemoved,
                )?;
                if !factors::of_user(conn, user_id)?.any() {
                    factors::delete_recovery_codes(conn, user_id)?;
                }
                audit::record(
                    conn,
                    Event::new(EventType::PasskeyRemoved, user_id, &client),
                )?;
                notify(conn, Notice::FactorRemoved, &email, user_id, &client)?;
                Ok(Some(revoked))
            })
        })
        .await?
        .ok_or(ServiceError::NotFound("passkey"))?;
    state.revoked(RevocationReason::PasskeyRemoved, revoked);
    state.mail_queued.notify_one();
    Ok(())
}

/// `POST /auth/passkeys/login/start`: a discoverable ceremony (the
/// authenticator names the user).
pub async fn login_start(state: &AppState) -> Result<Started, ServiceError> {
    let (challenge, authentication) = state
        .webauthn
        .start_discoverable_authentication()
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("starting a sign-in: {e}")))?;
    let challenge_id = keep(state, Purpose::Login, None, &authentication).await?;
    Ok(Started {
        challenge_id,
        options: rules::request_options(&challenge),
    })
}

/// A ceremony for the user's own passkeys: a login's second step or a
/// reauthentication. `NotFound` when the user has none.
pub async fn start_for_user(
    state: &AppState,
    user_id: Uuid,
    purpose: Purpose,
) -> Result<Started, ServiceError> {
    let rows = state
        .database
        .run(move |conn| Ok(passkeys::of_user(conn, user_id)?))
        .await?;
    let keys: Vec<Passkey> = rows.iter().filter_map(passkey_of).collect();
    if keys.is_empty() {
        return Err(ServiceError::NotFound("passkey"));
    }
    let (challenge, authentication) = state
        .webauthn
        .start_passkey_authentication(&keys)
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("starting an authentication: {e}")))?;
    let challenge_id = keep(state, purpose, Some(user_id), &authentication).await?;
    Ok(Started {
        challenge_id,
        options: rules::request_options(&challenge),
    })
}

const CHALLENGE_UNUSABLE: &str = "the challenge is unknown, expired or used: start again";

/// `POST /auth/passkeys/login/finish`: a session for a verified passkey
/// alone (`aal2`).
pub async fn login_finish(
    state: &AppState,
    assertion: Assertion,
    client: ClientInfo,
) -> Result<Issued, ServiceError> {
    let webauthn = Arc::clone(&state.webauthn);
    let audit_client = client.clone();
    let verdict = state
        .database
        .run(move |conn| {
            verify_assertion(
                conn,
                &webauthn,
                &assertion,
                Purpose::Login,
                None,
                &audit_client,
            )
        })
        .await?;
    let passkey = match verdict {
        Verdict::Verified(passkey) => passkey,
        Verdict::ChallengeUnusable => {
            return Err(ServiceError::CeremonyRefused(CHALLENGE_UNUSABLE));
        }
        Verdict::Refused | Verdict::CloneSuspected => {
            state.metrics.logins.with_label_values(&["failed"]).inc();
            return Err(ServiceError::InvalidCredentials);
        }
    };
    let user_id = passkey.user_id;
    let user = state
        .database
        .run(move |conn| db::users::find_by_id(conn, user_id))
        .await?
        .ok_or(ServiceError::InvalidCredentials)?;
    if user.disabled_at.is_some() {
        return Err(ServiceError::AccountDisabled);
    }
    if state.settings.accounts.require_verified_email && !user.email_verified {
        return Err(ServiceError::EmailNotVerified);
    }
    let new_session = NewSession::draw(state)?;
    let opening = new_session.clone();
    let proven = Proven {
        amr: &PASSKEY,
        passkey_id: Some(passkey.id),
    };
    let created = state
        .database
        .run(move |conn| opening.create(conn, user_id, None, proven, &client))
        .await?
        // Disabled or deleted meanwhile.
        .ok_or(ServiceError::AccountDisabled)?;
    new_session.open(state, &TokenSubject::from(&user), created)
}

/// Checks an assertion against the ceremony it answers and the stored
/// passkey, in the caller's transaction: the ceremony is used up, the
/// counter moves forward. `user_id` is whose ceremony it must be (`None`
/// for a discoverable sign-in, where the authenticator names the user).
pub(super) fn verify_assertion(
    conn: &mut PgConnection,
    webauthn: &Webauthn,
    assertion: &Assertion,
    purpose: Purpose,
    user_id: Option<Uuid>,
    client: &ClientInfo,
) -> DbResult<Verdict> {
    let Some(saved) = passkeys::take(conn, assertion.challenge_id, purpose, user_id)? else {
        return Ok(Verdict::ChallengeUnusable);
    };
    let credential = &assertion.credential;
    let Some(row) = passkeys::by_credential_id(conn, credential.get_credential_id())? else {
        return Ok(Verdict::Refused);
    };
    let Some(mut passkey) = passkey_of(&row) else {
        return Ok(Verdict::Refused);
    };
    let result = match user_id {
        None => {
            let Ok(state) = serde_json::from_value::<DiscoverableAuthentication>(saved) else {
                return Ok(Verdict::Refused);
            };
            match webauthn.identify_discoverable_authentication(credential) {
                Ok((named, _)) if named == row.user_id => {}
                _ => return Ok(Verdict::Refused),
            }
            webauthn.finish_discoverable_authentication(
                credential,
                state,
                &[DiscoverableKey::from(&passkey)],
            )
        }
        Some(user_id) => {
            if row.user_id != user_id {
                return Ok(Verdict::Refused);
            }
            let Ok(state) = serde_json::from_value::<PasskeyAuthentication>(saved) else {
                return Ok(Verdict::Refused);
            };
            webauthn.finish_passkey_authentication(credential, &state)
        }
    };
    let result = match result {
        Ok(result) if result.user_verified() => result,
        Ok(_) => return Ok(Verdict::Refused),
        Err(WebauthnError::CredentialPossibleCompromise) => {
            return clone_suspected(conn, &row, client);
        }
        Err(_) => return Ok(Verdict::Refused),
    };
    passkey.update_credential(&result);
    let updated = serde_json::to_value(&passkey).unwrap_or(row.credential.clone());
    if !passkeys::used(conn, row.id, i64::from(result.counter()), &updated)? {
        return clone_suspected(conn, &row, client);
    }
    Ok(Verdict::Verified(row))
}

fn clone_suspected(
    conn: &mut PgConnection,
    row: &PasskeyRow,
    client: &ClientInfo,
) -> DbResult<Verdict> {
    tracing::warn!(user_id = %row.user_id, passkey_id = %row.id, "a passkey's signature counter went backwards: refused (cloned?)");
    audit::record(
        conn,
        Event::new(EventType::PasskeyCloneSuspected, row.user_id, client),
    )?;
    Ok(Verdict::CloneSuspected)
}
