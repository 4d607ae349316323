//! What production refuses, naming the setting: development keys and secrets,
//! a shared secret a person could guess, a refresh cookie that could travel
//! over plain HTTP, password hashing weaker than OWASP's minimum, proxies
//! trusted to name any client, time allowances long enough to matter, mail
//! that would land in files, travel in the clear or carry links to a
//! development or plain-HTTP address, and a database connection whose
//! server is not authenticated. And what it only warns about, the explicit
//! opt-outs from those refusals among it.

use std::time::Duration;

use secrecy::ExposeSecret;
use service_kit::env::{ConfigError, DEFAULT_ALLOWED_ORIGINS, DEVELOPMENT_INTERNAL_TOKEN, invalid};
use service_kit::secret_strength;

use super::{PasswordSettings, Settings};

/// The longest `REFRESH_REUSE_GRACE` and `JWT_LEEWAY` production accepts:
/// a grace is for a lost answer and a leeway for clock skew, both seconds.
pub const MAX_ALLOWANCE: Duration = Duration::from_secs(60);

pub(super) fn refuse_insecure(settings: &Settings) -> Result<(), ConfigError> {
    if settings.tokens.signing_key_file.is_none()
        && settings.tokens.key_encryption_key_file.is_none()
    {
        return Err(invalid(
            "SIGNING_KEY_FILE",
            "or KEY_ENCRYPTION_KEY_FILE must be set in production: an ephemeral key would invalidate every token on restart (keys rotated in the database: `auth-server secret --out FILE` for KEY_ENCRYPTION_KEY_FILE; a key of your own: `auth-server keygen --out FILE`)",
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
    if let Err(bits) = secret_strength::check(internal_api_token) {
        return Err(invalid("INTERNAL_API_TOKEN", weak_secret(bits)));
    }
    if !settings.http.cookie_secure {
        return Err(invalid(
            "COOKIE_SECURE",
            "must be true in production: refresh tokens must never travel over plain HTTP",
        ));
    }
    refuse_weak_hashing(&settings.password)?;
    if settings.http.trusted_proxies.trusts_everyone() {
        return Err(invalid(
            "TRUSTED_PROXIES",
            "must not cover every address in production: anyone could then choose the client address that rate limits and sessions record (list your proxies' addresses)",
        ));
    }
    for (variable, value) in [
        ("REFRESH_REUSE_GRACE", settings.tokens.reuse_grace),
        ("JWT_LEEWAY", settings.tokens.leeway),
    ] {
        if value > MAX_ALLOWANCE {
            return Err(invalid(
                variable,
                "must be at most 60s in production: longer only widens the window for a stolen token",
            ));
        }
    }
    if settings.mail.smtp_url.is_none() {
        return Err(invalid(
            "SMTP_URL",
            "must be set in production: without it, reset and verification mail is only written to files",
        ));
    }
    if !settings.mail.smtp_requires_tls() && !settings.mail.allow_plaintext_smtp {
        return Err(invalid(
            "SMTP_URL",
            "must require TLS in production (smtps://… or smtp://…?tls=required): a bare smtp:// sends reset links in the clear to a server that offers no STARTTLS, or to anyone on the way who strips the offer (ALLOW_PLAINTEXT_SMTP=true accepts it, for a relay on the same host)",
        ));
    }
    if !settings.mail.public_url_set {
        return Err(invalid(
            "PUBLIC_URL",
            "must be set in production: the links in e-mails point at the web app there",
        ));
    }
    if !settings.mail.public_url_is_https() && !settings.mail.allow_http_public_url {
        return Err(invalid(
            "PUBLIC_URL",
            "must be https:// in production: the reset and verification links carry their tokens to it (ALLOW_HTTP_PUBLIC_URL=true accepts http://, for a local demo)",
        ));
    }
    if !settings
        .webauthn
        .matches_public_url(&settings.mail.public_url)
    {
        return Err(invalid(
            "WEBAUTHN_RP_ID",
            "must be PUBLIC_URL's host or a domain above it in production: passkeys are bound to it, and the web app at PUBLIC_URL could never use them",
        ));
    }
    let database = &settings.database;
    if !database.tls.verifies_host() && !database.local && !database.allow_unverified_tls {
        return Err(invalid(
            "DATABASE_URL",
            format!(
                "must say sslmode=verify-full in production (with sslrootcert: a file, or `system`) unless its host is this machine (loopback, localhost) or a Unix socket: sslmode={} (from DATABASE_URL, PGSSLMODE or libpq's default) lets anyone on the network path stand in for the database (DATABASE_ALLOW_UNVERIFIED_TLS=true accepts it)",
                database.tls.mode.as_str()
            ),
        ));
    }
    Ok(())
}

/// The refusal of a guessable `INTERNAL_API_TOKEN`, with how to make one.
pub fn weak_secret(bits: u32) -> String {
    format!(
        "carries about {bits} bits of entropy by a conservative estimate (repeats, runs, words and few distinct characters count for little); production needs at least {min}, whether it is set here or in the file INTERNAL_API_TOKEN_FILE names: create one with `auth-server secret --out FILE` (for INTERNAL_API_TOKEN_FILE) or `openssl rand -base64 32`",
        min = secret_strength::MIN_SECRET_BITS
    )
}

/// OWASP's argon2id table: the least memory (KiB) for a number of passes,
/// one lane.
pub fn owasp_minimum_memory_kib(iterations: u32) -> u32 {
    match iterations {
        0 | 1 => 47_104,
        2 => 19_456,
        3 => 12_288,
        4 => 9_216,
        _ => 7_168,
    }
}

fn refuse_weak_hashing(password: &PasswordSettings) -> Result<(), ConfigError> {
    let minimum = owasp_minimum_memory_kib(password.iterations);
    if password.memory_kib < minimum {
        return Err(invalid(
            "ARGON2_MEMORY_KIB",
            format!(
                "must be at least {minimum} KiB in production with ARGON2_ITERATIONS={} (OWASP's argon2id minimum: m=47104 t=1, m=19456 t=2, m=12288 t=3, m=9216 t=4, m=7168 t=5)",
                password.iterations
            ),
        ));
    }
    Ok(())
}

/// What production accepts but should not stay that way, for the log: each
/// opt-out from a refusal, at every start.
pub(super) fn warnings(settings: &Settings) -> Vec<String> {
    let mut warnings = Vec::new();
    if settings.mail.allow_plaintext_smtp {
        warnings.push(
            "ALLOW_PLAINTEXT_SMTP=true: SMTP_URL need not require TLS, so reset and verification links may travel in the clear; unset it once the mail server takes smtps:// or STARTTLS".to_owned(),
        );
    }
    if settings.mail.allow_http_public_url {
        warnings.push(
            "ALLOW_HTTP_PUBLIC_URL=true: PUBLIC_URL may be http://, so the tokens in e-mail links can be read on the way to the web app; unset it outside a local demo".to_owned(),
        );
    }
    if settings.database.allow_unverified_tls {
        warnings.push(
            "DATABASE_ALLOW_UNVERIFIED_TLS=true: the database server need not prove who it is (sslmode below verify-full), so anyone on the network path can stand in for it; unset it once DATABASE_URL says sslmode=verify-full".to_owned(),
        );
    }
    if settings.http.allowed_origins == [DEFAULT_ALLOWED_ORIGINS] {
        warnings.push(format!(
            "ALLOWED_ORIGINS is the development default ({DEFAULT_ALLOWED_ORIGINS}): set your frontends' origins"
        ));
    }
    let tokens = &settings.tokens;
    if tokens.issuer.trim_end_matches('/') != tokens.public_url {
        // RFC 8414 §3.3: a client that discovers the server from its issuer
        // fetches the metadata under the issuer and refuses an answer whose
        // issuer differs from it.
        warnings.push(format!(
            "AUTH_PUBLIC_URL ({}) is not JWT_ISSUER ({}): OAuth clients that discover the server from its issuer (RFC 8414) look for the metadata under JWT_ISSUER",
            tokens.public_url, tokens.issuer
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use crate::config::{Settings, lookup};

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, service_kit::env::ConfigError> {
        Settings::from_lookup(lookup(vars))
    }

    /// 32 random bytes, base64url: what `auth-server secret` writes.
    const STRONG_TOKEN: &str = "q7Hc2LxV-9tRk3Wm_ZpE8yN4bJfU1sQaD6gT0oXiK5w";

    #[test]
    fn production_names_each_insecure_setting() {
        let key = ("SIGNING_KEY_FILE", "/keys/signing.pem");
        let token = ("INTERNAL_API_TOKEN", STRONG_TOKEN);
        let refresh_key = ("REFRESH_TOKEN_KEY_FILE", "/keys/refresh-token-key");
        let prod = ("APP_ENV", "production");
        let smtp = ("SMTP_URL", "smtps://user:pass@smtp.example.com");
        let public = ("PUBLIC_URL", "https://app.example.com");
        let rp = ("WEBAUTHN_RP_ID", "example.com");
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
        assert_eq!(
            settings(&[prod, key, token, refresh_key, smtp, public])
                .unwrap_err()
                .variable,
            "WEBAUTHN_RP_ID",
            "the default relying party (localhost) is not PUBLIC_URL's"
        );
        assert!(settings(&[prod, key, token, refresh_key, smtp, public, rp]).is_ok());
        let kek = ("KEY_ENCRYPTION_KEY_FILE", "/keys/kek");
        assert!(
            settings(&[prod, kek, token, refresh_key, smtp, public, rp]).is_ok(),
            "keys in the database instead of a file"
        );
        assert!(
            settings(&[smtp]).is_ok() && settings(&[]).is_ok(),
            "development needs neither"
        );
    }

    /// Production settings that pass, with `extra` changed.
    fn production<'a>(
        extra: &[(&'a str, &'a str)],
    ) -> Result<Settings, service_kit::env::ConfigError> {
        let mut vars: Vec<(&'a str, &'a str)> = vec![
            ("APP_ENV", "production"),
            ("SIGNING_KEY_FILE", "/keys/signing.pem"),
            ("INTERNAL_API_TOKEN", STRONG_TOKEN),
            ("REFRESH_TOKEN_KEY_FILE", "/keys/refresh-token-key"),
            ("SMTP_URL", "smtps://user:pass@smtp.example.com"),
            ("PUBLIC_URL", "https://app.example.com"),
            ("WEBAUTHN_RP_ID", "app.example.com"),
        ];
        vars.extend_from_slice(extra);
        settings(&vars)
    }

    #[test]
    fn argon2_below_owasps_table_is_refused_in_production_only() {
        for (memory, iterations) in [
            ("47103", "1"),
            ("19455", "2"),
            ("12287", "3"),
            ("9215", "4"),
            ("7167", "5"),
            ("7167", "9"),
        ] {
            let weak = [
                ("ARGON2_MEMORY_KIB", memory),
                ("ARGON2_ITERATIONS", iterations),
            ];
            assert_eq!(
                production(&weak).unwrap_err().variable,
                "ARGON2_MEMORY_KIB",
                "m={memory} t={iterations}"
            );
            assert!(
                settings(&weak).is_ok(),
                "development accepts m={memory} t={iterations}"
            );
        }
        for (memory, iterations) in [
            ("47104", "1"),
            ("19456", "2"),
            ("12288", "3"),
            ("9216", "4"),
            ("7168", "5"),
            ("65536", "3"),
        ] {
            let strong = [
                ("ARGON2_MEMORY_KIB", memory),
                ("ARGON2_ITERATIONS", iterations),
            ];
            assert!(production(&strong).is_ok(), "m={memory} t={iterations}");
        }
    }

    #[test]
    fn proxies_trusted_to_name_any_client_are_refused_in_production() {
        for everyone in ["0.0.0.0/0", "::/0", "10.0.0.0/8, 0.0.0.0/1, 128.0.0.0/1"] {
            let proxies = [("TRUSTED_PROXIES", everyone)];
            assert_eq!(
                production(&proxies).unwrap_err().variable,
                "TRUSTED_PROXIES",
                "{everyone}"
            );
            assert!(settings(&proxies).is_ok());
        }
        assert!(production(&[("TRUSTED_PROXIES", "10.0.0.0/8, fd00::/8")]).is_ok());
    }

    #[test]
    fn a_grace_or_leeway_over_a_minute_is_refused_in_production() {
        for variable in ["REFRESH_REUSE_GRACE", "JWT_LEEWAY"] {
            assert_eq!(
                production(&[(variable, "61s")]).unwrap_err().variable,
                variable
            );
            assert!(production(&[(variable, "60s")]).is_ok());
            assert!(
                settings(&[(variable, "5m")]).is_ok(),
                "development accepts {variable}"
            );
        }
    }

    #[test]
    fn the_default_origins_are_a_warning_in_production() {
        let default = production(&[]).unwrap();
        let warnings = default.warnings();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].starts_with("ALLOWED_ORIGINS"), "{warnings:?}");
        let set = production(&[("ALLOWED_ORIGINS", "https://app.example.com")]).unwrap();
        assert!(set.warnings().is_empty());
        assert!(settings(&[]).unwrap().warnings().is_empty(), "development");
    }

    #[test]
    fn a_public_url_apart_from_the_issuer_is_a_warning_in_production() {
        let origins = ("ALLOWED_ORIGINS", "https://app.example.com");
        let issuer = ("JWT_ISSUER", "https://auth.example.com/");
        let same = production(&[
            origins,
            issuer,
            ("AUTH_PUBLIC_URL", "https://auth.example.com"),
        ]);
        assert!(same.unwrap().warnings().is_empty());
        let apart = production(&[
            origins,
            issuer,
            ("AUTH_PUBLIC_URL", "https://login.example.com"),
        ]);
        let warnings = apart.unwrap().warnings();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].starts_with("AUTH_PUBLIC_URL"), "{warnings:?}");
    }

    #[test]
    fn a_guessable_internal_token_is_refused_in_production_only() {
        let forty = "s".repeat(40);
        for weak in [
            forty.as_str(),
            "0123456789abcdef0123456789abcdef",
            "internal-api-token-for-our-production-cluster",
            "CorrectHorseBatteryStapleCorrectHorseBattery",
        ] {
            let refused = production(&[("INTERNAL_API_TOKEN", weak)]).unwrap_err();
            assert_eq!(refused.variable, "INTERNAL_API_TOKEN", "{weak}");
            assert!(
                refused.message.contains("auth-server secret")
                    && refused.message.contains("openssl rand -base64 32"),
                "says how to make one: {refused}"
            );
            assert!(!refused.message.contains(weak), "never echoes the secret");
            assert!(
                settings(&[("INTERNAL_API_TOKEN", weak)]).is_ok(),
                "development"
            );
        }
        // `openssl rand -base64 32`, and `-hex 32`.
        for strong in [
            "3Vq0dJmY9b+fA7rXk2LwZ5eHc8tUo1NsGiQ4pRyE6aM=",
            "4b1f9e27c06d83a5f2e19b7c40d86a3e5f217c9b0e4d68a3f1c2b5e7d9a0c4f6",
        ] {
            assert!(
                production(&[("INTERNAL_API_TOKEN", strong)]).is_ok(),
                "{strong}"
            );
        }
    }

    #[test]
    fn mail_without_tls_and_plain_http_links_are_refused_unless_opted_out() {
        for plain in [
            "smtp://mail.example.com:25",
            "smtp://user:pass@mail.example.com:587?tls=opportunistic",
        ] {
            assert_eq!(
                production(&[("SMTP_URL", plain)]).unwrap_err().variable,
                "SMTP_URL",
                "{plain}"
            );
        }
        assert!(production(&[("SMTP_URL", "smtp://mail.example.com:587?tls=required")]).is_ok());
        let opted_out = production(&[
            ("SMTP_URL", "smtp://mail:1025"),
            ("ALLOW_PLAINTEXT_SMTP", "true"),
        ])
        .unwrap();
        assert!(
            opted_out
                .warnings()
                .iter()
                .any(|w| w.starts_with("ALLOW_PLAINTEXT_SMTP=true")),
            "warned at every start"
        );

        let http = ("PUBLIC_URL", "http://app.example.com");
        assert_eq!(production(&[http]).unwrap_err().variable, "PUBLIC_URL");
        let opted_out = production(&[http, ("ALLOW_HTTP_PUBLIC_URL", "true")]).unwrap();
        assert!(
            opted_out
                .warnings()
                .iter()
                .any(|w| w.starts_with("ALLOW_HTTP_PUBLIC_URL=true"))
        );
        assert!(
            settings(&[("SMTP_URL", "smtp://mail:1025"), http]).is_ok(),
            "development"
        );
    }

    #[test]
    fn an_unverified_database_server_is_refused_unless_it_is_this_machine() {
        for weak in [
            "postgres://auth@db.internal:5432/auth",
            "postgres://auth@db.internal:5432/auth?sslmode=require",
            "postgres://auth@10.0.0.5/auth?sslmode=verify-ca&sslrootcert=/nonexistent/root.crt",
        ] {
            let refused = production(&[("DATABASE_URL", weak)]).unwrap_err();
            assert_eq!(refused.variable, "DATABASE_URL", "{weak}");
            assert!(!refused.message.contains("auth@"), "never echoes the URL");
        }
        let refused = production(&[("DATABASE_URL", "postgres://db/auth")]).unwrap_err();
        assert!(
            refused
                .message
                .contains("DATABASE_ALLOW_UNVERIFIED_TLS=true"),
            "{refused}"
        );
        // A root certificate makes `verify-ca` acceptable to libpq, but the
        // host is still unchecked: refused.
        let dir = std::env::temp_dir().join(format!("prod-root-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let root = dir.join("root.crt");
        std::fs::write(&root, "").unwrap();
        let verify_ca = format!(
            "postgres://db/auth?sslmode=verify-ca&sslrootcert={}",
            root.display()
        );
        assert_eq!(
            production(&[("DATABASE_URL", &verify_ca)])
                .unwrap_err()
                .variable,
            "DATABASE_URL"
        );
        let verify_full = format!(
            "postgres://db/auth?sslmode=verify-full&sslrootcert={}",
            root.display()
        );
        assert!(production(&[("DATABASE_URL", &verify_full)]).is_ok());
        assert!(production(&[("DATABASE_URL", "postgres://db/auth?sslrootcert=system")]).is_ok());
        // From libpq's variable as well.
        assert!(
            production(&[
                ("DATABASE_URL", "postgres://db/auth"),
                ("PGSSLMODE", "verify-full"),
                ("PGSSLROOTCERT", "system")
            ])
            .is_ok()
        );
        std::fs::remove_dir_all(&dir).unwrap();
        // This machine, over loopback or a socket: nobody in between.
        for local in [
            "postgres://auth@localhost/auth",
            "postgres://auth@127.0.0.1:5432/auth?sslmode=disable",
            "postgres://auth@[::1]/auth",
            "host=/var/run/postgresql dbname=auth",
        ] {
            assert!(production(&[("DATABASE_URL", local)]).is_ok(), "{local}");
        }
        let opted_out = production(&[
            ("DATABASE_URL", "postgres://db/auth"),
            ("DATABASE_ALLOW_UNVERIFIED_TLS", "true"),
        ])
        .unwrap();
        assert!(
            opted_out
                .warnings()
                .iter()
                .any(|w| w.starts_with("DATABASE_ALLOW_UNVERIFIED_TLS=true"))
        );
        assert!(
            settings(&[("DATABASE_URL", "postgres://db/auth")]).is_ok(),
            "development"
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
