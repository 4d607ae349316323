//! Who is behind a request: recorded on sessions and used for rate limits.

use std::net::IpAddr;

use actix_web::HttpRequest;
use actix_web::http::header;

use crate::db::models::ClientInfo;

const MAX_USER_AGENT_CHARS: usize = 512;

/// The socket's peer address. `X-Forwarded-For` is not trusted: any client
/// can write it.
pub fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    req.peer_addr().map(|addr| addr.ip())
}

pub fn client_info(req: &HttpRequest) -> ClientInfo {
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect::<String>())
        .filter(|ua| !ua.is_empty());
    ClientInfo {
        user_agent,
        ip: client_ip(req).map(|ip| ip.to_string()),
    }
}
