//! The rotation's connections, used on the async workers themselves.
//!
//! A synchronous Diesel connection runs on the blocking pool, so each
//! rotation would cost two thread hops. These are tokio-postgres
//! connections under Diesel's query builder (diesel-async): a rotation of a
//! version 2 token is one statement, one round trip, and waiting for
//! PostgreSQL parks a task, not a thread (a legacy token's transaction sends
//! `BEGIN` together with its locked read). Nothing here blocks.
//!
//! Each worker thread has a share of the pool of its own: a connection's
//! socket is driven by a task on the thread that opened it, so a request
//! served on that thread wakes no other thread to reach PostgreSQL.
//!
//! The pool checks nothing at checkout (no round trip): a connection whose
//! socket closed is seen closed and dropped; one that fails a request is
//! dropped rather than handed out again, whatever state its transaction
//! was left in.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::connection_url::{self, Target};
use super::models::ClientInfo;
use super::pool::{PoolStats, session_bounds};
use super::rotation::{self, PresentedToken, RefreshOutcome};
use super::{DbError, DbResult};
use crate::config::DatabaseSettings;
use crate::tokens::keys::TokenKeys;
use crate::tokens::rotation::Policy;

/// How long an unused connection is kept (as the synchronous pool does).
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Clone)]
pub struct RotationPool {
    inner: Arc<Inner>,
}

struct Inner {
    target: Target,
    /// `SET` statements run once on every new connection.
    bounds: String,
    shares: Box<[Share]>,
    checkout_timeout: Duration,
}

/// The connections of the threads given one slot.
struct Share {
    idle: Mutex<Vec<Idle>>,
    /// One per connection in use: at most `size` at a time.
    permits: Arc<Semaphore>,
    size: u32,
}

struct Idle {
    conn: Connection,
    since: Instant,
}

struct Connection {
    conn: AsyncPgConnection,
    /// Cleared when the task driving the connection's socket ends.
    open: Arc<AtomicBool>,
}

/// A connection out of the pool. Dropped, it is closed; [`Pooled::release`]
/// hands it back.
pub struct Pooled {
    conn: Connection,
    inner: Arc<Inner>,
    share: usize,
    _permit: OwnedSemaphorePermit,
}

impl RotationPool {
    /// A pool of `settings.rotation_pool_size` connections to the database,
    /// secured as libpq secures the blocking pool's (`settings.tls`), shared
    /// out between `workers` threads (each has at least one). Nothing
    /// connects yet; certificate files that cannot be read are an error now.
    pub fn new(settings: &DatabaseSettings, workers: usize) -> anyhow::Result<Self> {
        let target = connection_url::target(settings)?;
        let workers = workers.max(1);
        let total = settings.rotation_pool_size as usize;
        let shares = (0..workers)
            .map(|i| {
                let size = (total / workers + usize::from(i < total % workers)).max(1);
                Share {
                    idle: Mutex::new(Vec::new()),
                    permits: Arc::new(Semaphore::new(size)),
                    size: size as u32,
                }
            })
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                target,
                bounds: session_bounds(settings.lock_timeout),
                shares,
                checkout_timeout: settings.checkout_timeout,
            }),
        })
    }

    /// One rotation ([`rotation::refresh`]) on a connection of this
    /// thread's share, which goes back to the pool only if the rotation
    /// ended its transaction.
    pub async fn refresh(
        &self,
        presented: &PresentedToken,
        keys: &TokenKeys,
        client: &ClientInfo,
        policy: &Policy,
    ) -> DbResult<RefreshOutcome> {
        let conn = self.get().await?;
        // No cooperative yield inside: each statement goes out in its
        // future's first poll, in the order they are polled.
        let outcome = tokio::task::unconstrained(rotation::refresh(
            conn.connection(),
            presented,
            keys,
            client,
            policy,
        ))
        .await?;
        conn.release();
        Ok(outcome)
    }

    /// A connection of this thread's share: an idle one, or a new one while
    /// the share has room; `Unavailable` when none comes within the
    /// checkout timeout.
    pub async fn get(&self) -> DbResult<Pooled> {
        let timeout = self.inner.checkout_timeout;
        tokio::time::timeout(timeout, self.checkout())
            .await
            .unwrap_or_else(|_| {
                Err(DbError::Unavailable(format!(
                    "no database connection within {timeout:?}"
                )))
            })
    }

    async fn checkout(&self) -> DbResult<Pooled> {
        let share = thread_slot() % self.inner.shares.len();
        let permit = Arc::clone(&self.inner.shares[share].permits)
            .acquire_owned()
            .await
            .map_err(|_| DbError::Stopped)?;
        let conn = match self.inner.shares[share].take_idle() {
            Some(conn) => conn,
            None => self.inner.connect().await?,
        };
        Ok(Pooled {
            conn,
            inner: Arc::clone(&self.inner),
            share,
            _permit: permit,
        })
    }

    pub fn stats(&self) -> PoolStats {
        let mut stats = PoolStats {
            idle: 0,
            in_use: 0,
            max: 0,
        };
        for share in &self.inner.shares {
            stats.idle += share.idle().len() as u32;
            stats.in_use += share.size - share.permits.available_permits() as u32;
            stats.max += share.size;
        }
        stats
    }
}

/// This thread's slot, given the first time it asks: the actix workers,
/// which start together and serve from their first request on, get
/// consecutive slots and so shares of their own.
fn thread_slot() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    SLOT.with(|slot| *slot)
}

impl Share {
    fn idle(&self) -> MutexGuard<'_, Vec<Idle>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most recently used open connection; closed and stale ones go.
    fn take_idle(&self) -> Option<Connection> {
        let mut idle = self.idle();
        idle.retain(|c| c.conn.is_open() && c.since.elapsed() < IDLE_TIMEOUT);
        idle.pop().map(|c| c.conn)
    }
}

impl Inner {
    /// A new connection, its socket driven by a task on this thread.
    async fn connect(&self) -> DbResult<Connection> {
        let (client, connection) = self
            .target
            .config
            .connect(self.target.tls.clone())
            .await
            .map_err(|e| DbError::Unavailable(e.to_string()))?;
        let open = Arc::new(AtomicBool::new(true));
        let socket_open = Arc::clone(&open);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%error, "rotation database connection ended");
            }
            socket_open.store(false, Ordering::Release);
        });
        let mut conn = AsyncPgConnection::try_from(client)
            .await
            .map_err(|e| DbError::Unavailable(e.to_string()))?;
        conn.batch_execute(&self.bounds).await?;
        rotation::prepare(&conn).await?;
        Ok(Connection { conn, open })
    }
}

impl Connection {
    fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }
}

impl Pooled {
    pub fn connection(&self) -> &AsyncPgConnection {
        &self.conn.conn
    }

    /// Hands the connection back for the next request: only after work
    /// that succeeded, so never inside a transaction.
    pub fn release(self) {
        let Self {
            conn,
            inner,
            share,
            _permit,
        } = self;
        if conn.is_open() {
            inner.shares[share].idle().push(Idle {
                conn,
                since: Instant::now(),
            });
        }
    }
}
