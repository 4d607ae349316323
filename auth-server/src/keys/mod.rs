//! Keys the server holds: the Ed25519 keys that sign access tokens
//! ([`signing`]), the ring of them a replica publishes and signs with
//! ([`keyring`]), and the key-encryption key that seals them at rest
//! ([`sealing`]). The keys that make refresh and e-mail tokens live with
//! the tokens ([`crate::tokens::keys`]).

pub mod keyring;
pub mod sealing;
pub mod signing;
