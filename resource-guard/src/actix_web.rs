//! The actix-web adapter (feature `actix-web`): [`Authenticated`] as an
//! extractor, reading the guard from the app data, and [`GuardError`] as
//! the error that answers for it.
//!
//! ```ignore
//! let guard = Guard::start(GuardSettings::from_env()?)?;
//! HttpServer::new(move || App::new().app_data(guard.clone()).route("/me", web::get().to(me)))
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

use std::future::{Ready, ready};
use std::sync::Arc;

use ::actix_web::dev::Payload;
use ::actix_web::http::StatusCode;
use ::actix_web::http::header::AUTHORIZATION;
use ::actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};

use crate::error::{GuardError, Refusal, Unready};
use crate::{Guard, Principal};

/// The caller of a request whose bearer token the guard accepted. The
/// guard comes from the app data, as `Guard` or `web::Data<Guard>`.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

impl FromRequest for Authenticated {
    type Error = GuardError;
    type Future = Ready<Result<Self, GuardError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req).map(Self))
    }
}

fn authenticate(req: &HttpRequest) -> Result<Principal, GuardError> {
    let guard = req.app_data::<Guard>().or_else(|| {
        req.app_data::<web::Data<Guard>>()
            .map(|data| data.get_ref())
    });
    let Some(guard) = guard else {
        return Err(GuardError::new(
            Refusal::Unavailable {
                reason: Unready::Internal,
                detail: "no resource_guard::Guard in the app data: add it with App::app_data"
                    .to_owned(),
            },
            Arc::from(""),
        ));
    };
    let values = req.headers().get_all(AUTHORIZATION);
    guard.authenticate_header(values.map(|value| value.as_bytes()))
}

impl ResponseError for GuardError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
    }

    fn error_response(&self) -> HttpResponse {
        let answer = self.answer();
        let mut response = HttpResponse::build(self.status_code());
        for (name, value) in answer.headers {
            response.insert_header((name, value));
        }
        response.content_type("application/json").body(answer.body)
    }
}
