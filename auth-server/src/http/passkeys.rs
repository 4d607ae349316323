//! Thin handlers of passkeys: registering and removing them, signing in
//! with one alone, and the ceremonies a login's second step and a
//! reauthentication start (the rules: `crate::service::passkeys`).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use service_kit::telemetry::record_identity;
use utoipa::ToSchema;
use uuid::Uuid;

use super::Handled;
use super::bearer::Authenticated;
use super::body::JsonBody;
use super::client::Client;
use super::delivery::{Delivery, TokenResponse, issued_response, no_content, no_store};
use super::responses::{
    BadRequest, Forbidden, NotFound, PayloadTooLarge, RateLimited, Unauthorized, Unavailable,
    Unprocessable,
};
use super::timestamp::rfc3339;
use crate::db::passkeys::{PasskeyRow, Purpose};
use crate::error::ApiError;
use crate::factors::passkey as rules;
use crate::service::mfa_login;
use crate::service::passkeys::{self, Assertion, Started};
use crate::service::rate_limits::{self, Scope};
use crate::state::AppState;

/// A ceremony started: finish it with its id.
#[derive(Serialize, ToSchema)]
pub struct Ceremony {
    pub challenge_id: Uuid,
    /// The `publicKey` member of the options, in WebAuthn's JSON form
    /// (`PublicKeyCredential.parseCreationOptionsFromJSON` or
    /// `parseRequestOptionsFromJSON` take it).
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
}

fn ceremony(started: Started) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    no_store(&mut response);
    response.json(Ceremony {
        challenge_id: started.challenge_id,
        options: started.options,
    })
}

/// A passkey's answer: the ceremony it answers, and what the browser's
/// `PublicKeyCredential.toJSON()` gives.
#[derive(Deserialize, ToSchema)]
pub struct PasskeyAnswer {
    #[schema(format = Uuid)]
    pub challenge_id: String,
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}

/// The assertion of a passkey answer; `422` naming the field for
/// anything that cannot be one.
pub fn assertion(answer: PasskeyAnswer) -> Result<Assertion, ApiError> {
    let challenge_id = uuid::Uuid::parse_str(&answer.challenge_id)
        .map_err(|_| ApiError::unprocessable("passkey.challenge_id", "must be a UUID"))?;
    let credential = serde_json::from_value(answer.credential).map_err(|_| {
        ApiError::unprocessable(
            "passkey.credential",
            "must be what PublicKeyCredential.toJSON() gives for an assertion",
        )
    })?;
    Ok(Assertion {
        challenge_id,
        credential: Box::new(credential),
    })
}

/// A passkey as listed.
#[derive(Serialize, ToSchema)]
pub struct PasskeyView {
    pub id: Uuid,
    pub name: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC; `null` before its first use.
    pub last_used_at: Option<String>,
}

impl From<&PasskeyRow> for PasskeyView {
    fn from(row: &PasskeyRow) -> Self {
        Self {
            id: row.id,
            name: row.name.clone(),
            created_at: rfc3339(row.created_at),
            last_used_at: row.last_used_at.map(rfc3339),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PasskeyList {
    pub passkeys: Vec<PasskeyView>,
}

/// A registered passkey; with the recovery codes when it is the user's
/// first second factor (shown once).
#[derive(Serialize, ToSchema)]
pub struct RegisteredPasskey {
    #[serde(flatten)]
    pub passkey: PasskeyView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_codes: Option<Vec<String>>,
}

#[derive(Deserialize, ToSchema)]
pub struct RegisterFinishRequest {
    #[schema(format = Uuid)]
    pub challenge_id: String,
    /// What the browser's `PublicKeyCredential.toJSON()` gives.
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
    /// 1 to 64 characters; `Passkey` when absent.
    #[schema(max_length = 64)]
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct LoginFinishRequest {
    #[serde(flatten)]
    pub answer: PasskeyAnswer,
    /// `cookie` (the default) or `body`.
    #[serde(default)]
    pub refresh_token_delivery: Option<Delivery>,
}

#[derive(Deserialize, ToSchema)]
pub struct MfaPasskeyRequest {
    #[schema(max_length = 64)]
    pub mfa_token: String,
}

/// Starts registering a passkey (discoverable, user verification
/// required); needs a recent authentication.
#[utoipa::path(
    post,
    path = "/auth/passkeys/register/start",
    tag = "passkeys",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Options for `navigator.credentials.create`", body = Ceremony),
        (status = 401, description = "`invalid_token`, or `insufficient_user_authentication` (RFC 9470: reauthenticate)", body = super::responses::ErrorBody),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    )
)]
pub async fn register_start(state: web::Data<AppState>, auth: Authenticated) -> Handled {
    Ok(ceremony(passkeys::register_start(&state, &auth.0).await?))
}

/// Finishes registering a passkey.
#[utoipa::path(
    post,
    path = "/auth/passkeys/register/finish",
    tag = "passkeys",
    request_body = RegisterFinishRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Registered; `recovery_codes` (10) for the user's first second factor", body = RegisteredPasskey),
        (status = 400, description = "`invalid_grant`: the challenge is unknown, expired or used, or the registration does not verify; or a malformed body", body = super::responses::ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn register_finish(
    state: web::Data<AppState>,
    client: Client,
    auth: Authenticated,
    body: JsonBody,
) -> Handled {
    let input: RegisterFinishRequest = body.parse()?;
    let challenge_id = Uuid::parse_str(&input.challenge_id)
        .map_err(|_| ApiError::unprocessable("challenge_id", "must be a UUID"))?;
    let credential = serde_json::from_value(input.credential).map_err(|_| {
        ApiError::unprocessable(
            "credential",
            "must be what PublicKeyCredential.toJSON() gives for a registration",
        )
    })?;
    let name = rules::name(input.name.as_deref())
        .map_err(|problem| ApiError::unprocessable("name", problem))?;
    let registered = passkeys::register_finish(
        &state,
        &auth.0,
        challenge_id,
        credential,
        name,
        client.info(),
    )
    .await?;
    let mut response = HttpResponse::Created();
    no_store(&mut response);
    Ok(response.json(RegisteredPasskey {
        passkey: PasskeyView::from(&registered.passkey),
        recovery_codes: (!registered.recovery_codes.is_empty()).then(|| {
            registered
                .recovery_codes
                .iter()
                .map(|c| c.expose().to_owned())
                .collect()
        }),
    }))
}

/// The user's passkeys.
#[utoipa::path(
    get,
    path = "/auth/passkeys",
    tag = "passkeys",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Oldest first", body = PasskeyList),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub async fn list(state: web::Data<AppState>, auth: Authenticated) -> Handled {
    let rows = passkeys::list(&state, auth.0.sub).await?;
    Ok(HttpResponse::Ok().json(PasskeyList {
        passkeys: rows.iter().map(PasskeyView::from).collect(),
    }))
}

/// Removes a passkey: the sessions it signed in end (at the APIs within a
/// second); needs a recent authentication.
#[utoipa::path(
    delete,
    path = "/auth/passkeys/{id}",
    tag = "passkeys",
    params(("id" = String, Path, description = "The passkey's id (anything else is a `404`)")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "`invalid_token`, or `insufficient_user_authentication` (RFC 9470: reauthenticate)", body = super::responses::ErrorBody),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub async fn remove(
    state: web::Data<AppState>,
    client: Client,
    auth: Authenticated,
    path: web::Path<String>,
) -> Handled {
    let id = Uuid::parse_str(&path).map_err(|_| ApiError::NotFound("passkey"))?;
    passkeys::remove(&state, &auth.0, id, client.info()).await?;
    Ok(no_content())
}

/// Starts signing in with a passkey alone (the authenticator names the
/// user).
#[utoipa::path(
    post,
    path = "/auth/passkeys/login/start",
    tag = "passkeys",
    responses(
        (status = 200, description = "Options for `navigator.credentials.get`", body = Ceremony),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    )
)]
pub async fn login_start(state: web::Data<AppState>, client: Client) -> Handled {
    rate_limits::hit(&state, Scope::Login, client.ip).await?;
    Ok(ceremony(passkeys::login_start(&state).await?))
}

/// Signs in with a passkey alone: the login answer, at `aal2`.
#[utoipa::path(
    post,
    path = "/auth/passkeys/login/finish",
    tag = "passkeys",
    request_body = LoginFinishRequest,
    responses(
        (status = 200, description = "Logged in; the refresh token in the body or in a cookie, as asked", body = TokenResponse,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, description = "`invalid_grant`: the challenge is unknown, expired or used; or a malformed body", body = super::responses::ErrorBody),
        (status = 401, description = "`invalid_credentials`: the passkey is unknown, or its assertion does not verify", body = super::responses::ErrorBody),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = Unprocessable),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    )
)]
pub async fn login_finish(state: web::Data<AppState>, client: Client, body: JsonBody) -> Handled {
    rate_limits::hit(&state, Scope::Login, client.ip).await?;
    let input: LoginFinishRequest = body.parse()?;
    let delivery = input.refresh_token_delivery.unwrap_or(Delivery::Cookie);
    let assertion = assertion(input.answer)?;
    let issued = passkeys::login_finish(&state, assertion, client.info()).await?;
    record_identity(issued.user_id, issued.session_id);
    Ok(issued_response(&state, &issued, delivery))
}

/// A passkey ceremony as a login's second step.
#[utoipa::path(
    post,
    path = "/auth/login/mfa/passkey",
    tag = "auth",
    request_body = MfaPasskeyRequest,
    responses(
        (status = 200, description = "Options for `navigator.credentials.get`, for the user's passkeys", body = Ceremony),
        (status = 400, response = BadRequest),
        (status = 401, description = "`invalid_grant`: the mfa token is unknown, expired, used or out of tries, or its user has no passkey", body = super::responses::ErrorBody),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = Unprocessable),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    )
)]
pub async fn login_mfa_start(
    state: web::Data<AppState>,
    client: Client,
    body: JsonBody,
) -> Handled {
    rate_limits::hit(&state, Scope::Login, client.ip).await?;
    let input: MfaPasskeyRequest = body.parse()?;
    if input.mfa_token.len() > 64 {
        return Err(ApiError::unprocessable(
            "mfa_token",
            "must be at most 64 characters",
        ));
    }
    Ok(ceremony(
        mfa_login::passkey_start(&state, &input.mfa_token).await?,
    ))
}

/// A passkey ceremony to reauthenticate with (a passkey alone steps a
/// session up to `aal2`).
#[utoipa::path(
    post,
    path = "/auth/reauthenticate/passkey",
    tag = "mfa",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Options for `navigator.credentials.get`, for the user's passkeys", body = Ceremony),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "`not_found`: the user has no passkey", body = super::responses::ErrorBody),
        (status = 503, response = Unavailable),
    )
)]
pub async fn reauthenticate_start(state: web::Data<AppState>, auth: Authenticated) -> Handled {
    Ok(ceremony(
        passkeys::start_for_user(&state, auth.0.sub, Purpose::Reauthenticate).await?,
    ))
}
