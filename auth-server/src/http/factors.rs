//! Thin handlers of second factors and step-up: the user's factors, TOTP
//! enrolment, recovery codes, a login's second step and reauthentication
//! (the rules: `crate::service::factors`, `mfa_login`, `reauthentication`).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use service_kit::telemetry::record_identity;
use utoipa::ToSchema;

use super::Handled;
use super::bearer::Authenticated;
use super::body::JsonBody;
use super::client::Client;
use super::delivery::{Delivery, TokenResponse, issued_response, no_content, no_store};
use super::input::check_password_field;
use super::passkeys::{PasskeyAnswer, PasskeyView, assertion};
use super::responses::{
    BadRequest, Forbidden, NotFound, PayloadTooLarge, RateLimited, Unauthorized, Unavailable,
    Unprocessable,
};
use super::timestamp::rfc3339;
use crate::error::ApiError;
use crate::factors::recovery::RecoveryCode;
use crate::service::factors::{self, SecondFactor};
use crate::service::mfa_login;
use crate::service::rate_limits::{self, Scope};
use crate::service::reauthentication::{self, Proof};
use crate::state::AppState;

/// `GET /auth/mfa`.
#[derive(Serialize, ToSchema)]
pub struct MfaStatus {
    pub totp: TotpStatus,
    /// The user's passkeys, as `GET /auth/passkeys` lists them.
    pub passkeys: Vec<PasskeyView>,
    pub recovery_codes_remaining: i64,
}

#[derive(Serialize, ToSchema)]
pub struct TotpStatus {
    pub enabled: bool,
    /// When it was turned on (RFC 3339), or `null`.
    pub created_at: Option<String>,
}

/// A pending TOTP enrolment: shown once.
#[derive(Serialize, ToSchema)]
pub struct TotpEnrolment {
    /// The secret, base32 (RFC 4648), for typing into an app.
    pub secret: String,
    /// `otpauth://totp/…`, for a QR code.
    pub otpauth_uri: String,
}

/// Recovery codes, shown once.
#[derive(Serialize, ToSchema)]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

fn recovery_codes(codes: &[RecoveryCode]) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    no_store(&mut response);
    response.json(RecoveryCodes {
        recovery_codes: codes.iter().map(|c| c.expose().to_owned()).collect(),
    })
}

#[derive(Deserialize, ToSchema)]
pub struct ConfirmTotpRequest {
    /// The 6 digits the app shows now.
    #[schema(max_length = 16)]
    pub code: String,
}

/// A second factor: exactly one of them.
#[derive(Deserialize, ToSchema)]
pub struct SecondFactorFields {
    #[schema(max_length = 16)]
    #[serde(default)]
    pub code: Option<String>,
    #[schema(max_length = 64)]
    #[serde(default)]
    pub recovery_code: Option<String>,
    /// A passkey's answer to a ceremony started for this purpose.
    #[serde(default)]
    pub passkey: Option<PasskeyAnswer>,
}

#[derive(Deserialize, ToSchema)]
pub struct LoginMfaRequest {
    /// From the `403 mfa_required` answer of `/auth/login`.
    #[schema(max_length = 64)]
    pub mfa_token: String,
    #[serde(flatten)]
    pub factor: SecondFactorFields,
    /// `cookie` (the default) or `body`.
    #[serde(default)]
    pub refresh_token_delivery: Option<Delivery>,
}

#[derive(Deserialize, ToSchema)]
pub struct ReauthenticateRequest {
    /// Required unless a passkey alone is presented.
    #[schema(value_type = Option<String>, format = Password, min_length = 8, max_length = 256)]
    #[serde(default)]
    pub password: Option<secrecy::SecretString>,
    /// `code` or `recovery_code` with the password when the user has a
    /// second factor; or `passkey` alone.
    #[serde(flatten)]
    pub factor: SecondFactorFields,
}

const MAX_CODE: usize = 16;
const MAX_RECOVERY_CODE: usize = 64;

fn second_factor(fields: SecondFactorFields) -> Result<Option<SecondFactor>, ApiError> {
    if let Some(answer) = fields.passkey {
        if fields.code.is_some() || fields.recovery_code.is_some() {
            return Err(ApiError::unprocessable(
                "passkey",
                "send one of code, recovery_code or passkey",
            ));
        }
        return Ok(Some(SecondFactor::Passkey(assertion(answer)?)));
    }
    match (fields.code, fields.recovery_code) {
        (Some(_), Some(_)) => Err(ApiError::unprocessable(
            "code",
            "send either code or recovery_code, not both",
        )),
        (Some(code), None) if code.len() > MAX_CODE => Err(ApiError::unprocessable(
            "code",
            "must be at most 16 characters",
        )),
        (None, Some(code)) if code.len() > MAX_RECOVERY_CODE => Err(ApiError::unprocessable(
            "recovery_code",
            "must be at most 64 characters",
        )),
        (Some(code), None) => Ok(Some(SecondFactor::Totp(code))),
        (None, Some(code)) => Ok(Some(SecondFactor::RecoveryCode(code))),
        (None, None) => Ok(None),
    }
}

/// What the user has as second factors.
#[utoipa::path(
    get,
    path = "/auth/mfa",
    tag = "mfa",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user's second factors", body = MfaStatus),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub async fn status(state: web::Data<AppState>, auth: Authenticated) -> Handled {
    let factors = factors::status(&state, auth.0.sub).await?;
    let passkeys = crate::service::passkeys::list(&state, auth.0.sub).await?;
    Ok(HttpResponse::Ok().json(MfaStatus {
        totp: TotpStatus {
            enabled: factors.totp_since.is_some(),
            created_at: factors.totp_since.map(rfc3339),
        },
        passkeys: passkeys.iter().map(PasskeyView::from).collect(),
        recovery_codes_remaining: factors.recovery_codes_remaining,
    }))
}

/// Starts a TOTP enrolment (a new call replaces a pending one); needs a
/// recent authentication.
#[utoipa::path(
    post,
    path = "/auth/mfa/totp",
    tag = "mfa",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Pending until confirmed with a first code", body = TotpEnrolment),
        (status = 401, description = "`invalid_token`, or `insufficient_user_authentication` (RFC 9470: reauthenticate)", body = super::responses::ErrorBody),
        (status = 403, response = Forbidden),
        (status = 409, description = "`already_enrolled`", body = super::responses::ErrorBody),
        (status = 503, response = Unavailable),
    )
)]
pub async fn start_totp(state: web::Data<AppState>, auth: Authenticated) -> Handled {
    let enrolment = factors::start_totp(&state, &auth.0).await?;
    let mut response = HttpResponse::Ok();
    no_store(&mut response);
    Ok(response.json(TotpEnrolment {
        secret: enrolment.secret.clone(),
        otpauth_uri: enrolment.otpauth_uri.clone(),
    }))
}

/// Confirms the pending enrolment with a first code: TOTP is on. The
/// user's first second factor answers the 10 recovery codes, once.
#[utoipa::path(
    post,
    path = "/auth/mfa/totp/confirm",
    tag = "mfa",
    request_body = ConfirmTotpRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "On; `recovery_codes` holds 10 for the first second factor, else none", body = RecoveryCodes),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, description = "`invalid_credentials`: the code is wrong; or `forbidden_origin`", body = super::responses::ErrorBody),
        (status = 404, response = NotFound),
        (status = 409, description = "`already_enrolled`", body = super::responses::ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn confirm_totp(
    state: web::Data<AppState>,
    client: Client,
    auth: Authenticated,
    body: JsonBody,
) -> Handled {
    let input: ConfirmTotpRequest = body.parse()?;
    if input.code.len() > MAX_CODE {
        return Err(ApiError::unprocessable(
            "code",
            "must be at most 16 characters",
        ));
    }
    let codes = factors::confirm_totp(&state, &auth.0, input.code, client.info()).await?;
    state.mail_queued.notify_one();
    Ok(recovery_codes(&codes))
}

/// Turns TOTP off; needs a recent authentication at `aal2`.
#[utoipa::path(
    delete,
    path = "/auth/mfa/totp",
    tag = "mfa",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Off; the recovery codes are gone when no second factor remains"),
        (status = 401, description = "`invalid_token`, or `insufficient_user_authentication` (RFC 9470: reauthenticate)", body = super::responses::ErrorBody),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub async fn disable_totp(
    state: web::Data<AppState>,
    client: Client,
    auth: Authenticated,
) -> Handled {
    factors::disable_totp(&state, &auth.0, client.info()).await?;
    state.mail_queued.notify_one();
    Ok(no_content())
}

/// Ten new recovery codes, the old ones dead; needs a recent
/// authentication at `aal2`.
#[utoipa::path(
    post,
    path = "/auth/mfa/recovery-codes",
    tag = "mfa",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The new codes, shown once", body = RecoveryCodes),
        (status = 401, description = "`invalid_token`, or `insufficient_user_authentication` (RFC 9470: reauthenticate)", body = super::responses::ErrorBody),
        (status = 403, response = Forbidden),
        (status = 409, description = "No second factor is enabled", body = super::responses::ErrorBody),
        (status = 503, response = Unavailable),
    )
)]
pub async fn regenerate_recovery_codes(
    state: web::Data<AppState>,
    client: Client,
    auth: Authenticated,
) -> Handled {
    let codes = factors::regenerate_recovery_codes(&state, &auth.0, client.info()).await?;
    Ok(recovery_codes(&codes))
}

/// A login's second step: the `mfa_token` of `403 mfa_required` and a
/// code (or a recovery code) open the session.
#[utoipa::path(
    post,
    path = "/auth/login/mfa",
    tag = "auth",
    request_body = LoginMfaRequest,
    responses(
        (status = 200, description = "Logged in at `aal2`; the refresh token in the body or in a cookie, as asked", body = TokenResponse,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, response = BadRequest),
        (status = 401, description = "`invalid_credentials` (a wrong code or passkey), `invalid_grant` (the mfa token is unknown, expired, used or out of tries)", body = super::responses::ErrorBody),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = Unprocessable),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    )
)]
pub async fn login_mfa(state: web::Data<AppState>, client: Client, body: JsonBody) -> Handled {
    rate_limits::hit(&state, Scope::Login, client.ip).await?;
    let input: LoginMfaRequest = body.parse()?;
    if input.mfa_token.len() > 64 {
        return Err(ApiError::unprocessable(
            "mfa_token",
            "must be at most 64 characters",
        ));
    }
    let factor = second_factor(input.factor)?
        .ok_or_else(|| ApiError::unprocessable("code", "a code or a recovery_code is required"))?;
    let delivery = input.refresh_token_delivery.unwrap_or(Delivery::Cookie);
    let issued = mfa_login::finish(
        &state,
        &input.mfa_token,
        factor,
        client.info(),
        client.key(),
    )
    .await?;
    record_identity(issued.user_id, issued.session_id);
    Ok(issued_response(&state, &issued, delivery))
}

/// Proves the factors again in this session: an access token with
/// `auth_time` now and `acr` from what was proven. No refresh token; the
/// cookie is untouched.
#[utoipa::path(
    post,
    path = "/auth/reauthenticate",
    tag = "mfa",
    request_body = ReauthenticateRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "An access token for the same session", body = TokenResponse,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, description = "`invalid_credentials`: a wrong password or code, or a missing code (counted in the failed-login throttle); or `forbidden_origin`", body = super::responses::ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = Unprocessable),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    )
)]
pub async fn reauthenticate(
    state: web::Data<AppState>,
    client: Client,
    auth: Authenticated,
    body: JsonBody,
) -> Handled {
    rate_limits::hit(&state, Scope::Login, client.ip).await?;
    let input: ReauthenticateRequest = body.parse()?;
    let second = second_factor(input.factor)?;
    let proof = match (input.password, second) {
        (None, Some(SecondFactor::Passkey(assertion))) => Proof::Passkey(assertion),
        (Some(password), second) => {
            check_password_field("password", &password)?;
            Proof::Password { password, second }
        }
        (None, _) => {
            return Err(ApiError::unprocessable(
                "password",
                "is required unless a passkey alone is presented",
            ));
        }
    };
    let issued =
        reauthentication::reauthenticate(&state, &auth.0, proof, client.info(), client.key())
            .await?;
    Ok(issued_response(&state, &issued, Delivery::Body))
}
