//! One read of the auth server's revocation feed, over its internal
//! listener: authenticated by the internal token, never redirected, and
//! refused as soon as the answer is larger than a page can be.

use std::time::Duration;

use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use shared_claims::feed::{FEED_PATH, Feed, is_well_formed_cursor};
use shared_claims::fetch::{self, FetchError};

/// Largest feed answer accepted (a full page of 10 000 entries is about
/// 1.3 MB).
pub const MAX_FEED_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("the auth server did not answer: {0}")]
    Unreachable(String),
    /// A redirect included.
    #[error("the auth server answered {0}")]
    Status(StatusCode),
    #[error("the revocation feed answer is larger than {MAX_FEED_BYTES} bytes")]
    TooLarge,
    #[error("reading the revocation feed: {0}")]
    Read(String),
    #[error("the revocation feed does not parse: {0}")]
    Parse(String),
    #[error("the revocation feed sent a malformed cursor")]
    BadCursor,
}

impl FeedError {
    /// The auth server does not know our cursor (it was restarted with
    /// another format, say): only starting afresh can get past it.
    pub fn refused_cursor(&self) -> bool {
        matches!(self, Self::Status(StatusCode::BAD_REQUEST))
    }
}

pub struct FeedClient {
    client: reqwest::Client,
    url: Url,
    token: SecretString,
}

/// Where a reader stands: the last answer's `cursor` and `held`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub cursor: String,
    pub seen: i64,
}

impl FeedClient {
    /// `internal_url` is the auth server's internal listener; `timeout`
    /// bounds a whole read, long poll included.
    pub fn new(internal_url: &str, token: SecretString, timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            client: fetch::client(timeout, Duration::from_secs(2))?,
            url: Url::parse(&format!(
                "{}{FEED_PATH}",
                internal_url.trim_end_matches('/')
            ))?,
            token,
        })
    }

    /// The next answer from `from` (from the start without one), held by
    /// the auth server up to `wait` while nothing changes.
    pub async fn read(&self, from: Option<&Position>, wait: Duration) -> Result<Feed, FeedError> {
        let mut url = self.url.clone();
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("wait", &wait.as_secs().to_string());
            if let Some(from) = from {
                query.append_pair("cursor", &from.cursor);
                query.append_pair("seen", &from.seen.to_string());
            }
        }
        let request = self.client.get(url).bearer_auth(self.token.expose_secret());
        let body = fetch::get_capped(request, MAX_FEED_BYTES)
            .await
            .map_err(|e| match e {
                FetchError::Unreachable(e) => FeedError::Unreachable(e),
                FetchError::Status(status) => FeedError::Status(status),
                FetchError::TooLarge(_) => FeedError::TooLarge,
                FetchError::Read(e) => FeedError::Read(e),
            })?;
        let feed: Feed =
            serde_json::from_slice(&body).map_err(|e| FeedError::Parse(e.to_string()))?;
        if !is_well_formed_cursor(&feed.cursor) {
            return Err(FeedError::BadCursor);
        }
        Ok(feed)
    }
}
