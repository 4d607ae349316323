//! The connection pool, and [`Database`]: the one handle the service layer
//! reaches PostgreSQL through.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection};
use secrecy::ExposeSecret;

use super::{DbError, DbResult};
use crate::config::DatabaseSettings;

pub type Pool = diesel::r2d2::Pool<ConnectionManager<PgConnection>>;

/// Bounds on every pooled connection, so no query and no lock wait can hold a
/// request (and its worker thread) for long.
#[derive(Debug)]
struct SessionBounds {
    lock_timeout: Duration,
    statement_timeout: Duration,
}

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for SessionBounds {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        let sql = format!(
            "SET lock_timeout = '{}ms'; SET statement_timeout = '{}ms'; SET idle_in_transaction_session_timeout = '{}ms'; SET TIME ZONE 'UTC'",
            self.lock_timeout.as_millis(),
            self.statement_timeout.as_millis(),
            self.statement_timeout.as_millis() * 2,
        );
        conn.batch_execute(&sql)
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
            lock_timeout: settings.lock_timeout,
            statement_timeout: settings.lock_timeout.max(Duration::from_secs(1)) * 3,
        }))
        .build_unchecked(manager)
}

/// The pool behind one handle. Queries run on the blocking pool, never on
/// the async workers, and inside the caller's span, so what they log carries
/// the request's id.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
}

/// How the pool's connections are used, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub idle: u32,
    pub in_use: u32,
    pub max: u32,
}

impl Database {
    /// A pool built from the settings (see [`build_pool`]): nothing connects
    /// yet.
    pub fn new(settings: &DatabaseSettings) -> Self {
        Self {
            pool: build_pool(settings),
        }
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
