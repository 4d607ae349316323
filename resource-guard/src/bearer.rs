//! The Bearer token of a request's `Authorization` header (RFC 6750 §2.1),
//! from raw header bytes, for every adapter alike.

/// What a request presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    /// No `Authorization` header.
    Nothing,
    /// A header that is not one Bearer credential: another scheme, no
    /// token, bytes a header may not carry, or more than one header.
    NotBearer,
    Bearer(&'a str),
}

/// Reads the values of every `Authorization` header of a request. The
/// scheme is case-insensitive (RFC 9110 §11.1); the token is everything
/// after the spaces that follow it, which validation then judges. Two
/// headers are refused rather than one picked.
pub fn presented<'a>(mut values: impl Iterator<Item = &'a [u8]>) -> Presented<'a> {
    let Some(value) = values.next() else {
        return Presented::Nothing;
    };
    if values.next().is_some() {
        return Presented::NotBearer;
    }
    // Visible ASCII and spaces only, as `HeaderValue::to_str` admits.
    let Ok(text) = std::str::from_utf8(value) else {
        return Presented::NotBearer;
    };
    if !text
        .bytes()
        .all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
    {
        return Presented::NotBearer;
    }
    let text = text.trim_matches([' ', '\t']);
    let Some((scheme, token)) = text.split_once([' ', '\t']) else {
        return Presented::NotBearer;
    };
    let token = token.trim_start_matches([' ', '\t']);
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Presented::NotBearer;
    }
    Presented::Bearer(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(value: &str) -> Presented<'_> {
        presented(std::iter::once(value.as_bytes()))
    }

    #[test]
    fn reads_one_bearer_token() {
        assert_eq!(one("Bearer abc.def.ghi"), Presented::Bearer("abc.def.ghi"));
        assert_eq!(one("bearer  abc "), Presented::Bearer("abc"));
        assert_eq!(one("BEARER\tabc"), Presented::Bearer("abc"));
        // Validation judges what follows the scheme.
        assert_eq!(one("Bearer a b"), Presented::Bearer("a b"));
    }

    #[test]
    fn anything_else_is_not_a_bearer_token() {
        for value in [
            "Basic dXNlcjpwYXNz",
            "Bearer",
            "bearer",
            "Bearer   ",
            "Token abc",
            "",
        ] {
            assert_eq!(one(value), Presented::NotBearer, "{value:?}");
        }
        assert_eq!(
            presented(std::iter::once(&b"Bearer \xff\xfe"[..])),
            Presented::NotBearer
        );
        assert_eq!(
            presented(std::iter::once(&b"Bearer a\x01b"[..])),
            Presented::NotBearer
        );
    }

    #[test]
    fn no_header_or_two_headers() {
        assert_eq!(presented(std::iter::empty()), Presented::Nothing);
        assert_eq!(
            presented([&b"Bearer a"[..], &b"Bearer b"[..]].into_iter()),
            Presented::NotBearer,
            "never pick one of two"
        );
    }
}
