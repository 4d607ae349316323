//! How tokens leave the server: the token response (RFC 6749 §5.1) and the
//! refresh-token cookie.

use actix_web::cookie::{Cookie, SameSite, time};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Serialize;

use secrecy::ExposeSecret;

use super::body::JsonBody;
use super::input::RefreshRequest;
use crate::error::ApiError;
use crate::refresh_token::RefreshToken;
use crate::service::Issued;

pub const COOKIE_NAME: &str = "refresh_token";
pub const COOKIE_PATH: &str = "/auth";

/// Where the refresh token came from, which decides where the new one goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Cookie,
    Body,
}

/// The refresh token a request presents, and the mode it came in: a token in
/// the JSON body wins, and any cookie is then ignored.
pub fn presented_token(
    req: &HttpRequest,
    body: &JsonBody,
) -> Result<(Option<String>, Mode), ApiError> {
    let from_body: RefreshRequest = if body.is_empty() {
        RefreshRequest::default()
    } else {
        body.parse()?
    };
    if let Some(token) = from_body.refresh_token {
        return Ok((Some(token.expose_secret().to_owned()), Mode::Body));
    }
    Ok((
        req.cookie(COOKIE_NAME).map(|c| c.value().to_owned()),
        Mode::Cookie,
    ))
}

#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
}

/// `200` with the tokens; the refresh token (when there is a new one) in the
/// body or in the cookie, never both.
pub fn token_response(
    issued: &Issued,
    mode: Mode,
    expires_in: u64,
    cookie_secure: bool,
) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    no_store(&mut response);
    let refresh = issued.refresh.as_ref();
    if let (Mode::Cookie, Some((token, expires_at))) = (mode, refresh) {
        let max_age = (*expires_at - Utc::now()).num_seconds().max(0);
        response.cookie(refresh_cookie(token, max_age, cookie_secure));
    }
    response.json(TokenResponse {
        access_token: &issued.access_token,
        token_type: "Bearer",
        expires_in,
        refresh_token: match mode {
            Mode::Body => refresh.map(|(token, _)| token.expose()),
            Mode::Cookie => None,
        },
    })
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

pub fn no_store(response: &mut actix_web::HttpResponseBuilder) {
    response.insert_header((header::CACHE_CONTROL, "no-store"));
    response.insert_header((header::PRAGMA, "no-cache"));
}
