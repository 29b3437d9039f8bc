//! The IPv4 routing table: longest-prefix match over connected and static routes.
//!
//! Built once from the configuration and then only read by the worker. One
//! hash map per prefix length that is present, searched from the longest: a
//! lookup costs one probe per distinct length in the table (a handful on an
//! appliance), with no allocation and no locks.

use super::prefix::{mask, Ipv4Prefix};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::Ipv4Addr;

/// Index of an interface in the unit's interface list.
pub type IfIndex = usize;

/// Where a route sends a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The egress interface.
    pub iface: IfIndex,
    /// The gateway, or `None` for a connected route (the destination itself is the next hop).
    pub gateway: Option<Ipv4Addr>,
}

impl Route {
    /// The address to resolve with ARP for a packet to `dst`.
    pub fn next_hop(&self, dst: Ipv4Addr) -> Ipv4Addr {
        self.gateway.unwrap_or(dst)
    }
}

/// A multiplicative hash for `u32` network addresses: the keys are not
/// attacker-chosen in a way that matters (the table is the operator's own) and
/// SipHash would cost more than the rest of the lookup.
#[derive(Default)]
pub(crate) struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8 | u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16;
    }
}

/// A map keyed by addresses the operator or a connected subnet chose.
pub(crate) type AddrHashMap<K, V> = HashMap<K, V, BuildHasherDefault<AddrHasher>>;

type AddrMap = AddrHashMap<u32, Route>;

/// Longest-prefix-match table.
#[derive(Debug, Default, Clone)]
pub struct RouteTable {
    /// `(prefix length, network → route)`, longest length first.
    levels: Vec<(u8, AddrMap)>,
}

impl RouteTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces the route for `prefix`.
    pub fn insert(&mut self, prefix: Ipv4Prefix, route: Route) {
        let len = prefix.len();
        let at = match self.levels.iter().position(|(l, _)| *l <= len) {
            Some(i) if self.levels[i].0 == len => i,
            Some(i) => {
                self.levels.insert(i, (len, AddrMap::default()));
                i
            }
            None => {
                self.levels.push((len, AddrMap::default()));
                self.levels.len() - 1
            }
        };
        self.levels[at].1.insert(u32::from(prefix.network()), route);
    }

    /// The most specific route covering `dst`.
    #[inline]
    pub fn lookup(&self, dst: Ipv4Addr) -> Option<Route> {
        let dst = u32::from(dst);
        self.levels
            .iter()
            .find_map(|(len, map)| map.get(&(dst & mask(*len))).copied())
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.levels.iter().map(|(_, m)| m.len()).sum()
    }

    /// Whether the table holds no route.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Ipv4Prefix {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_wins() {
        let mut t = RouteTable::new();
        let gw = Ipv4Addr::new(198, 18, 2, 2);
        t.insert(
            p("198.18.1.0/24"),
            Route {
                iface: 0,
                gateway: None,
            },
        );
        t.insert(
            p("198.18.2.0/24"),
            Route {
                iface: 1,
                gateway: None,
            },
        );
        t.insert(
            p("198.19.0.0/16"),
            Route {
                iface: 1,
                gateway: Some(gw),
            },
        );
        t.insert(
            p("198.19.7.0/24"),
            Route {
                iface: 0,
                gateway: None,
            },
        );
        assert_eq!(t.len(), 4);
        assert_eq!(t.lookup(Ipv4Addr::new(198, 18, 1, 9)).unwrap().iface, 0);
        let r = t.lookup(Ipv4Addr::new(198, 19, 0, 1)).unwrap();
        assert_eq!((r.iface, r.next_hop(Ipv4Addr::new(198, 19, 0, 1))), (1, gw));
        assert_eq!(t.lookup(Ipv4Addr::new(198, 19, 7, 1)).unwrap().iface, 0);
        assert_eq!(t.lookup(Ipv4Addr::new(198, 18, 3, 1)), None);
    }

    #[test]
    fn default_route_catches_the_rest_and_replace_works() {
        let mut t = RouteTable::new();
        t.insert(
            p("0.0.0.0/0"),
            Route {
                iface: 1,
                gateway: Some(Ipv4Addr::new(198, 18, 2, 2)),
            },
        );
        t.insert(
            p("198.18.1.0/24"),
            Route {
                iface: 0,
                gateway: None,
            },
        );
        assert_eq!(t.lookup(Ipv4Addr::new(198, 19, 5, 5)).unwrap().iface, 1);
        t.insert(
            p("0.0.0.0/0"),
            Route {
                iface: 0,
                gateway: Some(Ipv4Addr::new(198, 18, 1, 3)),
            },
        );
        assert_eq!(t.len(), 2);
        assert_eq!(t.lookup(Ipv4Addr::new(198, 19, 5, 5)).unwrap().iface, 0);
    }
}
