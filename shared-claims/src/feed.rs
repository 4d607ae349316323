//! The revocation feed's wire types: what the auth server's
//! `GET /internal/revocations` answers and what resource APIs read, defined
//! once so the two sides cannot drift.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};
use uuid::Uuid;

/// Where the auth server serves the feed (on its internal listener).
pub const FEED_PATH: &str = "/internal/revocations";

/// Longest cursor the feed may send; readers refuse a longer one.
pub const MAX_CURSOR_LEN: usize = 256;

/// Whether `cursor` is something a reader may pass back as it is: not
/// empty, at most [`MAX_CURSOR_LEN`], and only characters a URL carries
/// unescaped. What it means is the auth server's business.
pub fn is_well_formed_cursor(cursor: &str) -> bool {
    !cursor.is_empty()
        && cursor.len() <= MAX_CURSOR_LEN
        && cursor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'~'))
}

/// One answer of the feed. Readers treat it as a set: an entry may come
/// again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feed {
    pub revocations: Vec<FeedEntry>,
    /// Opaque: pass it back as `cursor`.
    pub cursor: String,
    /// The reader does not have every revocation yet: ask again at once,
    /// without waiting. Only an answer with `more = false` means the reader
    /// has caught up (a successful sync).
    #[serde(default)]
    pub more: bool,
    /// Pass back as `seen` with a wait: the long poll answers once what the
    /// cursor covers is no longer this.
    #[serde(default)]
    pub held: i64,
    /// The signing keys in use, so an API can fetch a new key's JWKS entry
    /// before the first token signed with it arrives.
    #[serde(default)]
    pub kids: Vec<String>,
    /// Users whose older access tokens are refused (a change of roles, a
    /// deleted user). Left out when empty, so older readers see the same.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<UserEntry>,
}

/// The roles version a user's access tokens must carry at least: a token
/// whose `rv` (absent: 0) is lower was issued before a change of roles, or
/// the user is gone ([`UserEntry::DELETED`]), and is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEntry {
    pub user_id: Uuid,
    pub roles_version: i64,
    #[serde(serialize_with = "millis")]
    pub changed_at: DateTime<Utc>,
    /// When no access token issued before the change can be valid any
    /// more: readers may forget the entry then.
    #[serde(serialize_with = "millis")]
    pub forget_after: DateTime<Utc>,
}

impl UserEntry {
    /// The version of a deleted user: no token of theirs passes.
    pub const DELETED: i64 = i64::MAX;
}

/// A revoked session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedEntry {
    pub session_id: Uuid,
    #[serde(serialize_with = "millis")]
    pub revoked_at: DateTime<Utc>,
    /// When no access token of this session can be valid any more: readers
    /// may forget the entry then.
    #[serde(serialize_with = "millis")]
    pub forget_after: DateTime<Utc>,
}

/// RFC 3339 in UTC to the millisecond; readers accept any RFC 3339 time.
fn millis<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Millis, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_feed_reads_what_it_writes() {
        let revoked_at = DateTime::parse_from_rfc3339("2026-11-22T10:00:00.123456Z")
            .unwrap()
            .to_utc();
        let feed = Feed {
            revocations: vec![FeedEntry {
                session_id: Uuid::nil(),
                revoked_at,
                forget_after: revoked_at + chrono::Duration::minutes(16),
            }],
            cursor: "42".to_owned(),
            more: false,
            held: 1,
            kids: vec!["kid".to_owned()],
            users: Vec::new(),
        };
        let json = serde_json::to_string(&feed).unwrap();
        assert_eq!(
            json,
            r#"{"revocations":[{"session_id":"00000000-0000-0000-0000-000000000000","revoked_at":"2026-11-22T10:00:00.123Z","forget_after":"2026-11-22T10:16:00.123Z"}],"cursor":"42","more":false,"held":1,"kids":["kid"]}"#
        );
        let read: Feed = serde_json::from_str(&json).unwrap();
        assert_eq!(
            read.revocations[0].forget_after.timestamp_millis(),
            feed.revocations[0].forget_after.timestamp_millis()
        );
        assert_eq!(read.cursor, "42");
    }

    #[test]
    fn cursors_are_bounded_and_url_safe() {
        assert!(is_well_formed_cursor("c.42.1795000000123456"));
        assert!(is_well_formed_cursor(&"a".repeat(MAX_CURSOR_LEN)));
        for bad in [
            "",
            "a b",
            "a&seen=1",
            "a/b",
            "a%20",
            "é",
            &"a".repeat(MAX_CURSOR_LEN + 1),
        ] {
            assert!(!is_well_formed_cursor(bad), "{bad}");
        }
    }

    #[test]
    fn optional_fields_may_be_missing() {
        let read: Feed = serde_json::from_str(r#"{"revocations":[],"cursor":"7"}"#).unwrap();
        assert!(!read.more);
        assert_eq!(read.held, 0);
        assert!(read.kids.is_empty());
        assert!(read.users.is_empty());
    }

    #[test]
    fn user_entries_travel_with_the_feed() {
        let at = DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
            .unwrap()
            .to_utc();
        let feed = Feed {
            revocations: Vec::new(),
            cursor: "7".to_owned(),
            more: false,
            held: 1,
            kids: Vec::new(),
            users: vec![UserEntry {
                user_id: Uuid::nil(),
                roles_version: 3,
                changed_at: at,
                forget_after: at,
            }],
        };
        let json = serde_json::to_string(&feed).unwrap();
        assert!(json.contains(r#""users":[{"user_id":"#), "{json}");
        assert_eq!(serde_json::from_str::<Feed>(&json).unwrap(), feed);
    }
}
