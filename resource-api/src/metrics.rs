//! Prometheus metrics at `GET /metrics`: requests and latency by route and
//! status (shared with every service), and the revocation state: how old the
//! last successful sync is, how many sessions are held as revoked, how syncs
//! went, how many keys are loaded.

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use prometheus::{Gauge, IntCounterVec, IntGauge, Opts, Registry};
use service_kit::http_metrics::{HttpMetrics, render};

use crate::error::ApiError;
use crate::state::ApiState;

pub struct Metrics {
    registry: Registry,
    pub http: HttpMetrics,
    /// Revocation syncs by outcome (ok, failed); the sync task counts them.
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
            Opts::new("revocation_syncs_total", "Revocation feed reads by outcome"),
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

    fn render(&self, state: &ApiState) -> Result<String, prometheus::Error> {
        self.sync_age.set(
            state
                .revocations
                .age()
                .map_or(-1.0, |age| age.as_secs_f64()),
        );
        self.revoked_sessions
            .set(i64::try_from(state.revocations.len()).unwrap_or(i64::MAX));
        self.jwks_keys
            .set(i64::try_from(state.jwks.keys().len()).unwrap_or(i64::MAX));
        render(&self.registry)
    }
}

pub async fn endpoint(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let text = state
        .metrics
        .render(&state)
        .map_err(|e| ApiError::Unavailable(format!("rendering metrics: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(text))
}
