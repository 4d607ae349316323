//! The axum adapter (feature `axum`, axum 0.8): [`Authenticated`] as an
//! extractor, taking the guard from the router's state (the state itself,
//! or any state with `FromRef` for [`Guard`]), and [`GuardError`] as a
//! response.
//!
//! ```ignore
//! let guard = Guard::start(GuardSettings::from_env()?)?;
//! let app = Router::new().route("/me", get(me)).with_state(guard);
//!
//! async fn me(Authenticated(user): Authenticated) -> String {
//!     user.user_id().to_string()
//! }
//!
//! // A per-route demand is a line in the handler: `require_role` (`403`),
//! // or `require_step_up` (`401 insufficient_user_authentication`, with
//! // RFC 9470's challenge).
//! const RECENT_AAL2: StepUp = StepUp { acr: Some(Aal::Aal2), max_age: Some(Duration::from_secs(300)) };
//!
//! async fn transfer(Authenticated(user): Authenticated) -> Result<String, GuardError> {
//!     user.require_step_up(RECENT_AAL2)?;
//!     Ok("done".to_owned())
//! }
//! ```

use axum_core::extract::{FromRef, FromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};
use http::request::Parts;

use crate::error::GuardError;
use crate::{Guard, Principal};

/// The caller of a request whose bearer token the guard accepted.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

impl<S> FromRequestParts<S> for Authenticated
where
    Guard: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = GuardError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, GuardError> {
        let values = parts.headers.get_all(AUTHORIZATION);
        Guard::from_ref(state)
            .authenticate_header(values.iter().map(HeaderValue::as_bytes))
            .map(Self)
    }
}

impl IntoResponse for GuardError {
    fn into_response(self) -> Response {
        let answer = self.answer();
        let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let mut response = (status, answer.body).into_response();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in answer.headers {
            // The challenge strips what a header may not carry, so these
            // always convert; one that did not would be left out.
            if let (Ok(name), Ok(value)) =
                (HeaderName::try_from(name), HeaderValue::try_from(value))
            {
                headers.insert(name, value);
            }
        }
        response
    }
}
