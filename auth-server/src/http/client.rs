//! Who is behind a request: recorded on sessions and audit events, counted
//! by the rate limits, named in the request log.

use std::future::{Ready, ready};
use std::net::IpAddr;

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use tracing_actix_web::RequestId;
use uuid::Uuid;

use crate::db::models::ClientInfo;
use crate::error::ApiError;
use crate::limits::client_key::ClientKey;
use crate::limits::proxies::TrustedProxies;
use crate::limits::replica_limiter::RateLimiter;
use crate::state::AppState;

const MAX_USER_AGENT_CHARS: usize = 512;

/// Stands for an `X-Forwarded-For` line that is not text: a malformed
/// entry, where the walk from the right stops.
const UNREADABLE_LINE: &str = "unreadable";

/// The request's client, read once and kept in the request's extensions:
/// the request log (`ClientAddress`, in `startup.rs`) and the handler see
/// the same one, and a rate limit counts the address the log shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    /// The peer's address, or the client's as told by a trusted proxy;
    /// `None` without a peer address.
    pub ip: Option<IpAddr>,
    /// At most 512 characters; `None` when absent, empty or not text.
    pub user_agent: Option<String>,
    /// tracing-actix-web's, tying an audit event to the logs.
    request_id: Option<Uuid>,
}

impl Client {
    /// The client behind `proxies`: the one already read for this request,
    /// or read now and kept.
    pub fn of(req: &HttpRequest, proxies: &TrustedProxies) -> Self {
        if let Some(client) = req.extensions().get::<Self>() {
            return client.clone();
        }
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .map(|id| Uuid::from(*id));
        let client = Self {
            ip: address(req, proxies),
            user_agent: user_agent(req.headers()),
            request_id,
        };
        req.extensions_mut().insert(client.clone());
        client
    }

    /// As sessions, audit events and mails record it.
    pub fn info(&self) -> ClientInfo {
        ClientInfo {
            user_agent: self.user_agent.clone(),
            ip: self.ip.map(|ip| ip.to_string()),
            request_id: self.request_id,
        }
    }

    /// What the rate limits and the failed-login throttle count as one
    /// client.
    pub fn key(&self) -> Option<ClientKey> {
        self.ip.map(ClientKey::of)
    }
}

/// Behind the proxies `TRUSTED_PROXIES` names.
impl FromRequest for Client {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match req.app_data::<web::Data<AppState>>() {
            Some(state) => Ok(Self::of(req, &state.settings.http.trusted_proxies)),
            None => Err(ApiError::Internal(anyhow::anyhow!("no app state"))),
        })
    }
}

/// The per-client budget (an IPv4 address or an IPv6 /64) of an in-memory
/// limit (refresh's; the others are shared: [`crate::service::rate_limits`]).
pub fn limit_client(limiter: Option<&RateLimiter>, client: &Client) -> Result<(), ApiError> {
    match (limiter, client.key()) {
        (Some(limiter), Some(key)) => limiter.check(key).map_err(ApiError::rate_limited),
        _ => Ok(()),
    }
}

/// The peer's address, or the client's as told by a trusted proxy.
fn address(req: &HttpRequest, proxies: &TrustedProxies) -> Option<IpAddr> {
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

fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect::<String>())
        .filter(|ua| !ua.is_empty())
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
            address(&req, &proxies),
            Some("198.51.100.7".parse().unwrap())
        );
        let req = request(&[b"6.6.6.6", b"10.0.0.2"]);
        assert_eq!(address(&req, &proxies), Some("6.6.6.6".parse().unwrap()));
    }

    #[test]
    fn a_line_that_is_not_text_stops_the_walk() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let req = request(&[b"6.6.6.6", b"\xff", b"10.0.0.2"]);
        assert_eq!(address(&req, &proxies), Some("10.0.0.2".parse().unwrap()));
        assert_eq!(
            address(&request(&[]), &proxies),
            Some("10.0.0.1".parse().unwrap())
        );
    }

    #[test]
    fn the_client_is_read_once_per_request() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let req = TestRequest::default()
            .peer_addr("10.0.0.1:4000".parse().unwrap())
            .insert_header(("x-forwarded-for", "198.51.100.7"))
            .insert_header((header::USER_AGENT, "a".repeat(600)))
            .to_http_request();
        let first = Client::of(&req, &proxies);
        assert_eq!(first.ip, Some("198.51.100.7".parse().unwrap()));
        assert_eq!(
            first.user_agent.as_ref().map(|ua| ua.chars().count()),
            Some(512)
        );
        // Whatever is asked later gets the same client, as the log saw it.
        assert_eq!(Client::of(&req, &TrustedProxies::default()), first);
    }
}
