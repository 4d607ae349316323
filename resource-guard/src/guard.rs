//! The guard: started once with its settings, it keeps the auth server's
//! keys and the revoked sessions in memory (two background tasks), and
//! decides on each request with no network call.

use std::sync::Arc;
use std::time::Duration;

use service_kit::env::ConfigError;
use shared_claims::{MAX_TOKEN_BYTES, TokenError, ValidationRules, Validator};
use tokio::task::JoinHandle;

use crate::bearer::{Presented, presented};
use crate::error::{GuardError, Refusal, Unready};
use crate::jwks::{JwksCache, JwksSettings};
use crate::principal::Principal;
use crate::revocations::{Freshness, Revocations, Sync, SyncCounts};
use crate::settings::{GuardSettings, RevocationSettings};
use crate::verified::VerifiedTokens;

/// How long one JWKS fetch may take.
const JWKS_TIMEOUT: Duration = Duration::from_secs(5);

/// Cheap to clone: every clone is the same guard. Its background tasks stop
/// when the last clone is dropped.
#[derive(Clone)]
pub struct Guard {
    inner: Arc<Inner>,
}

struct Inner {
    validator: Validator,
    jwks: Arc<JwksCache>,
    revocations: Arc<Revocations>,
    /// Tokens whose signature and claims were already checked.
    verified: VerifiedTokens,
    counts: Arc<SyncCounts>,
    revocation: RevocationSettings,
    realm: Arc<str>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("realm", &self.inner.realm)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Settings(#[from] ConfigError),
    #[error("the guard starts its background tasks on a tokio runtime: start it inside one")]
    NoRuntime,
    #[error("{0}")]
    Client(String),
}

/// Whether the guard can decide, for a readiness probe. The words of
/// [`Unready::words`] are safe to publish; `detail` is for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Revocation state is stale, but the guard fails open and still
    /// accepts tokens: taking the service out of rotation would defeat
    /// failing open.
    Degraded {
        reason: Unready,
        detail: String,
    },
    NotReady {
        reason: Unready,
        detail: String,
    },
}

/// Figures for the user's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardStats {
    /// Verification keys loaded from the JWKS.
    pub jwks_keys: usize,
    /// Revoked sessions held in memory.
    pub revoked_sessions: usize,
    /// Since the last successful revocation sync; `None` before the first.
    pub sync_age: Option<Duration>,
    /// Feed reads that caught up (successful syncs).
    pub syncs_ok: u64,
    /// Feed reads that brought a page of more.
    pub syncs_partial: u64,
    pub syncs_failed: u64,
    /// Tokens in the verified-token cache.
    pub verified_tokens: usize,
}

impl Guard {
    /// Checks the settings and starts, on the current tokio runtime, the
    /// JWKS refresher and the revocation sync. Requests are refused with
    /// `503` until the first JWKS fetch and the first sync succeed.
    pub fn start(settings: GuardSettings) -> Result<Self, StartError> {
        settings.check()?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StartError::NoRuntime);
        }
        for warning in settings.warnings() {
            tracing::warn!("{warning}");
        }
        let jwks = JwksCache::new(JwksSettings {
            refresh_interval: settings.jwks.refresh_interval,
            min_refetch_interval: settings.jwks.min_refetch_interval,
            timeout: JWKS_TIMEOUT,
            ..JwksSettings::for_auth_url(&settings.auth_url)
        })
        .map_err(|e| StartError::Client(e.to_string()))?;
        let revocations = Arc::new(Revocations::default());
        let counts = Arc::new(SyncCounts::default());
        let sync = Sync {
            revocations: Arc::clone(&revocations),
            counts: Arc::clone(&counts),
            jwks: Arc::clone(&jwks),
            auth_internal_url: settings.auth_internal_url.clone(),
            token: settings.internal_api_token.clone(),
            settings: settings.revocation.clone(),
        }
        .spawn()
        .map_err(StartError::Client)?;
        let tasks = vec![jwks.spawn(), sync];
        Ok(Self {
            inner: Arc::new(Inner {
                validator: Validator::new(ValidationRules {
                    issuer: settings.issuer,
                    audience: settings.audience,
                    leeway: settings.leeway,
                }),
                jwks,
                revocations,
                verified: VerifiedTokens::new(settings.verified_tokens.max(1), settings.leeway),
                counts,
                revocation: settings.revocation,
                realm: Arc::from(settings.realm),
                tasks,
            }),
        })
    }

    /// Who the bearer token says is calling, or why the request is refused;
    /// `None` when the request sent no `Authorization` header. No network
    /// call: the token is validated locally (or found in the cache of
    /// tokens already verified), then its session is looked up in the
    /// revocation set, and the set must be fresh unless the guard fails
    /// open.
    pub fn authenticate(&self, bearer: Option<&str>) -> Result<Principal, GuardError> {
        self.decide(bearer.map_or(Presented::Nothing, Presented::Bearer))
    }

    /// As [`Self::authenticate`], from the raw values of the request's
    /// `Authorization` headers: a header that is not one Bearer credential
    /// is refused as an invalid token (not as a missing one).
    pub fn authenticate_header<'a>(
        &self,
        authorization: impl Iterator<Item = &'a [u8]>,
    ) -> Result<Principal, GuardError> {
        self.decide(presented(authorization))
    }

    fn decide(&self, presented: Presented<'_>) -> Result<Principal, GuardError> {
        let inner = &self.inner;
        let token = match presented {
            Presented::Nothing => return Err(self.refuse(Refusal::MissingToken)),
            Presented::NotBearer => return Err(self.refuse(Refusal::NotBearer)),
            Presented::Bearer(token) => token,
        };
        let invalid = |e: TokenError| self.refuse(Refusal::InvalidToken(e));
        // Before the cache hashes it.
        if token.len() > MAX_TOKEN_BYTES {
            return Err(invalid(TokenError::TooLong));
        }
        let keys = inner.jwks.keys();
        if keys.is_empty() {
            return Err(self.refuse(Refusal::Unavailable {
                reason: Unready::KeysNotLoaded,
                detail: "no JWKS fetched yet".to_owned(),
            }));
        }
        let now = chrono::Utc::now().timestamp();
        let claims = match inner.verified.get(token, &keys, now) {
            Some(claims) => claims,
            None => {
                let claims = inner.validator.validate(token, &keys).map_err(|e| {
                    if matches!(e, TokenError::UnknownKey { .. }) {
                        // Maybe a new key: the background task refetches (rate-limited).
                        inner.jwks.request_refetch();
                    }
                    invalid(e)
                })?;
                inner
                    .verified
                    .insert(token, Arc::clone(&keys), claims.clone());
                claims
            }
        };
        if let Freshness::Stale { detail } =
            inner.revocations.freshness(inner.revocation.max_staleness)
        {
            if !inner.revocation.fail_open {
                return Err(self.refuse(Refusal::Unavailable {
                    reason: Unready::RevocationsStale,
                    detail,
                }));
            }
            tracing::warn!(%detail, "accepting a token without fresh revocation state (REVOCATION_FAIL_OPEN)");
        }
        if inner.revocations.is_revoked(&claims.sid)
            || inner
                .revocations
                .is_outdated(&claims.sub, claims.roles_version())
        {
            return Err(invalid(TokenError::Revoked));
        }
        record_identity(&claims);
        Ok(Principal::new(claims, Arc::clone(&inner.realm)))
    }

    /// Ready when the keys are loaded and the revocation state is fresh;
    /// degraded, not unready, when it is stale and the guard fails open.
    pub fn readiness(&self) -> Readiness {
        let inner = &self.inner;
        if !inner.jwks.is_loaded() {
            return Readiness::NotReady {
                reason: Unready::KeysNotLoaded,
                detail: "no JWKS fetched yet".to_owned(),
            };
        }
        match inner.revocations.freshness(inner.revocation.max_staleness) {
            Freshness::Fresh => Readiness::Ready,
            Freshness::Stale { detail } if inner.revocation.fail_open => Readiness::Degraded {
                reason: Unready::RevocationsStale,
                detail,
            },
            Freshness::Stale { detail } => Readiness::NotReady {
                reason: Unready::RevocationsStale,
                detail,
            },
        }
    }

    pub fn stats(&self) -> GuardStats {
        use std::sync::atomic::Ordering::Relaxed;
        let inner = &self.inner;
        GuardStats {
            jwks_keys: inner.jwks.keys().len(),
            revoked_sessions: inner.revocations.len(),
            sync_age: inner.revocations.age(),
            syncs_ok: inner.counts.ok.load(Relaxed),
            syncs_partial: inner.counts.partial.load(Relaxed),
            syncs_failed: inner.counts.failed.load(Relaxed),
            verified_tokens: inner.verified.len(),
        }
    }

    /// The realm of the guard's challenges.
    pub fn realm(&self) -> &str {
        &self.inner.realm
    }

    /// A refusal in this guard's realm.
    pub fn refuse(&self, refusal: Refusal) -> GuardError {
        GuardError::new(refusal, Arc::clone(&self.inner.realm))
    }
}

/// The caller, on the request's span when it has these fields (as the
/// services' root spans do); elsewhere nothing happens.
fn record_identity(claims: &shared_claims::AccessClaims) {
    let span = tracing::Span::current();
    span.record("user_id", tracing::field::display(claims.sub));
    span.record("session_id", tracing::field::display(claims.sid));
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use shared_claims::feed::{FeedEntry, UserEntry};
    use uuid::Uuid;

    use super::*;

    /// RFC 8037's example Ed25519 key, as PKCS#8 DER; its public half is
    /// the JWKS below.
    const PRIVATE_KEY: [u8; 48] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20, 0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec,
        0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c,
        0xae, 0x7f, 0x60,
    ];

    fn jwks() -> jsonwebtoken::jwk::JwkSet {
        serde_json::from_value(serde_json::json!({ "keys": [{
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": "k1",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
        }]}))
        .unwrap()
    }

    /// A guard whose auth server never answers (the discard port): what it
    /// knows, the tests give it.
    fn guard(fail_open: bool) -> Guard {
        let mut settings = GuardSettings::from_lookup(|name| match name {
            "AUTH_URL" | "AUTH_INTERNAL_URL" => Some("http://127.0.0.1:9".to_owned()),
            _ => None,
        })
        .unwrap();
        settings.revocation.fail_open = fail_open;
        Guard::start(settings).unwrap()
    }

    fn token(sid: Uuid) -> String {
        let now = Utc::now().timestamp();
        // As the auth server signs them (claims this version does not read
        // are ignored).
        let claims = serde_json::json!({
            "iss": "http://localhost:8080", "aud": "resource-api",
            "sub": Uuid::new_v4(), "sid": sid, "jti": Uuid::new_v4(),
            "iat": now, "nbf": now, "exp": now + 60,
            "email": "a@example.com", "email_verified": false, "roles": ["reader"],
        });
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("at+jwt".into());
        header.kid = Some("k1".into());
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&PRIVATE_KEY)).unwrap()
    }

    fn refusal(result: Result<Principal, GuardError>) -> Refusal {
        result.unwrap_err().refusal
    }

    #[test]
    fn starting_needs_a_tokio_runtime() {
        let settings = GuardSettings::from_lookup(|_| None).unwrap();
        assert!(matches!(Guard::start(settings), Err(StartError::NoRuntime)));
    }

    #[tokio::test]
    async fn before_the_keys_arrive_it_answers_503_but_a_missing_token_is_still_401() {
        let guard = guard(false);
        assert_eq!(refusal(guard.authenticate(None)), Refusal::MissingToken);
        assert!(matches!(
            refusal(guard.authenticate(Some("a.b.c"))),
            Refusal::Unavailable {
                reason: Unready::KeysNotLoaded,
                ..
            }
        ));
        assert!(matches!(
            guard.readiness(),
            Readiness::NotReady {
                reason: Unready::KeysNotLoaded,
                ..
            }
        ));
        let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(
            refusal(guard.authenticate(Some(&huge))),
            Refusal::InvalidToken(TokenError::TooLong)
        );
    }

    #[tokio::test]
    async fn a_header_that_is_not_bearer_is_an_invalid_token_not_a_missing_one() {
        let guard = guard(false);
        let refused = guard
            .authenticate_header(std::iter::once(&b"Basic dXNlcjpwYXNz"[..]))
            .unwrap_err();
        assert_eq!(refused.refusal, Refusal::NotBearer);
        assert_eq!(refused.status(), 401);
        assert_eq!(refused.code().as_str(), "invalid_token");
    }

    /// The fail-closed rule: a valid token is refused with `503` until the
    /// revocation state is fresh, then accepted until its session is
    /// revoked.
    #[tokio::test]
    async fn a_valid_token_waits_for_fresh_revocations_then_for_its_session() {
        let guard = guard(false);
        guard.inner.jwks.install(jwks()).unwrap();
        let sid = Uuid::new_v4();
        let token = token(sid);
        assert!(matches!(
            refusal(guard.authenticate(Some(&token))),
            Refusal::Unavailable {
                reason: Unready::RevocationsStale,
                ..
            }
        ));
        guard.inner.revocations.synced();
        assert_eq!(guard.readiness(), Readiness::Ready);
        let user = guard.authenticate(Some(&token)).unwrap();
        assert_eq!(user.session_id(), sid);
        assert!(user.has_role("reader"));
        assert_eq!(user.require_role("admin").unwrap_err().status(), 403);
        assert_eq!(guard.stats().verified_tokens, 1);

        guard.inner.revocations.apply(&[FeedEntry {
            session_id: sid,
            revoked_at: Utc::now(),
            forget_after: Utc::now() + chrono::Duration::minutes(16),
        }]);
        assert_eq!(
            refusal(guard.authenticate(Some(&token))),
            Refusal::InvalidToken(TokenError::Revoked),
            "cached as verified, still revoked"
        );
        assert_eq!(guard.stats().revoked_sessions, 1);
    }

    /// A user's entry in the feed refuses the tokens issued under an older
    /// roles version (no `rv`: version 0), even cached as verified.
    #[tokio::test]
    async fn a_token_older_than_its_users_roles_version_is_refused() {
        let guard = guard(false);
        guard.inner.jwks.install(jwks()).unwrap();
        guard.inner.revocations.synced();
        let token = token(Uuid::new_v4());
        let user = guard.authenticate(Some(&token)).unwrap();
        let entry = |roles_version| UserEntry {
            user_id: user.user_id(),
            roles_version,
            changed_at: Utc::now(),
            forget_after: Utc::now() + chrono::Duration::minutes(16),
        };
        guard.inner.revocations.apply_users(&[entry(0)]);
        assert!(
            guard.authenticate(Some(&token)).is_ok(),
            "version 0 is current"
        );
        guard.inner.revocations.apply_users(&[entry(1)]);
        assert_eq!(
            refusal(guard.authenticate(Some(&token))),
            Refusal::InvalidToken(TokenError::Revoked)
        );
    }

    #[tokio::test]
    async fn failing_open_accepts_without_fresh_revocations_and_says_degraded() {
        let guard = guard(true);
        guard.inner.jwks.install(jwks()).unwrap();
        assert!(guard.authenticate(Some(&token(Uuid::new_v4()))).is_ok());
        assert!(matches!(
            guard.readiness(),
            Readiness::Degraded {
                reason: Unready::RevocationsStale,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn dropping_the_last_clone_stops_the_background_tasks() {
        let guard = guard(false);
        let tasks: Vec<_> = guard
            .inner
            .tasks
            .iter()
            .map(JoinHandle::abort_handle)
            .collect();
        let clone = guard.clone();
        drop(guard);
        tokio::task::yield_now().await;
        assert!(tasks.iter().all(|t| !t.is_finished()), "a clone keeps them");
        drop(clone);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(tasks.iter().all(tokio::task::AbortHandle::is_finished));
    }
}
