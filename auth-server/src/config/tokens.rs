//! Tokens: who issues them and for whom, the signing keys, and how long
//! access tokens, refresh tokens and sessions live.

use std::path::PathBuf;
use std::time::Duration;

use service_kit::env::{ConfigError, Env, invalid};

#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub issuer: String,
    /// `AUTH_PUBLIC_URL`: where clients reach the auth server, without a
    /// trailing `/`; the OAuth metadata's endpoint URLs are built on it,
    /// never on a request's `Host`. `JWT_ISSUER` when unset.
    pub public_url: String,
    pub audience: String,
    pub signing_key_file: Option<PathBuf>,
    /// Seals the signing keys kept in PostgreSQL, which then rotate on their
    /// own (`crate::keys::keyring`); unused when `signing_key_file` is set.
    pub key_encryption_key_file: Option<PathBuf>,
    /// How long a key signs before the next one takes over.
    pub signing_key_rotation: Duration,
    /// How long before it signs a new key is in the JWKS: longer than the
    /// APIs take to refetch it (`JWKS_REFRESH_INTERVAL`).
    pub signing_key_publish_ahead: Duration,
    /// Keys that no longer sign but are still published and accepted, so
    /// their tokens live out their lifetime after a key rotation.
    pub retired_key_files: Vec<PathBuf>,
    /// The HMAC key that lets the server produce a refresh successor (and an
    /// e-mail link) again without storing it; see `crate::tokens::keys`.
    pub refresh_token_key_file: Option<PathBuf>,
    /// Former such keys, still tried when recognising what they derived.
    pub retired_refresh_token_key_files: Vec<PathBuf>,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub session_max_lifetime: Duration,
    pub reuse_grace: Duration,
    pub leeway: Duration,
}

impl TokenSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let issuer = env.string("JWT_ISSUER", "http://localhost:8080");
        let public_url = env.get("AUTH_PUBLIC_URL").unwrap_or_else(|| issuer.clone());
        let public_url = public_url.trim_end_matches('/').to_owned();
        let scheme_ok = public_url.starts_with("http://") || public_url.starts_with("https://");
        if !scheme_ok || public_url.contains(['?', '#', ' ']) {
            return Err(invalid(
                "AUTH_PUBLIC_URL",
                "must be an http(s) URL without query or fragment, such as https://auth.example.com \
                 (unset, JWT_ISSUER is used)",
            ));
        }
        let tokens = Self {
            issuer,
            public_url,
            audience: env.string("JWT_AUDIENCE", "resource-api"),
            signing_key_file: env.get("SIGNING_KEY_FILE").map(PathBuf::from),
            key_encryption_key_file: env.get("KEY_ENCRYPTION_KEY_FILE").map(PathBuf::from),
            signing_key_rotation: env.duration("SIGNING_KEY_ROTATION", "30d")?,
            signing_key_publish_ahead: env.duration("SIGNING_KEY_PUBLISH_AHEAD", "10m")?,
            retired_key_files: paths(env, "RETIRED_SIGNING_KEY_FILES"),
            refresh_token_key_file: env.get("REFRESH_TOKEN_KEY_FILE").map(PathBuf::from),
            retired_refresh_token_key_files: paths(env, "RETIRED_REFRESH_TOKEN_KEY_FILES"),
            access_ttl: env.duration("ACCESS_TOKEN_TTL", "15m")?,
            refresh_ttl: env.duration("REFRESH_TOKEN_TTL", "7d")?,
            session_max_lifetime: env.duration("SESSION_MAX_LIFETIME", "30d")?,
            reuse_grace: env.duration("REFRESH_REUSE_GRACE", "10s")?,
            leeway: env.duration("JWT_LEEWAY", "5s")?,
        };
        for (variable, value) in [
            ("ACCESS_TOKEN_TTL", tokens.access_ttl),
            ("REFRESH_TOKEN_TTL", tokens.refresh_ttl),
            ("SESSION_MAX_LIFETIME", tokens.session_max_lifetime),
        ] {
            if value < Duration::from_secs(1) {
                return Err(invalid(variable, "must be at least 1s"));
            }
        }
        if tokens.signing_key_publish_ahead.is_zero() {
            return Err(invalid(
                "SIGNING_KEY_PUBLISH_AHEAD",
                "must be more than 0s: the APIs need the time to fetch a key before it signs (`auth-server keys rotate --now` is the emergency way)",
            ));
        }
        if tokens.signing_key_rotation <= tokens.signing_key_publish_ahead {
            return Err(invalid(
                "SIGNING_KEY_ROTATION",
                "must be longer than SIGNING_KEY_PUBLISH_AHEAD",
            ));
        }
        if tokens.access_ttl > Duration::from_secs(24 * 3600) {
            return Err(invalid(
                "ACCESS_TOKEN_TTL",
                "must be at most 24h: access tokens are meant to be short-lived",
            ));
        }
        Ok(tokens)
    }
}

/// A comma-separated list of files.
fn paths<F: Fn(&str) -> Option<String>>(env: &Env<F>, variable: &'static str) -> Vec<PathBuf> {
    env.string(variable, "")
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::lookup;

    fn tokens(vars: &[(&str, &str)]) -> Result<TokenSettings, ConfigError> {
        TokenSettings::from_env(&Env(lookup(vars)))
    }

    #[test]
    fn defaults_match_the_contract() {
        let t = tokens(&[]).unwrap();
        assert_eq!(t.issuer, "http://localhost:8080");
        assert_eq!(t.public_url, "http://localhost:8080");
        assert_eq!(t.audience, "resource-api");
        assert_eq!(t.signing_key_file, None);
        assert_eq!(t.access_ttl, Duration::from_secs(15 * 60));
        assert_eq!(t.session_max_lifetime, Duration::from_secs(30 * 86_400));
        assert_eq!(t.leeway, Duration::from_secs(5));
        assert_eq!(t.key_encryption_key_file, None);
        assert_eq!(t.signing_key_rotation, Duration::from_secs(30 * 86_400));
        assert_eq!(t.signing_key_publish_ahead, Duration::from_secs(600));
    }

    #[test]
    fn the_rotation_outlasts_the_publication_ahead() {
        for (vars, variable) in [
            (
                [
                    ("SIGNING_KEY_ROTATION", "10m"),
                    ("SIGNING_KEY_PUBLISH_AHEAD", "10m"),
                ],
                "SIGNING_KEY_ROTATION",
            ),
            (
                [
                    ("SIGNING_KEY_ROTATION", "1d"),
                    ("SIGNING_KEY_PUBLISH_AHEAD", "0s"),
                ],
                "SIGNING_KEY_PUBLISH_AHEAD",
            ),
        ] {
            assert_eq!(tokens(&vars).unwrap_err().variable, variable);
        }
        assert!(
            tokens(&[
                ("SIGNING_KEY_ROTATION", "5s"),
                ("SIGNING_KEY_PUBLISH_AHEAD", "2s")
            ])
            .is_ok()
        );
    }

    #[test]
    fn the_public_url_defaults_to_the_issuer_and_must_be_http() {
        let t = tokens(&[("JWT_ISSUER", "https://auth.example.com/")]).unwrap();
        assert_eq!(t.public_url, "https://auth.example.com");
        let t = tokens(&[("AUTH_PUBLIC_URL", "https://login.example.com/")]).unwrap();
        assert_eq!(t.public_url, "https://login.example.com");
        for bad in ["auth.example.com", "ftp://x", "https://x/?a=b"] {
            assert_eq!(
                tokens(&[("AUTH_PUBLIC_URL", bad)]).unwrap_err().variable,
                "AUTH_PUBLIC_URL"
            );
        }
    }

    #[test]
    fn retired_keys_are_a_comma_separated_list() {
        let t = tokens(&[("RETIRED_SIGNING_KEY_FILES", " old.pem, ,older.pem ")]).unwrap();
        assert_eq!(
            t.retired_key_files,
            [PathBuf::from("old.pem"), PathBuf::from("older.pem")]
        );
    }

    #[test]
    fn lifetimes_are_bounded() {
        for (variable, value) in [
            ("ACCESS_TOKEN_TTL", "0s"),
            ("ACCESS_TOKEN_TTL", "25h"),
            ("REFRESH_TOKEN_TTL", "500ms"),
            ("SESSION_MAX_LIFETIME", "0s"),
        ] {
            assert_eq!(tokens(&[(variable, value)]).unwrap_err().variable, variable);
        }
        assert_eq!(
            tokens(&[("REFRESH_REUSE_GRACE", "0s")])
                .unwrap()
                .reuse_grace,
            Duration::ZERO,
            "0s turns the grace off"
        );
    }
}
