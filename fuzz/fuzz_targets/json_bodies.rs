//! The JSON bodies of register, login, refresh and logout: any bytes parse to
//! a request or to a 400/422 in the contract's shape, and validation of what
//! parses never panics.
#![no_main]

use actix_web::ResponseError;
use actix_web::web::Bytes;
use auth_server::http::body::JsonBody;
use auth_server::http::input::{LoginRequest, RefreshRequest, RegisterRequest, check_password, parse_email};
use libfuzzer_sys::fuzz_target;

fn assert_client_error(error: &auth_server::error::ApiError) {
    let status = error.status_code().as_u16();
    assert!(status == 400 || status == 422, "a client error, not {status}");
    assert_eq!(error.code().as_str(), "invalid_request");
}

fuzz_target!(|data: &[u8]| {
    let body = JsonBody::from_bytes(Bytes::copy_from_slice(data));
    match body.parse::<RegisterRequest>() {
        Ok(request) => {
            let _ = parse_email(&request.email).map_err(|e| assert_client_error(&e));
            let _ = check_password(&request.password).map_err(|e| assert_client_error(&e));
        }
        Err(e) => assert_client_error(&e),
    }
    match body.parse::<LoginRequest>() {
        Ok(request) => {
            let _ = parse_email(&request.email).map_err(|e| assert_client_error(&e));
        }
        Err(e) => assert_client_error(&e),
    }
    if let Err(e) = body.parse::<RefreshRequest>() {
        assert_client_error(&e);
    }
});
