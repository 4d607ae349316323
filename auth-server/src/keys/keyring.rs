//! The signing keys a replica holds, and when each one is published, signs
//! and stops being published; with the rules of automatic rotation as pure
//! functions of the keys' dates (the statements: [`crate::db::signing_keys`];
//! the loading and the rotation task: [`crate::service::signing_keys`]).
//!
//! A key's life, with `SIGNING_KEY_ROTATION` = R and
//! `SIGNING_KEY_PUBLISH_AHEAD` = A:
//!
//! 1. created at `publish_at`: in the JWKS from then on, signing nothing yet,
//!    so every API has had the time to fetch it before the first token it
//!    signs arrives;
//! 2. signs from `activate_at` = `publish_at` + A, until the next key's
//!    `activate_at` (its own `retire_at`), R later;
//! 3. stays published until the last token it signed has expired:
//!    `retire_at` + `ACCESS_TOKEN_TTL` + `JWT_LEEWAY`.
//!
//! Every replica signs with the newest key whose `activate_at` has passed,
//! by its own clock: the switch needs no coordination, and a replica whose
//! clock is a little off signs a few seconds early or late with keys that
//! every API already has.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::JwkSet;
use shared_claims::{AccessClaims, KeySet};

use crate::keys::signing::SigningKey;

/// When a key is published, signs and is retired; `None` is "always" for
/// the first two and "not yet" for the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyTimes {
    pub publish_at: DateTime<Utc>,
    pub activate_at: DateTime<Utc>,
    pub retire_at: Option<DateTime<Utc>>,
}

impl KeyTimes {
    /// A key that signs from the start of time: `SIGNING_KEY_FILE`, or a
    /// development key.
    pub const ALWAYS: Self = Self {
        publish_at: DateTime::<Utc>::MIN_UTC,
        activate_at: DateTime::<Utc>::MIN_UTC,
        retire_at: None,
    };

    /// A key from `RETIRED_SIGNING_KEY_FILES` beside the database's: older
    /// than any of them, so it never signs, and published for as long as it
    /// is configured (the way from `SIGNING_KEY_FILE` to the database).
    pub const CONFIGURED_RETIRED: Self = Self {
        publish_at: DateTime::<Utc>::MIN_UTC,
        activate_at: DateTime::<Utc>::MIN_UTC,
        retire_at: Some(DateTime::<Utc>::MAX_UTC),
    };

    /// Whether the JWKS lists it at `now`: published, and not yet past the
    /// expiry of the last token it can have signed.
    pub fn published(&self, now: DateTime<Utc>, last_token: Duration) -> bool {
        self.publish_at <= now
            && self
                .retire_at
                .is_none_or(|retired| now < after(retired, last_token))
    }
}

fn after(at: DateTime<Utc>, span: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(span)
        .ok()
        .and_then(|span| at.checked_add_signed(span))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

struct Entry {
    key: SigningKey,
    times: KeyTimes,
}

/// The keys at one moment of loading, the oldest first.
pub struct Keyring {
    entries: Vec<Entry>,
    /// Every key held, the next one included: what this server's own Bearer
    /// endpoints verify with (a key that signs nothing yet verifies nothing).
    verification: KeySet,
    /// How long after its retirement a key stays published: the access
    /// tokens' lifetime and leeway.
    last_token: Duration,
}

impl Keyring {
    /// One key, signing for ever (with the retired keys it carries).
    pub fn single(key: SigningKey) -> Self {
        Self::new(vec![(key, KeyTimes::ALWAYS)], Duration::ZERO)
    }

    /// Keys and their dates, in any order; empty is refused by the caller.
    pub fn new(keys: Vec<(SigningKey, KeyTimes)>, last_token: Duration) -> Self {
        let mut entries: Vec<Entry> = keys
            .into_iter()
            .map(|(key, times)| Entry { key, times })
            .collect();
        entries.sort_by_key(|e| e.times.activate_at);
        let mut verification = KeySet::default();
        for entry in &entries {
            let keys = entry.key.verification_keys();
            for jwk in &entry.key.jwks().keys {
                if let Some(kid) = &jwk.common.key_id
                    && let Some(key) = keys.get(kid)
                {
                    verification.insert(kid.clone(), key.clone());
                }
            }
        }
        Self {
            entries,
            verification,
            last_token,
        }
    }

    /// The key that signs at `now`: the newest whose `activate_at` has
    /// passed (the oldest, should none have: never the case once loaded).
    pub fn signer(&self, now: DateTime<Utc>) -> Option<&SigningKey> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.times.activate_at <= now)
            .or_else(|| self.entries.first())
            .map(|e| &e.key)
    }

    /// The JWKS at `now`: the next key once published, the signing one, and
    /// retired ones until their last token has expired.
    pub fn jwks(&self, now: DateTime<Utc>) -> JwkSet {
        let signer = self.signer(now).map(SigningKey::kid);
        JwkSet {
            keys: self
                .entries
                .iter()
                .filter(|e| Some(e.key.kid()) == signer || e.times.published(now, self.last_token))
                .flat_map(|e| e.key.jwks().keys)
                .collect(),
        }
    }

    /// The kids the JWKS lists at `now`.
    pub fn published_kids(&self, now: DateTime<Utc>) -> Vec<String> {
        self.jwks(now)
            .keys
            .into_iter()
            .filter_map(|jwk| jwk.common.key_id)
            .collect()
    }

    pub fn verification_keys(&self) -> &KeySet {
        &self.verification
    }

    /// The kids held, with their dates, oldest first.
    pub fn kids(&self) -> Vec<(String, KeyTimes)> {
        self.entries
            .iter()
            .map(|e| (e.key.kid().to_owned(), e.times))
            .collect()
    }
}

/// The keyring every request reads, replaced whole when keys are reloaded.
pub struct SigningKeys {
    ring: RwLock<Arc<Keyring>>,
    /// When a reload last changed the published kids (microseconds since
    /// the epoch): a feed reader answered before then has not seen them.
    kids_changed_at: AtomicI64,
}

impl SigningKeys {
    pub fn new(ring: Keyring) -> Self {
        Self {
            ring: RwLock::new(Arc::new(ring)),
            kids_changed_at: AtomicI64::new(Utc::now().timestamp_micros()),
        }
    }

    /// When the published kids last changed (this process's start at the
    /// earliest).
    pub fn kids_changed_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.kids_changed_at.load(Ordering::Relaxed))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    pub fn ring(&self) -> Arc<Keyring> {
        Arc::clone(&self.ring.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn replace(&self, ring: Keyring) {
        let now = Utc::now();
        let kids = ring.published_kids(now);
        let old = std::mem::replace(
            &mut *self.ring.write().unwrap_or_else(PoisonError::into_inner),
            Arc::new(ring),
        );
        if old.published_kids(now) != kids {
            self.kids_changed_at
                .store(now.timestamp_micros(), Ordering::Relaxed);
        }
    }

    /// Signs with the key active now.
    pub fn sign(&self, claims: &AccessClaims) -> anyhow::Result<String> {
        self.ring()
            .signer(Utc::now())
            .ok_or_else(|| anyhow::anyhow!("no signing key loaded"))?
            .sign(claims)
    }

    pub fn jwks(&self) -> JwkSet {
        self.ring().jwks(Utc::now())
    }

    pub fn published_kids(&self) -> Vec<String> {
        self.ring().published_kids(Utc::now())
    }
}

/// `SIGNING_KEY_ROTATION` and `SIGNING_KEY_PUBLISH_AHEAD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub rotation: Duration,
    pub publish_ahead: Duration,
}

/// A key to create: published at once, signing from `activate_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewKey {
    pub activate_at: DateTime<Utc>,
}

/// Whether a key must be created at `now`, given the dates of every key
/// stored: the first one (signing at once: no token exists that an API
/// could fail to verify), or the next one, once the active key has signed
/// for `rotation` less `publish_ahead`, signing `publish_ahead` later. Not
/// while a next key is waiting to sign.
pub fn due(now: DateTime<Utc>, keys: &[KeyTimes], schedule: Schedule) -> Option<NewKey> {
    let Some(newest) = keys.iter().map(|k| k.activate_at).max() else {
        return Some(NewKey { activate_at: now });
    };
    if newest > now {
        return None;
    }
    let lead = schedule.rotation.saturating_sub(schedule.publish_ahead);
    (now >= after(newest, lead)).then(|| NewKey {
        activate_at: after(now, schedule.publish_ahead),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEDULE: Schedule = Schedule {
        rotation: Duration::from_secs(30 * 86_400),
        publish_ahead: Duration::from_secs(600),
    };
    const TTL: Duration = Duration::from_secs(905);

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn times(publish: i64, activate: i64, retire: Option<i64>) -> KeyTimes {
        KeyTimes {
            publish_at: at(publish),
            activate_at: at(activate),
            retire_at: retire.map(at),
        }
    }

    #[test]
    fn the_first_key_signs_at_once() {
        assert_eq!(
            due(at(0), &[], SCHEDULE),
            Some(NewKey { activate_at: at(0) })
        );
    }

    #[test]
    fn the_next_key_is_published_ahead_of_the_rotation_and_only_once() {
        let month = 30 * 86_400;
        let active = [times(0, 0, None)];
        assert_eq!(due(at(month - 601), &active, SCHEDULE), None);
        assert_eq!(
            due(at(month - 600), &active, SCHEDULE),
            Some(NewKey {
                activate_at: at(month)
            })
        );
        // Once created, nothing more until it has signed a whole period.
        let both = [times(0, 0, Some(month)), times(month - 600, month, None)];
        assert_eq!(due(at(month - 300), &both, SCHEDULE), None);
        assert_eq!(due(at(month + 10), &both, SCHEDULE), None);
        // A replica that slept through the date catches up, still ahead.
        assert_eq!(
            due(at(3 * month), &active, SCHEDULE),
            Some(NewKey {
                activate_at: at(3 * month + 600)
            })
        );
    }

    #[test]
    fn the_ring_signs_with_the_newest_active_key_and_publishes_next_active_and_retired() {
        let old = SigningKey::ephemeral().unwrap();
        let current = SigningKey::ephemeral().unwrap();
        let next = SigningKey::ephemeral().unwrap();
        let (old_kid, current_kid, next_kid) = (
            old.kid().to_owned(),
            current.kid().to_owned(),
            next.kid().to_owned(),
        );
        let ring = Keyring::new(
            vec![
                (next, times(1_000, 1_600, None)),
                (old, times(-5_000, -4_000, Some(0))),
                (current, times(-600, 0, Some(1_600))),
            ],
            TTL,
        );
        let kids = |now| ring.published_kids(at(now));
        assert_eq!(ring.signer(at(10)).unwrap().kid(), current_kid);
        assert_eq!(kids(10), [old_kid.clone(), current_kid.clone()]);
        assert_eq!(
            kids(905),
            std::slice::from_ref(&current_kid),
            "the old key's tokens have expired"
        );
        assert_eq!(
            kids(1_000),
            [current_kid.clone(), next_kid.clone()],
            "next published"
        );
        assert_eq!(ring.signer(at(1_599)).unwrap().kid(), current_kid);
        assert_eq!(
            ring.signer(at(1_600)).unwrap().kid(),
            next_kid,
            "switch at activate_at"
        );
        assert_eq!(kids(1_600 + 904), [current_kid.clone(), next_kid.clone()]);
        assert_eq!(kids(1_600 + 905), std::slice::from_ref(&next_kid));
        assert_eq!(ring.verification_keys().len(), 3);
        let jwks = serde_json::to_value(ring.jwks(at(10))).unwrap();
        assert!(
            jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .all(|k| k.get("d").is_none())
        );
    }

    #[test]
    fn a_single_key_signs_for_ever_with_its_retired_keys_published() {
        let mut key = SigningKey::ephemeral().unwrap();
        let kid = key.kid().to_owned();
        key.retire(SigningKey::ephemeral().unwrap());
        let ring = Keyring::single(key);
        assert_eq!(ring.signer(Utc::now()).unwrap().kid(), kid);
        assert_eq!(ring.published_kids(Utc::now()).len(), 2);
        assert_eq!(ring.verification_keys().len(), 2);
    }
}
