//! Who is behind a request: recorded on sessions and used for rate limits.

use std::net::IpAddr;

use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpMessage, HttpRequest};
use tracing_actix_web::RequestId;
use uuid::Uuid;

use crate::db::models::ClientInfo;
use crate::error::ApiError;
use crate::limits::client_key::ClientKey;
use crate::limits::proxies::TrustedProxies;
use crate::limits::replica_limiter::RateLimiter;

const MAX_USER_AGENT_CHARS: usize = 512;

/// Stands for an `X-Forwarded-For` line that is not text: a malformed
/// entry, where the walk from the right stops.
const UNREADABLE_LINE: &str = "unreadable";

/// The peer's address, or the client's as told by a trusted proxy.
pub fn client_ip(req: &HttpRequest, proxies: &TrustedProxies) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    Some(proxies.client_ip(peer, forwarded_for(req.headers()).as_deref()))
}

/// Every `X-Forwarded-For` line, in order, as one list: a field sent on
/// several lines is one comma-separated list (RFC 9110 §5.3), and each
/// proxy may have added its own line, so reading only the first would
/// believe whatever the client put there.
fn forwarded_for(headers: &HeaderMap) -> Option<String> {
    let lines: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .map(|line| line.to_str().unwrap_or(UNREADABLE_LINE))
        .collect();
    (!lines.is_empty()).then(|| lines.join(","))
}

/// Who is behind the request, as recorded on its session.
pub fn client_info(req: &HttpRequest, ip: Option<IpAddr>) -> ClientInfo {
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect::<String>())
        .filter(|ua| !ua.is_empty());
    ClientInfo {
        user_agent,
        ip: ip.map(|ip| ip.to_string()),
        request_id: req
            .extensions()
            .get::<RequestId>()
            .map(|id| Uuid::from(*id)),
    }
}

/// The per-client budget (an IPv4 address or an IPv6 /64) of an in-memory
/// limit (refresh's; the others are shared: [`crate::service::rate_limits`]).
pub fn limit_client(limiter: Option<&RateLimiter>, client: Option<IpAddr>) -> Result<(), ApiError> {
    match (limiter, client) {
        (Some(limiter), Some(ip)) => limiter
            .check(ClientKey::of(ip))
            .map_err(ApiError::rate_limited),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;
    use actix_web::test::TestRequest;

    use super::*;

    fn request(lines: &[&[u8]]) -> HttpRequest {
        let mut request = TestRequest::default().peer_addr("10.0.0.1:4000".parse().unwrap());
        for line in lines {
            request =
                request.append_header(("x-forwarded-for", HeaderValue::from_bytes(line).unwrap()));
        }
        request.to_http_request()
    }

    #[test]
    fn repeated_forwarded_for_lines_are_one_list_in_order() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        // The client forged the first line; our proxy appended the second.
        let req = request(&[b"6.6.6.6", b"198.51.100.7, 10.0.0.2"]);
        assert_eq!(
            client_ip(&req, &proxies),
            Some("198.51.100.7".parse().unwrap())
        );
        let req = request(&[b"6.6.6.6", b"10.0.0.2"]);
        assert_eq!(client_ip(&req, &proxies), Some("6.6.6.6".parse().unwrap()));
    }

    #[test]
    fn a_line_that_is_not_text_stops_the_walk() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let req = request(&[b"6.6.6.6", b"\xff", b"10.0.0.2"]);
        assert_eq!(client_ip(&req, &proxies), Some("10.0.0.2".parse().unwrap()));
        assert_eq!(
            client_ip(&request(&[]), &proxies),
            Some("10.0.0.1".parse().unwrap())
        );
    }
}
