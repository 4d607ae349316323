//! Who is behind a request: recorded on sessions and used for rate limits.

use std::net::IpAddr;

use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest};
use tracing_actix_web::RequestId;

use uuid::Uuid;

use crate::db::models::ClientInfo;
use crate::proxies::TrustedProxies;

const MAX_USER_AGENT_CHARS: usize = 512;

/// The peer's address, or the client's as told by a trusted proxy.
pub fn client_ip(req: &HttpRequest, proxies: &TrustedProxies) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    Some(proxies.client_ip(peer, forwarded))
}

pub fn client_info(req: &HttpRequest, proxies: &TrustedProxies) -> ClientInfo {
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect::<String>())
        .filter(|ua| !ua.is_empty());
    ClientInfo {
        user_agent,
        ip: client_ip(req, proxies).map(|ip| ip.to_string()),
        request_id: req
            .extensions()
            .get::<RequestId>()
            .map(|id| Uuid::from(*id)),
    }
}
