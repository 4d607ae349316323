//! What the rate limits count as one client: an IPv4 address, or the /64
//! an IPv6 address belongs to.
//!
//! One subscriber (a home, a phone, a cloud VM) is routinely given a whole
//! IPv6 /64 and picks addresses in it at will (RFC 4941 privacy addresses),
//! so keying on the full address would give everyone 2^64 budgets.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    /// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) count as their IPv4.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let network = u128::from(v6) & (u128::MAX << 64);
                    Self(IpAddr::V6(Ipv6Addr::from(network)))
                }
            },
        }
    }
}

/// `203.0.113.7`, or `2001:db8:1:2::/64`: what the database stores.
impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> ClientKey {
        ClientKey::of(s.parse().unwrap())
    }

    #[test]
    fn ipv6_addresses_of_one_64_are_one_client() {
        assert_eq!(
            key("2001:db8:1:2::1"),
            key("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("2001:db8:1:2:abcd::9").to_string(), "2001:db8:1:2::/64");
    }

    #[test]
    fn ipv4_is_the_address_itself_mapped_or_not() {
        assert_ne!(key("198.51.100.1"), key("198.51.100.2"));
        assert_eq!(key("::ffff:198.51.100.1"), key("198.51.100.1"));
        assert_eq!(key("198.51.100.1").to_string(), "198.51.100.1");
    }
}
