//! The OpenID provider's rules (authorization codes with PKCE, consent,
//! single sign-on), as pure functions, beside the OAuth endpoints that
//! exist today ([`crate::service::oauth`], [`crate::http::oauth`]).
//! Nothing lives here yet: this is where the provider moves in.
