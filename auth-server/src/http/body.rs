//! Request bodies: bounded in size, JSON only, errors in the contract's shape.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{FromRequest, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A request body of at most [`MAX_BODY_BYTES`]; when not empty, declared as
/// JSON. Reading stops at the limit, so an oversized body costs nothing.
pub struct JsonBody(Bytes);

impl FromRequest for JsonBody {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = is_json(req);
        let read = read_bounded(req, payload);
        Box::pin(async move {
            let body = read.await?;
            if !body.is_empty() && !is_json {
                return Err(ApiError::bad_request(
                    "the request body must be JSON (Content-Type: application/json)",
                ));
            }
            Ok(Self(body))
        })
    }
}

/// The request's body, at most [`MAX_BODY_BYTES`] (`413` beyond, declared or
/// not) and received within `CLIENT_TIMEOUT` (`408` after). Reading stops at
/// the limit, so an oversized body costs nothing.
pub(super) fn read_bounded(
    req: &HttpRequest,
    payload: &mut Payload,
) -> impl Future<Output = Result<Bytes, ApiError>> + 'static {
    let declared_length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let timeout = req
        .app_data::<actix_web::web::Data<crate::state::AppState>>()
        .map_or(std::time::Duration::from_secs(10), |state| {
            state.settings.http.client_timeout
        });
    let mut payload = payload.take();
    async move {
        if declared_length.is_some_and(|n| n > MAX_BODY_BYTES) {
            return Err(ApiError::PayloadTooLarge);
        }
        // A client that trickles its body holds a connection: bound it.
        let deadline = tokio::time::Instant::now() + timeout;
        let mut body = BytesMut::new();
        while let Some(chunk) = tokio::time::timeout_at(deadline, payload.next())
            .await
            .map_err(|_| ApiError::RequestTimeout)?
        {
            let chunk =
                chunk.map_err(|_| ApiError::bad_request("the request body could not be read"))?;
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(ApiError::PayloadTooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }
}

impl JsonBody {
    /// A body already read (tests and fuzzing; requests use the extractor).
    pub fn from_bytes(bytes: Bytes) -> Self {
        Self(bytes)
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(u8::is_ascii_whitespace)
    }

    /// Unparseable JSON is a `400`; JSON of the wrong shape a `422` naming
    /// the field.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        // Syntax first, so broken JSON is always a 400 even when its first
        // token already has the wrong type.
        serde_json::from_slice::<serde::de::IgnoredAny>(&self.0)
            .map_err(|_| ApiError::bad_request("the request body is not valid JSON"))?;
        let mut deserializer = serde_json::Deserializer::from_slice(&self.0);
        let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            match inner.classify() {
                serde_json::error::Category::Data => describe_data_error(&path, &inner),
                _ => ApiError::bad_request("the request body is not valid JSON"),
            }
        })?;
        deserializer
            .end()
            .map_err(|_| ApiError::bad_request("the request body is not valid JSON"))?;
        Ok(value)
    }
}

/// A `422` naming the field, from serde's message without its position and
/// without echoing values (a password of the wrong type must not come back).
fn describe_data_error(path: &str, error: &serde_json::Error) -> ApiError {
    let message = error.to_string();
    let message = message.split(" at line ").next().unwrap_or_default();
    let parent = if path == "." {
        String::new()
    } else {
        format!("{path}.")
    };
    if let Some(rest) = message.strip_prefix("missing field ") {
        let field = rest.trim_matches('`');
        return ApiError::unprocessable(&format!("{parent}{field}"), "is required");
    }
    let field = if path == "." { "body" } else { path };
    match message.split_once(", expected ") {
        Some((_, expected)) => ApiError::unprocessable(field, &format!("expected {expected}")),
        None => ApiError::unprocessable(field, "has the wrong type"),
    }
}

/// The media type of the request's `Content-Type`, lower-cased, without
/// parameters; empty when there is none.
pub(super) fn media_type(req: &HttpRequest) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|value| value.split(';').next())
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn is_json(req: &HttpRequest) -> bool {
    let essence = media_type(req);
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}
