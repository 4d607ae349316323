//! The auth server: users, sessions, access tokens and rotating refresh
//! tokens. `main.rs` only parses the command line; everything lives here so
//! tests can start the real server.

pub mod accounts;
pub mod config;
pub mod db;
pub mod error;
pub mod factors;
pub mod http;
pub mod keys;
pub mod limits;
pub mod mail;
pub mod metrics;
pub mod oidc;
pub mod service;
pub mod startup;
pub mod state;
pub mod tokens;
