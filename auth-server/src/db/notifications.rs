//! PostgreSQL's `LISTEN/NOTIFY` between replicas: one connection of its own
//! per process, outside the pool, on a thread of its own, that wakes a
//! [`Notify`] per channel when another replica (or this one) commits a
//! change the channel is about: `revocations` (sent by a trigger on
//! `sessions`, see the migration) and `signing_keys`.
//!
//! Notifications only wake: what they are about is always read back from
//! the tables, so a lost one (the connection broke, the replica was
//! starting) costs no more than the readers' own periodic re-read. After
//! every (re)connection every channel is woken once, for whatever was sent
//! while nobody listened.
//!
//! Diesel's connection (libpq, so TLS and every `DATABASE_URL` option work
//! as for the pool) reads notifications without blocking: the thread looks
//! every [`POLL`] (a non-blocking read of the socket, no round trip), and
//! checks every [`HEALTH_CHECK`] with a query that the connection is alive,
//! since a connection whose peer vanished may never report an error on its
//! own. It reconnects with a doubling backoff, and ends when every waker it
//! serves has been dropped (the server stopped).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Notify;

/// The channel a revocation's transaction notifies.
pub const REVOCATIONS: &str = "revocations";
/// The channel a change of the signing keys notifies.
pub const SIGNING_KEYS: &str = "signing_keys";

/// The LISTEN connection's `application_name`.
pub const APPLICATION_NAME: &str = "auth-server listen";
/// How often the thread looks for notifications that arrived.
pub const POLL: Duration = Duration::from_millis(5);
/// How often the connection is checked with a query.
const HEALTH_CHECK: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Sends a notification on `channel` (delivered when the transaction
/// commits).
pub fn notify(conn: &mut PgConnection, channel: &str) -> super::DbResult<()> {
    diesel::sql_query("SELECT pg_notify($1, '')")
        .bind::<diesel::sql_types::Text, _>(channel)
        .execute(conn)?;
    Ok(())
}

/// Whether the LISTEN connection is up now, for `/metrics`.
#[derive(Debug, Default)]
pub struct ListenStatus {
    connected: AtomicBool,
}

impl ListenStatus {
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }
}

/// Starts listening on each channel, waking its [`Notify`] (every waiter at
/// once) for each notification. Held weakly: the thread ends once they are
/// all dropped.
pub fn spawn(
    url: SecretString,
    channels: Vec<(&'static str, &Arc<Notify>)>,
    status: Arc<ListenStatus>,
) -> std::io::Result<()> {
    let channels: Vec<(&'static str, Weak<Notify>)> = channels
        .into_iter()
        .map(|(name, wake)| (name, Arc::downgrade(wake)))
        .collect();
    std::thread::Builder::new()
        .name("pg-listen".to_owned())
        .spawn(move || listen(&url, &channels, &status))?;
    Ok(())
}

fn listen(url: &SecretString, channels: &[(&'static str, Weak<Notify>)], status: &ListenStatus) {
    let mut backoff = FIRST_BACKOFF;
    let mut failing = false;
    // Named, so an operator (and a test) can tell it apart in
    // `pg_stat_activity`.
    let listen_sql: String =
        std::iter::once(format!("SET application_name = '{APPLICATION_NAME}';"))
            .chain(channels.iter().map(|(name, _)| format!("LISTEN {name};")))
            .collect();
    loop {
        if !alive(channels) {
            return;
        }
        let connected = PgConnection::establish(url.expose_secret())
            .map_err(|e| e.to_string())
            .and_then(|mut conn| {
                conn.batch_execute(&listen_sql)
                    .map(|()| conn)
                    .map_err(|e| e.to_string())
            });
        let mut conn = match connected {
            Ok(conn) => conn,
            Err(error) => {
                if !failing {
                    tracing::warn!(%error, "cannot LISTEN for other replicas' changes; retrying (held polls re-read meanwhile)");
                    failing = true;
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        if failing {
            tracing::info!("listening for other replicas' changes again");
        }
        backoff = FIRST_BACKOFF;
        status.connected.store(true, Ordering::Relaxed);
        // Whatever was sent while nobody listened.
        if !wake_all(channels) {
            return;
        }
        let ended = serve(&mut conn, channels);
        status.connected.store(false, Ordering::Relaxed);
        match ended {
            Ended::Dropped => return,
            Ended::Broken(error) => {
                tracing::warn!(%error, "the LISTEN connection broke; reconnecting");
                failing = true;
            }
        }
    }
}

enum Ended {
    /// Every waker is gone: the server stopped.
    Dropped,
    Broken(String),
}

fn serve(conn: &mut PgConnection, channels: &[(&'static str, Weak<Notify>)]) -> Ended {
    let mut checked = Instant::now();
    loop {
        let mut woken: Vec<&str> = Vec::new();
        for notification in conn.notifications_iter() {
            match notification {
                Ok(n) => {
                    if let Some((name, _)) = channels.iter().find(|(c, _)| *c == n.channel)
                        && !woken.contains(name)
                    {
                        woken.push(name);
                    }
                }
                Err(e) => return Ended::Broken(e.to_string()),
            }
        }
        for name in woken {
            for (channel, wake) in channels {
                if *channel == name
                    && let Some(wake) = wake.upgrade()
                {
                    wake.notify_waiters();
                }
            }
        }
        if !alive(channels) {
            return Ended::Dropped;
        }
        if checked.elapsed() >= HEALTH_CHECK {
            if let Err(e) = conn.batch_execute("SELECT 1") {
                return Ended::Broken(e.to_string());
            }
            checked = Instant::now();
        }
        std::thread::sleep(POLL);
    }
}

/// Wakes every channel; `false` once none is left to wake.
fn wake_all(channels: &[(&'static str, Weak<Notify>)]) -> bool {
    let mut any = false;
    for (_, wake) in channels {
        if let Some(wake) = wake.upgrade() {
            wake.notify_waiters();
            any = true;
        }
    }
    any
}

/// Whether anyone is left to wake.
fn alive(channels: &[(&'static str, Weak<Notify>)]) -> bool {
    channels.iter().any(|(_, wake)| wake.strong_count() > 0)
}
