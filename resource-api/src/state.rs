use std::sync::Arc;

use shared_claims::Validator;
use shared_claims::jwks::JwksCache;

use crate::config::Settings;
use crate::metrics::Metrics;
use crate::revocations::Revocations;
use crate::verified::VerifiedTokens;

/// What every request shares: settings, keys and revocations, all local.
#[derive(Clone)]
pub struct ApiState {
    pub settings: Arc<Settings>,
    pub validator: Arc<Validator>,
    pub jwks: Arc<JwksCache>,
    pub revocations: Arc<Revocations>,
    pub metrics: Arc<Metrics>,
    /// Tokens whose signature and claims were already checked.
    pub verified: Arc<VerifiedTokens>,
}
