//! Cursor paging, one way for every listing (the user's events, the users,
//! the audit trail): a page is fetched with one row more than asked, whose
//! presence says whether a next page exists, and resumes after the page's
//! last row. The cursor a client holds is opaque: base64url of a text only
//! [`Cursor`] reads. (The revocation feed's cursor passes over transaction
//! ids, not rows: `tokens::feed_cursor`.)

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A page of a listing.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// The same page, each item changed by `f`.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

/// Where a listing resumes, as its cursor holds it.
pub trait Cursor: Sized {
    /// The longest cursor accepted, encoded: anything longer is refused
    /// before it is decoded.
    const MAX_ENCODED_LEN: usize;

    /// The text inside the cursor.
    fn to_text(&self) -> String;

    /// `None` for any text that [`Cursor::to_text`] did not write.
    fn from_text(text: &str) -> Option<Self>;
}

/// The opaque cursor a client passes back.
pub fn encode(cursor: &impl Cursor) -> String {
    URL_SAFE_NO_PAD.encode(cursor.to_text())
}

/// `None` for anything [`encode`] did not make.
pub fn decode<C: Cursor>(cursor: &str) -> Option<C> {
    if cursor.len() > C::MAX_ENCODED_LEN {
        return None;
    }
    let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    C::from_text(std::str::from_utf8(&raw).ok()?)
}

/// How many rows to fetch for a page of `limit`: one more, for [`page`].
pub fn rows_to_fetch(limit: i64) -> i64 {
    limit + 1
}

/// The page of at most `limit` of `rows` (fetched with [`rows_to_fetch`]),
/// and when a row is left over, the cursor that resumes after the page's
/// last row (`position` says where a row stands).
pub fn page<T, C: Cursor>(mut rows: Vec<T>, limit: i64, position: impl Fn(&T) -> C) -> Page<T> {
    let limit = usize::try_from(limit).unwrap_or(0);
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = if more {
        rows.last().map(|row| encode(&position(row)))
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct After(u32);

    impl Cursor for After {
        const MAX_ENCODED_LEN: usize = 16;

        fn to_text(&self) -> String {
            self.0.to_string()
        }

        fn from_text(text: &str) -> Option<Self> {
            text.parse().ok().map(Self)
        }
    }

    #[test]
    fn a_left_over_row_makes_a_cursor_after_the_last_kept() {
        let page = page((1..=4).collect(), 3, |n: &u32| After(*n));
        assert_eq!(page.items, vec![1, 2, 3]);
        let next = page.next_cursor.unwrap();
        assert_eq!(next, URL_SAFE_NO_PAD.encode("3"));
        assert_eq!(decode::<After>(&next), Some(After(3)));
    }

    #[test]
    fn the_last_page_has_no_cursor() {
        for rows in [vec![1, 2, 3], vec![1], vec![]] {
            let page = page(rows.clone(), 3, |n: &u32| After(*n));
            assert_eq!((page.items, page.next_cursor), (rows, None));
        }
        assert_eq!(rows_to_fetch(20), 21);
    }

    #[test]
    fn junk_and_overlong_cursors_are_refused() {
        for junk in ["", "!!!", &URL_SAFE_NO_PAD.encode("x")] {
            assert_eq!(decode::<After>(junk), None, "{junk}");
        }
        // 16 characters encoded are read; 18 are not, whatever they hold.
        let longest = URL_SAFE_NO_PAD.encode("000000000001");
        assert_eq!(decode::<After>(&longest), Some(After(1)));
        assert_eq!(
            decode::<After>(&URL_SAFE_NO_PAD.encode("0000000000001")),
            None
        );
    }
}
