//! The connection pool, and [`Database`]: the one handle the service layer
//! reaches PostgreSQL through.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection};
use diesel_async::SimpleAsyncConnection;
use secrecy::ExposeSecret;
use tracing::Instrument;

use super::models::ClientInfo;
use super::rotation::RefreshOutcome;
use super::{DbError, DbResult, RotationPool};
use crate::config::DatabaseSettings;
use crate::refresh_token::{SuccessorHashes, TokenHash};
use crate::rotation::Policy;

pub type Pool = diesel::r2d2::Pool<ConnectionManager<PgConnection>>;

/// Bounds on every pooled connection, so no query and no lock wait can hold a
/// request (and its worker thread) for long.
#[derive(Debug)]
struct SessionBounds {
    sql: String,
}

/// The `SET` statements that bound every pooled connection of either pool:
/// row locks waited for at most `lock_timeout`, statements run for at most
/// three times that (one second at least), transactions left idle for at
/// most twice that.
pub(super) fn session_bounds(lock_timeout: Duration) -> String {
    let statement_timeout = lock_timeout.max(Duration::from_secs(1)) * 3;
    format!(
        "SET lock_timeout = '{}ms'; SET statement_timeout = '{}ms'; SET idle_in_transaction_session_timeout = '{}ms'; SET TIME ZONE 'UTC'",
        lock_timeout.as_millis(),
        statement_timeout.as_millis(),
        statement_timeout.as_millis() * 2,
    )
}

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for SessionBounds {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(&self.sql)
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// The pool. Built without connecting, so the server can start (and say
/// `503` on `/readyz`) while the database is still coming up.
pub fn build_pool(settings: &DatabaseSettings) -> Pool {
    let manager = ConnectionManager::<PgConnection>::new(settings.url.expose_secret());
    diesel::r2d2::Pool::builder()
        .max_size(settings.pool_size)
        .min_idle(Some(0))
        .connection_timeout(settings.checkout_timeout)
        // A checkout test costs a round trip on every request; broken
        // connections are detected by Diesel and dropped by the pool instead.
        .test_on_check_out(false)
        .idle_timeout(Some(Duration::from_secs(300)))
        .connection_customizer(Box::new(SessionBounds {
            sql: session_bounds(settings.lock_timeout),
        }))
        .build_unchecked(manager)
}

/// The pools behind one handle. Queries run on the blocking pool, never on
/// the async workers, and inside the caller's span, so what they log carries
/// the request's id; the rotation alone runs on the asynchronous pool
/// ([`RotationPool`]), whose connections never block.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    rotations: RotationPool,
}

/// How the pool's connections are used, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub idle: u32,
    pub in_use: u32,
    pub max: u32,
}

impl Database {
    /// The pools built from the settings (see [`build_pool`] and
    /// [`RotationPool::new`], shared out between `workers` async workers):
    /// nothing connects yet. A URL the asynchronous connections could not
    /// honour is refused now.
    pub fn new(settings: &DatabaseSettings, workers: usize) -> anyhow::Result<Self> {
        Ok(Self {
            pool: build_pool(settings),
            rotations: RotationPool::new(settings, workers)?,
        })
    }

    /// One rotation ([`RotationPool::refresh`]) on the asynchronous pool. It
    /// runs as a task of its own, so it ends as it would have had the
    /// client stayed: a request that goes away cannot cut a transaction in
    /// half and leave its connection holding locks.
    pub async fn refresh(
        &self,
        presented: TokenHash,
        successors: SuccessorHashes,
        client: ClientInfo,
        policy: Policy,
    ) -> DbResult<RefreshOutcome> {
        let pool = self.rotations.clone();
        let rotation = async move {
            pool.refresh(&presented, &successors, &client, &policy)
                .await
        };
        tokio::spawn(rotation.instrument(tracing::Span::current()))
            .await
            .map_err(|_| DbError::Stopped)?
    }

    /// Runs a query function with a pooled connection. The checkout blocks
    /// too, so it happens inside the blocking closure.
    pub async fn run<T, F>(&self, query: F) -> DbResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut PgConnection) -> DbResult<T> + Send + 'static,
    {
        let pool = self.pool.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let mut conn = pool.get()?;
            query(&mut conn)
        })
        .await
        .map_err(|_| DbError::Stopped)?
    }

    /// Whether both pools reach PostgreSQL: the asynchronous one's
    /// connections read only `DATABASE_URL` (libpq also reads `PG*`
    /// variables and `~/.pgpass`), so one may fail where the other works.
    pub async fn ping(&self) -> DbResult<()> {
        self.run(super::ping).await?;
        let conn = self.rotations.get().await?;
        conn.connection().batch_execute("SELECT 1").await?;
        conn.release();
        Ok(())
    }

    /// The asynchronous pool's connections.
    pub fn rotation_stats(&self) -> PoolStats {
        self.rotations.stats()
    }

    pub fn stats(&self) -> PoolStats {
        let state = self.pool.state();
        PoolStats {
            idle: state.idle_connections,
            in_use: state.connections.saturating_sub(state.idle_connections),
            max: self.pool.max_size(),
        }
    }

    /// The pool itself, for tests and tools that hold connections of their
    /// own.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }
}
