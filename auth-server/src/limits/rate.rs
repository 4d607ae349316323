//! A limit as configured: so many requests per window (`20/1m`), the value
//! every rate limit and the failed-login throttle are set with.

use std::time::Duration;

use service_kit::duration::parse_duration;

/// `requests` per `per`: a burst of `requests`, then one more every
/// `per / requests`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub per: Duration,
}

/// `20/1m` is twenty requests a minute; `0` turns the limit off.
pub fn parse_rate_limit(raw: &str) -> Result<Option<RateLimit>, String> {
    let raw = raw.trim();
    if raw == "0" {
        return Ok(None);
    }
    let expected = || format!("`{raw}` is not a rate such as `20/1m`, or `0` for none");
    let (count, window) = raw.split_once('/').ok_or_else(expected)?;
    let requests: u32 = count.trim().parse().map_err(|_| expected())?;
    let per = parse_duration(window).map_err(|_| expected())?;
    if requests == 0 {
        return Ok(None);
    }
    if per.is_zero() {
        return Err(expected());
    }
    Ok(Some(RateLimit { requests, per }))
}
