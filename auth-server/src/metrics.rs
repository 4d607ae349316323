//! Prometheus metrics (served at `GET /metrics` by [`crate::http::metrics`]):
//! requests and latency by route and status (shared with every service),
//! logins, registrations, refreshes by outcome, reuse detections, revocations
//! by reason, mail attempts, failed logins left out of the audit trail,
//! pool usage, and whether the LISTEN connection is up.

use std::sync::Arc;

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use service_kit::http_metrics::{HttpMetrics, render};

use crate::db::PoolStats;

pub struct Metrics {
    registry: Registry,
    pub http: HttpMetrics,
    pub logins: IntCounterVec,
    pub registrations: IntCounter,
    pub refreshes: IntCounterVec,
    pub reuse_detections: IntCounter,
    pub revocations: IntCounterVec,
    pub mail: IntCounterVec,
    pub login_failures_unrecorded: IntCounter,
    pool_connections: IntGaugeVec,
    pool_max: IntGauge,
    rotation_pool_connections: IntGaugeVec,
    rotation_pool_max: IntGauge,
    listen_connected: IntGauge,
}

impl Metrics {
    pub fn new() -> Result<Arc<Self>, prometheus::Error> {
        let registry = Registry::new();
        let http = HttpMetrics::register(&registry)?;
        let logins = IntCounterVec::new(
            Opts::new(
                "auth_logins_total",
                "Login attempts by outcome (ok, failed, throttled)",
            ),
            &["outcome"],
        )?;
        let registrations = IntCounter::new("auth_registrations_total", "Users registered")?;
        let refreshes = IntCounterVec::new(
            Opts::new(
                "auth_refreshes_total",
                "Refreshes by outcome (rotated, grace: the successor sent again, grace_access_only, reuse_detected, rejected, unknown)",
            ),
            &["outcome"],
        )?;
        let reuse_detections = IntCounter::new(
            "auth_reuse_detections_total",
            "Consumed refresh tokens presented after the grace (sessions revoked)",
        )?;
        let revocations = IntCounterVec::new(
            Opts::new(
                "auth_session_revocations_total",
                "Sessions revoked, by reason",
            ),
            &["reason"],
        )?;
        let mail = IntCounterVec::new(
            Opts::new(
                "auth_mail_attempts_total",
                "Mail worker attempts by outcome (sent, retrying, dropped)",
            ),
            &["outcome"],
        )?;
        let login_failures_unrecorded = IntCounter::new(
            "auth_login_failures_unrecorded_total",
            "Failed logins not stored as audit events (unknown accounts, or one already stored for the account and address within the window)",
        )?;
        let pool_connections = IntGaugeVec::new(
            Opts::new(
                "db_pool_connections",
                "Database pool connections by state (idle, in_use)",
            ),
            &["state"],
        )?;
        let pool_max = IntGauge::new("db_pool_max_connections", "Database pool size")?;
        let rotation_pool_connections = IntGaugeVec::new(
            Opts::new(
                "db_rotation_pool_connections",
                "Connections of the refresh rotation's asynchronous pool by state (idle, in_use)",
            ),
            &["state"],
        )?;
        let rotation_pool_max = IntGauge::new(
            "db_rotation_pool_max_connections",
            "Size of the refresh rotation's asynchronous pool (all workers' shares)",
        )?;
        let listen_connected = IntGauge::new(
            "auth_listen_connected",
            "1 while the LISTEN connection that hears other replicas' revocations and key changes is up (else held polls fall back to re-reading every 250 ms)",
        )?;
        registry.register(Box::new(logins.clone()))?;
        registry.register(Box::new(registrations.clone()))?;
        registry.register(Box::new(refreshes.clone()))?;
        registry.register(Box::new(reuse_detections.clone()))?;
        registry.register(Box::new(revocations.clone()))?;
        registry.register(Box::new(mail.clone()))?;
        registry.register(Box::new(login_failures_unrecorded.clone()))?;
        registry.register(Box::new(pool_connections.clone()))?;
        registry.register(Box::new(pool_max.clone()))?;
        registry.register(Box::new(rotation_pool_connections.clone()))?;
        registry.register(Box::new(rotation_pool_max.clone()))?;
        registry.register(Box::new(listen_connected.clone()))?;
        Ok(Arc::new(Self {
            registry,
            http,
            logins,
            registrations,
            refreshes,
            reuse_detections,
            revocations,
            mail,
            login_failures_unrecorded,
            pool_connections,
            pool_max,
            rotation_pool_connections,
            rotation_pool_max,
            listen_connected,
        }))
    }

    /// Every metric in Prometheus's text format, with both pools' figures
    /// and the LISTEN connection's state as they are now.
    pub fn render(
        &self,
        pool: PoolStats,
        rotation_pool: PoolStats,
        listening: bool,
    ) -> Result<String, prometheus::Error> {
        self.listen_connected.set(i64::from(listening));
        set_pool(&self.pool_connections, &self.pool_max, pool);
        set_pool(
            &self.rotation_pool_connections,
            &self.rotation_pool_max,
            rotation_pool,
        );
        render(&self.registry)
    }
}

fn set_pool(connections: &IntGaugeVec, max: &IntGauge, stats: PoolStats) {
    connections
        .with_label_values(&["idle"])
        .set(i64::from(stats.idle));
    connections
        .with_label_values(&["in_use"])
        .set(i64::from(stats.in_use));
    max.set(i64::from(stats.max));
}
