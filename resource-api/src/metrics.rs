//! Prometheus metrics (served at `GET /metrics` by
//! [`crate::handlers::metrics`]): requests and latency by route and status
//! (shared with every service), and the revocation state: how old the last
//! successful sync is, how many sessions are held as revoked, how syncs went,
//! how many keys are loaded.

use std::sync::Arc;
use std::time::Duration;

use prometheus::{Gauge, IntCounterVec, IntGauge, Opts, Registry};
use service_kit::http_metrics::{HttpMetrics, render};

pub struct Metrics {
    registry: Registry,
    pub http: HttpMetrics,
    /// Revocation feed reads by outcome (ok: caught up, a successful sync;
    /// partial: a page of a longer read; failed); the sync task counts them.
    pub syncs: IntCounterVec,
    sync_age: Gauge,
    revoked_sessions: IntGauge,
    jwks_keys: IntGauge,
}

impl Metrics {
    pub fn new() -> Result<Arc<Self>, prometheus::Error> {
        let registry = Registry::new();
        let http = HttpMetrics::register(&registry)?;
        let syncs = IntCounterVec::new(
            Opts::new(
                "revocation_syncs_total",
                "Revocation feed reads by outcome (ok: caught up; partial: a page of more; failed)",
            ),
            &["outcome"],
        )?;
        let sync_age = Gauge::new(
            "revocation_sync_age_seconds",
            "Seconds since the last successful revocation sync (-1: never)",
        )?;
        let revoked_sessions =
            IntGauge::new("revoked_sessions", "Revoked sessions held in memory")?;
        let jwks_keys = IntGauge::new("jwks_keys", "Verification keys loaded from the JWKS")?;
        registry.register(Box::new(syncs.clone()))?;
        registry.register(Box::new(sync_age.clone()))?;
        registry.register(Box::new(revoked_sessions.clone()))?;
        registry.register(Box::new(jwks_keys.clone()))?;
        Ok(Arc::new(Self {
            registry,
            http,
            syncs,
            sync_age,
            revoked_sessions,
            jwks_keys,
        }))
    }

    /// Every metric in Prometheus's text format, with the gauges as they are
    /// now.
    pub fn render(&self, now: Gauges) -> Result<String, prometheus::Error> {
        self.sync_age
            .set(now.sync_age.map_or(-1.0, |age| age.as_secs_f64()));
        self.revoked_sessions
            .set(i64::try_from(now.revoked_sessions).unwrap_or(i64::MAX));
        self.jwks_keys
            .set(i64::try_from(now.jwks_keys).unwrap_or(i64::MAX));
        render(&self.registry)
    }
}

/// The figures a scrape reads from the revocation state and the key cache.
#[derive(Debug, Clone, Copy)]
pub struct Gauges {
    /// Since the last successful revocation sync; `None` before the first.
    pub sync_age: Option<Duration>,
    pub revoked_sessions: usize,
    pub jwks_keys: usize,
}
