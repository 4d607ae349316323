//! `GET /internal/revocations`: the feed resource APIs pull revoked session
//! ids from. Authenticated by `INTERNAL_API_TOKEN`, compared in constant
//! time. With `wait`, a long poll: held until a revocation appears or the
//! wait ends, so revocations reach the APIs in milliseconds instead of a
//! polling interval.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, SecondsFormat, Utc};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::db;
use crate::error::ApiError;
use crate::service::blocking;
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

#[derive(Serialize)]
struct Entry {
    session_id: Uuid,
    revoked_at: String,
    /// When no access token of this session can be valid any more.
    forget_after: String,
}

#[derive(Serialize)]
struct Feed {
    revocations: Vec<Entry>,
    /// Opaque: pass it back as `cursor`.
    cursor: String,
    more: bool,
    /// Entries at or past `cursor`: pass back as `seen`.
    held: i64,
    /// The signing keys in use, so an API can fetch a new key's JWKS entry
    /// before the first token signed with it arrives.
    kids: Vec<String>,
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
            if blocking(&state, move |conn| {
                db::revocations::count_since(conn, cursor)
            })
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
    let page = blocking(&state, move |conn| {
        db::revocations::read(conn, cursor, since)
    })
    .await?;
    let forget = chrono::Duration::from_std(window).unwrap_or_else(|_| chrono::Duration::days(1));
    let feed = Feed {
        revocations: page
            .revocations
            .into_iter()
            .map(|r| Entry {
                session_id: r.session_id,
                revoked_at: rfc3339(r.revoked_at),
                forget_after: rfc3339(r.revoked_at + forget),
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

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}
