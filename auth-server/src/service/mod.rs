//! What the auth server does, apart from HTTP: handlers parse, call one of
//! these, and map the result; the CLI calls them too, with no request at all.
//! This layer is the only one that reaches the database (through
//! [`Database`](crate::db::Database)), and it answers with [`ServiceError`],
//! which `crate::error` alone turns into HTTP.

pub mod accounts;
pub mod admin;
pub mod events;
pub mod factors;
mod failures;
pub mod health;
mod issue;
pub mod janitor;
pub mod login_throttle;
pub mod mail_worker;
pub mod mfa_login;
mod notices;
pub mod oauth;
pub mod paging;
pub mod passkeys;
pub mod passwords;
pub mod rate_limits;
pub mod reauthentication;
pub mod recent;
pub mod refresh;
pub mod revocation_feed;
pub mod sessions;
pub mod signing_keys;
pub mod verification;

pub use issue::Issued;

/// What a login that needs a second factor answers with: the token that
/// carries it on, and the methods the user has (`totp`, `recovery_code`).
#[derive(Debug)]
pub struct MfaChallenge {
    pub mfa_token: crate::tokens::opaque::OpaqueToken,
    pub methods: Vec<&'static str>,
}

use crate::db::DbError;
use crate::factors::password::PasswordError;

/// Why a service call failed, in terms any caller can answer: an HTTP
/// status, a CLI message. Internal causes are kept for the log.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("the email or password is incorrect")]
    InvalidCredentials,
    /// A refresh token that cannot be used, and why (for the client).
    #[error("invalid grant: {0}")]
    InvalidGrant(&'static str),
    #[error("an account with this email already exists")]
    EmailTaken,
    /// The current password given for a change is not the user's.
    #[error("the current password is incorrect")]
    WrongPassword,
    /// A reset or verification token that cannot be used (a `400`, as RFC
    /// 6749 §5.2 answers grants, not a refresh's `401`).
    #[error("invalid e-mail token: {0}")]
    InvalidEmailToken(&'static str),
    /// `REQUIRE_VERIFIED_EMAIL`: a correct password, an unverified address.
    #[error("the e-mail address is not verified")]
    EmailNotVerified,
    #[error("the e-mail address is already verified")]
    AlreadyVerified,
    /// A correct password for an account an administrator disabled.
    #[error("the account is disabled")]
    AccountDisabled,
    /// The change would leave no enabled administrator.
    #[error("the last enabled administrator cannot be disabled, deleted or lose `admin`")]
    LastAdmin,
    /// A correct password for a user with a second factor: the login goes
    /// on at `/auth/login/mfa` with this token.
    #[error("a second factor is required")]
    MfaRequired(MfaChallenge),
    /// A wrong second factor, or a wrong password where one is asked again
    /// (reauthentication, enrolment): `403`, not a `401` that clients read
    /// as "refresh and retry".
    #[error("the password or code is incorrect")]
    WrongFactor,
    /// A WebAuthn ceremony that cannot be finished (unknown, expired, used,
    /// or an answer that does not verify): `400 invalid_grant`.
    #[error("passkey ceremony refused: {0}")]
    CeremonyRefused(&'static str),
    /// The Bearer token's session ended meanwhile.
    #[error("the session has ended")]
    SessionEnded,
    #[error("a second factor of this kind is already enrolled")]
    AlreadyEnrolled,
    /// The user has no second factor, and the request needs one.
    #[error("no second factor is enabled")]
    NoSecondFactor,
    /// The access token's authentication is too old or too weak for this
    /// (RFC 9470).
    #[error("a more recent or stronger authentication is required")]
    NeedsReauthentication(shared_claims::assurance::Insufficient),
    /// A field of the request is wrong (`field: problem`).
    #[error("{0}: {1}")]
    Invalid(&'static str, &'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Too many failed logins for this account; retry after this long.
    #[error("too many failed logins; retry after {0:?}")]
    Throttled(std::time::Duration),
    /// The client's budget under a per-client limit is spent; retry after
    /// this long.
    #[error("too many requests; retry after {0:?}")]
    RateLimited(std::time::Duration),
    /// The database or another dependency is down or saturated; retry soon.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A row lock or statement waited past its bound; retry soon.
    #[error("database contention: lock or statement timeout")]
    Contended,
    /// A bug.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

impl From<DbError> for ServiceError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Unavailable(cause) => Self::Unavailable(cause),
            DbError::Contended => Self::Contended,
            DbError::Query(e) => Self::Unavailable(format!("database error: {e}")),
            DbError::Stopped => Self::Unavailable(DbError::Stopped.to_string()),
        }
    }
}

impl From<PasswordError> for ServiceError {
    fn from(error: PasswordError) -> Self {
        match error {
            PasswordError::Saturated => Self::Unavailable("password hashing queue full".to_owned()),
            PasswordError::Stopped => Self::Unavailable("password pool stopped".to_owned()),
            PasswordError::Hash(e) => Self::Internal(anyhow::anyhow!("hashing a password: {e}")),
        }
    }
}
