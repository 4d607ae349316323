//! Feature: the whole stack, both services and PostgreSQL: the `e2e` test binary.
//!
//! End-to-end tests: the auth server and the resource API as real services on
//! real sockets, over a real PostgreSQL.
//!
//! By default each test starts both services in-process on port 0 with a
//! database of its own. With `AUTH_URL` and `API_URL` set, the tests target
//! that running deployment instead; the cases that must stop or restart a
//! service are then skipped, and say so. Cases that forge tokens with the
//! real signing key need `SIGNING_KEY_FILE` in that mode.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;
/// The auth server suite's SMTP server (aiosmtpd), shared rather than copied.
#[allow(dead_code)]
#[path = "../../../auth-server/tests/api/smtp.rs"]
mod smtp;

mod administration;
mod browser;
mod cors;
mod deployment;
mod feed;
mod listeners;
mod lossy_proxy;
mod lost_answers;
mod openapi;
mod outages;
mod revocation;
mod step_up;
mod test_files;
mod tokens;
