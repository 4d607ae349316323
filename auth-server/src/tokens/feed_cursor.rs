//! Where a reader of the revocation feed stands, and the opaque string it
//! carries between reads (the reader only passes it back).
//!
//! A reader goes through the feed in *passes*. A pass reads, in the total
//! order `(revoked_xid, id)`, the revocations of the transactions its
//! [`Span`] names (and recent enough to matter), one page per request. When
//! it ends, the reader has everything its last snapshot could see, and the
//! next pass covers only what that snapshot could not (why that is safe:
//! [`crate::db::revocations`]).

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Longest cursor this server reads: what readers accept. It writes at most
/// about 215 characters, and about 60 as a rule.
pub use shared_claims::feed::MAX_CURSOR_LEN as MAX_LEN;

/// Transactions in progress a cursor names one by one. The oldest are kept
/// (a long transaction pinning the cluster's `xmin` is the case that
/// matters); newer ones fall under `above`.
pub const MAX_PENDING: usize = 4;

/// The transactions whose revocations a pass covers: every one with an id
/// at or above `above`, and `pending`, ids below it that were still in
/// progress when the reader last caught up (ascending, at most
/// [`MAX_PENDING`]). The revocations of any other transaction were all
/// delivered before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub above: i64,
    pub pending: Vec<i64>,
}

impl Span {
    /// Every transaction: a reader with no cursor.
    pub fn everything() -> Self {
        Self {
            above: 0,
            pending: Vec::new(),
        }
    }

    /// The lowest transaction id covered.
    pub fn floor(&self) -> i64 {
        self.pending.first().copied().unwrap_or(self.above)
    }

    /// Only the transactions with an id at or above `floor`.
    pub fn from_floor(&self, floor: i64) -> Self {
        Self {
            above: self.above.max(floor),
            pending: self
                .pending
                .iter()
                .copied()
                .filter(|&xid| xid >= floor)
                .collect(),
        }
    }

    fn encode(&self) -> String {
        std::iter::once(self.above)
            .chain(self.pending.iter().copied())
            .map(|xid| xid.to_string())
            .collect::<Vec<_>>()
            .join("_")
    }

    fn decode(text: &str) -> Option<Self> {
        let mut ids = text.split('_').map(number);
        let above = ids.next()??;
        let pending = ids.collect::<Option<Vec<i64>>>()?;
        let consistent = pending.len() <= MAX_PENDING
            && pending.windows(2).all(|w| w[0] < w[1])
            && pending.last().is_none_or(|&last| last < above);
        consistent.then_some(Self { above, pending })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// Between passes: `span` is what the next pass covers. A long poll
    /// waits until the count of revocations in `span` after `since` (the
    /// finished pass's bound) is no longer the `seen` the reader was told.
    Caught { span: Span, since: DateTime<Utc> },
    /// In the middle of a pass.
    Pass(Pass),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pass {
    pub span: Span,
    /// The `xmin` of the pass's first snapshot: nothing below it could
    /// commit during the pass, so a pass that has to start again (a
    /// revocation committed behind its resume key) starts there.
    pub restart_floor: i64,
    /// Revocations at or before this are too old to matter. Fixed for the
    /// pass, so that its pages and its final count cover the same rows.
    pub since: DateTime<Utc>,
    /// The key of the last revocation sent: the next page starts after it.
    pub after: (i64, Uuid),
    /// How many revocations the pass has sent so far.
    pub delivered: i64,
}

impl Cursor {
    /// URL-safe: digits, lower-case hex, `.`, `_` and two letters.
    pub fn encode(&self) -> String {
        match self {
            Self::Caught { span, since } => {
                format!("c.{}.{}", span.encode(), since.timestamp_micros())
            }
            Self::Pass(pass) => format!(
                "p.{}.{}.{}.{}.{}.{}",
                pass.span.encode(),
                pass.restart_floor,
                pass.since.timestamp_micros(),
                pass.after.0,
                pass.after.1.simple(),
                pass.delivered,
            ),
        }
    }

    /// `None` for anything this server would not have written.
    pub fn decode(text: &str) -> Option<Self> {
        if text.len() > MAX_LEN {
            return None;
        }
        let parts: Vec<&str> = text.split('.').collect();
        match parts.as_slice() {
            ["c", span, since] => Some(Self::Caught {
                span: Span::decode(span)?,
                since: instant(since)?,
            }),
            ["p", span, restart_floor, since, xid, id, delivered] => {
                let pass = Pass {
                    span: Span::decode(span)?,
                    restart_floor: number(restart_floor)?,
                    since: instant(since)?,
                    after: (number(xid)?, simple_uuid(id)?),
                    delivered: number(delivered)?,
                };
                // What every pass this server writes satisfies.
                let floor = pass.span.floor();
                let consistent =
                    pass.restart_floor >= floor && pass.after.0 >= floor && pass.delivered > 0;
                consistent.then_some(Self::Pass(pass))
            }
            _ => None,
        }
    }
}

/// A non-negative decimal without sign or leading zeros.
fn number(text: &str) -> Option<i64> {
    let canonical = !text.is_empty()
        && text.len() <= 19
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

fn instant(text: &str) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(number(text)?)
}

/// 32 lower-case hex digits, as `Uuid::simple` writes them.
fn simple_uuid(text: &str) -> Option<Uuid> {
    let canonical =
        text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    canonical.then(|| Uuid::try_parse(text).ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn since() -> DateTime<Utc> {
        DateTime::from_timestamp_micros(1_795_000_000_123_456).unwrap()
    }

    fn span() -> Span {
        Span {
            above: 1_300,
            pending: vec![990, 1_005],
        }
    }

    fn pass() -> Cursor {
        Cursor::Pass(Pass {
            span: span(),
            restart_floor: 1_200,
            since: since(),
            after: (
                1_100,
                Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            ),
            delivered: 10_000,
        })
    }

    #[test]
    fn reads_what_it_writes() {
        let caught = Cursor::Caught {
            span: Span::everything(),
            since: since(),
        };
        let widest = Cursor::Pass(Pass {
            span: Span {
                above: i64::MAX,
                pending: (0..MAX_PENDING as i64).map(|i| i64::MAX - 10 + i).collect(),
            },
            restart_floor: i64::MAX,
            since: since(),
            after: (i64::MAX, Uuid::max()),
            delivered: i64::MAX,
        });
        for cursor in [caught, pass(), widest] {
            let text = cursor.encode();
            assert!(
                shared_claims::feed::is_well_formed_cursor(&text),
                "what readers accept: {text}"
            );
            assert_eq!(Cursor::decode(&text), Some(cursor), "{text}");
        }
        assert_eq!(
            pass().encode(),
            "p.1300_990_1005.1200.1795000000123456.1100.0123456789abcdef0123456789abcdef.10000"
        );
    }

    #[test]
    fn refuses_anything_it_would_not_write() {
        let good = pass().encode();
        for bad in [
            "",
            "42",
            "c",
            "c.1",
            "c.1.2.3",
            "c.-1.2",
            "c.+1.2",
            "c.01.2",
            "c.1.2 ",
            "c.99999999999999999999.2",
            "x.1.2",
            "C.1.2",
            // Pending transactions: ascending, below `above`, at most four.
            "c.10_5_3.2",
            "c.10_5_5.2",
            "c.10_10.2",
            "c.10_1_2_3_4_5.2",
            "c.10_.2",
            "c._5.2",
            // A restart floor or resume key below the span, nothing
            // delivered: not a pass this server starts.
            "p.1300_990.900.1795000000123456.1100.0123456789abcdef0123456789abcdef.10000",
            "p.1300_990.1200.1795000000123456.900.0123456789abcdef0123456789abcdef.10000",
            "p.1300_990.1200.1795000000123456.1100.0123456789abcdef0123456789abcdef.0",
            "p.1300.1300.1795000000123456.1400.0123456789ABCDEF0123456789abcdef.10000",
            "p.1300.1300.1795000000123456.1400.01234567-89ab-cdef-0123-456789abcdef.10000",
            "p.1300.1300.1795000000123456.1400.0123456789abcdef0123456789abcde.10000",
            &format!("{good}.1"),
            &format!("c.1.{}", "1".repeat(MAX_LEN)),
        ] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
        assert!(Cursor::decode(&good).is_some());
    }

    #[test]
    fn a_span_narrows_to_a_floor() {
        assert_eq!(span().floor(), 990);
        assert_eq!(Span::everything().floor(), 0);
        assert_eq!(
            span().from_floor(1_000),
            Span {
                above: 1_300,
                pending: vec![1_005]
            }
        );
        assert_eq!(
            span().from_floor(1_400),
            Span {
                above: 1_400,
                pending: vec![]
            }
        );
    }
}
