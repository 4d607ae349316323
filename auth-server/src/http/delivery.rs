//! How tokens leave the server: where the refresh token travels, the token
//! response (RFC 6749 §5.1) and the refresh-token cookie.

use actix_web::HttpResponse;
use actix_web::cookie::{Cookie, SameSite, time};
use actix_web::http::header;
use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::service::Issued;
use crate::state::AppState;
use crate::tokens::refresh::RefreshToken;

pub const COOKIE_NAME: &str = "refresh_token";
pub const COOKIE_PATH: &str = "/auth";

/// Where the refresh token travels. A login asks for one in its
/// `refresh_token_delivery` field (a cookie when it does not); a refresh or
/// logout is answered the way its token came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    Cookie,
    Body,
}

/// The token response (RFC 6749 §5.1), sent with `Cache-Control: no-store`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenResponse<'a> {
    /// An EdDSA JWT (RFC 9068).
    pub access_token: &'a str,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds: `ACCESS_TOKEN_TTL`.
    pub expires_in: u64,
    /// In body delivery only (and on `/oauth/token`): the next refresh
    /// token. Absent when a grace answer cannot send the successor again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<&'a str>,
}

/// `200` with the tokens; the refresh token (when there is a new one) in the
/// body or in the cookie, never both.
pub fn token_response(
    issued: &Issued,
    delivery: Delivery,
    expires_in: u64,
    cookie_secure: bool,
) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    no_store(&mut response);
    let refresh = issued.refresh.as_ref();
    if let (Delivery::Cookie, Some((token, expires_at))) = (delivery, refresh) {
        let max_age = (*expires_at - Utc::now()).num_seconds().max(0);
        response.cookie(refresh_cookie(token, max_age, cookie_secure));
    }
    response.json(TokenResponse {
        access_token: &issued.access_token,
        token_type: "Bearer",
        expires_in,
        refresh_token: match delivery {
            Delivery::Body => refresh.map(|(token, _)| token.expose()),
            Delivery::Cookie => None,
        },
    })
}

/// [`token_response`] with the server's `ACCESS_TOKEN_TTL` and cookie
/// settings: the answer of every way to sign in or refresh.
pub fn issued_response(state: &AppState, issued: &Issued, delivery: Delivery) -> HttpResponse {
    token_response(
        issued,
        delivery,
        state.settings.tokens.access_ttl.as_secs(),
        state.settings.http.cookie_secure,
    )
}

fn refresh_cookie(token: &RefreshToken, max_age_secs: i64, secure: bool) -> Cookie<'static> {
    Cookie::build(COOKIE_NAME, token.expose().to_owned())
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Strict)
        .path(COOKIE_PATH)
        .max_age(time::Duration::seconds(max_age_secs))
        .finish()
}

/// A cookie that makes the browser drop the refresh token.
pub fn removal_cookie(secure: bool) -> Cookie<'static> {
    let mut cookie = Cookie::build(COOKIE_NAME, "")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Strict)
        .path(COOKIE_PATH)
        .finish();
    cookie.make_removal();
    cookie
}

/// `204`, not to be cached.
pub fn no_content() -> actix_web::HttpResponse {
    let mut response = actix_web::HttpResponse::NoContent();
    no_store(&mut response);
    response.finish()
}

pub fn no_store(response: &mut actix_web::HttpResponseBuilder) {
    response.insert_header((header::CACHE_CONTROL, "no-store"));
    response.insert_header((header::PRAGMA, "no-cache"));
}
