//! IP prefixes of either family, as rules match them (`198.18.0.0/15`, `2001:db8::/32`).
//!
//! Not [`crate::forward::Ipv4Prefix`]: that one keeps host bits because an interface
//! address is written `198.18.1.1/24`, and it is IPv4 only. A rule's prefix is a set of
//! addresses, so host bits are refused when parsing — `198.18.2.1/24` is a typo for
//! either the network or the host, and guessing which would open or close the wrong
//! door.

use crate::forward::Ipv4Prefix;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A network of one family with its prefix length; host bits are always clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpPrefix {
    network: IpAddr,
    len: u8,
}

/// Why a prefix string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpPrefixError {
    /// The part before `/` is not an address.
    #[error("`{0}` is not an IPv4 or IPv6 address")]
    BadAddress(String),
    /// The length is not a number up to the family's width.
    #[error("prefix length `{len}` is not in 0..={max}")]
    BadLength {
        /// As written.
        len: String,
        /// 32 or 128.
        max: u8,
    },
    /// Bits set past the prefix length.
    #[error("host bits set; did you mean {network} or the single host {host}?")]
    HostBits {
        /// The network the prefix length gives.
        network: IpPrefix,
        /// The address as written.
        host: IpAddr,
    },
}

/// The width of an address family in bits.
fn width(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn mask_v4(len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0)
}

fn mask_v6(len: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(len.min(128)))
        .unwrap_or(0)
}

impl IpPrefix {
    /// The prefix of `addr` with `len` bits, host bits cleared; `None` if `len` is
    /// wider than the family.
    pub fn new(addr: IpAddr, len: u8) -> Option<Self> {
        let network = match addr {
            IpAddr::V4(a) if len <= 32 => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask_v4(len))),
            IpAddr::V6(a) if len <= 128 => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask_v6(len))),
            _ => return None,
        };
        Some(Self { network, len })
    }

    /// The single address `addr` (/32 or /128).
    pub fn host(addr: IpAddr) -> Self {
        Self {
            network: addr,
            len: width(addr),
        }
    }

    /// The network address.
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether this is an IPv4 prefix.
    pub fn is_ipv4(&self) -> bool {
        self.network.is_ipv4()
    }

    /// Whether `ip` lies inside; an address of the other family never does.
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                (u32::from(n) ^ u32::from(a)) & mask_v4(self.len) == 0
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                (u128::from(n) ^ u128::from(a)) & mask_v6(self.len) == 0
            }
            _ => false,
        }
    }
}

/// The network of an interface's subnet (`198.18.1.1/24` gives `198.18.1.0/24`).
impl From<Ipv4Prefix> for IpPrefix {
    fn from(p: Ipv4Prefix) -> Self {
        Self {
            network: IpAddr::V4(p.network()),
            len: p.len(),
        }
    }
}

impl FromStr for IpPrefix {
    type Err = IpPrefixError;

    /// `ADDRESS/LENGTH` or a bare `ADDRESS` (a single host).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr_text, len_text) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = addr_text
            .parse()
            .map_err(|_| IpPrefixError::BadAddress(addr_text.into()))?;
        let max = width(addr);
        let Some(len_text) = len_text else {
            return Ok(Self::host(addr));
        };
        let bad_length = || IpPrefixError::BadLength {
            len: len_text.into(),
            max,
        };
        // Digits only: `u8::from_str` would take `+24`.
        if len_text.is_empty() || !len_text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad_length());
        }
        let len: u8 = len_text.parse().map_err(|_| bad_length())?;
        let prefix = Self::new(addr, len).ok_or_else(bad_length)?;
        if prefix.network != addr {
            return Err(IpPrefixError::HostBits {
                network: prefix,
                host: addr,
            });
        }
        Ok(prefix)
    }
}

/// A single host is written as a bare address, as operators write it.
impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.len == width(self.network) {
            write!(f, "{}", self.network)
        } else {
            write!(f, "{}/{}", self.network, self.len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> IpPrefix {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v4_contains_at_the_edges() {
        let net = p("198.18.0.0/15");
        assert!(net.contains(ip("198.18.0.0")));
        assert!(net.contains(ip("198.19.255.255")));
        assert!(!net.contains(ip("198.17.255.255")));
        assert!(!net.contains(ip("198.20.0.0")));
        assert!(p("0.0.0.0/0").contains(ip("255.255.255.255")));
        assert!(!p("0.0.0.0/0").contains(ip("::")));
    }

    #[test]
    fn v6_contains_at_the_edges() {
        let net = p("2001:db8::/32");
        assert!(net.contains(ip("2001:db8::")));
        assert!(net.contains(ip("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")));
        assert!(!net.contains(ip("2001:db9::")));
        assert!(!net.contains(ip("198.18.0.1")));
        assert!(p("::/0").contains(ip("ffff::1")));
        assert!(!p("::/0").contains(ip("0.0.0.0")));
    }

    #[test]
    fn bare_addresses_are_hosts() {
        assert_eq!(p("198.18.1.66"), p("198.18.1.66/32"));
        assert_eq!(p("2001:db8::1").prefix_len(), 128);
        assert!(p("198.18.1.66").contains(ip("198.18.1.66")));
        assert!(!p("198.18.1.66").contains(ip("198.18.1.67")));
        assert!(!p("2001:db8::1").contains(ip("2001:db8::2")));
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "198.18.0.0/15",
            "198.18.1.66",
            "2001:db8::/32",
            "::1",
            "0.0.0.0/0",
        ] {
            assert_eq!(p(s).to_string(), s);
            assert_eq!(p(&p(s).to_string()), p(s));
        }
    }

    #[test]
    fn refuses_bad_prefixes() {
        let err = |s: &str| s.parse::<IpPrefix>().unwrap_err().to_string();
        assert_eq!(err("198.18.1"), "`198.18.1` is not an IPv4 or IPv6 address");
        assert_eq!(err("/24"), "`` is not an IPv4 or IPv6 address");
        assert_eq!(err("198.18.1.0/33"), "prefix length `33` is not in 0..=32");
        assert_eq!(
            err("2001:db8::/129"),
            "prefix length `129` is not in 0..=128"
        );
        assert_eq!(err("198.18.1.0/"), "prefix length `` is not in 0..=32");
        assert_eq!(
            err("198.18.1.0/+24"),
            "prefix length `+24` is not in 0..=32"
        );
        assert_eq!(
            err("198.18.1.0/999"),
            "prefix length `999` is not in 0..=32"
        );
        assert_eq!(
            err("198.18.2.1/24"),
            "host bits set; did you mean 198.18.2.0/24 or the single host 198.18.2.1?"
        );
        assert_eq!(
            err("2001:db8::1/32"),
            "host bits set; did you mean 2001:db8::/32 or the single host 2001:db8::1?"
        );
    }

    #[test]
    fn new_clears_host_bits_and_checks_width() {
        assert_eq!(
            IpPrefix::new(ip("198.18.2.1"), 24),
            Some(p("198.18.2.0/24"))
        );
        assert_eq!(IpPrefix::new(ip("198.18.2.1"), 33), None);
        assert_eq!(IpPrefix::new(ip("::1"), 129), None);
        let iface: Ipv4Prefix = "198.18.1.1/24".parse().unwrap();
        assert_eq!(IpPrefix::from(iface), p("198.18.1.0/24"));
    }
}
