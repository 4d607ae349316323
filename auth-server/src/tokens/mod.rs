//! The tokens the server hands out and recognises again, as pure rules:
//! refresh tokens and their forms ([`refresh`]), the keys that make them
//! ([`keys`]), the rotation and reuse rules ([`rotation`]), e-mail link
//! tokens ([`email`]) and other opaque ones ([`opaque`]) and the revocation feed's cursor ([`feed_cursor`]).
//! Their statements are in [`crate::db`], their use in [`crate::service`].

pub mod email;
pub mod feed_cursor;
pub mod keys;
pub mod opaque;
pub mod refresh;
pub mod rotation;
