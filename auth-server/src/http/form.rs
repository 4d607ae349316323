//! Form-encoded bodies (`application/x-www-form-urlencoded`), as the OAuth
//! endpoints take them (RFC 6749 §3.2, RFC 7009 §2.1, RFC 7662 §2.1):
//! bounded like JSON bodies, another media type refused, and a parameter
//! sent twice refused (RFC 6749 §3.2), all as `400 invalid_request`.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};

use super::body::{media_type, read_bounded};
use crate::error::ApiError;

pub const FORM_MEDIA_TYPE: &str = "application/x-www-form-urlencoded";

/// The parameters of a form-encoded body, each name at most once.
#[derive(Default)]
pub struct FormBody(Vec<(String, String)>);

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
            Self::parse(&body)
        })
    }
}

impl FormBody {
    /// The parameters of a body already read; a name twice is a `400`.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|_| ApiError::bad_request("the request body is not a valid form"))?;
        for (i, (name, _)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(earlier, _)| earlier == name) {
                return Err(ApiError::bad_request(format!(
                    "{}: sent more than once",
                    printable(name)
                )));
            }
        }
        Ok(Self(pairs))
    }

    /// The parameter's value; an empty value counts as absent (RFC 6749
    /// §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// The parameter's value, or `400 invalid_request` naming it.
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name)
            .ok_or_else(|| ApiError::bad_request(format!("{name}: is required")))
    }
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
    use super::*;

    #[test]
    fn parameters_are_read_once_each() {
        let form = FormBody::parse(b"grant_type=refresh_token&refresh_token=a%2Bb&scope=").unwrap();
        assert_eq!(form.get("grant_type"), Some("refresh_token"));
        assert_eq!(form.get("refresh_token"), Some("a+b"));
        assert_eq!(form.get("scope"), None, "empty is absent");
        assert!(form.required("token").is_err());
        assert!(FormBody::parse(b"token=a&token=b").is_err());
        assert!(FormBody::parse(b"").unwrap().get("token").is_none());
    }
}
