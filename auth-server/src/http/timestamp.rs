//! How answers write a time: RFC 3339 in UTC, to the second, `Z`-suffixed
//! (the contract's form), the same in every handler.

use chrono::{DateTime, SecondsFormat, Utc};

pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}
