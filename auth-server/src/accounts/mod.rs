//! What an account is made of, checked once where it comes in: the e-mail
//! address ([`email`]). The account lifecycle (register, verify, reset,
//! change) is [`crate::service::accounts`] and [`crate::service::passwords`].

pub mod email;
