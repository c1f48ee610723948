//! Which address a request comes from (docs/api.md): the socket peer, or, when the peer is a
//! trusted proxy (`JT_TRUSTED_PROXIES`), the right-most `X-Forwarded-For` address that is not
//! itself trusted. Addresses left of that one were written by the client and prove nothing.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// `JT_TRUSTED_PROXIES`: addresses and networks whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl FromStr for TrustedProxies {
    type Err = String;

    /// Comma-separated IPs or CIDRs (`10.0.0.0/8, 127.0.0.1`); empty is none.
    fn from_str(s: &str) -> Result<Self, String> {
        s.split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                IpNet::from_str(part)
                    .or_else(|_| IpAddr::from_str(part).map(IpNet::from))
                    .map_err(|_| format!("`{part}` is not an IP address or CIDR network"))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

impl std::fmt::Display for TrustedProxies {
    /// As configured, comma-separated; `none` when empty.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let nets: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&nets.join(","))
    }
}

impl TrustedProxies {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address, from the socket `peer` and the request's `X-Forwarded-For`
    /// header values in order.
    #[must_use]
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl DoubleEndedIterator<Item = &'a str>,
    ) -> IpAddr {
        let peer = peer.to_canonical();
        if self.is_empty() || !self.contains(peer) {
            return peer;
        }
        let mut leftmost = None;
        for hop in forwarded_for.rev().flat_map(|v| v.rsplit(',')) {
            // A hop a trusted proxy wrote that is not an address: nothing further left of it
            // can be believed either, so the proxy itself is the client.
            let Ok(ip) = IpAddr::from_str(hop.trim()) else {
                return leftmost.unwrap_or(peer);
            };
            let ip = ip.to_canonical();
            if !self.contains(ip) {
                return ip;
            }
            leftmost = Some(ip);
        }
        // Every hop is a trusted proxy: the left-most is the closest to the client.
        leftmost.unwrap_or(peer)
    }
}

/// What a per-address limit counts by: an IPv4 address as it is, an IPv6 address by its /64,
/// the smallest network a provider hands one customer, so a client cannot get a fresh limit
/// for each of its 2^64 addresses.
#[must_use]
pub fn limit_subject(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !((1_u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(network))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_count_ipv6_by_its_64_and_ipv4_by_the_address() {
        assert_eq!(
            limit_subject(ip("2001:db8:1:2:aaaa::1")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            limit_subject(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            ip("2001:db8:1:2::")
        );
        assert_ne!(
            limit_subject(ip("2001:db8:1:3::1")),
            limit_subject(ip("2001:db8:1:2::1"))
        );
        assert_eq!(limit_subject(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(limit_subject(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_addresses_and_networks() {
        let t: TrustedProxies = "10.0.0.0/8, 127.0.0.1 ,::1".parse().unwrap();
        assert!(t.contains(ip("10.1.2.3")));
        assert!(t.contains(ip("127.0.0.1")));
        assert!(t.contains(ip("::ffff:127.0.0.1")));
        assert!(t.contains(ip("::1")));
        assert!(!t.contains(ip("11.0.0.1")));
        assert!("".parse::<TrustedProxies>().unwrap().is_empty());
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        assert!("proxy".parse::<TrustedProxies>().is_err());
    }

    #[test]
    fn believes_forwarded_for_only_from_trusted_peers() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client_ip(ip("1.1.1.1"), ["9.9.9.9"].into_iter()),
            ip("1.1.1.1")
        );
        let t: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        // Untrusted peer: its header is the client's own claim.
        assert_eq!(
            t.client_ip(ip("1.1.1.1"), ["9.9.9.9"].into_iter()),
            ip("1.1.1.1")
        );
        // Right-most untrusted hop, whatever the client prepended.
        assert_eq!(
            t.client_ip(ip("10.0.0.2"), ["6.6.6.6, 2.2.2.2, 10.0.0.1"].into_iter()),
            ip("2.2.2.2")
        );
        assert_eq!(
            t.client_ip(ip("10.0.0.2"), ["6.6.6.6", "2.2.2.2"].into_iter()),
            ip("2.2.2.2")
        );
        assert_eq!(
            t.client_ip(ip("10.0.0.2"), std::iter::empty()),
            ip("10.0.0.2")
        );
        assert_eq!(
            t.client_ip(ip("10.0.0.2"), ["10.0.0.9"].into_iter()),
            ip("10.0.0.9")
        );
        assert_eq!(
            t.client_ip(ip("10.0.0.2"), ["2.2.2.2, junk"].into_iter()),
            ip("10.0.0.2")
        );
    }
}
