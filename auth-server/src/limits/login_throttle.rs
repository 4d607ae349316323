//! The failed-login throttle's rules (`LOGIN_ACCOUNT_RATE_LIMIT = N/W`), as
//! pure functions of what the database holds, so every branch is tested
//! without one ([`crate::db::login_throttle`] holds the SQL,
//! [`crate::service::login_throttle`] runs them around a login).
//!
//! Failures are counted, never attempts, in two buckets:
//!
//! - **this client, this account** (a client is an IPv4 address or an IPv6
//!   /64): after N failures the client is refused for this account until W
//!   has passed since its last failure. Tight, and it touches nobody else:
//!   one stranger's failures delay that stranger only.
//! - **strangers of this account**: the failures of every client that has
//!   not logged in to the account within [`KNOWN_CLIENT_LIFETIME`]. It
//!   holds them back only while the account is attacked from several
//!   places: past N failures, and while at least [`STRANGER_CLIENTS`]
//!   distinct stranger clients have failed within the last W, strangers
//!   wait a delay after the last failure that doubles with each further
//!   failure (1 s, 2 s, 4 s, …, at most W). The owner, from a client they
//!   have logged in from, is never slowed by it; from a new one, only
//!   during such an attack, and a completed password reset (proof of the
//!   mailbox) ends even that: it forgets the strangers' failures and makes
//!   the client that completed it known.
//!
//! Nobody ever waits longer than W: nothing is locked for good. The
//! client's bucket empties once W has passed without a failure (N guesses
//! per W from one client, as configured). The strangers' bucket empties
//! only after [`STRANGERS_MEMORY`] without a failure: were it to empty
//! after W, which is also the longest delay, an attacker would wait W and
//! start over with N fast guesses; kept, the delay is back at W as soon
//! as several clients fail again. A refused attempt checks no password and
//! counts nothing, so it costs nothing and reveals nothing. Unknown e-mail
//! addresses go through exactly the same rules (their account key is
//! derived from the address alone), so a throttled account and an address
//! with no account are answered alike.
//!
//! The price of sparing the owner: fewer than [`STRANGER_CLIENTS`] clients
//! guess at N per W each (so (`STRANGER_CLIENTS` − 1)·N per W in all, not
//! N), and whoever has that many addresses (or IPv6 /64s) can still delay
//! the owner's new devices, by at most W after each failure, until the
//! owner uses a known device or resets the password.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// How long a successful login makes its client known to the account.
pub const KNOWN_CLIENT_LIFETIME: Duration = Duration::from_secs(30 * 86_400);

/// How long the strangers' bucket keeps its count without a failure.
pub const STRANGERS_MEMORY: Duration = Duration::from_secs(24 * 3600);

/// How many distinct stranger clients must have failed within W before
/// strangers share a delay. Its own constant, not N: below it every client
/// guesses at N per W, so the guesses per W grow with its product with N,
/// which must not square a generous N (10/5m would allow 90 guesses per 5
/// minutes, not 20). Three is the fewest that lets the owner mistype on a
/// new device while one attacker keeps failing, without a delay.
pub const STRANGER_CLIENTS: usize = 3;

/// How many stranger clients the database remembers per account: enough
/// to know, after one of them failed, whether [`STRANGER_CLIENTS`] others
/// had failed before it (see [`raced_past`]).
pub const REMEMBERED_STRANGERS: usize = STRANGER_CLIENTS + 1;

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

/// The strangers' bucket of an account, and when its most recent distinct
/// stranger clients last failed (at most [`REMEMBERED_STRANGERS`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Strangers {
    pub bucket: Bucket,
    /// The last failure of the attempt's own client, when it is one of them.
    pub this_client: Option<DateTime<Utc>>,
    /// The last failure of each of the others.
    pub others: Vec<DateTime<Utc>>,
}

impl Strangers {
    /// Whether failures come from enough distinct clients, within W of
    /// `now`, for strangers to share a delay.
    fn attacked_from_many(&self, window: Duration, now: DateTime<Utc>) -> bool {
        let recent = |at: &&DateTime<Utc>| remaining(**at, window, now).is_some();
        let clients = self.others.iter().chain(&self.this_client).filter(recent);
        clients.count() >= STRANGER_CLIENTS
    }
}

/// What the database says about an attempt, read at one instant by its
/// clock (the same for every replica).
#[derive(Debug, Clone)]
pub struct Standing {
    pub now: DateTime<Utc>,
    /// Whether the client has logged in to the account recently.
    pub known: bool,
    /// This client's failures for this account.
    pub client: Option<Bucket>,
    /// The account's strangers' failures.
    pub strangers: Option<Strangers>,
}

/// `Ok` when the password may be checked; otherwise how long to wait.
pub fn check(limit: Limit, standing: &Standing) -> Result<(), Duration> {
    let now = standing.now;
    let client = standing
        .client
        .filter(|b| b.failures >= limit.failures)
        .and_then(|b| remaining(b.last_failure_at, limit.window, now));
    let strangers = standing
        .strangers
        .as_ref()
        .filter(|_| !standing.known)
        .filter(|s| s.bucket.failures >= limit.failures)
        .filter(|s| s.attacked_from_many(limit.window, now))
        .and_then(|s| {
            let delay = stranger_delay(limit, s.bucket.failures);
            remaining(s.bucket.last_failure_at, delay, now)
        });
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
    let strangers = after.strangers.as_ref().and_then(|s| {
        Some(Strangers {
            bucket: before(Some(s.bucket), previous.strangers)?,
            // This client's failure before ours, if it was a stranger's.
            this_client: previous.client,
            others: s.others.clone(),
        })
    });
    check(
        limit,
        &Standing {
            now: after.now,
            known: after.known,
            client: before(after.client, previous.client),
            strangers,
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

    /// The strangers' bucket, its last failure from a client other than
    /// the attempt's, and `clients` distinct such clients failing then.
    fn strangers(failures: u32, last: i64, clients: usize) -> Option<Strangers> {
        Some(Strangers {
            bucket: bucket(failures, last)?,
            this_client: None,
            others: vec![at(last); clients],
        })
    }

    /// Enough clients to share a delay.
    fn attacked(failures: u32, last: i64) -> Option<Strangers> {
        strangers(failures, last, STRANGER_CLIENTS)
    }

    fn standing(
        now: i64,
        known: bool,
        client: Option<Bucket>,
        strangers: Option<Strangers>,
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
            check(LIMIT, &standing(0, false, bucket(2, 0), attacked(2, 0))),
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
        let strangers = |failures| standing(0, false, None, attacked(failures, 0));
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
        let owner = standing(0, true, None, attacked(1_000, 0));
        assert_eq!(check(LIMIT, &owner), Ok(()), "a known client");
        // Once the delay has passed, one more guess is let through.
        assert_eq!(
            check(LIMIT, &standing(2, false, None, attacked(4, 0))),
            Ok(())
        );
    }

    #[test]
    fn one_strangers_failures_delay_only_that_stranger() {
        // One client has failed a thousand times, the last just now: its
        // own bucket refuses it, and nobody else waits.
        let lone = |clients| standing(0, false, None, strangers(1_000, 0, clients));
        assert_eq!(check(LIMIT, &lone(1)), Ok(()));
        assert_eq!(check(LIMIT, &lone(STRANGER_CLIENTS - 1)), Ok(()));
        assert_eq!(check(LIMIT, &lone(STRANGER_CLIENTS)), Err(LIMIT.window));
        let itself = standing(0, false, bucket(1_000, 0), strangers(1_000, 0, 1));
        assert_eq!(check(LIMIT, &itself), Err(LIMIT.window));
    }

    #[test]
    fn clients_count_only_within_the_window() {
        // Three clients failed, two of them more than W ago: no delay for
        // the next stranger, however many failures the bucket remembers.
        let spread = Strangers {
            bucket: bucket(50, 400).unwrap(),
            this_client: None,
            others: vec![at(400), at(100), at(90)],
        };
        let s = standing(401, false, None, Some(spread.clone()));
        assert_eq!(check(LIMIT, &s), Ok(()));
        // Within W of each other, and of now: the delay, from the last.
        let close = Strangers {
            others: vec![at(400), at(350), at(200)],
            ..spread
        };
        let s = standing(401, false, None, Some(close.clone()));
        assert_eq!(check(LIMIT, &s), Err(LIMIT.window - Duration::from_secs(1)));
        // The attempt's own client's failure counts as one of them.
        let with_this = Strangers {
            this_client: Some(at(380)),
            others: vec![at(400), at(350)],
            ..close
        };
        let s = standing(401, false, None, Some(with_this));
        assert!(check(LIMIT, &s).is_err());
    }

    #[test]
    fn nothing_is_locked_for_good() {
        let long_after = standing(301, false, bucket(50, 0), attacked(u32::MAX, 0));
        assert_eq!(check(LIMIT, &long_after), Ok(()));
    }

    #[test]
    fn the_longer_wait_wins() {
        let both = standing(0, false, bucket(3, 0), attacked(3, 0));
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
        let after = standing(5, false, None, attacked(4, 5));
        let previous = Previous {
            client: None,
            strangers: Some(at(0)),
        };
        assert_eq!(raced_past(LIMIT, &after, &previous), Ok(()));
        // The first of a new run (the bucket had emptied) is no race either.
        let fresh = standing(1_000, false, bucket(1, 1_000), attacked(1, 1_000));
        assert_eq!(raced_past(LIMIT, &fresh, &Previous::default()), Ok(()));
    }

    #[test]
    fn a_burst_from_many_clients_is_recognised_once_enough_had_failed() {
        let previous = Previous {
            client: None,
            strangers: Some(at(0)),
        };
        // Ours, from a new client, made it 4 failures; three other clients
        // had failed just before: the door was closed.
        let fourth = Strangers {
            bucket: bucket(4, 0).unwrap(),
            this_client: Some(at(0)),
            others: vec![at(0); STRANGER_CLIENTS],
        };
        let after = standing(0, false, bucket(1, 0), Some(fourth.clone()));
        assert_eq!(
            raced_past(LIMIT, &after, &previous),
            Err(Duration::from_secs(1))
        );
        // Only two others: ours is what brought the third client.
        let third_client = Strangers {
            others: vec![at(0); STRANGER_CLIENTS - 1],
            ..fourth.clone()
        };
        let after = standing(0, false, bucket(1, 0), Some(third_client.clone()));
        assert_eq!(raced_past(LIMIT, &after, &previous), Ok(()));
        // Two others and ours earlier, within W: three clients before ours.
        let previous = Previous {
            client: Some(at(-10)),
            ..previous
        };
        let after = standing(0, false, bucket(2, 0), Some(third_client));
        assert_eq!(
            raced_past(LIMIT, &after, &previous),
            Err(Duration::from_secs(1))
        );
    }
}
