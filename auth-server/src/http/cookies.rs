//! The refresh token a request's cookies carry.
//!
//! Every `Cookie` line counts (HTTP/2 may send one line per cookie). Two
//! `refresh_token` cookies are refused rather than one picked: a sibling
//! subdomain can plant a second with a longer `Path`, which browsers send
//! first, and choosing either silently would let it choose the session.
//! Read from the bytes, so a line with one odd byte cannot hide a cookie.

use actix_web::HttpRequest;
use actix_web::http::header;

use super::delivery::COOKIE_NAME;
use crate::error::ApiError;

/// The `refresh_token` cookie's value; `400 invalid_request` when there
/// is more than one.
pub fn refresh_cookie(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let mut found = None;
    let pairs = req
        .headers()
        .get_all(header::COOKIE)
        .flat_map(|line| line.as_bytes().split(|b| *b == b';'));
    for pair in pairs {
        let Some(equals) = pair.iter().position(|b| *b == b'=') else {
            continue;
        };
        if pair[..equals].trim_ascii() != COOKIE_NAME.as_bytes() {
            continue;
        }
        if found.is_some() {
            return Err(ApiError::bad_request(
                "refresh_token: more than one refresh_token cookie was sent",
            ));
        }
        found = Some(String::from_utf8_lossy(pair[equals + 1..].trim_ascii()).into_owned());
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;
    use actix_web::test::TestRequest;

    use super::*;

    fn cookies(lines: &[&[u8]]) -> Result<Option<String>, ApiError> {
        let mut request = TestRequest::default();
        for line in lines {
            request =
                request.append_header((header::COOKIE, HeaderValue::from_bytes(line).unwrap()));
        }
        refresh_cookie(&request.to_http_request())
    }

    #[test]
    fn one_refresh_cookie_among_others_is_found() {
        assert_eq!(cookies(&[]).unwrap(), None);
        assert_eq!(
            cookies(&[b"theme=dark; refresh_token=abc ; x=1"])
                .unwrap()
                .as_deref(),
            Some("abc")
        );
        assert_eq!(
            cookies(&[b"theme=dark", b"refresh_token=abc"])
                .unwrap()
                .as_deref(),
            Some("abc")
        );
        assert_eq!(
            cookies(&[b"refresh_token_old=1; Refresh_Token=2"]).unwrap(),
            None
        );
    }

    #[test]
    fn two_refresh_cookies_are_refused_on_one_line_or_across_lines() {
        for lines in [
            &[&b"refresh_token=a; refresh_token=b"[..]][..],
            &[&b"refresh_token=a"[..], &b"x=1; refresh_token=b"[..]][..],
            &[&b"refresh_token=a; caf\xe9=1"[..], &b"refresh_token=a"[..]][..],
        ] {
            let error = cookies(lines).unwrap_err();
            assert_eq!(error.code().as_str(), "invalid_request");
        }
    }
}
