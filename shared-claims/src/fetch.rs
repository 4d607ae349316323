//! Fetching from the auth server, for what both sides of it read over HTTP
//! (the JWKS, the revocation feed): a client that follows no redirect, and
//! bodies read with a cap, never whole before their size is known.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("no answer: {0}")]
    Unreachable(String),
    /// Anything but a success, a redirect included.
    #[error("answered {0}")]
    Status(reqwest::StatusCode),
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("reading the answer: {0}")]
    Read(String),
}

/// A client for the auth server: bounded in time, and a redirect is an
/// answer like any other (the caller refuses it), never followed: it could
/// send the request, and its credentials, anywhere.
pub fn client(timeout: Duration, connect_timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(connect_timeout)
        .build()
}

/// Sends `request` and reads the body of a successful answer (see
/// [`read_capped`]).
pub async fn get_capped(
    request: reqwest::RequestBuilder,
    max: usize,
) -> Result<Vec<u8>, FetchError> {
    let response = request
        .send()
        .await
        .map_err(|e| FetchError::Unreachable(e.without_url().to_string()))?;
    if !response.status().is_success() {
        return Err(FetchError::Status(response.status()));
    }
    read_capped(response, max).await
}

/// The body of `response`, refused as soon as it is known to be larger than
/// `max` bytes: from its `Content-Length` before reading anything, else
/// from the chunks read so far.
pub async fn read_capped(
    mut response: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, FetchError> {
    if response
        .content_length()
        .is_some_and(|length| length > max as u64)
    {
        return Err(FetchError::TooLarge(max));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| FetchError::Read(e.without_url().to_string()))?
    {
        if body.len() + chunk.len() > max {
            return Err(FetchError::TooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
