//! `DATABASE_URL` read as libpq reads it, for the asynchronous connections.
//!
//! Diesel's synchronous connections hand the URL to libpq. The rotation's
//! connections are tokio-postgres's, whose parser knows the same URL and
//! `key=value` forms but only `sslmode` `disable`, `prefer` and `require`,
//! and no certificate files. Here the TLS parameters are taken out, read
//! with libpq's meaning, and the rest is left to tokio-postgres, which
//! refuses what it does not know: a URL that the rotation could not honour
//! stops the server at start, not at the first refresh.

use std::path::PathBuf;

use anyhow::{Context, bail};
use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode};
use postgres_openssl::MakeTlsConnector;
use tokio_postgres::config::SslMode;

/// The TLS parameters of libpq's that tokio-postgres does not read.
const TLS_KEYS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// Where to connect, and how to secure the connection.
pub struct Target {
    pub config: tokio_postgres::Config,
    pub tls: MakeTlsConnector,
}

/// How the server's certificate is checked, as libpq's `sslmode` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verify {
    /// `prefer`, `require` (no `sslrootcert`): encrypted, not authenticated.
    Nothing,
    /// `verify-ca`, or `require` with an `sslrootcert`: signed by the root.
    Chain,
    /// `verify-full`: signed by the root, and for this host name.
    ChainAndHost,
}

#[derive(Debug, PartialEq, Eq)]
struct TlsParameters {
    mode: SslMode,
    verify: Verify,
    root_cert: Option<PathBuf>,
    client_cert: Option<(PathBuf, PathBuf)>,
}

/// Reads `url` (a `postgres://` URL or a `key=value` string).
pub fn parse(url: &str) -> anyhow::Result<Target> {
    let (rest, tls) = split_tls(url)?;
    let mut config: tokio_postgres::Config = rest
        .parse()
        .context("DATABASE_URL is not a connection string the rotation's connections can use")?;
    config.ssl_mode(tls.mode);
    Ok(Target {
        config,
        tls: connector(&tls).context("the TLS settings of DATABASE_URL")?,
    })
}

/// `url` without libpq's TLS parameters, and those parameters read.
fn split_tls(url: &str) -> anyhow::Result<(String, TlsParameters)> {
    let (rest, pairs) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        split_url(url)?
    } else {
        split_key_values(url)?
    };
    let get = |key: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let root_cert = get("sslrootcert").map(PathBuf::from);
    let client_cert = match (get("sslcert"), get("sslkey")) {
        (Some(cert), Some(key)) => Some((PathBuf::from(cert), PathBuf::from(key))),
        (None, None) => None,
        _ => bail!("DATABASE_URL: sslcert and sslkey go together"),
    };
    let (mode, verify) = match get("sslmode").unwrap_or("prefer") {
        "disable" => (SslMode::Disable, Verify::Nothing),
        // libpq tries without TLS first; trying with it first reaches the
        // same servers, and encrypts where it can.
        "allow" | "prefer" => (SslMode::Prefer, Verify::Nothing),
        // libpq: "if a root CA file exists, the behavior of
        // sslmode=require will be the same as that of verify-ca".
        "require" if root_cert.is_some() => (SslMode::Require, Verify::Chain),
        "require" => (SslMode::Require, Verify::Nothing),
        "verify-ca" => (SslMode::Require, Verify::Chain),
        "verify-full" => (SslMode::Require, Verify::ChainAndHost),
        other => bail!("DATABASE_URL: sslmode={other} is not one of libpq's"),
    };
    if verify != Verify::Nothing && root_cert.is_none() {
        bail!(
            "DATABASE_URL: sslmode=verify-ca and verify-full need sslrootcert (a file, or `system`)"
        );
    }
    Ok((
        rest,
        TlsParameters {
            mode,
            verify,
            root_cert,
            client_cert,
        },
    ))
}

/// A URL: its query's TLS pairs taken out.
fn split_url(url: &str) -> anyhow::Result<(String, Vec<(String, String)>)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), Vec::new()));
    };
    let mut kept = Vec::new();
    let mut taken = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if TLS_KEYS.contains(&key) {
            let value = percent_decode(value).with_context(|| format!("DATABASE_URL: {key}"))?;
            taken.push((key.to_owned(), value));
        } else {
            kept.push(pair);
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, taken))
}

/// A `key=value` string (values optionally single-quoted, with `\`
/// escapes, as libpq reads them): its TLS pairs taken out.
fn split_key_values(conninfo: &str) -> anyhow::Result<(String, Vec<(String, String)>)> {
    let mut kept = Vec::new();
    let mut taken = Vec::new();
    let mut chars = conninfo.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            bail!("DATABASE_URL: `{key}` has no value");
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                    None => bail!("DATABASE_URL: the value of `{key}` has no closing quote"),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        if TLS_KEYS.contains(&key.as_str()) {
            taken.push((key, value));
        } else {
            let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
            kept.push(format!("{key}='{quoted}'"));
        }
    }
    Ok((kept.join(" "), taken))
}

fn percent_decode(value: &str) -> anyhow::Result<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .context("a bad percent escape")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).context("not UTF-8")
}

/// OpenSSL, as libpq uses it, set up for `tls`.
fn connector(tls: &TlsParameters) -> anyhow::Result<MakeTlsConnector> {
    let mut builder = SslConnector::builder(SslMethod::tls_client())?;
    match (&tls.root_cert, tls.verify) {
        (_, Verify::Nothing) => builder.set_verify(SslVerifyMode::NONE),
        (Some(root), _) if root.as_os_str() == "system" => builder.set_default_verify_paths()?,
        (Some(root), _) => builder
            .set_ca_file(root)
            .with_context(|| format!("sslrootcert {}", root.display()))?,
        (None, _) => bail!("no sslrootcert to verify the server with"),
    }
    if let Some((cert, key)) = &tls.client_cert {
        builder
            .set_certificate_chain_file(cert)
            .with_context(|| format!("sslcert {}", cert.display()))?;
        builder
            .set_private_key_file(key, SslFiletype::PEM)
            .with_context(|| format!("sslkey {}", key.display()))?;
    }
    let mut connector = MakeTlsConnector::new(builder.build());
    let check_host = tls.verify == Verify::ChainAndHost;
    connector.set_callback(move |config, _| {
        config.set_verify_hostname(check_host);
        Ok(())
    });
    Ok(connector)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls_of(url: &str) -> (String, TlsParameters) {
        split_tls(url).unwrap()
    }

    #[test]
    fn libpq_default_is_prefer_without_verification() {
        let (rest, tls) = tls_of("postgres://postgres@127.0.0.1:5432/auth");
        assert_eq!(rest, "postgres://postgres@127.0.0.1:5432/auth");
        assert_eq!((tls.mode, tls.verify), (SslMode::Prefer, Verify::Nothing));
    }

    #[test]
    fn tls_parameters_are_taken_out_of_a_url_and_the_rest_kept() {
        let (rest, tls) = tls_of(
            "postgres://u:p@db:5432/auth?sslmode=verify-full&application_name=a&sslrootcert=%2Fca%20dir%2Froot.crt",
        );
        assert_eq!(rest, "postgres://u:p@db:5432/auth?application_name=a");
        assert_eq!(tls.mode, SslMode::Require);
        assert_eq!(tls.verify, Verify::ChainAndHost);
        assert_eq!(tls.root_cert, Some(PathBuf::from("/ca dir/root.crt")));
    }

    #[test]
    fn require_with_a_root_certificate_verifies_the_chain_as_libpq_does() {
        let (_, tls) = tls_of("postgres://db/auth?sslmode=require&sslrootcert=/ca.crt");
        assert_eq!(tls.verify, Verify::Chain);
        let (_, tls) = tls_of("postgres://db/auth?sslmode=require");
        assert_eq!(tls.verify, Verify::Nothing);
    }

    #[test]
    fn key_value_strings_are_read_with_quotes_and_escapes() {
        let (rest, tls) = tls_of(
            "host=db  dbname='my db' password='it\\'s' sslmode = verify-ca sslrootcert=/ca.crt",
        );
        assert_eq!(rest, "host='db' dbname='my db' password='it\\'s'");
        assert_eq!((tls.mode, tls.verify), (SslMode::Require, Verify::Chain));
        let config: tokio_postgres::Config = rest.parse().unwrap();
        assert_eq!(config.get_dbname(), Some("my db"));
        assert_eq!(config.get_password(), Some(&b"it's"[..]));
    }

    #[test]
    fn what_cannot_be_honoured_is_refused() {
        for url in [
            "postgres://db/auth?sslmode=verify-full",
            "postgres://db/auth?sslmode=sometimes",
            "postgres://db/auth?sslcert=/c.crt",
            "host=db dbname",
            "host='db",
            "postgres://db/auth?sslrootcert=%zz",
        ] {
            assert!(split_tls(url).is_err(), "{url}");
        }
        assert!(parse("postgres://db/auth?gssencmode=disable").is_err());
    }

    #[test]
    fn a_verifying_connector_needs_a_readable_root() {
        assert!(
            parse("postgres://db/auth?sslmode=verify-ca&sslrootcert=/nonexistent.crt").is_err()
        );
        assert!(parse("postgres://db/auth?sslmode=verify-full&sslrootcert=system").is_ok());
    }
}
