//! How a user proves who they are, one module per factor: the password
//! ([`password`], argon2id), TOTP ([`totp`]) and recovery codes
//! ([`recovery`]), as pure rules; passkeys belong here beside them. Their
//! rows are in `crate::db::factors`, their use in `crate::service::factors`
//! and `mfa_login`; the session records which it was opened with.

pub mod passkey;
pub mod password;
pub mod recovery;
pub mod totp;
