//! Outgoing mail, off the request path: requests queue a row in
//! `mail_outbox` (see `crate::db::outbox`) and the [`worker`] sends it,
//! retrying with backoff while the mail server is down, so an answer never
//! waits for SMTP and nothing is lost when it is unreachable.
//!
//! - [`transport`]: where messages go (SMTP through lettre, or `.eml` files
//!   in development).
//! - [`message`]: what the reset and verification messages say.
//! - [`worker`]: the background task that mints tokens, renders and sends.

pub mod message;
pub mod transport;
pub mod worker;
