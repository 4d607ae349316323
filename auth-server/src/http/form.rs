//! Form-encoded bodies (`application/x-www-form-urlencoded`), as the OAuth
//! endpoints take them (RFC 6749 §3.2, RFC 7009 §2.1, RFC 7662 §2.1):
//! bounded like JSON bodies, another media type refused, and a parameter
//! sent twice refused (RFC 6749 §3.2), all as `400 invalid_request`.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest};
use serde::de::DeserializeOwned;

use super::body::{media_type, read_bounded};
use crate::error::ApiError;

pub const FORM_MEDIA_TYPE: &str = "application/x-www-form-urlencoded";

/// A form-encoded body whose parameters each come at most once.
#[derive(Default)]
pub struct FormBody(Bytes);

impl FromRequest for FormBody {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_form = media_type(req) == FORM_MEDIA_TYPE;
        let read = read_bounded(req, payload);
        Box::pin(async move {
            let body = read.await?;
            if !is_form {
                return Err(ApiError::bad_request(format!(
                    "the request body must be form-encoded (Content-Type: {FORM_MEDIA_TYPE})"
                )));
            }
            Self::new(body)
        })
    }
}

impl FormBody {
    /// A body already read; a name twice is a `400`.
    pub fn new(body: Bytes) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
            .map_err(|_| ApiError::bad_request("the request body is not a valid form"))?;
        for (i, (name, _)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(earlier, _)| earlier == name) {
                return Err(ApiError::bad_request(format!(
                    "{}: sent more than once",
                    printable(name)
                )));
            }
        }
        Ok(Self(body))
    }

    /// The parameters as `T`, whose fields are all `Option<String>` (so a
    /// missing one is named by [`required`]); unknown ones are ignored
    /// (RFC 6749 §3.2).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_urlencoded::from_bytes(&self.0)
            .map_err(|_| ApiError::bad_request("the request body is not a valid form"))
    }
}

/// A parameter's value, or `400 invalid_request` naming it; an empty value
/// counts as absent (RFC 6749 §3.1).
pub fn required(value: Option<String>, name: &str) -> Result<String, ApiError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("{name}: is required")))
}

/// A parameter name fit to be named in an error: short, printable ASCII.
fn printable(name: &str) -> String {
    let clean: String = name
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(40)
        .collect();
    if clean.is_empty() {
        "a parameter".to_owned()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    struct Grant {
        grant_type: Option<String>,
        refresh_token: Option<String>,
        scope: Option<String>,
        token: Option<String>,
    }

    fn grant(body: &'static [u8]) -> Result<Grant, ApiError> {
        FormBody::new(Bytes::from_static(body))?.parse()
    }

    #[test]
    fn parameters_are_read_once_each() {
        let form = grant(b"grant_type=refresh_token&refresh_token=a%2Bb&scope=&other=1").unwrap();
        assert_eq!(form.grant_type.as_deref(), Some("refresh_token"));
        assert_eq!(
            required(form.refresh_token, "refresh_token").unwrap(),
            "a+b"
        );
        assert!(required(form.scope, "scope").is_err(), "empty is absent");
        assert!(required(form.token, "token").is_err());
        assert!(grant(b"token=a&token=b").is_err());
        assert!(grant(b"").unwrap().token.is_none());
    }
}
