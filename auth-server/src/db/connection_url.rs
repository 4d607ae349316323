//! The rotation's connections secured as libpq would secure the blocking
//! pool's: tokio-postgres's configuration and an OpenSSL connector built
//! from the TLS settings that `crate::config::libpq` resolved from
//! `DATABASE_URL` and libpq's variables.

use std::path::Path;

use anyhow::{Context, bail};
use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode, SslVersion};
use openssl::x509::X509;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use postgres_openssl::MakeTlsConnector;

use crate::config::DatabaseSettings;
use crate::config::libpq::{RootCert, Tls};

/// Where to connect, and how to secure the connection.
pub struct Target {
    pub config: tokio_postgres::Config,
    pub tls: MakeTlsConnector,
}

/// The rotation's target, from the settings. Files that cannot be read
/// (a root or client certificate, a key) are an error now, not at the
/// first refresh.
pub fn target(settings: &DatabaseSettings) -> anyhow::Result<Target> {
    Ok(Target {
        config: settings.rotation.clone(),
        tls: connector(&settings.tls).context("the TLS settings of DATABASE_URL")?,
    })
}

/// OpenSSL, as libpq uses it, set up for `tls`.
fn connector(tls: &Tls) -> anyhow::Result<MakeTlsConnector> {
    let mut builder = SslConnector::builder(SslMethod::tls_client())?;
    // libpq's default `ssl_min_protocol_version`.
    builder.set_min_proto_version(Some(SslVersion::TLS1_2))?;
    match (&tls.root_cert, tls.verifies_chain()) {
        (_, false) => builder.set_verify(SslVerifyMode::NONE),
        (Some(RootCert::System), true) => builder.set_default_verify_paths()?,
        // Only the file's roots, as libpq: the connector's builder loaded
        // the system's too, which would let any certificate they sign for
        // the host stand in for the database.
        (Some(RootCert::File(root)), true) => builder.set_cert_store(roots(root)?),
        (None, true) => bail!("no sslrootcert to verify the server with"),
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
    let check_host = tls.verifies_host();
    connector.set_callback(move |config, _| {
        config.set_verify_hostname(check_host);
        Ok(())
    });
    Ok(connector)
}

/// A store of the certificates in the PEM file at `path`, and no others.
fn roots(path: &Path) -> anyhow::Result<X509Store> {
    let named = || format!("sslrootcert {}", path.display());
    let pem = std::fs::read(path).with_context(named)?;
    let certificates = X509::stack_from_pem(&pem).with_context(named)?;
    if certificates.is_empty() {
        bail!("{}: no certificate in it", named());
    }
    let mut store = X509StoreBuilder::new()?;
    for certificate in certificates {
        store.add_cert(certificate)?;
    }
    Ok(store.build())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::libpq::SslMode;

    #[test]
    fn a_verifying_connector_needs_a_readable_root() {
        let unreadable = Tls {
            mode: SslMode::VerifyCa,
            root_cert: Some(RootCert::File(PathBuf::from("/nonexistent.crt"))),
            client_cert: None,
        };
        assert!(connector(&unreadable).is_err());
        let system = Tls {
            mode: SslMode::VerifyFull,
            root_cert: Some(RootCert::System),
            client_cert: None,
        };
        assert!(connector(&system).is_ok());
        let unverified = Tls {
            mode: SslMode::Require,
            root_cert: None,
            client_cert: None,
        };
        assert!(connector(&unverified).is_ok());
    }

    #[test]
    fn a_root_file_without_a_certificate_is_refused() {
        let path = std::env::temp_dir().join(format!("empty-root-{}.crt", uuid::Uuid::new_v4()));
        std::fs::write(&path, "not a certificate\n").unwrap();
        let Err(refused) = roots(&path) else {
            panic!("a store of no roots");
        };
        assert!(
            format!("{refused:#}").contains("sslrootcert"),
            "{refused:#}"
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_client_certificate_must_be_readable() {
        let missing = Tls {
            mode: SslMode::Require,
            root_cert: None,
            client_cert: Some((
                PathBuf::from("/nonexistent/client.crt"),
                PathBuf::from("/nonexistent/client.key"),
            )),
        };
        assert!(connector(&missing).is_err());
    }
}
