//! `DATABASE_URL` and libpq's TLS variables, read once at start as libpq
//! reads them, so that both pools connect alike.
//!
//! The blocking pool, the LISTEN connection and the migrations are libpq's
//! (through Diesel); the rotation's connections are tokio-postgres's, whose
//! parser knows the same URL and `key=value` forms but only `sslmode`
//! `disable`, `prefer` and `require`, no certificate files and no
//! environment. Here the TLS parameters are taken out of the URL and
//! resolved as libpq resolves them: a URL parameter first, then its
//! variable (`PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`), then
//! libpq's default (`prefer`; `~/.postgresql/root.crt`,
//! `postgresql.crt` and `postgresql.key` when they exist). The outcome
//! goes to both: to tokio-postgres and OpenSSL (`crate::db`'s
//! `connection_url`), and back into the URL libpq gets, explicitly, so
//! libpq does not resolve them again from a process environment the
//! settings did not see.
//!
//! What libpq would read and the rotation could not honour stops the server
//! at start, named: a variable of [`NOT_HONOURED`] that is set, or a URL
//! parameter tokio-postgres does not know. Other `PG*` variables (the host,
//! the user, the password) are libpq's alone: put them in `DATABASE_URL`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use service_kit::env::{ConfigError, Env, invalid};
use tokio_postgres::config::Host;

/// libpq's TLS parameters, taken out of the URL for the rotation.
const TLS_KEYS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// Variables libpq reads that change how a connection is secured, and the
/// one value of each (if any) that changes nothing for the rotation's
/// connections. Set otherwise, the server refuses to start.
pub const NOT_HONOURED: [(&str, Option<&str>); 14] = [
    ("PGSSLCRL", None),
    ("PGSSLCRLDIR", None),
    ("PGSSLSNI", Some("1")),
    ("PGSSLMINPROTOCOLVERSION", None),
    ("PGSSLMAXPROTOCOLVERSION", None),
    ("PGSSLCERTMODE", None),
    ("PGSSLNEGOTIATION", None),
    ("PGREQUIRESSL", None),
    ("PGGSSENCMODE", Some("disable")),
    ("PGCHANNELBINDING", None),
    ("PGREQUIREAUTH", None),
    ("PGREQUIREPEER", None),
    ("PGSERVICE", None),
    ("PGSERVICEFILE", None),
];

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "disable" => Self::Disable,
            "allow" => Self::Allow,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Allow => "allow",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }

    /// tokio-postgres's nearest: `allow` (libpq tries without TLS first)
    /// becomes `prefer`, which reaches the same servers and encrypts where
    /// it can; the `verify-` modes require TLS, and the certificate checks
    /// are OpenSSL's.
    pub fn for_tokio_postgres(self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as Tokio;
        match self {
            Self::Disable => Tokio::Disable,
            Self::Allow | Self::Prefer => Tokio::Prefer,
            Self::Require | Self::VerifyCa | Self::VerifyFull => Tokio::Require,
        }
    }
}

/// The root certificates the server's is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    File(PathBuf),
    /// `sslrootcert=system`: the system's trusted roots (libpq 16).
    System,
}

/// How the connections are secured, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub mode: SslMode,
    /// Present when one was named or libpq's default file exists. libpq
    /// then checks the server's chain in every mode that uses TLS (its
    /// documentation: "if a root CA file exists, the behavior of
    /// sslmode=require will be the same as that of verify-ca").
    pub root_cert: Option<RootCert>,
    /// The client certificate and its key, when the certificate exists.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

impl Tls {
    /// Whether the server's chain is checked against the root.
    pub fn verifies_chain(&self) -> bool {
        self.mode != SslMode::Disable && self.root_cert.is_some()
    }

    /// Whether the server must also be the host named (`verify-full`).
    pub fn verifies_host(&self) -> bool {
        self.mode == SslMode::VerifyFull
    }
}

/// libpq's TLS variables and the home directory, read once from the
/// configuration's environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LibpqEnv {
    pub sslmode: Option<String>,
    pub sslrootcert: Option<String>,
    pub sslcert: Option<String>,
    pub sslkey: Option<String>,
    /// `HOME`, where libpq looks for `.postgresql/`.
    pub home: Option<PathBuf>,
}

impl LibpqEnv {
    /// The variables, or the first of [`NOT_HONOURED`] set to something
    /// the rotation would not do, named.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        for (variable, harmless) in NOT_HONOURED {
            if let Some(value) = env.get(variable)
                && Some(value.trim()) != harmless
            {
                return Err(invalid(
                    variable,
                    "is set, and the rotation's database connections (tokio-postgres) cannot do what libpq would: unset it (DATABASE_URL's TLS parameters and PGSSLMODE, PGSSLROOTCERT, PGSSLCERT and PGSSLKEY are honoured)",
                ));
            }
        }
        Ok(Self {
            sslmode: env.get("PGSSLMODE").map(|v| v.trim().to_owned()),
            sslrootcert: env.get("PGSSLROOTCERT"),
            sslcert: env.get("PGSSLCERT"),
            sslkey: env.get("PGSSLKEY"),
            home: env.get("HOME").map(PathBuf::from),
        })
    }

    fn default_file(&self, name: &str) -> Option<PathBuf> {
        self.home
            .as_ref()
            .map(|home| home.join(".postgresql").join(name))
    }
}

/// The database connection, as both pools make it.
#[derive(Debug, Clone)]
pub struct Connection {
    /// For libpq: `DATABASE_URL` with the TLS parameters as resolved, each
    /// explicit.
    pub libpq_url: SecretString,
    /// For tokio-postgres: `DATABASE_URL` without libpq's TLS parameters,
    /// `ssl_mode` set from [`Tls::mode`].
    pub rotation: tokio_postgres::Config,
    pub tls: Tls,
    /// Whether every host is this machine (a loopback address, `localhost`)
    /// or a Unix socket: no network path to stand in on.
    pub local: bool,
}

/// Reads `url` (a `postgres://` URL or a `key=value` string) with `env`,
/// and `password` when it comes from elsewhere than the URL
/// (`DATABASE_PASSWORD_FILE`). Errors name `DATABASE_URL`, or the variable
/// a bad value came from.
pub fn read(url: &str, env: &LibpqEnv, password: Option<&str>) -> Result<Connection, ConfigError> {
    let (rest, pairs) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        split_url(url)
    } else {
        split_key_values(url)
    }
    .map_err(|m| invalid("DATABASE_URL", m))?;
    let from_url = |key: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let tls = resolve(
        Setting::of(from_url("sslmode"), env.sslmode.as_deref(), "PGSSLMODE"),
        Setting::of(
            from_url("sslrootcert"),
            env.sslrootcert.as_deref(),
            "PGSSLROOTCERT",
        ),
        Setting::of(from_url("sslcert"), env.sslcert.as_deref(), "PGSSLCERT"),
        Setting::of(from_url("sslkey"), env.sslkey.as_deref(), "PGSSLKEY"),
        env,
    )?;
    let mut rotation: tokio_postgres::Config = rest.parse().map_err(|e| {
        invalid(
            "DATABASE_URL",
            format!("is not a connection string the rotation's connections can use: {e}"),
        )
    })?;
    rotation.ssl_mode(tls.mode.for_tokio_postgres());
    if let Some(password) = password {
        if rotation.get_password().is_some() {
            return Err(invalid(
                "DATABASE_URL",
                "carries a password and DATABASE_PASSWORD_FILE names one too: set one of them",
            ));
        }
        rotation.password(password);
    }
    let local = is_local(&rotation);
    let libpq_url = with_explicit(url, &rest, &tls, password);
    Ok(Connection {
        libpq_url: SecretString::from(libpq_url),
        rotation,
        tls,
        local,
    })
}

/// A TLS parameter: the URL's, else its variable's (named for errors).
struct Setting {
    value: Option<String>,
    source: &'static str,
}

impl Setting {
    fn of(from_url: Option<String>, from_env: Option<&str>, variable: &'static str) -> Self {
        match (from_url, from_env) {
            (Some(value), _) => Self {
                value: Some(value),
                source: "DATABASE_URL",
            },
            (None, Some(value)) => Self {
                value: Some(value.to_owned()),
                source: variable,
            },
            (None, None) => Self {
                value: None,
                source: variable,
            },
        }
    }
}

/// libpq's rules (`fe-connect.c`, `fe-secure-openssl.c`), with what libpq
/// would refuse refused here too.
fn resolve(
    mode: Setting,
    root: Setting,
    cert: Setting,
    key: Setting,
    env: &LibpqEnv,
) -> Result<Tls, ConfigError> {
    let system = root.value.as_deref() == Some("system");
    let mode_source = mode.source;
    let mode = match mode.value.as_deref() {
        Some(raw) => SslMode::parse(raw).ok_or_else(|| {
            invalid(
                mode.source,
                format!("sslmode `{raw}` is not one of libpq's"),
            )
        })?,
        // libpq 16: the system's roots make no sense without the host check.
        None if system => SslMode::VerifyFull,
        None => SslMode::Prefer,
    };
    if system && mode != SslMode::VerifyFull {
        return Err(invalid(
            root.source,
            format!(
                "sslrootcert=system needs sslmode=verify-full, not {}: any certificate the system trusts, for any host, would do",
                mode.as_str()
            ),
        ));
    }
    let root_cert = if system {
        Some(RootCert::System)
    } else {
        let path = root
            .value
            .as_ref()
            .map(PathBuf::from)
            .or_else(|| env.default_file("root.crt"));
        match path {
            Some(path) if path.exists() => Some(RootCert::File(path)),
            path => {
                if mode >= SslMode::VerifyCa {
                    // The root's setting when one was named, else the mode's.
                    let source = if root.value.is_some() {
                        root.source
                    } else {
                        mode_source
                    };
                    let named = path.map_or_else(
                        || "no root certificate file (HOME is not set)".to_owned(),
                        |p| format!("the root certificate file {} does not exist", p.display()),
                    );
                    return Err(invalid(
                        source,
                        format!(
                            "sslmode={} needs sslrootcert (a file, or `system`): {named}",
                            mode.as_str()
                        ),
                    ));
                }
                None
            }
        }
    };
    let client_cert = match cert
        .value
        .as_ref()
        .map(PathBuf::from)
        .or_else(|| env.default_file("postgresql.crt"))
    {
        Some(cert_path) if mode != SslMode::Disable && cert_path.exists() => {
            let key_path = key
                .value
                .as_ref()
                .map(PathBuf::from)
                .or_else(|| env.default_file("postgresql.key"))
                .ok_or_else(|| {
                    invalid(
                        key.source,
                        format!(
                            "the client certificate {} has no key (sslkey)",
                            cert_path.display()
                        ),
                    )
                })?;
            check_key_file(&key_path).map_err(|m| invalid(key.source, m))?;
            Some((cert_path, key_path))
        }
        _ => None,
    };
    Ok(Tls {
        mode,
        root_cert,
        client_cert,
    })
}

/// libpq refuses a private key that others may read, and one that is not
/// there.
fn check_key_file(path: &Path) -> Result<(), String> {
    let metadata = std::fs::metadata(path)
        .map_err(|e| format!("the private key file {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let mode = metadata.mode();
        // Owned by us: nothing for group or others; owned by root (a
        // system-wide key): group may read.
        let too_open = if metadata.uid() == rustix::process::geteuid().as_raw() {
            mode & 0o077 != 0
        } else {
            mode & 0o037 != 0
        };
        if too_open {
            return Err(format!(
                "the private key file {} has group or world access; libpq refuses it: chmod 0600 (or 0640 owned by root)",
                path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = metadata;
    Ok(())
}

/// Whether every host the connection may go to is this machine.
fn is_local(config: &tokio_postgres::Config) -> bool {
    // With `hostaddr`, the connection goes to the address; the host only
    // names the server for its certificate.
    if !config.get_hostaddrs().is_empty() {
        return config.get_hostaddrs().iter().all(IpAddr::is_loopback);
    }
    config.get_hosts().iter().all(|host| match host {
        Host::Tcp(name) => is_loopback_name(name),
        #[cfg(unix)]
        Host::Unix(_) => true,
    })
}

fn is_loopback_name(name: &str) -> bool {
    let name = name.trim_end_matches('.');
    name.eq_ignore_ascii_case("localhost")
        || name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `url` for libpq, its TLS parameters replaced by the resolved ones.
/// The URL libpq gets: `rest` with the resolved TLS parameters and the
/// password from a file, each explicit.
fn with_explicit(url: &str, rest: &str, tls: &Tls, password: Option<&str>) -> String {
    let mut pairs: Vec<(&str, String)> = vec![("sslmode", tls.mode.as_str().to_owned())];
    if let Some(password) = password {
        pairs.push(("password", password.to_owned()));
    }
    match &tls.root_cert {
        Some(RootCert::System) => pairs.push(("sslrootcert", "system".to_owned())),
        Some(RootCert::File(path)) => pairs.push(("sslrootcert", path.display().to_string())),
        None => {}
    }
    if let Some((cert, key)) = &tls.client_cert {
        pairs.push(("sslcert", cert.display().to_string()));
        pairs.push(("sslkey", key.display().to_string()));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let query: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", percent_encode(v)))
            .collect();
        let separator = if rest.contains('?') { '&' } else { '?' };
        format!("{rest}{separator}{}", query.join("&"))
    } else {
        let quoted: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{k}='{}'", v.replace('\\', "\\\\").replace('\'', "\\'")))
            .collect();
        if rest.is_empty() {
            quoted.join(" ")
        } else {
            format!("{rest} {}", quoted.join(" "))
        }
    }
}

fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A URL: its query's TLS pairs taken out.
fn split_url(url: &str) -> Result<(String, Vec<(String, String)>), String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), Vec::new()));
    };
    let mut kept = Vec::new();
    let mut taken = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if TLS_KEYS.contains(&key) {
            let value = percent_decode(value).map_err(|m| format!("{key}: {m}"))?;
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
fn split_key_values(conninfo: &str) -> Result<(String, Vec<(String, String)>), String> {
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
            return Err(format!("`{key}` has no value"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                    None => return Err(format!("the value of `{key}` has no closing quote")),
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

fn percent_decode(value: &str) -> Result<String, String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("a bad percent escape")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "not UTF-8".to_owned())
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    /// A home directory of the test's own, with `.postgresql/` files.
    struct Home(PathBuf);

    impl Home {
        fn with(files: &[(&str, u32)]) -> Self {
            let home = std::env::temp_dir().join(format!("libpq-home-{}", uuid::Uuid::new_v4()));
            let dir = home.join(".postgresql");
            std::fs::create_dir_all(&dir).unwrap();
            for (name, mode) in files {
                let path = dir.join(name);
                std::fs::write(&path, "-----BEGIN CERTIFICATE-----\n").unwrap();
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode))
                        .unwrap();
                }
                #[cfg(not(unix))]
                let _ = mode;
            }
            Self(home)
        }

        fn file(&self, name: &str) -> PathBuf {
            self.0.join(".postgresql").join(name)
        }

        fn env(&self) -> LibpqEnv {
            LibpqEnv {
                home: Some(self.0.clone()),
                ..LibpqEnv::default()
            }
        }
    }

    impl Drop for Home {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn env_of(vars: &[(&str, &str)]) -> Result<LibpqEnv, ConfigError> {
        LibpqEnv::from_env(&Env(crate::config::lookup(vars)))
    }

    fn tls(url: &str, env: &LibpqEnv) -> Tls {
        read(url, env, None).unwrap().tls
    }

    #[test]
    fn libpq_default_is_prefer_without_verification() {
        let c = read(
            "postgres://postgres@127.0.0.1:5432/auth",
            &LibpqEnv::default(),
            None,
        )
        .unwrap();
        assert_eq!(c.tls.mode, SslMode::Prefer);
        assert!(!c.tls.verifies_chain());
        assert_eq!(c.rotation.get_dbname(), Some("auth"));
        assert_eq!(
            c.libpq_url.expose_secret(),
            "postgres://postgres@127.0.0.1:5432/auth?sslmode=prefer"
        );
    }

    #[test]
    fn tls_parameters_are_taken_out_of_a_url_and_the_rest_kept() {
        let home = Home::with(&[("root.crt", 0o644)]);
        let root = home.file("root.crt");
        let url = format!(
            "postgres://u:p@db:5432/auth?sslmode=verify-full&application_name=a&sslrootcert={}",
            percent_encode(&root.display().to_string())
        );
        let c = read(&url, &LibpqEnv::default(), None).unwrap();
        assert_eq!(c.tls.mode, SslMode::VerifyFull);
        assert_eq!(c.tls.root_cert, Some(RootCert::File(root.clone())));
        assert_eq!(c.rotation.get_application_name(), Some("a"));
        assert_eq!(
            c.libpq_url.expose_secret(),
            format!(
                "postgres://u:p@db:5432/auth?application_name=a&sslmode=verify-full&sslrootcert={}",
                percent_encode(&root.display().to_string())
            )
        );
        assert!(percent_encode("/ca dir/root.crt") == "/ca%20dir/root.crt");
    }

    #[test]
    fn url_parameters_win_over_variables_which_win_over_defaults() {
        let home = Home::with(&[("root.crt", 0o644)]);
        let env = LibpqEnv {
            sslmode: Some("verify-ca".to_owned()),
            ..home.env()
        };
        // The variable over the default, the default root file found.
        let t = tls("postgres://db/auth", &env);
        assert_eq!(t.mode, SslMode::VerifyCa);
        assert_eq!(t.root_cert, Some(RootCert::File(home.file("root.crt"))));
        // The URL over the variable.
        assert_eq!(
            tls("postgres://db/auth?sslmode=disable", &env).mode,
            SslMode::Disable
        );
        // A root certificate, even the default one, makes `require` and
        // `prefer` check the chain, as libpq does.
        for mode in ["require", "prefer"] {
            let t = tls(&format!("postgres://db/auth?sslmode={mode}"), &home.env());
            assert!(t.verifies_chain() && !t.verifies_host(), "{mode}");
        }
        assert!(!tls("postgres://db/auth?sslmode=require", &LibpqEnv::default()).verifies_chain());
    }

    #[test]
    fn the_variables_are_read_and_a_bad_value_names_its_variable() {
        let env = env_of(&[
            ("PGSSLMODE", "verify-full"),
            ("PGSSLROOTCERT", "system"),
            ("HOME", "/home/auth"),
        ])
        .unwrap();
        assert_eq!(env.sslmode.as_deref(), Some("verify-full"));
        assert_eq!(env.home, Some(PathBuf::from("/home/auth")));
        let t = tls("host=db dbname=auth", &env);
        assert_eq!(
            (t.mode, t.root_cert),
            (SslMode::VerifyFull, Some(RootCert::System))
        );
        let bad = LibpqEnv {
            sslmode: Some("sometimes".to_owned()),
            ..LibpqEnv::default()
        };
        assert_eq!(
            read("postgres://db/auth", &bad, None).unwrap_err().variable,
            "PGSSLMODE"
        );
        assert_eq!(
            read("postgres://db/auth?sslmode=sometimes", &bad, None)
                .unwrap_err()
                .variable,
            "DATABASE_URL"
        );
    }

    #[test]
    fn variables_that_cannot_be_honoured_stop_the_server_named() {
        for (variable, value) in [
            ("PGSSLCRL", "/crl.pem"),
            ("PGSSLMINPROTOCOLVERSION", "TLSv1.3"),
            ("PGGSSENCMODE", "require"),
            ("PGSSLSNI", "0"),
            ("PGREQUIRESSL", "1"),
            ("PGSERVICE", "auth"),
            ("PGCHANNELBINDING", "require"),
        ] {
            assert_eq!(env_of(&[(variable, value)]).unwrap_err().variable, variable);
        }
        assert!(env_of(&[("PGGSSENCMODE", "disable"), ("PGSSLSNI", "1")]).is_ok());
    }

    #[test]
    fn system_roots_mean_verify_full() {
        let t = tls(
            "postgres://db/auth?sslrootcert=system",
            &LibpqEnv::default(),
        );
        assert_eq!(t.mode, SslMode::VerifyFull);
        let weak = read(
            "postgres://db/auth?sslrootcert=system&sslmode=require",
            &LibpqEnv::default(),
            None,
        );
        assert_eq!(weak.unwrap_err().variable, "DATABASE_URL");
        let from_env = LibpqEnv {
            sslrootcert: Some("system".to_owned()),
            sslmode: Some("verify-ca".to_owned()),
            ..LibpqEnv::default()
        };
        assert_eq!(
            read("postgres://db/auth", &from_env, None)
                .unwrap_err()
                .variable,
            "PGSSLROOTCERT"
        );
    }

    #[test]
    fn verification_without_a_root_file_is_refused() {
        for url in [
            "postgres://db/auth?sslmode=verify-full",
            "postgres://db/auth?sslmode=verify-ca&sslrootcert=/nonexistent/root.crt",
        ] {
            assert_eq!(
                read(url, &Home::with(&[]).env(), None)
                    .unwrap_err()
                    .variable,
                "DATABASE_URL",
                "{url}"
            );
        }
        let env = LibpqEnv {
            sslmode: Some("verify-full".to_owned()),
            ..LibpqEnv::default()
        };
        assert_eq!(
            read("postgres://db/auth", &env, None).unwrap_err().variable,
            "PGSSLMODE"
        );
    }

    #[test]
    fn client_certificates_as_libpq_finds_them() {
        let home = Home::with(&[("postgresql.crt", 0o644), ("postgresql.key", 0o600)]);
        let t = tls("postgres://db/auth", &home.env());
        assert_eq!(
            t.client_cert,
            Some((home.file("postgresql.crt"), home.file("postgresql.key")))
        );
        assert!(
            tls("postgres://db/auth?sslmode=disable", &home.env())
                .client_cert
                .is_none()
        );
        // A certificate named but absent is no certificate (libpq).
        let absent = LibpqEnv {
            sslcert: Some("/nonexistent/client.crt".to_owned()),
            ..LibpqEnv::default()
        };
        assert!(tls("postgres://db/auth", &absent).client_cert.is_none());
        // A certificate without its key, or a key others may read, is not.
        let keyless = Home::with(&[("postgresql.crt", 0o644)]);
        assert_eq!(
            read("postgres://db/auth", &keyless.env(), None)
                .unwrap_err()
                .variable,
            "PGSSLKEY"
        );
        #[cfg(unix)]
        {
            let open = Home::with(&[("postgresql.crt", 0o644), ("postgresql.key", 0o644)]);
            let refused = read("postgres://db/auth", &open.env(), None).unwrap_err();
            assert!(refused.message.contains("group or world"), "{refused}");
        }
    }

    #[test]
    fn key_value_strings_are_read_with_quotes_and_escapes() {
        let (rest, pairs) = split_key_values(
            "host=db  dbname='my db' password='it\\'s' sslmode = verify-ca sslrootcert=/ca.crt",
        )
        .unwrap();
        assert_eq!(rest, "host='db' dbname='my db' password='it\\'s'");
        assert_eq!(
            pairs,
            [
                ("sslmode".to_owned(), "verify-ca".to_owned()),
                ("sslrootcert".to_owned(), "/ca.crt".to_owned())
            ]
        );
        let c = read(
            "host=db dbname='my db' password='it\\'s'",
            &LibpqEnv::default(),
            None,
        )
        .unwrap();
        assert_eq!(c.rotation.get_dbname(), Some("my db"));
        assert_eq!(c.rotation.get_password(), Some(&b"it's"[..]));
        assert_eq!(
            c.libpq_url.expose_secret(),
            "host='db' dbname='my db' password='it\\'s' sslmode='prefer'"
        );
    }

    #[test]
    fn a_password_from_a_file_reaches_both_pools_and_never_two() {
        let url = read(
            "postgres://auth@db/auth",
            &LibpqEnv::default(),
            Some("p@ss word'"),
        )
        .unwrap();
        assert_eq!(url.rotation.get_password(), Some(&b"p@ss word'"[..]));
        assert_eq!(
            url.libpq_url.expose_secret(),
            "postgres://auth@db/auth?sslmode=prefer&password=p%40ss%20word%27"
        );
        let conninfo = read("host=db user=auth", &LibpqEnv::default(), Some("it's")).unwrap();
        assert_eq!(conninfo.rotation.get_password(), Some(&b"it's"[..]));
        assert_eq!(
            conninfo.libpq_url.expose_secret(),
            "host='db' user='auth' sslmode='prefer' password='it\\'s'"
        );
        for twice in ["postgres://auth:url@db/auth", "host=db password=url"] {
            assert_eq!(
                read(twice, &LibpqEnv::default(), Some("file"))
                    .unwrap_err()
                    .variable,
                "DATABASE_URL",
                "{twice}"
            );
        }
    }

    #[test]
    fn what_cannot_be_read_is_refused() {
        for url in [
            "postgres://db/auth?sslmode=sometimes",
            "host=db dbname",
            "host='db",
            "postgres://db/auth?sslrootcert=%zz",
            "postgres://db/auth?gssencmode=disable",
        ] {
            assert_eq!(
                read(url, &LibpqEnv::default(), None).unwrap_err().variable,
                "DATABASE_URL",
                "{url}"
            );
        }
    }

    #[test]
    fn loopback_hosts_and_sockets_are_local() {
        for (url, local) in [
            ("postgres://postgres@localhost:5432/auth", true),
            ("postgres://127.0.0.1/auth", true),
            ("postgres://[::1]:5432/auth", true),
            ("postgres://%2Fvar%2Frun%2Fpostgresql/auth", true),
            ("host=/var/run/postgresql dbname=auth", true),
            ("postgres://db/auth", false),
            ("postgres://10.0.0.5/auth", false),
            ("postgres://localhost,db.example.com/auth", false),
            ("host=db.example.com hostaddr=127.0.0.1 dbname=auth", true),
            ("host=localhost hostaddr=192.0.2.1 dbname=auth", false),
        ] {
            assert_eq!(
                read(url, &LibpqEnv::default(), None).unwrap().local,
                local,
                "{url}"
            );
        }
    }
}
