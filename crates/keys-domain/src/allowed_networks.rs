//! The networks a key may be used from: up to 20 CIDRs, IPv4 or IPv6.

use std::net::IpAddr;

use ipnet::IpNet;

/// A key's allow-list of networks; never empty (no list means "anywhere").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedNetworks(Vec<IpNet>);

/// Why a list of networks was refused; the message is a sentence for the owner.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidNetworks {
    #[error("allowed_networks must list between 1 and 20 networks (use null for no restriction)")]
    Count,
    #[error("allowed_networks: {0:?} is not a CIDR such as 203.0.113.0/24 or 2001:db8::/48")]
    NotACidr(String),
}

impl AllowedNetworks {
    /// Most networks in one list.
    pub const MAX: usize = 20;

    /// From the wire's CIDRs. A bare address means that address alone (`/32`, `/128`); host
    /// bits are cleared (`10.0.0.7/24` is `10.0.0.0/24`); repeats are dropped.
    ///
    /// # Errors
    /// [`InvalidNetworks`].
    pub fn parse<'a>(cidrs: impl IntoIterator<Item = &'a str>) -> Result<Self, InvalidNetworks> {
        let mut nets: Vec<IpNet> = Vec::new();
        for text in cidrs {
            if nets.len() >= Self::MAX {
                return Err(InvalidNetworks::Count);
            }
            let text = text.trim();
            let net = text
                .parse::<IpNet>()
                .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| InvalidNetworks::NotACidr(text.chars().take(60).collect()))?
                .trunc();
            if !nets.contains(&net) {
                nets.push(net);
            }
        }
        if nets.is_empty() {
            return Err(InvalidNetworks::Count);
        }
        Ok(Self(nets))
    }

    /// Whether `addr` is inside one of the networks (an IPv4-mapped IPv6 address counts as its
    /// IPv4 address).
    #[must_use]
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        self.0.iter().any(|net| net.contains(&addr))
    }

    /// The networks as written back to the owner, e.g. `["203.0.113.0/24"]`.
    #[must_use]
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }

    /// The stored form: the networks joined by `,`.
    #[must_use]
    pub fn to_stored(&self) -> String {
        self.to_strings().join(",")
    }

    /// From [`AllowedNetworks::to_stored`]; `None` when it does not parse.
    #[must_use]
    pub fn from_stored(s: &str) -> Option<Self> {
        Self::parse(s.split(',')).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_contain_their_addresses_only() {
        let nets =
            AllowedNetworks::parse(["203.0.113.7/24", "2001:db8::/48", "198.51.100.9"]).unwrap();
        assert_eq!(
            nets.to_strings(),
            ["203.0.113.0/24", "2001:db8::/48", "198.51.100.9/32"]
        );
        for inside in [
            "203.0.113.200",
            "2001:db8:0:ffff::1",
            "198.51.100.9",
            "::ffff:203.0.113.1",
        ] {
            assert!(nets.contains(inside.parse().unwrap()), "{inside}");
        }
        for outside in ["203.0.114.1", "2001:db9::1", "198.51.100.10", "127.0.0.1"] {
            assert!(!nets.contains(outside.parse().unwrap()), "{outside}");
        }
        assert_eq!(AllowedNetworks::from_stored(&nets.to_stored()), Some(nets));
    }

    #[test]
    fn empty_long_or_malformed_lists_are_refused() {
        assert_eq!(AllowedNetworks::parse([]), Err(InvalidNetworks::Count));
        let many: Vec<String> = (0..21).map(|i| format!("10.0.{i}.0/24")).collect();
        assert_eq!(
            AllowedNetworks::parse(many.iter().map(String::as_str)),
            Err(InvalidNetworks::Count)
        );
        assert!(matches!(
            AllowedNetworks::parse(["10.0.0.0/33"]),
            Err(InvalidNetworks::NotACidr(_))
        ));
        assert!(matches!(
            AllowedNetworks::parse(["example.com"]),
            Err(InvalidNetworks::NotACidr(_))
        ));
    }
}
