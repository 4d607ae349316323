//! A user's own security events, newest first, a page at a time.

use chrono::DateTime;
use uuid::Uuid;

use super::ServiceError;
use super::paging::{self, Cursor, Page};
use crate::db::Database;
use crate::db::audit::{self, AuditEvent, Position};

/// Events per page unless asked otherwise, and the most one may ask for.
pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;

/// The user's events from `cursor` on, as the user may see them
/// ([`as_seen_by`]).
pub async fn list(
    database: &Database,
    user_id: Uuid,
    cursor: Option<Position>,
    limit: i64,
) -> Result<Page<AuditEvent>, ServiceError> {
    let rows = paging::rows_to_fetch(limit);
    let events = database
        .run(move |conn| audit::for_user(conn, user_id, cursor, rows))
        .await?;
    Ok(paging::page(events, limit, AuditEvent::position).map(|e| as_seen_by(user_id, e)))
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

/// The cursor of every listing of audit events (the user's, the
/// administrators'): the last event's time (microseconds) and id.
impl Cursor for Position {
    const MAX_ENCODED_LEN: usize = 128;

    fn to_text(&self) -> String {
        format!("{}.{}", self.at.timestamp_micros(), self.id.simple())
    }

    fn from_text(text: &str) -> Option<Self> {
        let (micros, id) = text.split_once('.')?;
        Some(Position {
            at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            id: Uuid::parse_str(id).ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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
        let cursor = paging::encode(&position);
        // The form clients already hold.
        assert_eq!(
            cursor,
            URL_SAFE_NO_PAD.encode(format!("1780000000123456.{}", position.id.simple()))
        );
        assert_eq!(paging::decode(&cursor), Some(position));
        for junk in [
            "",
            "x",
            "!!!",
            &URL_SAFE_NO_PAD.encode("12.not-a-uuid"),
            &"a".repeat(200),
        ] {
            assert_eq!(paging::decode::<Position>(junk), None, "{junk}");
        }
    }
}
