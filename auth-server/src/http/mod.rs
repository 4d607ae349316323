//! The HTTP surface of the auth server: the routes (here), one module of
//! thin handlers per resource, and what those share: the extractors
//! (`client`, `bearer`, `body`, `form`), the input rules (`input`) and how
//! answers are written (`delivery`, `timestamp`, `responses`).

pub mod account;
pub mod admin;
pub mod bearer;
pub mod body;
pub mod client;
pub mod cookies;
pub mod delivery;
pub mod factors;
pub mod fallback;
pub mod form;
pub mod health;
pub mod input;
pub mod internal;
pub mod keys;
pub mod metrics;
pub mod oauth;
pub mod openapi;
pub mod origin;
pub mod passkeys;
pub mod responses;
pub mod sessions;
pub mod timestamp;
pub mod tokens;

use actix_web::middleware::from_fn;
use actix_web::web;
use shared_claims::feed::FEED_PATH;

use crate::service::oauth::{
    INTROSPECTION_PATH, JWKS_PATH, METADATA_PATH, REVOCATION_PATH, TOKEN_PATH,
};

/// What a handler answers: its response, or the error that
/// [`ApiError`](crate::error::ApiError) turns into the contract's body.
type Handled = Result<actix_web::HttpResponse, crate::error::ApiError>;

/// A known path: another method is a JSON `405`.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(fallback::method_not_allowed))
}

/// Query strings that do not parse are the contract's `400`.
fn query_errors(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::QueryConfig::default().error_handler(|error, _| {
        crate::error::ApiError::bad_request(format!("invalid query string: {error}")).into()
    }));
}

/// Every public route of the contract; anything else (`/metrics` and
/// `/internal/*` included: they are on the internal listener) is a JSON
/// `404`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    query_errors(cfg);
    cfg.service(
        web::scope("/auth")
            .wrap(from_fn(origin::require_allowed_origin))
            .service(resource("/register").route(web::post().to(account::register)))
            .service(resource("/login").route(web::post().to(tokens::login)))
            .service(resource("/login/mfa").route(web::post().to(factors::login_mfa)))
            .service(
                resource("/login/mfa/passkey").route(web::post().to(passkeys::login_mfa_start)),
            )
            .service(resource("/reauthenticate").route(web::post().to(factors::reauthenticate)))
            .service(
                resource("/reauthenticate/passkey")
                    .route(web::post().to(passkeys::reauthenticate_start)),
            )
            .service(resource("/passkeys").route(web::get().to(passkeys::list)))
            .service(resource("/passkeys/{id}").route(web::delete().to(passkeys::remove)))
            .service(
                resource("/passkeys/register/start")
                    .route(web::post().to(passkeys::register_start)),
            )
            .service(
                resource("/passkeys/register/finish")
                    .route(web::post().to(passkeys::register_finish)),
            )
            .service(resource("/passkeys/login/start").route(web::post().to(passkeys::login_start)))
            .service(
                resource("/passkeys/login/finish").route(web::post().to(passkeys::login_finish)),
            )
            .service(resource("/mfa").route(web::get().to(factors::status)))
            .service(
                resource("/mfa/totp")
                    .route(web::post().to(factors::start_totp))
                    .route(web::delete().to(factors::disable_totp)),
            )
            .service(resource("/mfa/totp/confirm").route(web::post().to(factors::confirm_totp)))
            .service(
                resource("/mfa/recovery-codes")
                    .route(web::post().to(factors::regenerate_recovery_codes)),
            )
            .service(resource("/refresh").route(web::post().to(tokens::refresh)))
            .service(resource("/logout").route(web::post().to(sessions::logout)))
            .service(resource("/logout-all").route(web::post().to(sessions::logout_all)))
            .service(resource("/sessions").route(web::get().to(sessions::list_sessions)))
            .service(resource("/sessions/{id}").route(web::delete().to(sessions::delete_session)))
            .service(resource("/password").route(web::post().to(account::change_password)))
            .service(resource("/password/forgot").route(web::post().to(account::forgot_password)))
            .service(resource("/password/reset").route(web::post().to(account::reset_password)))
            .service(resource("/email/verify").route(web::post().to(account::verify_email)))
            .service(
                resource("/email/verify/resend")
                    .route(web::post().to(account::resend_verification)),
            )
            .service(resource("/events").route(web::get().to(account::list_events))),
    )
    .service(
        web::scope("/admin")
            .wrap(from_fn(origin::require_allowed_origin))
            .service(resource("/users").route(web::get().to(admin::list_users)))
            .service(
                resource("/users/{id}")
                    .route(web::get().to(admin::get_user))
                    .route(web::delete().to(admin::delete_user)),
            )
            .service(resource("/users/{id}/disable").route(web::post().to(admin::disable_user)))
            .service(resource("/users/{id}/enable").route(web::post().to(admin::enable_user)))
            .service(resource("/users/{id}/mfa").route(web::delete().to(admin::reset_mfa)))
            .service(resource("/users/{id}/roles").route(web::put().to(admin::set_roles)))
            .service(resource("/audit").route(web::get().to(admin::audit))),
    )
    .service(resource(JWKS_PATH).route(web::get().to(keys::jwks)))
    .service(resource(METADATA_PATH).route(web::get().to(oauth::metadata)))
    .service(resource(TOKEN_PATH).route(web::post().to(oauth::token)))
    .service(resource(REVOCATION_PATH).route(web::post().to(oauth::revoke)))
    .service(resource(INTROSPECTION_PATH).route(web::post().to(oauth::introspect)))
    .service(resource("/openapi.json").route(web::get().to(openapi::openapi_json)))
    .service(resource("/healthz").route(web::get().to(health::healthz)))
    .service(resource("/readyz").route(web::get().to(health::readyz)));
}

/// The internal listener's routes: the revocation feed and `/metrics`.
pub fn internal_routes(cfg: &mut web::ServiceConfig) {
    query_errors(cfg);
    cfg.service(resource(FEED_PATH).route(web::get().to(internal::revocations)))
        .service(resource("/metrics").route(web::get().to(metrics::endpoint)));
}
