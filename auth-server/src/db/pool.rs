//! The blocking pool (r2d2), what bounds every pooled connection of either
//! pool, and how a pool's connections are used.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection};
use secrecy::ExposeSecret;

use crate::config::DatabaseSettings;

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

/// How the pool's connections are used, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub idle: u32,
    pub in_use: u32,
    pub max: u32,
}
