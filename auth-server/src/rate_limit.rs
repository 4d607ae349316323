//! Per-key token buckets: login and register per client IP and per account,
//! refresh per client IP.
//!
//! In memory, per process: with several replicas each enforces its own
//! budget, so the effective limit is multiplied by the replica count.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::RateLimit;

/// Buckets kept at most; past it, full (idle) buckets are dropped first.
const MAX_TRACKED_KEYS: usize = 100_000;

#[derive(Debug)]
pub struct RateLimiter<K> {
    capacity: f64,
    refill_per_sec: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl<K: Hash + Eq> RateLimiter<K> {
    pub fn new(limit: RateLimit) -> Self {
        let capacity = f64::from(limit.requests);
        Self {
            capacity,
            refill_per_sec: capacity / limit.per.as_secs_f64(),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// `Ok` when the request may go on; otherwise how long until it could.
    pub fn check(&self, key: K) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: K, now: Instant) -> Result<(), Duration> {
        // A poisoned lock only means another thread panicked mid-update of a
        // counter; the map is still usable.
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= MAX_TRACKED_KEYS && !buckets.contains_key(&key) {
            self.forget_idle(&mut buckets, now);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.capacity,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.refill_per_sec).min(self.capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.refill_per_sec,
            ))
        }
    }

    fn forget_idle(&self, buckets: &mut HashMap<K, Bucket>, now: Instant) {
        let refill = self.refill_per_sec;
        let capacity = self.capacity;
        buckets.retain(|_, b| {
            b.tokens + now.saturating_duration_since(b.updated).as_secs_f64() * refill < capacity
        });
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    #[test]
    fn allows_the_budget_then_refuses_until_refilled() {
        let limiter = RateLimiter::new(RateLimit {
            requests: 2,
            per: Duration::from_secs(60),
        });
        let ip: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        let t0 = Instant::now();
        assert!(limiter.check_at(ip, t0).is_ok());
        assert!(limiter.check_at(ip, t0).is_ok());
        let wait = limiter.check_at(ip, t0).unwrap_err();
        assert!(wait > Duration::from_secs(29) && wait <= Duration::from_secs(30));
        assert!(limiter.check_at(other, t0).is_ok(), "keys are independent");
        assert!(limiter.check_at(ip, t0 + Duration::from_secs(30)).is_ok());
    }
}
