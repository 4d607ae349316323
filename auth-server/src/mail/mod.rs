//! Outgoing mail, off the request path: requests queue a row in
//! `mail_outbox` (see `crate::db::outbox`) and the mail worker
//! (`crate::service::mail_worker`, which reaches the database through the
//! service layer like everything else) sends it, retrying with backoff
//! while the mail server is down, so an answer never waits for SMTP and
//! nothing is lost when it is unreachable.
//!
//! - [`transport`]: where messages go (SMTP through lettre, or `.eml` files
//!   in development).
//! - [`message`]: what the reset and verification messages say.
//! - [`notice`]: what the owner is told of a change to their factors.

pub mod message;
pub mod notice;
pub mod transport;
