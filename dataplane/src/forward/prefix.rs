//! IPv4 prefixes (`198.18.1.0/24`) as the configuration and the routing table use them.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An address with a prefix length; the address may have host bits set
/// (an interface address `198.18.1.1/24` is a valid `Ipv4Prefix`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Prefix {
    addr: Ipv4Addr,
    len: u8,
}

/// Why a prefix string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// expected ADDRESS/LENGTH, e.g. 198.18.1.0/24
    #[error("expected ADDRESS/LENGTH, e.g. 198.18.1.0/24")]
    MissingLength,
    /// not an IPv4 address
    #[error("`{0}` is not an IPv4 address")]
    BadAddress(String),
    /// prefix length must be 0..=32
    #[error("prefix length `{0}` is not in 0..=32")]
    BadLength(String),
}

impl Ipv4Prefix {
    /// A prefix; `None` if `len > 32`.
    pub fn new(addr: Ipv4Addr, len: u8) -> Option<Self> {
        (len <= 32).then_some(Self { addr, len })
    }

    /// The address as written (host bits kept).
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The prefix length.
    #[allow(clippy::len_without_is_empty)] // a prefix length, not a collection's
    pub fn len(&self) -> u8 {
        self.len
    }

    /// The netmask as a host-order integer.
    pub fn mask(&self) -> u32 {
        mask(self.len)
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// The directed broadcast address of the subnet.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    /// Whether `ip` lies inside this prefix.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (u32::from(ip) ^ u32::from(self.addr)) & self.mask() == 0
    }
}

/// The netmask of a prefix length as a host-order integer.
pub(crate) fn mask(len: u8) -> u32 {
    match len {
        0 => 0,
        l if l >= 32 => u32::MAX,
        l => u32::MAX << (32 - l),
    }
}

impl FromStr for Ipv4Prefix {
    type Err = PrefixError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = s.split_once('/').ok_or(PrefixError::MissingLength)?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| PrefixError::BadAddress(addr.into()))?;
        let len: u8 = len
            .parse()
            .map_err(|_| PrefixError::BadLength(len.into()))?;
        Self::new(addr, len).ok_or(PrefixError::BadLength(len.to_string()))
    }
}

impl fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_contains() {
        let p: Ipv4Prefix = "198.18.1.1/24".parse().unwrap();
        assert_eq!(p.network(), Ipv4Addr::new(198, 18, 1, 0));
        assert_eq!(p.broadcast(), Ipv4Addr::new(198, 18, 1, 255));
        assert!(p.contains(Ipv4Addr::new(198, 18, 1, 200)));
        assert!(!p.contains(Ipv4Addr::new(198, 18, 2, 1)));
        let all: Ipv4Prefix = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(Ipv4Addr::new(198, 19, 255, 255)));
        let host: Ipv4Prefix = "198.19.0.1/32".parse().unwrap();
        assert!(host.contains(Ipv4Addr::new(198, 19, 0, 1)));
        assert!(!host.contains(Ipv4Addr::new(198, 19, 0, 2)));
    }

    #[test]
    fn refuses_bad_prefixes() {
        assert_eq!(
            "198.18.1.1".parse::<Ipv4Prefix>(),
            Err(PrefixError::MissingLength)
        );
        assert_eq!(
            "198.18.1/24".parse::<Ipv4Prefix>(),
            Err(PrefixError::BadAddress("198.18.1".into()))
        );
        assert_eq!(
            "198.18.1.0/33".parse::<Ipv4Prefix>(),
            Err(PrefixError::BadLength("33".into()))
        );
        assert_eq!(
            "198.18.1.0/x".parse::<Ipv4Prefix>(),
            Err(PrefixError::BadLength("x".into()))
        );
    }
}
