//! Cookie and Authorization header parsing: the refresh token a request
//! presents (body versus cookie) and the Bearer token, from arbitrary header
//! bytes. Nothing may panic, and a refresh token only comes out well formed.
#![no_main]

use actix_web::http::header::{self, Header, HeaderValue};
use actix_web::test::TestRequest;
use actix_web::web::Bytes;
use actix_web_httpauth::headers::authorization::{Authorization, Bearer};
use auth_server::http::body::JsonBody;
use auth_server::http::input::presented_token;
use auth_server::tokens::refresh::RefreshToken;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First byte splits the rest into a Cookie and an Authorization value.
    let Some((&split, rest)) = data.split_first() else { return };
    let split = usize::from(split).min(rest.len());
    let (cookie, authorization) = rest.split_at(split);
    let mut request = TestRequest::post();
    if let Ok(value) = HeaderValue::from_bytes(cookie) {
        request = request.insert_header((header::COOKIE, value));
    }
    if let Ok(value) = HeaderValue::from_bytes(authorization) {
        request = request.insert_header((header::AUTHORIZATION, value));
    }
    let request = request.to_http_request();

    if let Ok((Some(token), _)) = presented_token(&request, &JsonBody::from_bytes(Bytes::new())) {
        if let Some(parsed) = RefreshToken::parse(&token) {
            assert_eq!(parsed.expose().len(), auth_server::tokens::refresh::TOKEN_LENGTH);
            let _ = parsed.hash();
        }
        // Version 2 parsing refuses junk without panicking.
        if let Some(auth_server::tokens::refresh::Presented::V2(v2)) =
            auth_server::tokens::refresh::Presented::parse(&token)
        {
            assert_eq!(token.len(), auth_server::tokens::refresh::V2_LENGTH);
            assert!(v2.generation() >= 1);
        }
    }
    if let Ok(bearer) = Authorization::<Bearer>::parse(&request) {
        let _ = shared_claims::Validator::key_id(bearer.as_ref().token());
    }
});
