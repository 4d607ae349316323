//! How a user proves who they are, one module per factor: the password
//! ([`password`], argon2id). Second factors (TOTP, recovery codes,
//! passkeys) belong here beside it, with the session's record of which
//! factors it was opened with.

pub mod password;
pub mod recovery;
pub mod totp;
