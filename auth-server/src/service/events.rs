//! A user's own security events, newest first, a page at a time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::DateTime;
use uuid::Uuid;

use super::ServiceError;
use crate::db::Database;
use crate::db::audit::{self, AuditEvent, Position};

/// Events per page unless asked otherwise, and the most one may ask for.
pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;

pub struct Page {
    pub events: Vec<AuditEvent>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Position>,
}

pub async fn list(
    database: &Database,
    user_id: Uuid,
    cursor: Option<Position>,
    limit: i64,
) -> Result<Page, ServiceError> {
    // One more than asked: whether it exists says whether a next page does.
    let mut events = database
        .run(move |conn| audit::for_user(conn, user_id, cursor, limit + 1))
        .await?;
    let more = events.len() as i64 > limit;
    events.truncate(usize::try_from(limit).unwrap_or(0));
    let next = more
        .then(|| events.last().map(|e| Position { at: e.at, id: e.id }))
        .flatten();
    Ok(Page { events, next })
}

/// The opaque cursor a client passes back: base64url of the last event's
/// time (microseconds) and id.
pub fn encode_cursor(position: &Position) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "{}.{}",
        position.at.timestamp_micros(),
        position.id.simple()
    ))
}

/// `None` for anything [`encode_cursor`] did not make.
pub fn decode_cursor(cursor: &str) -> Option<Position> {
    if cursor.len() > 128 {
        return None;
    }
    let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let raw = std::str::from_utf8(&raw).ok()?;
    let (micros, id) = raw.split_once('.')?;
    Some(Position {
        at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        id: Uuid::parse_str(id).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        let position = Position {
            at: DateTime::from_timestamp_micros(1_780_000_000_123_456).unwrap(),
            id: Uuid::new_v4(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&position)), Some(position));
        for junk in [
            "",
            "x",
            "!!!",
            &URL_SAFE_NO_PAD.encode("12.not-a-uuid"),
            &"a".repeat(200),
        ] {
            assert_eq!(decode_cursor(junk), None, "{junk}");
        }
    }
}
