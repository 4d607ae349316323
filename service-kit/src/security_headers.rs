//! Security headers every response of every service carries. These are JSON
//! APIs: nothing should be framed, sniffed, embedded, or leak a referrer.

use actix_web::middleware::DefaultHeaders;

pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'",
    ),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-resource-policy", "same-site"),
];

/// Only in production, where TLS terminates in front: browsers ignore it over
/// plain HTTP anyway, but a developer's local HTTPS setup would remember it.
pub const HSTS: (&str, &str) = (
    "strict-transport-security",
    "max-age=31536000; includeSubDomains",
);

/// The middleware adding them (and HSTS in production) to every response.
pub fn security_headers(production: bool) -> DefaultHeaders {
    let headers = SECURITY_HEADERS
        .iter()
        .fold(DefaultHeaders::new(), |h, header| h.add(*header));
    if production {
        headers.add(HSTS)
    } else {
        headers
    }
}
