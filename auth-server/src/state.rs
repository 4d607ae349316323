//! What every request handler shares, built once at start.

use std::sync::Arc;

use shared_claims::{ValidationRules, Validator};
use tokio::sync::Notify;

use crate::config::Settings;
use crate::db::Database;
use crate::db::models::RevocationReason;
use crate::db::notifications::ListenStatus;
use crate::factors::password::PasswordPool;
use crate::keys::keyring::SigningKeys;
use crate::limits::replica_limiter::{RateLimiter, Refusals};
use crate::metrics::Metrics;
use crate::tokens::keys::TokenKeys;
use crate::tokens::rotation::Policy;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub database: Database,
    pub passwords: PasswordPool,
    /// The keys that sign and are published, replaced whole on rotation.
    pub signing: Arc<SigningKeys>,
    /// Derives what the server must produce again without storing it.
    pub token_keys: Arc<TokenKeys>,
    pub validator: Arc<Validator>,
    /// Per client (IPv4 address or IPv6 /64) on refresh, in this process
    /// only. The limits on login, register and the requests that send mail
    /// are shared by the replicas, in PostgreSQL
    /// ([`crate::service::rate_limits`]).
    pub refresh_limiter: Option<Arc<RateLimiter>>,
    /// Clients refused for failing to authenticate at introspection, until
    /// their wait is over ([`crate::service::rate_limits::resource_server`]).
    pub resource_server_refusals: Arc<Refusals>,
    /// Woken after every revocation this process commits: long polls of the
    /// revocation feed answer at once.
    pub revocations: Arc<Notify>,
    /// Woken after the signing keys are reloaded: long polls answer at once
    /// when the published keys changed, so the APIs fetch a next key as soon
    /// as it is published.
    pub keys_reloaded: Arc<Notify>,
    /// Whether this replica hears other replicas' notifications now.
    pub listen: Arc<ListenStatus>,
    /// Woken after a request queues mail: the mail worker sends it at once.
    pub mail_queued: Arc<Notify>,
    pub metrics: Arc<Metrics>,
    /// The passkeys' relying party (`WEBAUTHN_RP_ID`, `WEBAUTHN_RP_ORIGINS`).
    pub webauthn: Arc<webauthn_rs::Webauthn>,
}

impl AppState {
    pub fn new(
        settings: Arc<Settings>,
        database: Database,
        passwords: PasswordPool,
        signing: Arc<SigningKeys>,
        token_keys: Arc<TokenKeys>,
        metrics: Arc<Metrics>,
        webauthn: Arc<webauthn_rs::Webauthn>,
    ) -> Self {
        let validator = Validator::new(ValidationRules {
            issuer: settings.tokens.issuer.clone(),
            audience: settings.tokens.audience.clone(),
            leeway: settings.tokens.leeway,
        });
        Self {
            refresh_limiter: settings
                .rate_limits
                .refresh
                .map(|limit| Arc::new(RateLimiter::new(limit))),
            resource_server_refusals: Arc::default(),
            settings,
            database,
            passwords,
            signing,
            token_keys,
            validator: Arc::new(validator),
            revocations: Arc::new(Notify::new()),
            keys_reloaded: Arc::new(Notify::new()),
            listen: Arc::default(),
            mail_queued: Arc::new(Notify::new()),
            webauthn,
            metrics,
        }
    }

    /// After revocations commit: count them, and wake the feed's long polls.
    pub fn revoked(&self, reason: RevocationReason, sessions: usize) {
        self.metrics
            .revocations
            .with_label_values(&[reason.as_str()])
            .inc_by(sessions as u64);
        self.revocations.notify_waiters();
    }

    pub fn rotation_policy(&self) -> Policy {
        Policy {
            refresh_ttl: self.settings.tokens.refresh_ttl,
            reuse_grace: self.settings.tokens.reuse_grace,
            require_verified_email: self.settings.accounts.require_verified_email,
        }
    }
}
