//! The per-client limits shared by every replica: one GCRA per limit and
//! client, its theoretical arrival time (`tat`) in `rate_buckets`. Each hit
//! is one statement, atomic on its own (the conflicting row is locked and
//! re-read), so concurrent requests on any number of replicas are counted
//! exactly once each. Times are the database's `now()`: one clock for all.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{Bool, Double, Text};

use super::DbResult;

/// A limit as GCRA sees it: one request per `interval`, with bursts of up
/// to `burst` requests at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gcra {
    /// The emission interval: the limit's window over its count.
    pub interval: Duration,
    /// How far ahead of now the arrival time may run and still admit a
    /// request: `(burst - 1) × interval`.
    pub tolerance: Duration,
}

impl Gcra {
    /// `requests` per `per`, all of them at once if they come together.
    pub fn new(requests: u32, per: Duration) -> Self {
        let requests = requests.max(1);
        let interval = (per / requests).max(Duration::from_micros(1));
        Self {
            interval,
            tolerance: interval * (requests - 1),
        }
    }
}

#[derive(QueryableByName)]
struct Hit {
    #[diesel(sql_type = Bool)]
    allowed: bool,
    #[diesel(sql_type = Double)]
    wait_secs: f64,
}

/// Counts one request of `key` under the limit `scope`: `Ok` when it may go
/// on; otherwise how long until one would be let through. A refused request
/// writes nothing (the update's `WHERE` fails, so a client hammering its
/// limit costs reads, not dead rows), and its wait is read from the row as
/// the statement's snapshot saw it; a row committed by another replica
/// after that snapshot is not seen, and the wait is then one interval.
pub fn hit(
    conn: &mut PgConnection,
    scope: &str,
    key: &str,
    gcra: Gcra,
) -> DbResult<Result<(), Duration>> {
    let hit: Hit = diesel::sql_query(
        "WITH hit AS ( \
           INSERT INTO rate_buckets AS b (scope, key, tat) \
           VALUES ($1, $2, now() + make_interval(secs => $3)) \
           ON CONFLICT (scope, key) DO UPDATE \
             SET tat = greatest(b.tat, now()) + make_interval(secs => $3) \
             WHERE greatest(b.tat, now()) <= now() + make_interval(secs => $4) \
           RETURNING 1) \
         SELECT EXISTS (SELECT 1 FROM hit) AS allowed, \
           coalesce(extract(epoch FROM \
             (SELECT tat FROM rate_buckets WHERE scope = $1 AND key = $2) \
             - make_interval(secs => $4) - now())::float8, $3) AS wait_secs",
    )
    .bind::<Text, _>(scope)
    .bind::<Text, _>(key)
    .bind::<Double, _>(gcra.interval.as_secs_f64())
    .bind::<Double, _>(gcra.tolerance.as_secs_f64())
    .get_result(conn)?;
    if hit.allowed {
        return Ok(Ok(()));
    }
    // Refused means the arrival time is past the tolerance: a positive wait.
    let wait = Duration::try_from_secs_f64(hit.wait_secs).unwrap_or(Duration::from_secs(1));
    Ok(Err(wait.max(Duration::from_millis(1))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_the_count_then_one_per_interval() {
        let gcra = Gcra::new(20, Duration::from_secs(60));
        assert_eq!(gcra.interval, Duration::from_secs(3));
        assert_eq!(gcra.tolerance, Duration::from_secs(57));
        let one = Gcra::new(1, Duration::from_secs(60));
        assert_eq!(one.tolerance, Duration::ZERO);
        assert_eq!(
            Gcra::new(0, Duration::from_secs(1)),
            Gcra::new(1, Duration::from_secs(1))
        );
    }
}
