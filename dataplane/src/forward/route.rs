//! The IPv4 routing table: longest-prefix match over connected and static routes.
//!
//! Built from the configuration and then only read by the worker. A
//! multibit trie with strides 16, 8 and 8 (DIR-16-8-8, the shape of DPDK's
//! `rte_lpm` with a smaller first level): a 65 536-entry root indexed by the
//! top 16 bits, and 256-entry chunks below it for the prefixes longer than
//! /16 and /24. A lookup is one to three array reads and no hashing; the root
//! takes 256 KiB, each chunk 1 KiB.
//!
//! ```text
//!   root[dst >> 16] ──► leaf (route + 1, 0 = none)
//!                   └─► CHILD | chunk ─► chunk[dst >> 8 & 255] ──► leaf
//!                                                           └─► CHILD | chunk ─► chunk[dst & 255]
//! ```
//!
//! The trie is built from the route list, shortest prefixes first, so a
//! longer prefix always overwrites the slots of a shorter one it lies in
//! (controlled prefix expansion). [`RouteTable::from_routes`] builds it once
//! for a whole table, in time linear in the routes (a full Internet table in
//! well under a second); [`RouteTable::insert`] rebuilds it per route, for the
//! odd change. Routes change with the configuration, not per packet.

use super::prefix::Ipv4Prefix;
use std::collections::hash_map::{Entry, HashMap};
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

/// A trie slot that points at a chunk (the low bits are its index).
const CHILD: u32 = 1 << 31;
/// Slots in a chunk: 8 bits of the address.
const CHUNK: usize = 256;

/// Longest-prefix-match table.
#[derive(Debug, Clone)]
pub struct RouteTable {
    /// The routes, as inserted; a leaf holds an index into this plus one.
    routes: Vec<(Ipv4Prefix, Route)>,
    /// One slot per /16.
    root: Box<[u32]>,
    /// Second- and third-level chunks.
    chunks: Vec<[u32; CHUNK]>,
    /// Trie builds so far: a table must be built once, not once per route.
    #[cfg(test)]
    builds: usize,
}

impl Default for RouteTable {
    fn default() -> Self {
        Self {
            routes: Vec::new(),
            root: vec![0; 1 << 16].into_boxed_slice(),
            chunks: Vec::new(),
            #[cfg(test)]
            builds: 0,
        }
    }
}

/// The prefix with its host bits cleared: the key a route is stored under.
fn normalized(prefix: Ipv4Prefix) -> Ipv4Prefix {
    Ipv4Prefix::new(prefix.network(), prefix.len()).unwrap_or(prefix)
}

impl RouteTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// A table of `routes`, built once: a later route for a prefix replaces an
    /// earlier one, as with [`insert`](Self::insert). Linear in the routes.
    pub fn from_routes(routes: impl IntoIterator<Item = (Ipv4Prefix, Route)>) -> Self {
        let mut table = Self::new();
        let mut index: HashMap<Ipv4Prefix, usize> = HashMap::new();
        for (prefix, route) in routes {
            let prefix = normalized(prefix);
            match index.entry(prefix) {
                Entry::Occupied(e) => table.routes[*e.get()].1 = route,
                Entry::Vacant(e) => {
                    e.insert(table.routes.len());
                    table.routes.push((prefix, route));
                }
            }
        }
        table.rebuild();
        table
    }

    /// Adds or replaces the route for `prefix`, rebuilding the trie: for a
    /// whole table use [`from_routes`](Self::from_routes).
    pub fn insert(&mut self, prefix: Ipv4Prefix, route: Route) {
        let prefix = normalized(prefix);
        match self.routes.iter_mut().find(|(p, _)| *p == prefix) {
            Some(slot) => slot.1 = route,
            None => self.routes.push((prefix, route)),
        }
        self.rebuild();
    }

    /// The most specific route covering `dst`.
    #[inline]
    pub fn lookup(&self, dst: Ipv4Addr) -> Option<Route> {
        let d = u32::from(dst);
        let mut slot = self.root[(d >> 16) as usize];
        if slot & CHILD != 0 {
            slot = self.chunk(slot)[(d >> 8 & 0xff) as usize];
            if slot & CHILD != 0 {
                slot = self.chunk(slot)[(d & 0xff) as usize];
            }
        }
        let i = slot.checked_sub(1)?;
        self.routes.get(i as usize).map(|(_, r)| *r)
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether the table holds no route.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    #[inline]
    fn chunk(&self, slot: u32) -> &[u32; CHUNK] {
        &self.chunks[(slot & !CHILD) as usize]
    }

    /// Refills the trie from `routes`, shortest prefixes first.
    fn rebuild(&mut self) {
        #[cfg(test)]
        {
            self.builds += 1;
        }
        self.root.fill(0);
        self.chunks.clear();
        let mut order: Vec<usize> = (0..self.routes.len()).collect();
        order.sort_by_key(|&i| self.routes[i].0.len());
        for i in order {
            let (prefix, _) = self.routes[i];
            // Fewer routes than 2³¹ fit in memory.
            let leaf = u32::try_from(i + 1).expect("route count fits a slot");
            self.expand(prefix, leaf);
        }
    }

    /// Writes `leaf` into every slot `prefix` covers, making chunks where it
    /// is longer than a level.
    fn expand(&mut self, prefix: Ipv4Prefix, leaf: u32) {
        let net = u32::from(prefix.network());
        let len = u32::from(prefix.len());
        let hi = (net >> 16) as usize;
        if len <= 16 {
            let n = 1usize << (16 - len);
            self.root[hi..hi + n].fill(leaf);
            return;
        }
        let c = self.child_of_root(hi);
        let mid = (net >> 8 & 0xff) as usize;
        if len <= 24 {
            let n = 1usize << (24 - len);
            self.chunks[c][mid..mid + n].fill(leaf);
            return;
        }
        let c = self.child_of_chunk(c, mid);
        let lo = (net & 0xff) as usize;
        let n = 1usize << (32 - len);
        self.chunks[c][lo..lo + n].fill(leaf);
    }

    /// The chunk below root slot `i`, made (holding the slot's leaf) if none.
    fn child_of_root(&mut self, i: usize) -> usize {
        let slot = self.root[i];
        if slot & CHILD != 0 {
            return (slot & !CHILD) as usize;
        }
        let (c, link) = self.new_chunk(slot);
        self.root[i] = link;
        c
    }

    /// The chunk below slot `i` of chunk `c`, made likewise.
    fn child_of_chunk(&mut self, c: usize, i: usize) -> usize {
        let slot = self.chunks[c][i];
        if slot & CHILD != 0 {
            return (slot & !CHILD) as usize;
        }
        let (n, link) = self.new_chunk(slot);
        self.chunks[c][i] = link;
        n
    }

    /// A chunk filled with `leaf`: its index, and the slot that links to it.
    fn new_chunk(&mut self, leaf: u32) -> (usize, u32) {
        let c = self.chunks.len();
        // 2³¹ chunks would take 2 TiB.
        let link = CHILD | u32::try_from(c).expect("chunk count fits a slot");
        self.chunks.push([leaf; CHUNK]);
        (c, link)
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

    /// Longest match by scanning every route: what the trie must agree with.
    fn naive(routes: &[(Ipv4Prefix, Route)], dst: Ipv4Addr) -> Option<Route> {
        routes
            .iter()
            .filter(|(p, _)| p.contains(dst))
            .max_by_key(|(p, _)| p.len())
            .map(|(_, r)| *r)
    }

    #[test]
    fn agrees_with_a_linear_scan_at_every_length() {
        let mut x = 0x9e37_79b9_u32;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        let mut t = RouteTable::new();
        let mut all = Vec::new();
        // Nested prefixes around one address, at every length, plus random ones.
        let base = u32::from(Ipv4Addr::new(198, 18, 77, 129));
        for len in 0..=32u8 {
            let pfx = Ipv4Prefix::new(Ipv4Addr::from(base), len).unwrap();
            let r = Route {
                iface: usize::from(len),
                gateway: None,
            };
            t.insert(pfx, r);
            all.push((Ipv4Prefix::new(pfx.network(), len).unwrap(), r));
        }
        for i in 0..200 {
            let len = u8::try_from(next() % 33).unwrap();
            let pfx = Ipv4Prefix::new(Ipv4Addr::from(next()), len).unwrap();
            let r = Route {
                iface: 100 + i,
                gateway: Some(Ipv4Addr::new(198, 18, 0, 2)),
            };
            t.insert(pfx, r);
            let norm = Ipv4Prefix::new(pfx.network(), len).unwrap();
            match all.iter_mut().find(|(p, _)| *p == norm) {
                Some(e) => e.1 = r,
                None => all.push((norm, r)),
            }
        }
        assert_eq!(t.len(), all.len());
        for k in 0..20_000u32 {
            let dst = if k % 2 == 0 {
                Ipv4Addr::from(next())
            } else {
                // near the nested prefixes: differ in the low bits only
                Ipv4Addr::from(base ^ (next() >> (k % 32)))
            };
            assert_eq!(t.lookup(dst), naive(&all, dst), "{dst}");
        }
    }

    #[test]
    fn host_bits_of_a_prefix_do_not_make_a_second_route() {
        let mut t = RouteTable::new();
        let r = |iface| Route {
            iface,
            gateway: None,
        };
        t.insert(p("198.18.0.1/24"), r(0));
        t.insert(p("198.18.0.0/24"), r(1));
        assert_eq!(t.len(), 1);
        assert_eq!(t.lookup(Ipv4Addr::new(198, 18, 0, 200)), Some(r(1)));
        assert_eq!(t.lookup(Ipv4Addr::new(198, 18, 1, 0)), None);
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

    #[test]
    fn from_routes_matches_insert_one_by_one() {
        let r = |iface| Route {
            iface,
            gateway: None,
        };
        let routes = [
            (p("0.0.0.0/0"), r(0)),
            (p("198.18.0.1/24"), r(1)),
            (p("198.18.0.0/24"), r(2)),
            (p("198.18.0.128/25"), r(3)),
            (p("198.18.0.77/32"), r(4)),
        ];
        let mut one_by_one = RouteTable::new();
        for (prefix, route) in routes {
            one_by_one.insert(prefix, route);
        }
        let at_once = RouteTable::from_routes(routes);
        assert_eq!(at_once.routes, one_by_one.routes);
        for last in 0..=255 {
            let dst = Ipv4Addr::new(198, 18, 0, last);
            assert_eq!(at_once.lookup(dst), one_by_one.lookup(dst), "{dst}");
        }
        assert_eq!(at_once.lookup(Ipv4Addr::new(198, 18, 0, 77)), Some(r(4)));
        assert_eq!(at_once.lookup(Ipv4Addr::new(198, 18, 0, 1)), Some(r(2)));
    }

    /// A table built once per route costs the square of its size (200 000
    /// routes took 10 s, a full Internet table would take hours): the
    /// configuration's table must be built once, whatever its size.
    #[test]
    fn a_whole_table_is_built_once_not_once_per_route() {
        use crate::forward::{InterfaceConfig, RouterConfig, StaticRoute};
        let via = Ipv4Addr::new(198, 18, 2, 2);
        let cfg = RouterConfig {
            interfaces: vec![InterfaceConfig {
                port: "data0".into(),
                address: p("198.18.2.1/24"),
                virtual_ip: None,
                virtual_mac: None,
            }],
            routes: (0..1000u32)
                .map(|i| StaticRoute {
                    prefix: Ipv4Prefix::new(Ipv4Addr::from((1 << 24) + (i << 8)), 24).unwrap(),
                    via,
                })
                .collect(),
        };
        let table = cfg.route_table().unwrap();
        assert_eq!(table.builds, 1);
        assert_eq!(table.len(), 1001);
        let r = table.lookup(Ipv4Addr::new(1, 3, 231, 9)).unwrap();
        assert_eq!((r.iface, r.gateway), (0, Some(via)));
        assert_eq!(table.lookup(Ipv4Addr::new(1, 3, 232, 9)), None);
    }
}
