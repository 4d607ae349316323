//! Second factors of a signed-in user: what they have, enrolling and
//! removing TOTP, recovery codes, and the rule that guards the sensitive
//! actions (a recent authentication, at `aal2` when the user has a second
//! factor). Checking a factor during a login or a reauthentication is
//! [`check_second_factor`], shared by both.

use std::sync::Arc;

use chrono::Utc;
use diesel::{Connection, PgConnection};
use shared_claims::AccessClaims;
use shared_claims::assurance::method;
use uuid::Uuid;
use webauthn_rs::Webauthn;

use super::notices::notify;
use super::passkeys::{self, Assertion, Verdict};
use super::{ServiceError, recent};
use crate::db::audit::{self, Event, EventType};
use crate::db::factors::{self, Factors};
use crate::db::models::ClientInfo;
use crate::db::passkeys::Purpose;
use crate::db::sessions::Proven;
use crate::db::{DbError, DbResult};
use crate::factors::recovery::{self, RecoveryCode};
use crate::factors::totp::{Sealed, TotpSecret};
use crate::mail::notice::Notice;
use crate::state::AppState;
use crate::tokens::keys::TokenKeys;

/// A pending TOTP enrolment, as shown once to its user. `Debug` redacted.
pub struct Enrolment {
    pub secret: String,
    pub otpauth_uri: String,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Enrolment([REDACTED])")
    }
}

/// A second factor as presented.
#[derive(Debug)]
pub enum SecondFactor {
    Totp(String),
    RecoveryCode(String),
    Passkey(Assertion),
}

/// A password and a one-time code (TOTP or recovery code).
pub const PASSWORD_AND_OTP: [&str; 3] = [method::PASSWORD, method::OTP, method::MULTI_FACTOR];

/// What checking a factor needs beyond the database: the token key ring
/// (TOTP secrets are sealed under it) and the passkeys' relying party.
#[derive(Clone)]
pub struct Verifiers {
    pub keys: Arc<TokenKeys>,
    pub webauthn: Arc<Webauthn>,
}

impl Verifiers {
    pub fn of(state: &AppState) -> Self {
        Self {
            keys: Arc::clone(&state.token_keys),
            webauthn: Arc::clone(&state.webauthn),
        }
    }
}

pub async fn status(state: &AppState, user_id: Uuid) -> Result<Factors, ServiceError> {
    Ok(state
        .database
        .run(move |conn| Ok(factors::of_user(conn, user_id)?))
        .await?)
}

/// `POST /auth/mfa/totp`: a pending enrolment (a new call replaces it).
pub async fn start_totp(
    state: &AppState,
    claims: &AccessClaims,
) -> Result<Enrolment, ServiceError> {
    recent::require(state, claims).await?;
    let secret = TotpSecret::generate()
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("CSPRNG: {e}")))?;
    let user_id = claims.sub;
    let sealed = secret
        .seal(&state.token_keys, user_id)
        .map_err(ServiceError::Internal)?;
    let started = state
        .database
        .run(move |conn| {
            Ok(factors::start_totp(
                conn,
                user_id,
                &sealed.bytes,
                sealed.key_id,
            )?)
        })
        .await?;
    if !started {
        return Err(ServiceError::AlreadyEnrolled);
    }
    let otpauth_uri = secret
        .otpauth_uri(&issuer_name(state), &claims.email)
        .ok_or_else(|| {
            ServiceError::Internal(anyhow::anyhow!("an otpauth URI for this account"))
        })?;
    Ok(Enrolment {
        secret: secret.base32(),
        otpauth_uri,
    })
}

/// What authenticator apps show beside the code: the issuer's host.
fn issuer_name(state: &AppState) -> String {
    let issuer = &state.settings.tokens.issuer;
    url::Url::parse(issuer)
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_else(|| issuer.clone())
        .replace(':', "")
}

/// `POST /auth/mfa/totp/confirm`: TOTP on, and the recovery codes when it
/// is the user's first second factor (empty otherwise).
pub async fn confirm_totp(
    state: &AppState,
    claims: &AccessClaims,
    code: String,
    client: ClientInfo,
) -> Result<Vec<RecoveryCode>, ServiceError> {
    let codes =
        recovery::generate().map_err(|e| ServiceError::Internal(anyhow::anyhow!("CSPRNG: {e}")))?;
    let hashes: Vec<[u8; 32]> = codes.iter().map(RecoveryCode::hash).collect();
    let keys = std::sync::Arc::clone(&state.token_keys);
    let (user_id, email) = (claims.sub, claims.email.clone());
    let outcome = state
        .database
        .run(move |conn| {
            conn.transaction::<_, DbError, _>(|conn| {
                let Some(row) = factors::totp(conn, user_id)? else {
                    return Ok(Confirm::NothingPending);
                };
                if row.confirmed_at.is_some() {
                    return Ok(Confirm::AlreadyOn);
                }
                let Some(secret) = open(&keys, &row, user_id) else {
                    return Ok(Confirm::NothingPending);
                };
                let Some(step) = secret.matching_step(&code, unix_now(), None) else {
                    return Ok(Confirm::WrongCode);
                };
                if !factors::confirm_totp(conn, user_id, row.created_at, step)? {
                    // Replaced by a newer enrolment meanwhile.
                    return Ok(Confirm::WrongCode);
                }
                let first = factors::of_user(conn, user_id)?.recovery_codes_remaining == 0;
                if first {
                    factors::replace_recovery_codes(conn, user_id, &hashes)?;
                }
                audit::record(conn, Event::new(EventType::MfaEnabled, user_id, &client))?;
                notify(conn, Notice::FactorAdded, &email, user_id, &client)?;
                Ok(Confirm::On { first })
            })
        })
        .await?;
    match outcome {
        Confirm::On { first: true } => Ok(codes),
        Confirm::On { first: false } => Ok(Vec::new()),
        Confirm::NothingPending => Err(ServiceError::NotFound("pending TOTP enrolment")),
        Confirm::AlreadyOn => Err(ServiceError::AlreadyEnrolled),
        Confirm::WrongCode => Err(ServiceError::WrongFactor),
    }
}

enum Confirm {
    On { first: bool },
    NothingPending,
    AlreadyOn,
    WrongCode,
}

/// `DELETE /auth/mfa/totp`: TOTP off; the recovery codes go too when no
/// second factor remains. Existing sessions keep what they recorded.
pub async fn disable_totp(
    state: &AppState,
    claims: &AccessClaims,
    client: ClientInfo,
) -> Result<(), ServiceError> {
    recent::require(state, claims).await?;
    let (user_id, email) = (claims.sub, claims.email.clone());
    let removed = state
        .database
        .run(move |conn| {
            conn.transaction::<_, DbError, _>(|conn| {
                if !factors::delete_totp(conn, user_id)? {
                    return Ok(false);
                }
                // Passkeys will be a second factor too: then only when none
                // remains.
                if !factors::of_user(conn, user_id)?.any() {
                    factors::delete_recovery_codes(conn, user_id)?;
                }
                audit::record(conn, Event::new(EventType::MfaDisabled, user_id, &client))?;
                notify(conn, Notice::FactorRemoved, &email, user_id, &client)?;
                Ok(true)
            })
        })
        .await?;
    if removed {
        Ok(())
    } else {
        Err(ServiceError::NotFound("TOTP"))
    }
}

/// `POST /auth/mfa/recovery-codes`: ten new codes, the old ones dead.
pub async fn regenerate_recovery_codes(
    state: &AppState,
    claims: &AccessClaims,
    client: ClientInfo,
) -> Result<Vec<RecoveryCode>, ServiceError> {
    let factors = recent::require(state, claims).await?;
    if !factors.any() {
        return Err(ServiceError::NoSecondFactor);
    }
    let codes =
        recovery::generate().map_err(|e| ServiceError::Internal(anyhow::anyhow!("CSPRNG: {e}")))?;
    let hashes: Vec<[u8; 32]> = codes.iter().map(RecoveryCode::hash).collect();
    let user_id = claims.sub;
    let replaced = state
        .database
        .run(move |conn| {
            conn.transaction::<_, DbError, _>(|conn| {
                if !factors::of_user(conn, user_id)?.any() {
                    return Ok(false);
                }
                factors::replace_recovery_codes(conn, user_id, &hashes)?;
                let event = Event::new(EventType::RecoveryCodesRegenerated, user_id, &client);
                audit::record(conn, event)?;
                Ok(true)
            })
        })
        .await?;
    if replaced {
        Ok(codes)
    } else {
        Err(ServiceError::NoSecondFactor)
    }
}

/// Checks `factor` beside a password for the user and uses it up (a TOTP
/// step, a recovery code, a passkey ceremony of `ceremony`'s kind), in
/// the caller's transaction: what the password and it prove together, or
/// `None` when it is wrong, already used, or not the user's. A recovery
/// code used is an event and a notice to `email`.
pub(super) fn check_second_factor(
    conn: &mut PgConnection,
    verifiers: &Verifiers,
    user_id: Uuid,
    email: &str,
    factor: &SecondFactor,
    ceremony: Purpose,
    client: &ClientInfo,
) -> DbResult<Option<Proven<'static>>> {
    let otp = Proven {
        amr: &PASSWORD_AND_OTP,
        passkey_id: None,
    };
    match factor {
        SecondFactor::Totp(code) => {
            let Some(row) = factors::totp(conn, user_id)? else {
                return Ok(None);
            };
            if row.confirmed_at.is_none() {
                return Ok(None);
            }
            let Some(secret) = open(&verifiers.keys, &row, user_id) else {
                tracing::error!(user_id = %user_id, "a TOTP secret does not open: its token key is gone or the row was altered");
                return Ok(None);
            };
            match secret.matching_step(code, unix_now(), row.last_step) {
                Some(step) if factors::use_totp_step(conn, user_id, step)? => Ok(Some(otp)),
                _ => Ok(None),
            }
        }
        SecondFactor::RecoveryCode(code) => {
            let Some(hash) = recovery::presented_hash(code) else {
                return Ok(None);
            };
            if !factors::use_recovery_code(conn, user_id, &hash)? {
                return Ok(None);
            }
            audit::record(
                conn,
                Event::new(EventType::RecoveryCodeUsed, user_id, client),
            )?;
            notify(conn, Notice::RecoveryCodeUsed, email, user_id, client)?;
            Ok(Some(otp))
        }
        SecondFactor::Passkey(assertion) => {
            let verdict = passkeys::verify_assertion(
                conn,
                &verifiers.webauthn,
                assertion,
                ceremony,
                Some(user_id),
                client,
            )?;
            Ok(match verdict {
                Verdict::Verified(passkey) => Some(Proven {
                    amr: &passkeys::PASSWORD_AND_PASSKEY,
                    passkey_id: Some(passkey.id),
                }),
                _ => None,
            })
        }
    }
}

fn open(keys: &TokenKeys, row: &factors::TotpRow, user_id: Uuid) -> Option<TotpSecret> {
    let sealed = Sealed {
        bytes: row.secret.clone(),
        key_id: u8::try_from(row.seal_key).ok()?,
    };
    TotpSecret::open(keys, &sealed, user_id)
}

fn unix_now() -> u64 {
    u64::try_from(Utc::now().timestamp()).unwrap_or(0)
}
