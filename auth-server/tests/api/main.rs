//! Contract § Auth server, and every section it serves: the `api` test binary.
//!
//! The auth server's integration tests: one binary (link time dominates on
//! small machines), each test against a real server on its own port and a
//! real PostgreSQL database of its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;
mod smtp;

mod account_events;
mod admin;
mod cli;
mod config_table;
mod cors;
mod database;
mod faults;
mod hardening;
mod health;
mod inputs;
mod internal;
mod login;
mod logout;
mod mail;
mod oauth;
mod one_row;
mod openapi;
mod origin;
mod passkeys;
mod password_change;
mod password_reset;
mod refresh;
mod register;
mod replicas;
mod rotation_properties;
mod round_trips;
mod second_factors;
mod sessions;
mod signing_keys;
mod throttle;
mod verification;
