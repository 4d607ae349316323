//! What production refuses, naming the setting: development keys and secrets,
//! a refresh cookie that could travel over plain HTTP, and mail that would
//! land in files or carry links to a development address.

use secrecy::ExposeSecret;
use service_kit::env::{ConfigError, DEVELOPMENT_INTERNAL_TOKEN, invalid};

use super::Settings;

pub(super) fn refuse_insecure(settings: &Settings) -> Result<(), ConfigError> {
    if settings.tokens.signing_key_file.is_none() {
        return Err(invalid(
            "SIGNING_KEY_FILE",
            "must be set in production: an ephemeral key would invalidate every token on restart (create one with `auth-server keygen --out FILE`)",
        ));
    }
    if settings.tokens.refresh_token_key_file.is_none() {
        return Err(invalid(
            "REFRESH_TOKEN_KEY_FILE",
            "must be set in production, the same on every replica: an ephemeral key changes on restart and differs between replicas (create one with `auth-server secret --out FILE`)",
        ));
    }
    let internal_api_token = settings.internal_api.token.expose_secret();
    if internal_api_token == DEVELOPMENT_INTERNAL_TOKEN {
        return Err(invalid(
            "INTERNAL_API_TOKEN",
            "must be set in production: the development value is public",
        ));
    }
    if internal_api_token.len() < 32 {
        return Err(invalid(
            "INTERNAL_API_TOKEN",
            "must be at least 32 characters in production",
        ));
    }
    if !settings.http.cookie_secure {
        return Err(invalid(
            "COOKIE_SECURE",
            "must be true in production: refresh tokens must never travel over plain HTTP",
        ));
    }
    if settings.mail.smtp_url.is_none() {
        return Err(invalid(
            "SMTP_URL",
            "must be set in production: without it, reset and verification mail is only written to files",
        ));
    }
    if !settings.mail.public_url_set {
        return Err(invalid(
            "PUBLIC_URL",
            "must be set in production: the links in e-mails point at the web app there",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::{Settings, lookup};

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, service_kit::env::ConfigError> {
        Settings::from_lookup(lookup(vars))
    }

    #[test]
    fn production_names_each_insecure_setting() {
        let key = ("SIGNING_KEY_FILE", "/keys/signing.pem");
        let token = ("INTERNAL_API_TOKEN", "0123456789abcdef0123456789abcdef");
        let refresh_key = ("REFRESH_TOKEN_KEY_FILE", "/keys/refresh-token-key");
        let prod = ("APP_ENV", "production");
        let smtp = ("SMTP_URL", "smtps://user:pass@smtp.example.com");
        let public = ("PUBLIC_URL", "https://app.example.com");
        assert_eq!(
            settings(&[prod, token, refresh_key]).unwrap_err().variable,
            "SIGNING_KEY_FILE"
        );
        assert_eq!(
            settings(&[prod, key, token]).unwrap_err().variable,
            "REFRESH_TOKEN_KEY_FILE"
        );
        assert_eq!(
            settings(&[prod, key, refresh_key]).unwrap_err().variable,
            "INTERNAL_API_TOKEN"
        );
        assert_eq!(
            settings(&[prod, key, token, refresh_key, ("COOKIE_SECURE", "false")])
                .unwrap_err()
                .variable,
            "COOKIE_SECURE"
        );
        assert_eq!(
            settings(&[prod, key, token, refresh_key, public])
                .unwrap_err()
                .variable,
            "SMTP_URL"
        );
        assert_eq!(
            settings(&[prod, key, token, refresh_key, smtp])
                .unwrap_err()
                .variable,
            "PUBLIC_URL"
        );
        assert!(settings(&[prod, key, token, refresh_key, smtp, public]).is_ok());
        assert!(
            settings(&[smtp]).is_ok() && settings(&[]).is_ok(),
            "development needs neither"
        );
    }

    #[test]
    fn a_short_internal_token_is_refused_in_production_only() {
        let key = ("SIGNING_KEY_FILE", "/keys/signing.pem");
        let short = ("INTERNAL_API_TOKEN", "too-short");
        let refresh_key = ("REFRESH_TOKEN_KEY_FILE", "/keys/refresh-token-key");
        assert_eq!(
            settings(&[("APP_ENV", "production"), key, refresh_key, short])
                .unwrap_err()
                .variable,
            "INTERNAL_API_TOKEN"
        );
        assert!(settings(&[key, short]).is_ok());
    }
}
