//! The auth server: users, sessions, access tokens and rotating refresh
//! tokens. `main.rs` only parses the command line; everything lives here so
//! tests can start the real server.

pub mod client_key;
pub mod config;
pub mod db;
pub mod email;
pub mod email_token;
pub mod error;
pub mod feed_cursor;
pub mod http;
pub mod keyring;
pub mod login_throttle;
pub mod mail;
pub mod metrics;
pub mod password;
pub mod proxies;
pub mod rate_limit;
pub mod refresh_token;
pub mod rotation;
pub mod sealing;
pub mod service;
pub mod signing;
pub mod startup;
pub mod state;
pub mod token_keys;
