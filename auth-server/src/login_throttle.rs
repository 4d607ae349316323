//! The failed-login throttle's rules (`LOGIN_ACCOUNT_RATE_LIMIT = N/W`), as
//! pure functions of what the database holds, so every branch is tested
//! without one ([`crate::db::login_throttle`] holds the SQL,
//! [`crate::service::login_throttle`] runs them around a login).
//!
//! Failures are counted, never attempts, in two buckets:
//!
//! - **this client, this account** (a client is an IPv4 address or an IPv6
//!   /64): after N failures the client is refused for this account until W
//!   has passed since its last failure. Tight, and it touches nobody else.
//! - **strangers of this account**: the failures of every client that has
//!   not logged in to the account within [`KNOWN_CLIENT_LIFETIME`]. Past N,
//!   strangers wait a delay after the last failure that doubles with each
//!   further failure (1 s, 2 s, 4 s, …, at most W), so guessing from many
//!   addresses slows to one guess per W, while the owner, from a client
//!   they have logged in from, is never slowed by it.
//!
//! Nobody ever waits longer than W: nothing is locked for good. The
//! client's bucket empties once W has passed without a failure (N guesses
//! per W from one client, as configured). The strangers' bucket empties
//! only after [`STRANGERS_MEMORY`] without a failure: were it to empty
//! after W, which is also the longest delay, an attacker would wait W and
//! start over with N fast guesses; kept, it holds them to one guess per W,
//! and costs a stranger (the owner on a new device) no more than W after a
//! failure of their own. A refused attempt checks no password and counts
//! nothing, so it costs nothing and reveals nothing. Unknown e-mail
//! addresses go through exactly the same rules (their account key is
//! derived from the address alone), so a throttled account and an address
//! with no account are answered alike.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// How long a successful login makes its client known to the account.
pub const KNOWN_CLIENT_LIFETIME: Duration = Duration::from_secs(30 * 86_400);

/// How long the strangers' bucket keeps its count without a failure.
pub const STRANGERS_MEMORY: Duration = Duration::from_secs(24 * 3600);

/// Where a stranger's delay starts once the account has N failures.
const FIRST_DELAY: Duration = Duration::from_secs(1);

/// `LOGIN_ACCOUNT_RATE_LIMIT`: N failures, window W.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub failures: u32,
    pub window: Duration,
}

/// A bucket of failures as the database holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub failures: u32,
    pub last_failure_at: DateTime<Utc>,
}

/// What the database says about an attempt, read at one instant by its
/// clock (the same for every replica).
#[derive(Debug, Clone, Copy)]
pub struct Standing {
    pub now: DateTime<Utc>,
    /// Whether the client has logged in to the account recently.
    pub known: bool,
    /// This client's failures for this account.
    pub client: Option<Bucket>,
    /// The account's strangers' failures.
    pub strangers: Option<Bucket>,
}

/// `Ok` when the password may be checked; otherwise how long to wait.
pub fn check(limit: Limit, standing: &Standing) -> Result<(), Duration> {
    let now = standing.now;
    let window = |bucket: &Bucket| remaining(bucket.last_failure_at, limit.window, now);
    let client = standing
        .client
        .filter(|b| b.failures >= limit.failures)
        .and_then(|b| window(&b));
    let strangers = standing
        .strangers
        .filter(|_| !standing.known)
        .filter(|b| b.failures >= limit.failures)
        .and_then(|b| remaining(b.last_failure_at, stranger_delay(limit, b.failures), now));
    match client.max(strangers) {
        Some(wait) => Err(wait),
        None => Ok(()),
    }
}

/// After a failure has been counted: whether the buckets, as they were just
/// before it, would already have refused the attempt. Attempts checked at
/// the same instant all pass the check before any of them fails, so a burst
/// would otherwise get every guess answered; the ones that lost the race get
/// the throttle's answer instead, whatever their password was.
pub fn raced_past(limit: Limit, after: &Standing, previous: &Previous) -> Result<(), Duration> {
    let before = |bucket: Option<Bucket>, previous_failure_at: Option<DateTime<Utc>>| {
        let bucket = bucket?;
        Some(Bucket {
            failures: bucket.failures.checked_sub(1).filter(|n| *n > 0)?,
            last_failure_at: previous_failure_at?,
        })
    };
    check(
        limit,
        &Standing {
            now: after.now,
            known: after.known,
            client: before(after.client, previous.client),
            strangers: before(after.strangers, previous.strangers),
        },
    )
}

/// The failure before the last one of each bucket (see [`raced_past`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Previous {
    pub client: Option<DateTime<Utc>>,
    pub strangers: Option<DateTime<Utc>>,
}

/// How long strangers wait after the account's last failure: 1 s at N
/// failures, doubling with each one more, at most W.
pub fn stranger_delay(limit: Limit, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(limit.failures);
    let delay = FIRST_DELAY
        .checked_mul(2u32.checked_pow(doublings).unwrap_or(u32::MAX))
        .unwrap_or(Duration::MAX);
    delay.min(limit.window)
}

/// What is left of `span` after `since`, if anything.
fn remaining(since: DateTime<Utc>, span: Duration, now: DateTime<Utc>) -> Option<Duration> {
    let end = chrono::Duration::from_std(span)
        .ok()
        .and_then(|span| since.checked_add_signed(span))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    (end - now).to_std().ok().filter(|d| !d.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Limit = Limit {
        failures: 3,
        window: Duration::from_secs(300),
    };

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn bucket(failures: u32, last: i64) -> Option<Bucket> {
        Some(Bucket {
            failures,
            last_failure_at: at(last),
        })
    }

    fn standing(
        now: i64,
        known: bool,
        client: Option<Bucket>,
        strangers: Option<Bucket>,
    ) -> Standing {
        Standing {
            now: at(now),
            known,
            client,
            strangers,
        }
    }

    #[test]
    fn a_clean_slate_and_fewer_than_n_failures_pass() {
        assert_eq!(check(LIMIT, &standing(0, false, None, None)), Ok(()));
        assert_eq!(
            check(LIMIT, &standing(0, false, bucket(2, 0), bucket(2, 0))),
            Ok(())
        );
    }

    #[test]
    fn n_failures_of_one_client_refuse_it_until_the_window_has_passed() {
        let s = standing(10, true, bucket(3, 0), None);
        assert_eq!(check(LIMIT, &s), Err(Duration::from_secs(290)));
        assert_eq!(
            check(LIMIT, &standing(300, true, bucket(3, 0), None)),
            Ok(())
        );
    }

    #[test]
    fn strangers_wait_a_doubling_delay_that_known_clients_never_see() {
        let strangers = |failures| standing(0, false, None, bucket(failures, 0));
        assert_eq!(check(LIMIT, &strangers(3)), Err(Duration::from_secs(1)));
        assert_eq!(check(LIMIT, &strangers(4)), Err(Duration::from_secs(2)));
        assert_eq!(check(LIMIT, &strangers(10)), Err(Duration::from_secs(128)));
        assert_eq!(check(LIMIT, &strangers(11)), Err(Duration::from_secs(256)));
        assert_eq!(
            check(LIMIT, &strangers(12)),
            Err(LIMIT.window),
            "capped at W"
        );
        assert_eq!(check(LIMIT, &strangers(u32::MAX)), Err(LIMIT.window));
        let owner = standing(0, true, None, bucket(1_000, 0));
        assert_eq!(check(LIMIT, &owner), Ok(()), "a known client");
        // Once the delay has passed, one more guess is let through.
        assert_eq!(
            check(LIMIT, &standing(2, false, None, bucket(4, 0))),
            Ok(())
        );
    }

    #[test]
    fn nothing_is_locked_for_good() {
        let long_after = standing(301, false, bucket(50, 0), bucket(u32::MAX, 0));
        assert_eq!(check(LIMIT, &long_after), Ok(()));
    }

    #[test]
    fn the_longer_wait_wins() {
        let both = standing(0, false, bucket(3, 0), bucket(3, 0));
        assert_eq!(check(LIMIT, &both), Err(Duration::from_secs(300)));
    }

    #[test]
    fn a_failure_that_raced_past_the_throttle_is_recognised() {
        // Ours made it 4; the one before ours, at 0, had already made it 3.
        let after = standing(0, false, bucket(4, 0), None);
        let previous = Previous {
            client: Some(at(0)),
            strangers: None,
        };
        assert_eq!(
            raced_past(LIMIT, &after, &previous),
            Err(Duration::from_secs(300))
        );
        // Ours made it 3: the throttle was not yet on when it came.
        let third = standing(0, false, bucket(3, 0), None);
        assert_eq!(raced_past(LIMIT, &third, &previous), Ok(()));
        // A stranger's guess let through after its delay is no race.
        let after = standing(5, false, None, bucket(4, 5));
        let previous = Previous {
            client: None,
            strangers: Some(at(0)),
        };
        assert_eq!(raced_past(LIMIT, &after, &previous), Ok(()));
        // The first of a new run (the bucket had emptied) is no race either.
        let fresh = standing(1_000, false, bucket(1, 1_000), bucket(1, 1_000));
        assert_eq!(raced_past(LIMIT, &fresh, &Previous::default()), Ok(()));
    }
}
