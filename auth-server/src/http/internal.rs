//! `GET /internal/revocations`: the revocation feed over HTTP (what it
//! holds and how long it waits: [`crate::service::revocation_feed`]),
//! served on the internal listener only. Authenticated by
//! `INTERNAL_API_TOKEN` as well, compared in constant time: a listener
//! reachable by mistake still gives nothing away.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::service::revocation_feed;
use crate::state::AppState;
use crate::tokens::feed_cursor::Cursor;

#[derive(Deserialize)]
pub struct FeedQuery {
    /// Opaque to readers: what the previous answer's `cursor` said.
    cursor: Option<String>,
    /// The `held` of the previous answer.
    #[serde(default)]
    seen: i64,
    #[serde(default)]
    wait: u64,
}

pub(super) fn authorized(req: &HttpRequest, state: &AppState) -> bool {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    // Digests first, so the comparison is constant-time over equal lengths.
    let presented = Sha256::digest(presented.as_bytes());
    let expected = Sha256::digest(state.settings.internal_api.token.expose_secret().as_bytes());
    bool::from(presented.ct_eq(&expected))
}

pub async fn revocations(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<FeedQuery>,
) -> Result<HttpResponse, ApiError> {
    if !authorized(&req, &state) {
        return Err(ApiError::InvalidToken {
            description: "the internal API token is invalid".to_owned(),
            token_sent: true,
        });
    }
    let cursor = match query.cursor.as_deref() {
        None => None,
        Some(text) => Some(
            Cursor::decode(text)
                .ok_or_else(|| ApiError::bad_request("cursor: not a cursor this feed wrote"))?,
        ),
    };
    let wait = Duration::from_secs(query.wait);
    let feed = revocation_feed::read(&state, cursor, query.seen, wait).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(feed))
}
