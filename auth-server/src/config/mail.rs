//! Outgoing mail: the SMTP server (or, in development, a directory of `.eml`
//! files), the sender, the web app the links point at, and how much mail one
//! address or account may receive.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;
use secrecy::{ExposeSecret, SecretString};
use service_kit::env::{ConfigError, Env, invalid};

use super::rate_limits::rate_limit;
use crate::limits::RateLimit;

#[derive(Debug, Clone)]
pub struct MailSettings {
    /// `smtp://host:port` (plain), `smtp://host:port?tls=required`
    /// (STARTTLS), `smtps://user:pass@host:465` (TLS). Secret: it may hold
    /// a password. `None`: `.eml` files under `dir` (development only).
    pub smtp_url: Option<SecretString>,
    pub from: Mailbox,
    /// Where development writes each message as an `.eml` file.
    pub dir: PathBuf,
    /// The web app that reads the links' fragments, without a trailing `/`.
    pub public_url: String,
    /// Whether `PUBLIC_URL` was set (production refuses the default).
    pub public_url_set: bool,
    /// Connecting and each SMTP command must finish within this.
    pub smtp_timeout: Duration,
    /// Mail per recipient address, and per account, in a window; beyond it
    /// mail is dropped silently (the requests still answer `202`).
    pub recipient_limit: Option<RateLimit>,
    /// `ALLOW_PLAINTEXT_SMTP`: production accepts an `SMTP_URL` that does
    /// not require TLS (a mail relay on the same host or network).
    pub allow_plaintext_smtp: bool,
    /// `ALLOW_HTTP_PUBLIC_URL`: production accepts a `PUBLIC_URL` that is
    /// not `https://` (a local demo).
    pub allow_http_public_url: bool,
}

impl MailSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let smtp_url = env.get("SMTP_URL").map(|raw| raw.trim().to_owned());
        if let Some(raw) = &smtp_url {
            check_smtp_url(raw).map_err(|m| invalid("SMTP_URL", m))?;
        }
        let from = env.string("MAIL_FROM", "auth@localhost");
        let from: Mailbox = from.trim().parse().map_err(|_| {
            invalid(
                "MAIL_FROM",
                format!("`{from}` is not an address such as auth@example.com or `Name <auth@example.com>`"),
            )
        })?;
        let public_url = env.get("PUBLIC_URL");
        let public_url_set = public_url.is_some();
        let public_url = public_url.unwrap_or_else(|| "http://localhost:3000".to_owned());
        let public_url = check_public_url(&public_url).map_err(|m| invalid("PUBLIC_URL", m))?;
        let smtp_timeout = env.duration("SMTP_TIMEOUT", "10s")?;
        if smtp_timeout < Duration::from_millis(100) {
            return Err(invalid("SMTP_TIMEOUT", "must be at least 100ms"));
        }
        Ok(Self {
            smtp_url: smtp_url.map(SecretString::from),
            from,
            dir: PathBuf::from(env.string("MAIL_DIR", "mail/")),
            public_url,
            public_url_set,
            smtp_timeout,
            recipient_limit: rate_limit(env, "MAIL_RECIPIENT_LIMIT", "5/1h")?,
            allow_plaintext_smtp: env.flag("ALLOW_PLAINTEXT_SMTP", false)?,
            allow_http_public_url: env.flag("ALLOW_HTTP_PUBLIC_URL", false)?,
        })
    }

    /// Whether `SMTP_URL` makes every connection use TLS: `smtps://` (TLS
    /// from the first byte) or `smtp://…?tls=required` (STARTTLS, or no
    /// mail). A bare `smtp://`, or `tls=opportunistic`, sends in the clear
    /// to a server that does not offer STARTTLS, or to anyone on the path
    /// who strips the offer. `false` without an `SMTP_URL`.
    pub fn smtp_requires_tls(&self) -> bool {
        self.smtp_url
            .as_ref()
            .is_some_and(|url| requires_tls(url.expose_secret()))
    }

    /// Whether the links in mail point at an `https://` page.
    pub fn public_url_is_https(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

/// See [`MailSettings::smtp_requires_tls`]. Read as lettre reads it (its
/// `from_connection_url`): the first `tls` pair, percent-decoded.
fn requires_tls(raw: &str) -> bool {
    let Ok(url) = url::Url::parse(raw) else {
        return false;
    };
    let tls = url
        .query_pairs()
        .find(|(key, _)| key == "tls")
        .map(|(_, value)| value.into_owned());
    match url.scheme() {
        "smtps" => true,
        "smtp" => tls.as_deref() == Some("required"),
        _ => false,
    }
}

/// The forms lettre's `from_url` understands, checked at start rather than
/// at the first mail. Messages never echo the URL: it may hold a password.
fn check_smtp_url(raw: &str) -> Result<(), String> {
    let expected = "is not an SMTP URL such as smtp://127.0.0.1:1025, smtp://host:587?tls=required or smtps://user:pass@host:465";
    let Some((scheme, rest)) = raw.split_once("://") else {
        return Err(expected.to_owned());
    };
    if !matches!(scheme, "smtp" | "smtps") {
        return Err(expected.to_owned());
    }
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err(expected.to_owned());
    }
    let tls = rest
        .split_once('?')
        .map(|(_, query)| query)
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("tls="));
    match (scheme, tls) {
        (_, None) | ("smtp", Some("required" | "opportunistic")) => {}
        _ => return Err(expected.to_owned()),
    }
    lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(raw)
        .map(|_| ())
        .map_err(|_| expected.to_owned())
}

/// An `http(s)` origin with an optional path; links are `PUBLIC_URL/#…`.
fn check_public_url(raw: &str) -> Result<String, String> {
    let url = raw.trim().trim_end_matches('/');
    let well_formed = url
        .split_once("://")
        .is_some_and(|(scheme, rest)| matches!(scheme, "http" | "https") && !rest.is_empty())
        && !url.contains(['#', '?', ' ']);
    if well_formed {
        Ok(url.to_owned())
    } else {
        Err(format!(
            "`{raw}` is not the web app's address, such as https://app.example.com"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::lookup;

    fn mail(vars: &[(&str, &str)]) -> Result<MailSettings, ConfigError> {
        MailSettings::from_env(&Env(lookup(vars)))
    }

    #[test]
    fn development_writes_files_for_the_local_web_app() {
        let m = mail(&[]).unwrap();
        assert!(m.smtp_url.is_none());
        assert_eq!(m.from.to_string(), "auth@localhost");
        assert_eq!(m.dir, PathBuf::from("mail/"));
        assert_eq!(m.public_url, "http://localhost:3000");
        assert!(!m.public_url_set);
        assert_eq!(m.smtp_timeout, Duration::from_secs(10));
        assert_eq!(
            m.recipient_limit,
            Some(RateLimit {
                requests: 5,
                per: Duration::from_secs(3600)
            })
        );
    }

    #[test]
    fn smtp_urls_of_every_documented_form() {
        for good in [
            "smtp://127.0.0.1:1025",
            "smtp://mail:1025",
            "smtp://user:pass@smtp.example.com:587?tls=required",
            "smtps://user:p%40ss@smtp.example.com:465",
            "smtps://smtp.example.com",
        ] {
            let m = mail(&[("SMTP_URL", good)]).unwrap_or_else(|e| panic!("{good}: {e}"));
            assert_eq!(m.smtp_url.unwrap().expose_secret(), good);
        }
        for bad in [
            "127.0.0.1:1025",
            "http://mail:1025",
            "smtp://",
            "smtp://:25",
            "smtps://host?tls=required",
            "smtp://host?tls=sometimes",
        ] {
            let e = mail(&[("SMTP_URL", bad)]).unwrap_err();
            assert_eq!(e.variable, "SMTP_URL", "{bad}");
        }
        let e = mail(&[("SMTP_URL", "smtps://user:hunter2@:465")]).unwrap_err();
        assert!(!e.message.contains("hunter2"), "{e}");
    }

    #[test]
    fn only_smtps_and_required_starttls_require_tls() {
        for (url, tls) in [
            ("smtps://user:pass@smtp.example.com:465", true),
            ("smtps://smtp.example.com", true),
            ("smtp://smtp.example.com:587?tls=required", true),
            ("smtp://user:pass@smtp.example.com:587?tls=required", true),
            ("smtp://127.0.0.1:1025", false),
            ("smtp://smtp.example.com:587?tls=opportunistic", false),
            // lettre takes the first.
            (
                "smtp://smtp.example.com:587?tls=opportunistic&tls=required",
                false,
            ),
        ] {
            let m = mail(&[("SMTP_URL", url)]).unwrap();
            assert_eq!(m.smtp_requires_tls(), tls, "{url}");
        }
        assert!(!mail(&[]).unwrap().smtp_requires_tls(), "no SMTP_URL");
    }

    #[test]
    fn sender_public_url_and_limits_are_checked() {
        assert_eq!(
            mail(&[("MAIL_FROM", "not an address")])
                .unwrap_err()
                .variable,
            "MAIL_FROM"
        );
        let m = mail(&[
            ("MAIL_FROM", "Auth <auth@example.com>"),
            ("PUBLIC_URL", "https://app.example.com/"),
            ("MAIL_RECIPIENT_LIMIT", "0"),
        ])
        .unwrap();
        assert_eq!(m.from.email.to_string(), "auth@example.com");
        assert_eq!(m.public_url, "https://app.example.com");
        assert!(m.public_url_set);
        assert_eq!(m.recipient_limit, None);
        for (variable, value) in [
            ("PUBLIC_URL", "app.example.com"),
            ("PUBLIC_URL", "https://app.example.com/#x"),
            ("SMTP_TIMEOUT", "10ms"),
            ("MAIL_RECIPIENT_LIMIT", "many"),
        ] {
            assert_eq!(mail(&[(variable, value)]).unwrap_err().variable, variable);
        }
    }
}
