//! Test support: a real SMTP server, for § Account lifecycle's mail.
//!
//! A real SMTP server for the tests: Debian's `python3-aiosmtpd` with its
//! Maildir handler, one per test on a port of its own, so tests run in
//! parallel and each reads only its own mail. It can be stopped and started
//! again on the same port and Maildir (the "mail server down" tests).
//!
//! `AIOSMTPD_PYTHON` names another interpreter (the default is Debian's
//! `/usr/bin/python3`, whatever `python3` on `PATH` is).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use uuid::Uuid;

pub struct SmtpServer {
    pub port: u16,
    maildir: PathBuf,
    child: Option<Child>,
}

/// One delivered message, as the server stored it.
#[derive(Debug, Clone)]
pub struct Mail {
    pub raw: String,
}

impl Mail {
    /// The link of the message whose fragment starts `#{key}=`.
    pub fn link(&self, key: &str) -> String {
        let marker = format!("/#{key}=");
        let start = self
            .raw
            .find(&marker)
            .unwrap_or_else(|| panic!("no #{key}= link in {}", self.raw));
        let begin = self.raw[..start]
            .rfind(|c: char| c.is_whitespace())
            .map_or(0, |i| i + 1);
        let end = start
            + marker.len()
            + self.raw[start + marker.len()..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                .unwrap_or(self.raw.len() - start - marker.len());
        self.raw[begin..end].to_owned()
    }

    /// The token of that link.
    pub fn token(&self, key: &str) -> String {
        let link = self.link(key);
        link.split_once(&format!("#{key}=")).unwrap().1.to_owned()
    }

    pub fn is_to(&self, address: &str) -> bool {
        self.raw
            .lines()
            .any(|line| line.to_ascii_lowercase().starts_with("to:") && line.contains(address))
    }

    pub fn subject(&self) -> String {
        self.raw
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or_default()
            .to_owned()
    }
}

fn python() -> String {
    std::env::var("AIOSMTPD_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".to_owned())
}

impl SmtpServer {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let maildir = std::env::temp_dir().join(format!("smtp-{}", Uuid::new_v4().simple()));
        let mut server = Self {
            port,
            maildir,
            child: None,
        };
        server.resume();
        server
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on its port and Maildir.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new(python())
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&self.maildir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "starting aiosmtpd with {} (apt-get install python3-aiosmtpd): {e}",
                    python()
                )
            });
        self.child = Some(child);
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "aiosmtpd listens on {} (is python3-aiosmtpd installed?)",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server: connections are refused until [`Self::resume`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every message delivered so far, oldest first.
    pub fn messages(&self) -> Vec<Mail> {
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = ["new", "cur"]
            .iter()
            .filter_map(|sub| std::fs::read_dir(self.maildir.join(sub)).ok())
            .flatten()
            .filter_map(|entry| {
                let entry = entry.ok()?;
                Some((entry.metadata().ok()?.modified().ok()?, entry.path()))
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .filter_map(|(_, path)| read(&path))
            .collect()
    }

    pub fn messages_to(&self, address: &str) -> Vec<Mail> {
        self.messages()
            .into_iter()
            .filter(|m| m.is_to(address))
            .collect()
    }

    /// Waits until `count` messages to `address` have arrived; returns them.
    pub async fn wait_for(&self, address: &str, count: usize, limit: Duration) -> Vec<Mail> {
        let started = Instant::now();
        loop {
            let messages = self.messages_to(address);
            if messages.len() >= count {
                return messages;
            }
            assert!(
                started.elapsed() < limit,
                "{count} message(s) to {address} within {limit:?}; got {}",
                messages.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The newest message to `address` with this subject, once one arrives
    /// (the worker sends concurrently: arrival order is not queue order).
    pub async fn mail_titled(&self, address: &str, subject: &str) -> Mail {
        let started = Instant::now();
        loop {
            if let Some(mail) = self
                .messages_to(address)
                .into_iter()
                .rev()
                .find(|m| m.subject() == subject)
            {
                return mail;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "a message to {address} titled {subject}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The one message to `address`, once it arrives.
    pub async fn mail_to(&self, address: &str) -> Mail {
        self.wait_for(address, 1, Duration::from_secs(15))
            .await
            .remove(0)
    }
}

fn read(path: &Path) -> Option<Mail> {
    Some(Mail {
        raw: String::from_utf8_lossy(&std::fs::read(path).ok()?).into_owned(),
    })
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.maildir);
    }
}
