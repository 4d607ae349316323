//! The per-address limit kept in memory: refresh (`REFRESH_RATE_LIMIT`), per
//! [`ClientKey`] (an IPv4 address or an IPv6 /64); and [`Refusals`], the
//! clients a shared limit refused, until their wait is over.
//!
//! governor's GCRA decides (a burst of the limit's count, then one more per
//! `per / count`); each key's state lives in a bounded `quick_cache`, so
//! memory stays bounded whatever addresses arrive, and no lookup ever scans
//! the keys. Past capacity the cache evicts by S3-FIFO: keys seen once go
//! first, keys that keep coming (a client being limited) stay. An evicted
//! key starts again with a full budget: the price of a hard bound.
//!
//! Per process: with several replicas each enforces its own budget, on
//! purpose (refresh is the hot path; a shared count would add a database
//! round trip to every rotation). The limits that must hold across replicas
//! are in PostgreSQL: login, register, the mail requests and failed
//! authentications at introspection ([`crate::service::rate_limits`]),
//! failed logins
//! ([`crate::limits::login_throttle`]).

use std::convert::Infallible;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::clock::{Clock, MonotonicClock};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed, StateStore};
use governor::{Quota, RateLimiter as Gcra};
use quick_cache::sync::Cache;

use crate::limits::RateLimit;
use crate::limits::client_key::ClientKey;

/// Clients tracked at most per limit (about 100 bytes each).
pub const MAX_TRACKED_CLIENTS: usize = 100_000;

/// governor's state store: one GCRA state per client, in a bounded cache.
pub struct BoundedStates {
    states: Arc<Cache<ClientKey, Arc<InMemoryState>>>,
}

impl StateStore for BoundedStates {
    type Key = ClientKey;

    fn measure_and_replace<T, F, E>(&self, key: &ClientKey, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let state = match self
            .states
            .get_or_insert_with(key, || Ok::<_, Infallible>(Arc::default()))
        {
            Ok(state) => state,
            Err(never) => match never {},
        };
        state.measure_and_replace(&NotKeyed::NonKey, f)
    }
}

pub struct RateLimiter<C: Clock = MonotonicClock> {
    gcra: Gcra<ClientKey, BoundedStates, C, NoOpMiddleware<C::Instant>>,
    states: Arc<Cache<ClientKey, Arc<InMemoryState>>>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        Self::with_clock(limit, MAX_TRACKED_CLIENTS, MonotonicClock)
    }
}

impl<C: Clock> RateLimiter<C> {
    pub fn with_clock(limit: RateLimit, capacity: usize, clock: C) -> Self {
        let burst = NonZeroU32::new(limit.requests).unwrap_or(NonZeroU32::MIN);
        // Configuration refuses an empty window, so the period is positive
        // but for absurd rates (more than one per nanosecond).
        let period = (limit.per / burst.get()).max(Duration::from_nanos(1));
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(burst))
            .allow_burst(burst);
        let states = Arc::new(Cache::new(capacity));
        let store = BoundedStates {
            states: Arc::clone(&states),
        };
        Self {
            gcra: Gcra::new(quota, store, clock),
            states,
        }
    }

    /// `Ok` when the request may go on; otherwise how long until it could.
    pub fn check(&self, client: ClientKey) -> Result<(), Duration> {
        self.gcra
            .check_key(&client)
            .map_err(|not_until| not_until.wait_time_from(self.gcra.clock().now()))
    }

    /// How many clients are tracked now.
    pub fn tracked(&self) -> usize {
        self.states.len()
    }
}

/// Clients a shared limit refused, remembered in this process until their
/// wait is over, so that a refused client's next requests are answered
/// `429` before anything else is checked, without a database round trip.
/// The introspection endpoint counts only failed authentications: were a
/// correct token still checked while its sender is refused, the limit would
/// bound nothing but the answers to wrong guesses. Bounded like
/// [`RateLimiter`]'s states.
pub struct Refusals {
    until: Cache<ClientKey, Instant>,
}

impl Default for Refusals {
    fn default() -> Self {
        Self::new(MAX_TRACKED_CLIENTS)
    }
}

impl Refusals {
    pub fn new(capacity: usize) -> Self {
        Self {
            until: Cache::new(capacity),
        }
    }

    /// `client` was refused for `wait`.
    pub fn refuse(&self, client: ClientKey, wait: Duration) {
        self.until.insert(client, Instant::now() + wait);
    }

    /// How long `client` must still wait, if it was refused.
    pub fn wait(&self, client: ClientKey) -> Option<Duration> {
        let until = self.until.get(&client)?;
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            self.until.remove(&client);
            return None;
        }
        Some(left)
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    fn client(s: &str) -> ClientKey {
        ClientKey::of(s.parse().unwrap())
    }

    fn limiter(
        requests: u32,
        per_secs: u64,
        capacity: usize,
    ) -> (RateLimiter<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let limit = RateLimit {
            requests,
            per: Duration::from_secs(per_secs),
        };
        (
            RateLimiter::with_clock(limit, capacity, clock.clone()),
            clock,
        )
    }

    #[test]
    fn allows_the_budget_then_refuses_until_refilled() {
        let (limiter, clock) = limiter(2, 60, 1000);
        let ip = client("10.0.0.1");
        assert!(limiter.check(ip).is_ok());
        assert!(limiter.check(ip).is_ok());
        let wait = limiter.check(ip).unwrap_err();
        assert!(
            wait > Duration::from_secs(29) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert!(
            limiter.check(client("10.0.0.2")).is_ok(),
            "keys are independent"
        );
        clock.advance(Duration::from_secs(30));
        assert!(limiter.check(ip).is_ok());
    }

    #[test]
    fn a_refusal_lasts_its_wait_for_its_client_only() {
        let refusals = Refusals::new(100);
        let ip = client("192.0.2.1");
        assert_eq!(refusals.wait(ip), None);
        refusals.refuse(ip, Duration::from_secs(30));
        let wait = refusals.wait(ip).unwrap();
        assert!(wait > Duration::from_secs(29) && wait <= Duration::from_secs(30));
        assert_eq!(refusals.wait(client("192.0.2.2")), None);
        assert!(refusals.wait(client("2001:db8::1")).is_none());
        refusals.refuse(ip, Duration::ZERO);
        assert_eq!(refusals.wait(ip), None, "over");
    }

    #[test]
    fn one_ipv6_64_shares_one_budget() {
        let (limiter, _) = limiter(1, 60, 1000);
        assert!(limiter.check(client("2001:db8:1:2::1")).is_ok());
        assert!(limiter.check(client("2001:db8:1:2::abcd")).is_err());
        assert!(limiter.check(client("2001:db8:1:3::1")).is_ok());
    }

    #[test]
    fn memory_stays_bounded_and_a_limited_client_stays_limited() {
        let (limiter, _) = limiter(1, 3600, 1000);
        let hammering = client("192.0.2.1");
        assert!(limiter.check(hammering).is_ok());
        for i in 0..20_000u32 {
            let passer_by = ClientKey::of(std::net::Ipv4Addr::from(0x0a00_0000 + i).into());
            let _ = limiter.check(passer_by);
            // The limited client keeps coming back, as an attacker does.
            if i % 10 == 0 {
                assert!(limiter.check(hammering).is_err(), "after {i} others");
            }
        }
        let tracked = limiter.tracked();
        assert!(tracked <= 1100, "{tracked} keys held");
    }
}
