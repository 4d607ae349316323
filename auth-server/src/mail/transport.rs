//! Where messages go: an SMTP server (`SMTP_URL`, through lettre on tokio,
//! TLS by rustls), or, in development without one, `.eml` files under
//! `MAIL_DIR`. Never the log: messages carry links that reset passwords.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use uuid::Uuid;

use crate::config::MailSettings;

pub enum Transport {
    Smtp {
        mailer: AsyncSmtpTransport<Tokio1Executor>,
        /// A bound on a whole send (connect, TLS, every command).
        deadline: Duration,
    },
    Files(PathBuf),
}

impl Transport {
    pub fn from_settings(settings: &MailSettings) -> anyhow::Result<Self> {
        match &settings.smtp_url {
            Some(url) => {
                let mailer = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                    .context("SMTP_URL is not a URL lettre accepts")?
                    // Connecting and every command: lettre's default is a minute.
                    .timeout(Some(settings.smtp_timeout))
                    .build();
                Ok(Self::Smtp {
                    mailer,
                    deadline: settings.smtp_timeout * 3,
                })
            }
            None => {
                tracing::warn!(
                    dir = %settings.dir.display(),
                    "SMTP_URL is not set: mail is written as .eml files instead of being sent. Development only."
                );
                Ok(Self::Files(settings.dir.clone()))
            }
        }
    }

    /// Sends one message. The error says what failed, never what was sent.
    pub async fn send(&self, message: Message) -> anyhow::Result<()> {
        match self {
            Self::Smtp { mailer, deadline } => {
                tokio::time::timeout(*deadline, mailer.send(message))
                    .await
                    .map_err(|_| {
                        anyhow::anyhow!("the SMTP exchange took longer than {deadline:?}")
                    })?
                    .map(|_| ())
                    .map_err(|e| anyhow::anyhow!("SMTP: {e}"))
            }
            Self::Files(dir) => {
                let dir = dir.clone();
                let bytes = message.formatted();
                tokio::task::spawn_blocking(move || write_eml(&dir, &bytes))
                    .await
                    .context("the blocking pool is shut down")?
            }
        }
    }
}

/// `MAIL_DIR/<time>-<id>.eml`, readable by its owner only.
fn write_eml(dir: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir).with_context(|| format!("creating MAIL_DIR {}", dir.display()))?;
    let name = format!(
        "{}-{}.eml",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
        Uuid::new_v4().simple()
    );
    let path = dir.join(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    tracing::info!(file = %path.display(), "mail written to a file (no SMTP_URL)");
    Ok(())
}
