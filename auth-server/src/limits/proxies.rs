//! Which peers may tell us the client's address in `X-Forwarded-For`.
//!
//! Anyone can send that header, so it is believed only from configured
//! proxies (`TRUSTED_PROXIES`: addresses or CIDR ranges). The client is the
//! right-most address that is not one of ours: a proxy appends what it saw,
//! so everything left of the first untrusted hop may be forged.

use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    network: IpAddr,
    prefix: u8,
}

impl Range {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u32::from(net).into(), self.prefix, 32)
                    == masked(u32::from(ip).into(), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), self.prefix, 128)
                    == masked(u128::from(ip), self.prefix, 128)
            }
            _ => false,
        }
    }

    /// The first and last address of the range, as numbers.
    fn span(&self) -> (u128, u128) {
        let (bits, width) = match self.network {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
            IpAddr::V6(v6) => (u128::from(v6), 128),
        };
        let all = if width == 128 {
            u128::MAX
        } else {
            (1u128 << width) - 1
        };
        // A /128 has no host bits (and shifting a u128 by 128 overflows).
        let host = all.checked_shr(u32::from(self.prefix)).unwrap_or(0);
        (bits & !host & all, (bits | host) & all)
    }
}

/// Whether the spans cover every number from 0 to `last`.
fn covers_all(mut spans: Vec<(u128, u128)>, last: u128) -> bool {
    spans.sort_unstable();
    let mut next = 0u128;
    for (start, end) in spans {
        if start > next {
            return false;
        }
        if end >= last {
            return true;
        }
        next = next.max(end + 1);
    }
    false
}

fn masked(bits: u128, prefix: u8, width: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        bits >> (width - prefix)
    }
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`) compares as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Range>);

impl TrustedProxies {
    /// `10.0.0.0/8, 192.168.1.10, fd00::/8`; empty trusts nobody.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut ranges = Vec::new();
        for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let error = || format!("`{item}` is not an address or a CIDR range such as 10.0.0.0/8");
            let (address, prefix) = item
                .split_once('/')
                .map_or((item, None), |(a, p)| (a, Some(p)));
            let network = canonical(address.parse::<IpAddr>().map_err(|_| error())?);
            let width = if network.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                None => width,
                Some(p) => p
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= width)
                    .ok_or_else(error)?,
            };
            ranges.push(Range { network, prefix });
        }
        Ok(Self(ranges))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|range| range.contains(ip))
    }

    /// Whether every IPv4 or every IPv6 address is trusted (`0.0.0.0/0`,
    /// `::/0`, or ranges that add up to it): anyone could then name any
    /// client address, and per-client limits would count nothing.
    pub fn trusts_everyone(&self) -> bool {
        let spans = |v4: bool| -> Vec<(u128, u128)> {
            self.0
                .iter()
                .filter(|r| r.network.is_ipv4() == v4)
                .map(Range::span)
                .collect()
        };
        covers_all(spans(true), u128::from(u32::MAX)) || covers_all(spans(false), u128::MAX)
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy,
    /// then the right-most untrusted `X-Forwarded-For` entry. A malformed
    /// entry stops the walk at the last address we could trust.
    pub fn client_ip(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let Some(header) = forwarded_for else {
            return peer;
        };
        let mut client = peer;
        for hop in header.rsplit(',').map(str::trim) {
            match hop.parse::<IpAddr>() {
                Ok(ip) => {
                    client = canonical(ip);
                    if !self.trusts(client) {
                        return client;
                    }
                }
                Err(_) => return client,
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peers_are_the_client_whatever_they_claim() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client_ip(ip("203.0.113.9"), Some("1.2.3.4")),
            ip("203.0.113.9")
        );
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(
            proxies.client_ip(ip("203.0.113.9"), Some("1.2.3.4")),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let proxies = TrustedProxies::parse("10.0.0.0/8, 192.168.1.10").unwrap();
        // The client forged a first entry; the proxies appended the truth.
        let header = "6.6.6.6, 198.51.100.7, 10.1.2.3";
        assert_eq!(
            proxies.client_ip(ip("192.168.1.10"), Some(header)),
            ip("198.51.100.7")
        );
        assert_eq!(proxies.client_ip(ip("10.0.0.1"), None), ip("10.0.0.1"));
        assert_eq!(
            proxies.client_ip(ip("10.0.0.1"), Some("garbage, 10.0.0.2")),
            ip("10.0.0.2")
        );
        assert_eq!(
            proxies.client_ip(ip("::ffff:10.0.0.1"), Some("198.51.100.7")),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn ranges_parse_and_match() {
        let proxies = TrustedProxies::parse("fd00::/8, 172.16.0.0/12").unwrap();
        assert!(proxies.trusts(ip("fd12::1")));
        assert!(proxies.trusts(ip("172.31.255.255")));
        assert!(!proxies.trusts(ip("172.32.0.0")));
        assert!(
            TrustedProxies::parse("0.0.0.0/0")
                .unwrap()
                .trusts(ip("8.8.8.8"))
        );
        for bad in [
            "10.0.0.0/33",
            "nope",
            "10.0.0/8",
            "::/129",
            "::ffff:0.0.0.0/96",
        ] {
            assert!(TrustedProxies::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges_that_cover_every_address_are_recognised() {
        for everyone in [
            "0.0.0.0/0",
            "::/0",
            "10.0.0.0/8, 0.0.0.0/0",
            "0.0.0.0/1, 128.0.0.0/1",
            "::/1, 8000::/1",
            "0.0.0.0/2, 64.0.0.0/2, 128.0.0.0/1, fd00::/8",
        ] {
            let proxies = TrustedProxies::parse(everyone).unwrap();
            assert!(proxies.trusts_everyone(), "{everyone}");
        }
        for some in [
            "",
            "10.0.0.0/8",
            "0.0.0.0/1",
            "0.0.0.0/1, 128.0.0.0/2, 192.0.0.0/3",
            "::/1, 0.0.0.0/1",
            "255.255.255.255, 0.0.0.0/1",
            "::1/128, 2001:db8::/32",
        ] {
            let proxies = TrustedProxies::parse(some).unwrap();
            assert!(!proxies.trusts_everyone(), "{some}");
        }
    }
}
