//! `GET /internal/revocations`: the feed resource APIs pull revoked session
//! ids from. Authenticated by `INTERNAL_API_TOKEN`, compared in constant
//! time. With `wait`, a long poll: held until a revocation appears or the
//! wait ends, so revocations reach the APIs in milliseconds instead of a
//! polling interval.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use secrecy::ExposeSecret;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use shared_claims::feed::{Feed, FeedEntry};
use subtle::ConstantTimeEq;

use crate::db;
use crate::error::ApiError;
use crate::state::AppState;

/// Longest a long poll is held: below common proxy idle timeouts.
pub const MAX_WAIT: Duration = Duration::from_secs(25);
/// How often a held poll re-reads the database, for revocations made by
/// other replicas (this replica's own wake it at once).
const RECHECK: Duration = Duration::from_millis(250);
/// Kept past the last possible access-token expiry: clock skew between the
/// services, and signing that happens just after a concurrent revocation.
const FORGET_MARGIN: Duration = Duration::from_secs(60);

#[derive(Deserialize)]
pub struct FeedQuery {
    cursor: Option<i64>,
    /// The `held` of the previous answer.
    #[serde(default)]
    seen: i64,
    #[serde(default)]
    wait: u64,
}

fn authorized(req: &HttpRequest, state: &AppState) -> bool {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    // Digests first, so the comparison is constant-time over equal lengths.
    let presented = Sha256::digest(presented.as_bytes());
    let expected = Sha256::digest(state.settings.internal_api_token.expose_secret().as_bytes());
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
    let wait = Duration::from_secs(query.wait).min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    let cursor = query.cursor;
    let tokens = &state.settings.tokens;
    let window = tokens.access_ttl + tokens.leeway + FORGET_MARGIN;

    if let (Some(cursor), false) = (cursor, wait.is_zero()) {
        loop {
            // Listen before looking, so a revocation between the two wakes us.
            let revoked = state.revocations.notified();
            let seen = query.seen;
            if state
                .database
                .run(move |conn| db::revocations::count_since(conn, cursor))
                .await?
                > seen
            {
                break;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                break;
            }
            tokio::select! {
                () = revoked => {}
                () = tokio::time::sleep(RECHECK.min(deadline - now)) => {}
            }
        }
    }

    let since = Utc::now()
        - chrono::Duration::from_std(window).unwrap_or_else(|_| chrono::Duration::days(1));
    let page = state
        .database
        .run(move |conn| db::revocations::read(conn, cursor, since))
        .await?;
    let forget = chrono::Duration::from_std(window).unwrap_or_else(|_| chrono::Duration::days(1));
    let feed = Feed {
        revocations: page
            .revocations
            .into_iter()
            .map(|r| FeedEntry {
                session_id: r.session_id,
                revoked_at: r.revoked_at,
                forget_after: r.revoked_at + forget,
            })
            .collect(),
        cursor: page.cursor.to_string(),
        more: page.more,
        held: page.held,
        kids: vec![state.signing.kid().to_owned()],
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(feed))
}
