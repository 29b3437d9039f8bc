//! The ARP neighbour cache of one worker: bounded, with a bounded queue of
//! packets waiting for resolution.
//!
//! Behaviour follows Linux's neighbour code in spirit, kept small:
//! * an unknown next hop gets an `Incomplete` entry, an ARP request, and up to
//!   [`Limits::queue_per_neighbor`] packets held for it (`unres_qlen`); the
//!   whole cache holds at most [`Limits::queue_total`] waiting packets;
//! * the request is retried every [`Limits::retry_ns`] up to
//!   [`Limits::max_tries`] times; then the entry fails, its packets are handed
//!   back to be dropped (`arp_unresolved`) and the caller may send ICMP host
//!   unreachable;
//! * a resolved entry is trusted for [`Limits::reachable_ns`]; used after that
//!   it still forwards but asks for a refresh (one request per retry period);
//! * entries unused for [`Limits::gc_ns`] are removed, and a full cache
//!   evicts the least recently confirmed resolved entry, never one that holds
//!   packets.
//!
//! Time is passed in (nanoseconds of a monotonic clock), never read here, so
//! the tests are exact.

use super::addr_hash::AddrHashMap;
use super::route::IfIndex;
use crate::wire::EthernetAddress;
use std::net::Ipv4Addr;

/// Sizes and timers of the cache.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Entries at most.
    pub capacity: usize,
    /// Packets held for one unresolved neighbour.
    pub queue_per_neighbor: usize,
    /// Packets held for all unresolved neighbours together.
    pub queue_total: usize,
    /// Time between ARP requests for one neighbour.
    pub retry_ns: u64,
    /// Requests before an unresolved neighbour fails.
    pub max_tries: u8,
    /// How long a reply is trusted without refresh.
    pub reachable_ns: u64,
    /// Unused entries are removed after this long.
    pub gc_ns: u64,
}

const SECOND: u64 = 1_000_000_000;

impl Default for Limits {
    fn default() -> Self {
        Self {
            capacity: 1024,
            queue_per_neighbor: 3,
            queue_total: 256,
            retry_ns: SECOND,
            max_tries: 3,
            reachable_ns: 30 * SECOND,
            gc_ns: 300 * SECOND,
        }
    }
}

#[derive(Debug)]
enum State {
    /// Waiting for a reply; `tries` requests sent, the last at `last_try`.
    Incomplete { tries: u8, last_try: u64 },
    /// Resolved; confirmed by a reply or request at `confirmed`.
    Resolved {
        mac: EthernetAddress,
        confirmed: u64,
        last_refresh: u64,
    },
}

#[derive(Debug)]
struct Entry<P> {
    iface: IfIndex,
    state: State,
    last_used: u64,
    waiting: Vec<P>,
}

/// What the cache says about a next hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Send to this MAC; when `refresh` is set, also send an ARP request to
    /// confirm it (the entry is older than the reachable time).
    Resolved { mac: EthernetAddress, refresh: bool },
    /// Not resolved: queue the packet with [`NeighborCache::hold`].
    Unresolved,
}

/// What became of a packet handed to [`NeighborCache::hold`].
#[derive(Debug, PartialEq, Eq)]
pub enum Held<P> {
    /// Queued; send an ARP request now if `request` is set.
    Queued { request: bool },
    /// The neighbour's queue, or the cache's, is full: drop it.
    QueueFull(P),
    /// No room for a new entry: drop it.
    TableFull(P),
}

/// Packets released or failed by the cache, for the caller to transmit or drop.
#[derive(Debug, PartialEq, Eq)]
pub struct Released<P> {
    /// Interface to send on.
    pub iface: IfIndex,
    /// The resolved MAC.
    pub mac: EthernetAddress,
    /// The packet.
    pub packet: P,
}

/// A bounded ARP cache owned by one worker.
#[derive(Debug)]
pub struct NeighborCache<P> {
    limits: Limits,
    /// Keys are neighbours on connected subnets: a fast hash is enough.
    entries: AddrHashMap<Ipv4Addr, Entry<P>>,
    waiting_total: usize,
}

impl<P> NeighborCache<P> {
    /// An empty cache; its memory is reserved now, not on the fast path.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            entries: AddrHashMap::with_capacity_and_hasher(limits.capacity, Default::default()),
            waiting_total: 0,
        }
    }

    /// Number of entries, resolved or not.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Packets waiting for resolution.
    pub fn waiting(&self) -> usize {
        self.waiting_total
    }

    /// The MAC for `ip`, marking the entry used.
    pub fn lookup(&mut self, ip: Ipv4Addr, now: u64) -> Lookup {
        let limits = self.limits;
        let Some(e) = self.entries.get_mut(&ip) else {
            return Lookup::Unresolved;
        };
        e.last_used = now;
        match &mut e.state {
            State::Resolved {
                mac,
                confirmed,
                last_refresh,
            } => {
                let stale = now.saturating_sub(*confirmed) >= limits.reachable_ns;
                let refresh = stale && now.saturating_sub(*last_refresh) >= limits.retry_ns;
                if refresh {
                    *last_refresh = now;
                }
                Lookup::Resolved { mac: *mac, refresh }
            }
            State::Incomplete { .. } => Lookup::Unresolved,
        }
    }

    /// Holds `packet` until `ip` (reached through `iface`) resolves.
    pub fn hold(&mut self, ip: Ipv4Addr, iface: IfIndex, packet: P, now: u64) -> Held<P> {
        if self.waiting_total >= self.limits.queue_total {
            return Held::QueueFull(packet);
        }
        if !self.entries.contains_key(&ip) && !self.make_room() {
            return Held::TableFull(packet);
        }
        let per_neighbor = self.limits.queue_per_neighbor;
        let e = self.entries.entry(ip).or_insert_with(|| Entry {
            iface,
            state: State::Incomplete {
                tries: 0,
                last_try: 0,
            },
            last_used: now,
            waiting: Vec::with_capacity(per_neighbor),
        });
        e.last_used = now;
        let request = match &mut e.state {
            State::Incomplete { tries, last_try } if *tries == 0 => {
                *tries = 1;
                *last_try = now;
                true
            }
            _ => false,
        };
        if e.waiting.len() >= per_neighbor {
            return Held::QueueFull(packet);
        }
        e.waiting.push(packet);
        self.waiting_total += 1;
        Held::Queued { request }
    }

    /// Records that `ip` is at `mac` on `iface` (from an ARP reply, or a
    /// request addressed to us). Only creates an entry when `create` is set
    /// (RFC 826: merge always, add only when we are the target). Packets that
    /// were waiting for it are appended to `out`.
    pub fn learn(
        &mut self,
        ip: Ipv4Addr,
        iface: IfIndex,
        mac: EthernetAddress,
        create: bool,
        now: u64,
        out: &mut Vec<Released<P>>,
    ) -> bool {
        if !(self.entries.contains_key(&ip) || create && self.make_room()) {
            return false;
        }
        let e = self.entries.entry(ip).or_insert_with(|| Entry {
            iface,
            state: State::Incomplete {
                tries: 0,
                last_try: 0,
            },
            last_used: now,
            waiting: Vec::new(),
        });
        e.iface = iface;
        e.state = State::Resolved {
            mac,
            confirmed: now,
            last_refresh: now,
        };
        self.waiting_total -= e.waiting.len();
        out.extend(
            e.waiting
                .drain(..)
                .map(|packet| Released { iface, mac, packet }),
        );
        true
    }

    /// Runs the timers: ARP retries go to `requests` as `(iface, ip)`,
    /// packets of neighbours that never answered go to `failed`, and
    /// long-unused entries are removed.
    pub fn poll(&mut self, now: u64, requests: &mut Vec<(IfIndex, Ipv4Addr)>, failed: &mut Vec<P>) {
        let limits = self.limits;
        let mut freed = 0;
        self.entries.retain(|ip, e| match &mut e.state {
            State::Incomplete { tries, last_try } => {
                if now.saturating_sub(*last_try) < limits.retry_ns {
                    return true;
                }
                if *tries >= limits.max_tries {
                    freed += e.waiting.len();
                    failed.append(&mut e.waiting);
                    return false;
                }
                *tries += 1;
                *last_try = now;
                requests.push((e.iface, *ip));
                true
            }
            State::Resolved { .. } => now.saturating_sub(e.last_used) < limits.gc_ns,
        });
        self.waiting_total -= freed;
    }

    /// Frees one slot if the cache is full: the least recently confirmed
    /// resolved entry goes; entries holding packets never do.
    fn make_room(&mut self) -> bool {
        if self.entries.len() < self.limits.capacity {
            return true;
        }
        let victim = self
            .entries
            .iter()
            .filter_map(|(ip, e)| match e.state {
                State::Resolved { confirmed, .. } => Some((confirmed, *ip)),
                State::Incomplete { .. } => None,
            })
            .min_by_key(|(confirmed, _)| *confirmed);
        match victim {
            Some((_, ip)) => {
                self.entries.remove(&ip);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 7]);
    const IP: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 2);

    fn cache() -> NeighborCache<u32> {
        NeighborCache::new(Limits {
            capacity: 2,
            queue_total: 4,
            ..Limits::default()
        })
    }

    #[test]
    fn unknown_next_hop_holds_packets_then_releases_them_on_reply() {
        let mut c = cache();
        assert_eq!(c.lookup(IP, 0), Lookup::Unresolved);
        assert_eq!(c.hold(IP, 1, 10, 0), Held::Queued { request: true });
        assert_eq!(c.hold(IP, 1, 11, 5), Held::Queued { request: false });
        assert_eq!(c.waiting(), 2);
        let mut out = Vec::new();
        assert!(c.learn(IP, 1, MAC, false, 10, &mut out));
        let got: Vec<_> = out.iter().map(|r| (r.iface, r.mac, r.packet)).collect();
        assert_eq!(got, vec![(1, MAC, 10), (1, MAC, 11)]);
        assert_eq!(c.waiting(), 0);
        assert_eq!(
            c.lookup(IP, 11),
            Lookup::Resolved {
                mac: MAC,
                refresh: false
            }
        );
    }

    #[test]
    fn per_neighbor_queue_is_bounded() {
        let mut c = cache();
        for p in 0..3 {
            assert!(matches!(c.hold(IP, 1, p, 0), Held::Queued { .. }));
        }
        assert_eq!(c.hold(IP, 1, 99, 0), Held::QueueFull(99));
    }

    #[test]
    fn total_queue_is_bounded() {
        let mut c = cache();
        let other = Ipv4Addr::new(198, 18, 2, 3);
        for p in 0..3 {
            c.hold(IP, 1, p, 0);
        }
        assert!(matches!(c.hold(other, 1, 3, 0), Held::Queued { .. }));
        assert_eq!(c.hold(other, 1, 4, 0), Held::QueueFull(4));
    }

    #[test]
    fn retries_then_fails_and_returns_the_packets() {
        let mut c = cache();
        c.hold(IP, 1, 7, 0);
        let (mut req, mut failed) = (Vec::new(), Vec::new());
        c.poll(SECOND / 2, &mut req, &mut failed);
        assert!(req.is_empty(), "no retry before the retry period");
        c.poll(SECOND, &mut req, &mut failed);
        c.poll(2 * SECOND, &mut req, &mut failed);
        assert_eq!(req, vec![(1, IP), (1, IP)]);
        assert!(failed.is_empty());
        c.poll(3 * SECOND, &mut req, &mut failed);
        assert_eq!(failed, vec![7]);
        assert!(c.is_empty());
        assert_eq!(c.waiting(), 0);
    }

    #[test]
    fn stale_entry_still_forwards_but_asks_for_refresh_once_per_period() {
        let mut c = cache();
        c.learn(IP, 1, MAC, true, 0, &mut Vec::new());
        let t = 30 * SECOND;
        assert_eq!(
            c.lookup(IP, t),
            Lookup::Resolved {
                mac: MAC,
                refresh: true
            }
        );
        assert_eq!(
            c.lookup(IP, t + 1),
            Lookup::Resolved {
                mac: MAC,
                refresh: false
            }
        );
        assert_eq!(
            c.lookup(IP, t + SECOND),
            Lookup::Resolved {
                mac: MAC,
                refresh: true
            }
        );
    }

    #[test]
    fn learn_without_create_only_updates() {
        let mut c = cache();
        assert!(!c.learn(IP, 1, MAC, false, 0, &mut Vec::new()));
        assert!(c.is_empty());
    }

    #[test]
    fn full_cache_evicts_oldest_resolved_never_one_with_packets() {
        let mut c = cache();
        let a = Ipv4Addr::new(198, 18, 2, 10);
        let b = Ipv4Addr::new(198, 18, 2, 11);
        c.learn(a, 1, MAC, true, 0, &mut Vec::new());
        c.hold(b, 1, 1, 1);
        // full: `a` (resolved) is evicted for a new neighbour
        assert!(c.learn(IP, 1, MAC, true, 2, &mut Vec::new()));
        assert_eq!(c.lookup(a, 3), Lookup::Unresolved);
        // full again with IP resolved and b holding a packet: IP goes, b stays
        assert!(matches!(c.hold(a, 1, 2, 4), Held::Queued { .. }));
        assert_eq!(c.waiting(), 2);
        // now both entries hold packets: nothing can be evicted
        assert_eq!(
            c.hold(Ipv4Addr::new(198, 18, 2, 12), 1, 3, 5),
            Held::TableFull(3)
        );
    }

    #[test]
    fn unused_entries_are_collected() {
        let mut c = cache();
        c.learn(IP, 1, MAC, true, 0, &mut Vec::new());
        c.poll(299 * SECOND, &mut Vec::new(), &mut Vec::new());
        assert_eq!(c.len(), 1);
        c.poll(300 * SECOND, &mut Vec::new(), &mut Vec::new());
        assert!(c.is_empty());
    }
}
