//! Contract § Tokens: the reuse grace, for refresh answers lost on their way back.
//!
//! Refresh answers lost on their way back (a mobile network drop, a tab
//! closed mid-request, a proxy timeout): the client still holds the token it
//! presented, which the server has consumed, and simply retries with it.
//! Within the grace the auth server sends the very successor the lost answer
//! carried, so the client keeps working, rotation after rotation, in body
//! and in cookie mode, and the resource API keeps accepting its access
//! tokens. Nobody is logged out by reuse detection.

use std::io::Write;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// Rotations each client goes through.
const ROTATIONS: usize = 12;

/// What a refresh answered: the access token, and the refresh token from the
/// body or the `Set-Cookie` header.
struct Answer {
    access_token: String,
    refresh_token: String,
}

async fn read(response: reqwest::Response, cookie: bool) -> Answer {
    assert_eq!(response.status(), StatusCode::OK);
    let from_cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("refresh_token="))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
    let body: Value = response.json().await.unwrap();
    let from_body = body["refresh_token"].as_str().map(str::to_owned);
    let refresh_token = if cookie {
        assert!(
            from_body.is_none(),
            "a cookie is never answered in the body"
        );
        from_cookie.expect("the refresh token in a cookie")
    } else {
        assert!(from_cookie.is_none(), "body mode never sets a cookie");
        from_body.expect("the refresh token in the body")
    };
    Answer {
        access_token: body["access_token"].as_str().unwrap().to_owned(),
        refresh_token,
    }
}

async fn refresh_cookie(stack: &Stack, token: &str) -> reqwest::Response {
    stack
        .client
        .post(format!("{}/auth/refresh", stack.auth_url))
        .header("Cookie", format!("refresh_token={token}"))
        .send()
        .await
        .unwrap()
}

async fn login_cookie(stack: &Stack) -> String {
    let email = stack.login().await.email;
    let response = stack
        .client
        .post(format!("{}/auth/login", stack.auth_url))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    read(response, true).await.refresh_token
}

/// Each refresh's first answer is thrown away unread, as if it never
/// arrived; the retry must carry the same successor.
async fn lose_every_first_answer(stack: &Stack, mut token: String, cookie: bool) {
    for rotation in 0..ROTATIONS {
        let send = || async {
            if cookie {
                refresh_cookie(stack, &token).await
            } else {
                stack.refresh(&token).await
            }
        };
        let lost = read(send().await, cookie).await;
        let retry = read(send().await, cookie).await;
        assert_eq!(
            retry.refresh_token, lost.refresh_token,
            "rotation {rotation}: the retry is sent the very successor the lost answer carried"
        );
        assert_ne!(retry.refresh_token, token);
        assert_eq!(
            stack.me_status(&retry.access_token).await,
            StatusCode::OK,
            "rotation {rotation}"
        );
        assert_eq!(stack.me_status(&lost.access_token).await, StatusCode::OK);
        token = retry.refresh_token;
    }
}

#[tokio::test]
async fn a_client_whose_first_answers_are_lost_keeps_working_in_body_mode() {
    let stack = spawn_stack().await;
    let token = stack.login().await.refresh_token;
    lose_every_first_answer(&stack, token, false).await;
}

#[tokio::test]
async fn a_client_whose_first_answers_are_lost_keeps_working_in_cookie_mode() {
    let stack = spawn_stack().await;
    let token = login_cookie(&stack).await;
    lose_every_first_answer(&stack, token, true).await;
}

/// The connection is closed as soon as the request is written, before any
/// answer: whether the server finished the rotation or never started it,
/// the retry with the same token works.
#[tokio::test]
async fn a_client_that_hangs_up_before_each_answer_keeps_working() {
    let stack = spawn_stack().await;
    let mut token = stack.login().await.refresh_token;
    let address = stack
        .auth_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    for rotation in 0..ROTATIONS {
        let body = json!({ "refresh_token": token }).to_string();
        let request = format!(
            "POST /auth/refresh HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        // A few hundred bytes to a local socket: written at once.
        let mut socket = std::net::TcpStream::connect(&address).unwrap();
        socket.write_all(request.as_bytes()).unwrap();
        drop(socket);
        // Let the server get as far as it will with the abandoned request.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let retry = read(stack.refresh(&token).await, false).await;
        assert_eq!(
            stack.me_status(&retry.access_token).await,
            StatusCode::OK,
            "rotation {rotation}"
        );
        token = retry.refresh_token;
    }
    // The chain is intact: the last token rotates as usual.
    let last = read(stack.refresh(&token).await, false).await;
    assert_ne!(last.refresh_token, token);
}
