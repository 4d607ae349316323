//! [`Database`]: the one handle the service layer reaches PostgreSQL
//! through, over both pools.

use std::sync::Arc;

use diesel::pg::PgConnection;
use diesel_async::SimpleAsyncConnection;
use tracing::Instrument;

use super::models::ClientInfo;
use super::pool::{Pool, PoolStats, build_pool};
use super::rotation::{PresentedToken, RefreshOutcome};
use super::rotation_pool::RotationPool;
use super::{DbError, DbResult};
use crate::config::DatabaseSettings;
use crate::tokens::keys::TokenKeys;
use crate::tokens::rotation::Policy;

/// The pools behind one handle. Queries run on the blocking pool, never on
/// the async workers, and inside the caller's span, so what they log carries
/// the request's id; the rotation alone runs on the asynchronous pool
/// ([`RotationPool`]), whose connections never block.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    rotations: RotationPool,
}

impl Database {
    /// The pools built from the settings (see [`build_pool`] and
    /// [`RotationPool::new`], shared out between `workers` async workers):
    /// nothing connects yet. Certificate files the asynchronous connections
    /// cannot read are refused now.
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
        presented: PresentedToken,
        keys: Arc<TokenKeys>,
        client: ClientInfo,
        policy: Policy,
    ) -> DbResult<RefreshOutcome> {
        let pool = self.rotations.clone();
        let rotation = async move { pool.refresh(&presented, &keys, &client, &policy).await };
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

    /// Whether both pools reach PostgreSQL: they are secured alike, but the
    /// asynchronous one's connections read no `PG*` variable but the TLS
    /// ones and no `~/.pgpass` (libpq does), so one may fail where the
    /// other works.
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
