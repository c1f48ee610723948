//! Where and by what a key is used: its *clients*, each a network (IPv4 /24, IPv6 /48: never the
//! full address) and the first product token of the `User-Agent`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use compact_str::CompactString;

use crate::timestamp::Timestamp;

/// Longest user agent kept, in characters.
pub const MAX_USER_AGENT_CHARS: usize = 64;
/// Most clients kept per key; past it the least recently seen is dropped.
pub const MAX_CLIENTS_PER_KEY: usize = 50;
/// How long a client is kept after it was last seen.
pub const CLIENT_RETENTION: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

/// A client's network: the /24 of an IPv4 address, the /48 of an IPv6 one. `Copy` and
/// allocation-free, as it is taken on every authenticated request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClientNetwork {
    V4([u8; 3]),
    V6([u16; 3]),
}

impl ClientNetwork {
    /// The network of `addr` (an IPv4-mapped IPv6 address counts as its IPv4 address).
    #[must_use]
    pub fn of(addr: IpAddr) -> Self {
        match addr.to_canonical() {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                Self::V4([a, b, c])
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                Self::V6([s[0], s[1], s[2]])
            }
        }
    }

    /// From [`ClientNetwork`]'s `Display` form, e.g. `203.0.113.0/24`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        let (addr, bits) = s.split_once('/')?;
        match (addr.parse::<IpAddr>().ok()?, bits) {
            (IpAddr::V4(v4), "24") => Some(Self::of(IpAddr::V4(v4))),
            (IpAddr::V6(v6), "48") => Some(Self::of(IpAddr::V6(v6))),
            _ => None,
        }
    }
}

impl fmt::Display for ClientNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::V4([a, b, c]) => write!(f, "{}/24", Ipv4Addr::new(a, b, c, 0)),
            Self::V6([a, b, c]) => write!(f, "{}/48", Ipv6Addr::new(a, b, c, 0, 0, 0, 0, 0)),
        }
    }
}

/// The first product token of a `User-Agent` (`python-requests/2.31.0`, `curl/8.5.0`, `node`),
/// at most [`MAX_USER_AGENT_CHARS`] characters; `-` when absent or empty.
#[must_use]
pub fn user_agent_token(header: Option<&str>) -> &str {
    let token = header
        .and_then(|h| h.split_whitespace().next())
        .unwrap_or("");
    if token.is_empty() {
        return "-";
    }
    match token.char_indices().nth(MAX_USER_AGENT_CHARS) {
        Some((end, _)) => &token[..end],
        None => token,
    }
}

/// One client of a key, as counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientUse {
    pub network: ClientNetwork,
    /// Inline up to 24 bytes (`curl/8.5.0`, `python-requests/2.31.0`): a client counted in
    /// memory until the next usage flush allocates nothing for it.
    pub user_agent: CompactString,
    pub requests: u64,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// Whether any of these requests carried an `Origin` header (a browser sent it).
    pub browser: bool,
}

impl ClientUse {
    /// Adds `other`'s requests (the same client) to this one.
    pub fn merge(&mut self, other: &Self) {
        self.requests = self.requests.saturating_add(other.requests);
        self.first_seen = self.first_seen.min(other.first_seen);
        self.last_seen = self.last_seen.max(other.last_seen);
        self.browser |= other.browser;
    }

    /// Whether this is the client of `network` and `user_agent`.
    #[must_use]
    pub fn is(&self, network: ClientNetwork, user_agent: &str) -> bool {
        self.network == network && self.user_agent.as_str() == user_agent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_keep_only_the_24_or_48_prefix() {
        let v4 = ClientNetwork::of("203.0.113.77".parse().unwrap());
        assert_eq!(v4.to_string(), "203.0.113.0/24");
        let v6 = ClientNetwork::of("2001:db8:42:7::1".parse().unwrap());
        assert_eq!(v6.to_string(), "2001:db8:42::/48");
        let mapped = ClientNetwork::of("::ffff:203.0.113.9".parse().unwrap());
        assert_eq!(mapped, v4);
        for n in [v4, v6] {
            assert_eq!(ClientNetwork::parse(&n.to_string()), Some(n));
        }
        assert_eq!(ClientNetwork::parse("203.0.113.0/32"), None);
    }

    #[test]
    fn the_user_agent_is_its_first_product_token() {
        assert_eq!(
            user_agent_token(Some("python-requests/2.31.0")),
            "python-requests/2.31.0"
        );
        assert_eq!(
            user_agent_token(Some("Mozilla/5.0 (X11; Linux x86_64) Chrome/120")),
            "Mozilla/5.0"
        );
        assert_eq!(user_agent_token(Some("node")), "node");
        assert_eq!(user_agent_token(Some("   ")), "-");
        assert_eq!(user_agent_token(None), "-");
        let long = "é".repeat(100);
        assert_eq!(
            user_agent_token(Some(&long)).chars().count(),
            MAX_USER_AGENT_CHARS
        );
    }
}
