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

/// The user's events from `cursor` on, as the user may see them
/// ([`as_seen_by`]).
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
    let events: Vec<AuditEvent> = events.into_iter().map(|e| as_seen_by(user_id, e)).collect();
    let next = more
        .then(|| events.last().map(|e| Position { at: e.at, id: e.id }))
        .flatten();
    Ok(Page { events, next })
}

/// An event as `user_id` may see it: one that another user (an
/// administrator) caused keeps that user's address, user agent and session
/// to the administrators' audit trail.
pub fn as_seen_by(user_id: Uuid, event: AuditEvent) -> AuditEvent {
    match event.actor_id {
        Some(actor) if actor != user_id => AuditEvent {
            ip: None,
            user_agent: None,
            session_id: None,
            ..event
        },
        _ => event,
    }
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
    use chrono::Utc;

    use super::*;

    fn event(user_id: Uuid, actor_id: Option<Uuid>) -> AuditEvent {
        AuditEvent {
            id: Uuid::new_v4(),
            at: Utc::now(),
            event_type: "user_disabled".to_owned(),
            actor_id,
            user_id: Some(user_id),
            session_id: Some(Uuid::new_v4()),
            ip: Some("192.0.2.7".to_owned()),
            user_agent: Some("admin-console/1.0".to_owned()),
            request_id: Some(Uuid::new_v4()),
        }
    }

    #[test]
    fn another_users_details_are_not_shown_to_the_user() {
        let user = Uuid::new_v4();
        let by_admin = as_seen_by(user, event(user, Some(Uuid::new_v4())));
        assert_eq!(
            (by_admin.ip, by_admin.user_agent, by_admin.session_id),
            (None, None, None)
        );
        assert_eq!(by_admin.event_type, "user_disabled");
        for own in [event(user, Some(user)), event(user, None)] {
            let seen = as_seen_by(user, own.clone());
            assert_eq!(
                (seen.ip, seen.user_agent, seen.session_id),
                (own.ip, own.user_agent, own.session_id),
                "the user's own, or the server's (no actor)"
            );
        }
    }

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
