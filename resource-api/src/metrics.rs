//! Prometheus metrics (served at `GET /metrics` by
//! [`crate::handlers::metrics`]): requests and latency by route and status
//! (shared with every service), and the guard's figures: how old the last
//! successful revocation sync is, how many sessions are held as revoked,
//! how syncs went, how many keys are loaded.

use std::sync::Mutex;

use prometheus::{Gauge, IntCounterVec, IntGauge, Opts, Registry};
use resource_guard::GuardStats;
use service_kit::http_metrics::{HttpMetrics, render};

pub struct Metrics {
    registry: Registry,
    pub http: HttpMetrics,
    /// Revocation feed reads by outcome (ok: caught up, a successful sync;
    /// partial: a page of a longer read; failed), as the guard counts them.
    syncs: IntCounterVec,
    sync_age: Gauge,
    revoked_sessions: IntGauge,
    jwks_keys: IntGauge,
    /// One scrape at a time brings the counters up to the guard's counts.
    rendering: Mutex<()>,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
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
        Ok(Self {
            registry,
            http,
            syncs,
            sync_age,
            revoked_sessions,
            jwks_keys,
            rendering: Mutex::new(()),
        })
    }

    /// Every metric in Prometheus's text format, with the guard's figures
    /// as they are now.
    pub fn render(&self, now: GuardStats) -> Result<String, prometheus::Error> {
        let _one_at_a_time = self.rendering.lock().unwrap_or_else(|p| p.into_inner());
        for (outcome, count) in [
            ("ok", now.syncs_ok),
            ("partial", now.syncs_partial),
            ("failed", now.syncs_failed),
        ] {
            let counter = self.syncs.with_label_values(&[outcome]);
            counter.inc_by(count.saturating_sub(counter.get()));
        }
        self.sync_age
            .set(now.sync_age.map_or(-1.0, |age| age.as_secs_f64()));
        self.revoked_sessions
            .set(i64::try_from(now.revoked_sessions).unwrap_or(i64::MAX));
        self.jwks_keys
            .set(i64::try_from(now.jwks_keys).unwrap_or(i64::MAX));
        render(&self.registry)
    }
}
