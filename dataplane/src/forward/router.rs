//! The per-worker IPv4 router: what happens to one received frame.
//!
//! `Router::handle` takes ownership of a frame and ends it in exactly one way:
//! pushed to `out` for transmission (forwarded, or rewritten in place into an
//! ARP or echo reply), held while its next hop resolves, split into fragments
//! that are each forwarded or held (a datagram over the egress MTU without
//! DF, RFC 791 §3.2), consumed (an ARP reply), or dropped with a
//! [`DropReason`] counted. It may also push frames it built (ICMP errors, ARP
//! requests, fragments) from the [`BufPool`].
//!
//! The code is generic over the buffer so the same logic runs on a `Vec<u8>`
//! in the unit tests and on a DPDK mbuf in the worker. Time comes in as
//! nanoseconds of a monotonic clock.
//!
//! # Live and standby
//!
//! A router is *live* (the active unit of a pair, or a unit without a
//! partner) or not (the passive unit, [`Router::set_live`]). The passive unit
//! leaves the cluster's traffic to the active one; each frame it leaves is
//! dropped as [`DropReason::Standby`]:
//!
//! | frame                                   | live      | passive  |
//! |-----------------------------------------|-----------|----------|
//! | to a virtual MAC                        | handled   | dropped  |
//! | ARP request for a virtual IP            | answered  | dropped  |
//! | IPv4 to a virtual IP                    | served    | dropped  |
//! | IPv4 to forward                         | forwarded | dropped  |
//! | ARP for the interface's own address     | answered  | answered |
//! | IPv4 to the interface's own address     | served    | served   |
//! | ARP reply, gratuitous ARP               | learnt    | learnt   |
//!
//! A passive interface does not claim its virtual IP and MAC at all (see
//! `Interface::claimed_ip`), so the live path pays nothing for the check but
//! one predictable branch before a datagram is routed; the standby reasons
//! are told apart only on the paths that drop.
//!
//! # The partner probe
//!
//! When every HA link is silent, a unit asks whether its partner still
//! answers on the data networks before it takes over (Stormshield's "ICMP
//! monitoring"): [`Router::probe`] sends an ICMP echo request to each of the
//! partner's own interface addresses ([`Router::set_probe_targets`]), from
//! this unit's own address on that subnet and its port MAC, with the
//! identifier [`PROBE_ID`], through the neighbour cache like a forwarded
//! frame. Own addresses are served by both units, so the probe works between
//! a passive unit and an active one, or two passive ones. Any router
//! receiving a matching echo reply stamps the time into the shared
//! [`Router::set_probe_seen`] cell (the reply may reach any worker).

use super::fragment::Split;
use super::neighbor::{Held, Limits, Lookup, NeighborCache, Released};
use super::route::{IfIndex, RouteTable};
use super::token_bucket::TokenBucket;
use super::{InterfaceConfig, Ipv4Prefix, RouterConfig};
use crate::counters::{DropReason, WorkerCounters};
use crate::firewall::Firewall;
use crate::wire::{
    self, checksum, ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetAddress, EthernetFrame,
    Icmpv4Message, Icmpv4Packet, IpProtocol, Ipv4Packet,
};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A packet buffer the router can read and rewrite in place.
pub trait PacketBuf {
    /// The frame, from the Ethernet header on.
    fn data(&self) -> &[u8];
    /// The frame, writable.
    fn data_mut(&mut self) -> &mut [u8];
}

/// Where the router gets buffers for the frames it builds itself.
pub trait BufPool {
    /// The buffer type, the same as received frames.
    type Buf: PacketBuf;
    /// A zeroed buffer of exactly `len` bytes, or `None` when the pool is dry.
    fn alloc(&mut self, len: usize) -> Option<Self::Buf>;
}

/// Any owned byte buffer: a `Vec<u8>` in the tests, an mbuf in the worker.
impl<T: AsRef<[u8]> + AsMut<[u8]>> PacketBuf for T {
    #[inline]
    fn data(&self) -> &[u8] {
        self.as_ref()
    }
    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        self.as_mut()
    }
}

/// TTL of packets the unit originates (Linux's default).
const DEFAULT_TTL: u8 = 64;
/// RFC 1812 4.3.2.3: an ICMP error carries as much of the original datagram
/// as fits in 576 bytes.
const ICMP_ERROR_MAX_IP_LEN: usize = 576;
const ETH_HDR: usize = 14;
const IPV4_HDR: usize = 20;
const ICMP_HDR: usize = 8;
const ARP_LEN: usize = 28;
/// ICMP errors per second per worker, and the burst allowed.
const ICMP_ERROR_RATE: u64 = 1000;
const ICMP_ERROR_BURST: u64 = 100;

/// The ICMP echo identifier of the partner probe ([`Router::probe`]): 0x7464,
/// "td" in ASCII. An echo reply to one of the unit's own addresses, from a
/// probe target, carrying it, is the partner's answer. Fixed, not per
/// worker or per boot: worker 0 sends the requests, but the reply may reach
/// any worker, which must recognise it alone. A packet capture tells the
/// probes apart by it; the sequence number tells the requests apart.
pub const PROBE_ID: u16 = 0x7464;

/// ICMP codes the router sends (RFC 792, RFC 1812).
mod code {
    pub const NET_UNREACHABLE: u8 = 0;
    pub const HOST_UNREACHABLE: u8 = 1;
    pub const FRAG_NEEDED: u8 = 4;
    pub const TTL_EXCEEDED: u8 = 0;
}

/// A data interface as the worker sees it.
#[derive(Debug, Clone)]
pub struct Interface {
    /// The port's own MAC.
    pub mac: EthernetAddress,
    /// Own address and subnet.
    pub address: Ipv4Prefix,
    /// Cluster virtual IP, if any.
    pub virtual_ip: Option<Ipv4Addr>,
    /// Cluster virtual MAC, if any.
    pub virtual_mac: Option<EthernetAddress>,
    /// Largest IP datagram the port sends.
    pub mtu: u16,
    /// The virtual IP and MAC as the unit claims them now: the configured
    /// ones while live, none while passive ([`Router::set_live`]).
    claimed_ip: Option<Ipv4Addr>,
    claimed_mac: Option<EthernetAddress>,
}

impl Interface {
    /// From the configuration and the port's facts.
    pub fn new(cfg: &InterfaceConfig, mac: EthernetAddress, mtu: u16) -> Self {
        Self {
            mac,
            address: cfg.address,
            virtual_ip: cfg.virtual_ip,
            virtual_mac: cfg.virtual_mac,
            mtu,
            claimed_ip: cfg.virtual_ip,
            claimed_mac: cfg.virtual_mac,
        }
    }

    /// Claims the virtual IP and MAC (live) or leaves them to the partner.
    fn claim(&mut self, live: bool) {
        (self.claimed_ip, self.claimed_mac) = if live {
            (self.virtual_ip, self.virtual_mac)
        } else {
            (None, None)
        };
    }

    fn accepts_mac(&self, dst: EthernetAddress) -> bool {
        dst == self.mac || Some(dst) == self.claimed_mac || dst.is_broadcast()
    }

    /// The MAC to answer `ip` with: the virtual MAC for the virtual IP.
    fn mac_for(&self, ip: Ipv4Addr) -> EthernetAddress {
        match (self.virtual_ip, self.virtual_mac) {
            (Some(vip), Some(vmac)) if vip == ip => vmac,
            _ => self.mac,
        }
    }

    /// The source MAC of forwarded frames: the virtual MAC when configured.
    fn forward_mac(&self) -> EthernetAddress {
        self.virtual_mac.unwrap_or(self.mac)
    }

    /// The interface's own address, or the virtual IP while it is claimed.
    fn owns(&self, ip: Ipv4Addr) -> bool {
        ip == self.address.addr() || Some(ip) == self.claimed_ip
    }
}

/// A forwarded frame waiting for its next hop's MAC, with what is needed to
/// send ICMP host unreachable back if the next hop never answers.
pub struct HeldFrame<B> {
    frame: B,
    ingress: IfIndex,
    from_mac: Option<EthernetAddress>,
}

/// Where a forwarded frame goes, and where it came from (for an ICMP error
/// about it).
struct Hop {
    egress: IfIndex,
    next_hop: Ipv4Addr,
    ingress: IfIndex,
    /// Who to send ICMP host unreachable to if the next hop never answers;
    /// `None` for a frame of the unit's own (a probe), which is not counted
    /// as forwarded either.
    from_mac: Option<EthernetAddress>,
}

/// A neighbour learnt by one worker, to be told to the others.
pub type Learned = (Ipv4Addr, IfIndex, EthernetAddress);

/// Why [`Router::reconfigure`] refused a configuration; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReconfigureError {
    /// The data interfaces are the unit's ports: their number is fixed.
    #[error("{given} data interfaces, the unit runs {running}")]
    InterfaceCount {
        /// Interfaces the unit runs.
        running: usize,
        /// Interfaces in the configuration.
        given: usize,
    },
    /// Interface `index` is another port than the one the unit runs there.
    #[error("data interface {index} is port {given}, the unit runs {running} there")]
    Port {
        /// The interface's index.
        index: IfIndex,
        /// The port the unit runs.
        running: String,
        /// The port in the configuration.
        given: String,
    },
    /// A port's own address is the unit's, not the pair's: it stays.
    #[error("port {port}: address {given}, the unit runs {running}")]
    Address {
        /// The port.
        port: String,
        /// The address the unit runs.
        running: Ipv4Prefix,
        /// The address in the configuration.
        given: Ipv4Prefix,
    },
    /// A static route whose gateway is on none of the interfaces' subnets.
    #[error("route {0}: gateway on no subnet")]
    BadRoute(usize),
}

/// The routing state and logic of one worker.
pub struct Router<B> {
    ifaces: Vec<Interface>,
    /// The interfaces' port names, as configured at boot: what
    /// [`Router::reconfigure`] holds a new configuration to.
    ports: Vec<String>,
    routes: RouteTable,
    neighbors: NeighborCache<HeldFrame<B>>,
    icmp_errors: TokenBucket,
    counters: Arc<WorkerCounters>,
    ip_id: u16,
    released: Vec<Released<HeldFrame<B>>>,
    learned: Vec<Learned>,
    /// The fragments of one datagram between allocation and sending (kept
    /// for its capacity).
    fragments: Vec<B>,
    firewall: Option<Firewall>,
    /// Forwards and claims the virtual addresses (see "Live and standby").
    live: bool,
    /// The partner's addresses to probe, each with the interface whose
    /// subnet holds it.
    probe_targets: Vec<(IfIndex, Ipv4Addr)>,
    probe_seq: u16,
    /// When a probe was last answered (ns of the unit's clock, 0: never).
    probe_seen: Arc<AtomicU64>,
}

impl<B: PacketBuf> Router<B> {
    /// A router for `ifaces` (index = port index) with the routes of `cfg`.
    /// Fails with the index of a static route whose gateway is on no subnet.
    pub fn new(
        cfg: &RouterConfig,
        ifaces: Vec<Interface>,
        counters: Arc<WorkerCounters>,
    ) -> Result<Self, usize> {
        Ok(Self {
            ifaces,
            ports: cfg.interfaces.iter().map(|i| i.port.clone()).collect(),
            routes: cfg.route_table()?,
            neighbors: NeighborCache::new(Limits::default()),
            icmp_errors: TokenBucket::new(ICMP_ERROR_RATE, ICMP_ERROR_BURST),
            counters,
            ip_id: 0,
            released: Vec::with_capacity(64),
            learned: Vec::with_capacity(16),
            fragments: Vec::with_capacity(8),
            firewall: None,
            live: true,
            probe_targets: Vec::new(),
            probe_seq: 0,
            probe_seen: Arc::default(),
        })
    }

    /// Makes the router live (the active unit, or a unit without a partner:
    /// the default) or passive (it leaves forwarding and the virtual IPs and
    /// MACs to the partner, see "Live and standby").
    pub fn set_live(&mut self, live: bool) {
        self.live = live;
        for ifc in &mut self.ifaces {
            ifc.claim(live);
        }
    }

    /// Whether the router is live.
    pub fn live(&self) -> bool {
        self.live
    }

    /// Puts the pair's part of `cfg` in force without a restart: each
    /// interface's virtual IP and MAC (claimed as [`Router::set_live`] says)
    /// and the static routes. The ports (their MACs, their MTUs) and their
    /// own addresses are the unit's: a `cfg` that changes the ports or the
    /// addresses is refused, as is a route whose gateway is on no subnet,
    /// and then nothing changes. The subnets stay, so the neighbour cache
    /// (and the frames it holds) and the counters do.
    /// Returns whether a virtual IP or MAC changed: a live unit then
    /// announces them ([`Router::announce`]), so hosts and switches move.
    pub fn reconfigure(&mut self, cfg: &RouterConfig) -> Result<bool, ReconfigureError> {
        self.same_interfaces(cfg)?;
        let routes = cfg.route_table().map_err(ReconfigureError::BadRoute)?;
        let mut changed = false;
        for (ifc, new) in self.ifaces.iter_mut().zip(&cfg.interfaces) {
            changed |= (ifc.virtual_ip, ifc.virtual_mac) != (new.virtual_ip, new.virtual_mac);
            ifc.virtual_ip = new.virtual_ip;
            ifc.virtual_mac = new.virtual_mac;
            ifc.claim(self.live);
        }
        self.routes = routes;
        Ok(changed)
    }

    /// Whether `cfg` has the interfaces the router runs: as many, on the
    /// same ports, with the same own addresses.
    fn same_interfaces(&self, cfg: &RouterConfig) -> Result<(), ReconfigureError> {
        let (running, given) = (self.ifaces.len(), cfg.interfaces.len());
        if running != given {
            return Err(ReconfigureError::InterfaceCount { running, given });
        }
        for (index, (ifc, new)) in self.ifaces.iter().zip(&cfg.interfaces).enumerate() {
            let port = self.ports.get(index).map_or("", String::as_str);
            if new.port != port {
                return Err(ReconfigureError::Port {
                    index,
                    running: port.to_string(),
                    given: new.port.clone(),
                });
            }
            if new.address != ifc.address {
                return Err(ReconfigureError::Address {
                    port: new.port.clone(),
                    running: ifc.address,
                    given: new.address,
                });
            }
        }
        Ok(())
    }

    /// The partner's own interface addresses, for [`Router::probe`] and to
    /// recognise its answers. A target on none of the interfaces' subnets
    /// (or that is an interface's own, network or broadcast address) is
    /// ignored: the probe asks whether the partner answers on the data
    /// networks the two units share, which a target behind a router would
    /// not tell.
    pub fn set_probe_targets(&mut self, targets: Vec<Ipv4Addr>) {
        self.probe_targets = targets
            .into_iter()
            .filter_map(|t| {
                let iface = self.ifaces.iter().position(|ifc| {
                    let a = ifc.address;
                    a.contains(t) && t != a.addr() && t != a.network() && t != a.broadcast()
                })?;
                Some((iface, t))
            })
            .collect();
    }

    /// The probe targets kept by [`Router::set_probe_targets`].
    pub fn probe_targets(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.probe_targets.iter().map(|&(_, t)| t)
    }

    /// Where a probe's answer is stamped: the time of the last one, in ns of
    /// the unit's clock (`now` as passed to [`Router::handle`]), 0 for never.
    /// Shared by every worker's router, since any worker may receive it; the
    /// stamp only moves forward.
    pub fn set_probe_seen(&mut self, seen: Arc<AtomicU64>) {
        self.probe_seen = seen;
    }

    /// Sends one ICMP echo request to each probe target (see "The partner
    /// probe"): from the own address of the interface whose subnet holds it
    /// and the port's MAC (never the virtual one), identifier [`PROBE_ID`],
    /// the sequence number one more each request. It goes out, or waits for
    /// ARP, like a forwarded frame. Live or not.
    pub fn probe<P: BufPool<Buf = B>>(
        &mut self,
        now: u64,
        pool: &mut P,
        out: &mut Vec<(IfIndex, B)>,
    ) {
        for k in 0..self.probe_targets.len() {
            let (iface, target) = self.probe_targets[k];
            let Some(mut buf) = pool.alloc(ETH_HDR + IPV4_HDR + ICMP_HDR) else {
                self.drop(DropReason::NoMbuf);
                continue;
            };
            let ifc = &self.ifaces[iface];
            self.ip_id = self.ip_id.wrapping_add(1);
            self.probe_seq = self.probe_seq.wrapping_add(1);
            let data = buf.data_mut();
            let mut eth = EthernetFrame::new_unchecked(&mut data[..]);
            eth.set_src_addr(ifc.mac);
            eth.set_ethertype(EtherType::Ipv4);
            let ip_bytes = &mut data[ETH_HDR..];
            let (from, ip_len) = (ifc.address.addr(), IPV4_HDR + ICMP_HDR);
            write_ipv4_header(ip_bytes, ip_len, self.ip_id, IpProtocol::Icmp, from, target);
            let mut icmp = Icmpv4Packet::new_unchecked(&mut ip_bytes[IPV4_HDR..]);
            icmp.set_msg_type(Icmpv4Message::EchoRequest);
            icmp.set_msg_code(0);
            icmp.set_echo_ident(PROBE_ID);
            icmp.set_echo_seq_no(self.probe_seq);
            icmp.fill_checksum();
            self.counters.probe_sent.inc();
            let hop = Hop {
                egress: iface,
                next_hop: target,
                ingress: iface,
                from_mac: None,
            };
            self.send_to_next_hop(&hop, buf, now, pool, out);
        }
    }

    /// An echo reply addressed to the unit: the partner's answer to a probe
    /// (to an own address, from a target, with [`PROBE_ID`]) is stamped and
    /// counted; anything else is not a service of the unit.
    #[cold]
    fn probe_reply(&self, src: Ipv4Addr, dst: Ipv4Addr, ident: u16, now: u64) {
        let to_own = self.ifaces.iter().any(|ifc| ifc.address.addr() == dst);
        let from_target = self.probe_targets.iter().any(|&(_, t)| t == src);
        if ident != PROBE_ID || !to_own || !from_target {
            return self.drop(DropReason::LocalNoService);
        }
        // 0 means never; a clock that reads 0 is 1 ns early.
        self.probe_seen.fetch_max(now.max(1), Ordering::Relaxed);
        self.counters.probe_replies.inc();
    }

    /// Filters forwarded traffic through `fw` (without one, the unit is a
    /// plain router).
    pub fn set_firewall(&mut self, fw: Firewall) {
        self.firewall = Some(fw);
    }

    /// The firewall, if any.
    pub fn firewall(&self) -> Option<&Firewall> {
        self.firewall.as_ref()
    }

    /// The firewall, if any, for rule updates.
    pub fn firewall_mut(&mut self) -> Option<&mut Firewall> {
        self.firewall.as_mut()
    }

    /// The counters this router writes.
    pub fn counters(&self) -> &Arc<WorkerCounters> {
        &self.counters
    }

    /// Neighbours learnt since the last call (for the other workers).
    pub fn take_learned(&mut self, into: &mut Vec<Learned>) {
        into.append(&mut self.learned);
    }

    /// A neighbour learnt by another worker.
    pub fn learn_shared(
        &mut self,
        (ip, iface, mac): Learned,
        now: u64,
        out: &mut Vec<(IfIndex, B)>,
    ) {
        self.neighbors
            .learn(ip, iface, mac, true, now, &mut self.released);
        self.flush_released(out);
    }

    /// Handles one frame received on interface `iface`.
    pub fn handle<P: BufPool<Buf = B>>(
        &mut self,
        iface: IfIndex,
        pkt: B,
        now: u64,
        pool: &mut P,
        out: &mut Vec<(IfIndex, B)>,
    ) {
        let Some(ifc) = self.ifaces.get(iface) else {
            return;
        };
        let frame = match EthernetFrame::new_checked(pkt.data()) {
            Ok(f) => f,
            Err(_) => return self.drop(DropReason::EthTruncated),
        };
        if !ifc.accepts_mac(frame.dst_addr()) {
            let left = Some(frame.dst_addr()) == ifc.virtual_mac;
            return self.drop_unless_left(left, DropReason::NotForUs);
        }
        if frame.tag_count() > 0 {
            return self.drop(DropReason::VlanUnconfigured);
        }
        let l2 = frame.header_len();
        let src_mac = frame.src_addr();
        match frame.ethertype() {
            EtherType::Arp => self.arp(iface, pkt, l2, now, out),
            EtherType::Ipv4 => self.ipv4(iface, pkt, l2, src_mac, now, pool, out),
            EtherType::Ipv6 => self.drop(DropReason::Ipv6Unsupported),
            _ => self.drop(DropReason::UnknownEthertype),
        }
    }

    /// Runs the neighbour timers: ARP retries, and drops (with ICMP host
    /// unreachable back to the sender) for next hops that never answered.
    pub fn poll<P: BufPool<Buf = B>>(
        &mut self,
        now: u64,
        pool: &mut P,
        out: &mut Vec<(IfIndex, B)>,
    ) {
        if let Some(fw) = self.firewall.as_mut() {
            fw.expire(seconds(now));
        }
        let mut requests = Vec::new();
        let mut failed = Vec::new();
        self.neighbors.poll(now, &mut requests, &mut failed);
        for (iface, ip) in requests {
            self.send_arp_request(iface, ip, pool, out);
        }
        for held in failed {
            self.drop(DropReason::ArpUnresolved);
            let Some(from_mac) = held.from_mac else {
                continue;
            };
            let (ty, code) = (Icmpv4Message::DstUnreachable, code::HOST_UNREACHABLE);
            let frame = held.frame.data();
            self.icmp_error(
                held.ingress,
                from_mac,
                frame,
                ETH_HDR,
                ty,
                code,
                0,
                now,
                pool,
                out,
            );
        }
    }

    fn drop(&self, reason: DropReason) {
        self.counters.record_drop(reason);
    }

    /// Drops a frame as [`DropReason::Standby`] when the passive unit left it
    /// to the partner (`left`: it is for a virtual IP or MAC), else for
    /// `reason`. Only the drop paths ask: a live router never claims less.
    #[cold]
    fn drop_unless_left(&self, left: bool, reason: DropReason) {
        if left && !self.live {
            self.drop(DropReason::Standby)
        } else {
            self.drop(reason)
        }
    }

    // ---------------------------------------------------------------- ARP

    fn arp(
        &mut self,
        iface: IfIndex,
        mut pkt: B,
        l2: usize,
        now: u64,
        out: &mut Vec<(IfIndex, B)>,
    ) {
        let Some(repr) = pkt
            .data()
            .get(l2..)
            .and_then(|p| ArpPacket::new_checked(p).ok())
            .and_then(|p| ArpRepr::parse(&p).ok())
        else {
            return self.drop(DropReason::ArpMalformed);
        };
        let ifc = &self.ifaces[iface];
        let (sender, sender_mac) = (repr.source_protocol_addr, repr.source_hardware_addr);
        let target = repr.target_protocol_addr;
        let for_us = ifc.owns(target);
        let reply_mac = ifc.mac_for(target);
        if !sender_mac.is_unicast()
            || sender_mac == EthernetAddress::UNSPECIFIED
            || ifc.owns(sender)
        {
            return self.drop(DropReason::ArpBadSender);
        }
        // Learn only neighbours on the interface's own subnet. Answer a request
        // for our address from any sender that routes back through this
        // interface (a host ARPing from an address on its loopback, as Linux
        // does by default), and RFC 5227 probes (sender 0.0.0.0), like Linux.
        let on_subnet = ifc.address.contains(sender)
            && sender != ifc.address.network()
            && sender != ifc.address.broadcast();
        let answerable = on_subnet
            || sender.is_unspecified()
            || (is_unicast_host(sender)
                && self.routes.lookup(sender).is_some_and(|r| r.iface == iface));
        if !answerable {
            return self.drop(DropReason::ArpBadSender);
        }
        if on_subnet
            && self
                .neighbors
                .learn(sender, iface, sender_mac, for_us, now, &mut self.released)
        {
            self.counters.arp_learned.inc();
            self.learned.push((sender, iface, sender_mac));
            self.flush_released(out);
        }
        match repr.operation {
            ArpOperation::Request if for_us => {
                let reply = ArpRepr {
                    operation: ArpOperation::Reply,
                    source_hardware_addr: reply_mac,
                    source_protocol_addr: target,
                    target_hardware_addr: repr.source_hardware_addr,
                    target_protocol_addr: repr.source_protocol_addr,
                };
                let data = pkt.data_mut();
                let mut eth = EthernetFrame::new_unchecked(&mut data[..]);
                eth.set_dst_addr(repr.source_hardware_addr);
                eth.set_src_addr(reply_mac);
                reply.emit(&mut ArpPacket::new_unchecked(&mut data[l2..]));
                self.counters.arp_replies_sent.inc();
                out.push((iface, pkt));
            }
            ArpOperation::Request => {
                let left = Some(target) == self.ifaces[iface].virtual_ip;
                self.drop_unless_left(left, DropReason::ArpNotForUs)
            }
            _ => self.counters.arp_received.inc(),
        }
    }

    fn send_arp_request<P: BufPool<Buf = B>>(
        &mut self,
        iface: IfIndex,
        target: Ipv4Addr,
        pool: &mut P,
        out: &mut Vec<(IfIndex, B)>,
    ) {
        let ifc = &self.ifaces[iface];
        let Some(buf) = arp_request(pool, ifc.mac, ifc.address.addr(), target) else {
            return self.drop(DropReason::NoMbuf);
        };
        self.counters.arp_requests_sent.inc();
        out.push((iface, buf));
    }

    /// Announces every virtual IP this router claims: one gratuitous ARP per
    /// interface with a virtual IP, broadcast from its virtual MAC (else the
    /// port's), an ARP request whose sender and target are both the virtual
    /// IP, sender hardware the virtual MAC, target hardware zero. That is
    /// RFC 5227 §3's "ARP Announcement", what Linux `arping -U` and
    /// keepalived send: hosts and routers that knew the virtual IP at the
    /// partner's MAC (no virtual MAC) update their caches, and switches learn
    /// the virtual MAC's new port. A passive router announces nothing: the
    /// control plane makes it live first.
    pub fn announce<P: BufPool<Buf = B>>(&mut self, pool: &mut P, out: &mut Vec<(IfIndex, B)>) {
        if !self.live {
            return;
        }
        for (iface, ifc) in self.ifaces.iter().enumerate() {
            let Some(vip) = ifc.virtual_ip else {
                continue;
            };
            let Some(buf) = arp_request(pool, ifc.forward_mac(), vip, vip) else {
                self.drop(DropReason::NoMbuf);
                continue;
            };
            self.counters.garp_sent.inc();
            out.push((iface, buf));
        }
    }

    /// Frames whose next hop just resolved: finish their Ethernet header.
    fn flush_released(&mut self, out: &mut Vec<(IfIndex, B)>) {
        for Released { iface, mac, packet } in self.released.drain(..) {
            let mut frame = packet.frame;
            EthernetFrame::new_unchecked(frame.data_mut()).set_dst_addr(mac);
            // A probe of the unit's own is not forwarded traffic.
            let forwarded = packet.from_mac.is_some();
            self.counters.forwarded.add(u64::from(forwarded));
            out.push((iface, frame));
        }
    }

    // ---------------------------------------------------------------- IPv4

    #[allow(clippy::too_many_arguments)]
    fn ipv4<P: BufPool<Buf = B>>(
        &mut self,
        iface: IfIndex,
        mut pkt: B,
        l2: usize,
        src_mac: EthernetAddress,
        now: u64,
        pool: &mut P,
        out: &mut Vec<(IfIndex, B)>,
    ) {
        let Some(l3) = pkt.data().get(l2..) else {
            return self.drop(DropReason::Ipv4Truncated);
        };
        let ip = match Ipv4Packet::new_checked(l3) {
            Ok(ip) => ip,
            Err(wire::Error::BadVersion) => return self.drop(DropReason::Ipv4BadVersion),
            Err(wire::Error::Truncated) => return self.drop(DropReason::Ipv4Truncated),
            Err(_) => return self.drop(DropReason::Ipv4BadLength),
        };
        if !ip.verify_checksum() {
            return self.drop(DropReason::Ipv4BadChecksum);
        }
        if ip.header_len() != IPV4_HDR {
            return self.drop(DropReason::Ipv4Options);
        }
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        let ttl = ip.ttl();
        let total_len = usize::from(ip.total_len());
        let dont_frag = ip.dont_frag();
        if is_martian_source(src) {
            return self.drop(DropReason::Ipv4BadSource);
        }
        if self.ifaces.iter().any(|i| i.owns(dst)) {
            return self.local(iface, pkt, l2, now, out);
        }
        if dst.is_multicast() {
            return self.drop(DropReason::Ipv4Multicast);
        }
        let ifc = &self.ifaces[iface];
        if dst.is_broadcast()
            || dst.is_unspecified()
            || dst.is_loopback()
            || dst.octets()[0] >= 240
            || dst == ifc.address.broadcast()
        {
            return self.drop(DropReason::Ipv4BadDestination);
        }
        if !self.live {
            // Forwarding, and the virtual IPs (not claimed, so not local),
            // are the active unit's.
            return self.drop(DropReason::Standby);
        }
        let Some(route) = self.routes.lookup(dst) else {
            self.drop(DropReason::NoRoute);
            let code = code::NET_UNREACHABLE;
            return self.icmp_error(
                iface,
                src_mac,
                pkt.data(),
                l2,
                Icmpv4Message::DstUnreachable,
                code,
                0,
                now,
                pool,
                out,
            );
        };
        let egress = &self.ifaces[route.iface];
        if route.gateway.is_none()
            && (dst == egress.address.broadcast() || dst == egress.address.network())
        {
            return self.drop(DropReason::Ipv4BadDestination);
        }
        if ttl <= 1 {
            self.drop(DropReason::TtlExpired);
            let (ty, code) = (Icmpv4Message::TimeExceeded, code::TTL_EXCEEDED);
            return self.icmp_error(iface, src_mac, pkt.data(), l2, ty, code, 0, now, pool, out);
        }
        let mtu = egress.mtu;
        let too_big = total_len > usize::from(mtu);
        if too_big && dont_frag {
            // RFC 1812 §5.2.6 / RFC 1191: too big with DF set, say the MTU.
            self.drop(DropReason::FragmentationNeeded);
            let (ty, code) = (Icmpv4Message::DstUnreachable, code::FRAG_NEEDED);
            let mtu = u32::from(mtu);
            return self.icmp_error(
                iface,
                src_mac,
                pkt.data(),
                l2,
                ty,
                code,
                mtu,
                now,
                pool,
                out,
            );
        }
        let forward_mac = egress.forward_mac();
        let hop = Hop {
            egress: route.iface,
            next_hop: route.next_hop(dst),
            ingress: iface,
            from_mac: Some(src_mac),
        };
        if let Some(fw) = self.firewall.as_mut() {
            let ip = Ipv4Packet::new_unchecked(&pkt.data()[l2..]);
            if let Err(reason) = fw.filter(&ip, iface, hop.egress, seconds(now), &self.counters) {
                return self.drop(reason);
            }
        }

        // Rewrite: TTL (incremental checksum, RFC 1624) and source MAC.
        let data = pkt.data_mut();
        Ipv4Packet::new_unchecked(&mut data[l2..]).decrement_ttl_and_update_checksum();
        EthernetFrame::new_unchecked(&mut data[..]).set_src_addr(forward_mac);
        if too_big {
            return self.fragment(pkt, l2, mtu, &hop, now, pool, out);
        }
        self.send_to_next_hop(&hop, pkt, now, pool, out);
    }

    /// Splits a forwarded datagram (TTL and source MAC already rewritten)
    /// into fragments of at most `mtu` bytes of IP (see [`Split`]), each
    /// then sent like any forwarded frame. Every buffer is taken before any
    /// fragment leaves: a dry pool drops the datagram whole (`no_mbuf`),
    /// never part of it.
    #[allow(clippy::too_many_arguments)]
    fn fragment<P: BufPool<Buf = B>>(
        &mut self,
        pkt: B,
        l2: usize,
        mtu: u16,
        hop: &Hop,
        now: u64,
        pool: &mut P,
        out: &mut Vec<(IfIndex, B)>,
    ) {
        let (l2_header, l3) = pkt.data().split_at(l2);
        let ip = Ipv4Packet::new_unchecked(l3);
        let Some(split) = Split::new(&ip, mtu) else {
            return self.drop(DropReason::FragmentOffsetOverflow);
        };
        let mut frags = std::mem::take(&mut self.fragments);
        for k in 0..split.count() {
            let Some(buf) = pool.alloc(l2 + split.ip_len(k)) else {
                frags.clear();
                self.fragments = frags;
                return self.drop(DropReason::NoMbuf);
            };
            frags.push(buf);
        }
        for (k, buf) in frags.iter_mut().enumerate() {
            let (eth, frag) = buf.data_mut().split_at_mut(l2);
            eth.copy_from_slice(l2_header);
            split.write(k, &ip, frag);
        }
        self.counters.datagrams_fragmented.inc();
        self.counters.fragments_created.add(frags.len() as u64);
        for frag in frags.drain(..) {
            self.send_to_next_hop(hop, frag, now, pool, out);
        }
        self.fragments = frags;
    }

    /// Sends a forwarded frame (IP header rewritten, source MAC set) to its
    /// next hop, or holds it while the next hop resolves.
    fn send_to_next_hop<P: BufPool<Buf = B>>(
        &mut self,
        hop: &Hop,
        mut frame: B,
        now: u64,
        pool: &mut P,
        out: &mut Vec<(IfIndex, B)>,
    ) {
        match self.neighbors.lookup(hop.next_hop, now) {
            Lookup::Resolved { mac, refresh } => {
                EthernetFrame::new_unchecked(frame.data_mut()).set_dst_addr(mac);
                // Without a branch: a probe of the unit's own is not forwarded.
                let forwarded = hop.from_mac.is_some();
                self.counters.forwarded.add(u64::from(forwarded));
                out.push((hop.egress, frame));
                if refresh {
                    self.send_arp_request(hop.egress, hop.next_hop, pool, out);
                }
            }
            Lookup::Unresolved => {
                let held = HeldFrame {
                    frame,
                    ingress: hop.ingress,
                    from_mac: hop.from_mac,
                };
                match self.neighbors.hold(hop.next_hop, hop.egress, held, now) {
                    Held::Queued { request: true } => {
                        self.send_arp_request(hop.egress, hop.next_hop, pool, out)
                    }
                    Held::Queued { request: false } => {}
                    Held::QueueFull(_) => self.drop(DropReason::ArpQueueFull),
                    Held::TableFull(_) => self.drop(DropReason::NeighborTableFull),
                }
            }
        }
    }

    /// A datagram addressed to one of the unit's own addresses: an echo
    /// request is answered, an echo reply may answer a probe.
    fn local(
        &mut self,
        iface: IfIndex,
        mut pkt: B,
        l2: usize,
        now: u64,
        out: &mut Vec<(IfIndex, B)>,
    ) {
        let data = pkt.data_mut();
        let Ok(mut ip) = Ipv4Packet::new_checked(&mut data[l2..]) else {
            return self.drop(DropReason::LocalMalformed);
        };
        if ip.next_header() != IpProtocol::Icmp || ip.is_fragment() {
            return self.drop(DropReason::LocalNoService);
        }
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        {
            let Ok(mut icmp) = Icmpv4Packet::new_checked(ip.payload_mut()) else {
                return self.drop(DropReason::LocalMalformed);
            };
            if !icmp.verify_checksum() {
                return self.drop(DropReason::LocalMalformed);
            }
            match icmp.msg_type() {
                Icmpv4Message::EchoRequest => {}
                Icmpv4Message::EchoReply => {
                    return self.probe_reply(src, dst, icmp.echo_ident(), now);
                }
                _ => return self.drop(DropReason::LocalNoService),
            }
            icmp.set_msg_type(Icmpv4Message::EchoReply);
            icmp.fill_checksum();
        }
        ip.set_src_addr(dst);
        ip.set_dst_addr(src);
        ip.set_ttl(DEFAULT_TTL);
        ip.fill_checksum();
        let reply_mac = self.ifaces[iface].mac_for(dst);
        let mut eth = EthernetFrame::new_unchecked(&mut data[..]);
        let back_to = eth.src_addr();
        eth.set_dst_addr(back_to);
        eth.set_src_addr(reply_mac);
        self.counters.echo_replies_sent.inc();
        out.push((iface, pkt));
    }

    // ---------------------------------------------------------------- ICMP errors

    /// Sends an ICMP error about the frame `orig` (IP header at `l2`) back
    /// to `to_mac` on `iface`, unless RFC 1812 4.3.2.7 forbids it or the rate
    /// limit says no.
    #[allow(clippy::too_many_arguments)]
    fn icmp_error<P: BufPool<Buf = B>>(
        &mut self,
        iface: IfIndex,
        to_mac: EthernetAddress,
        orig: &[u8],
        l2: usize,
        ty: Icmpv4Message,
        code: u8,
        rest: u32,
        now: u64,
        pool: &mut P,
        out: &mut Vec<(IfIndex, B)>,
    ) {
        let Some(ip) = orig.get(l2..).and_then(|d| Ipv4Packet::new_checked(d).ok()) else {
            return;
        };
        let about_error = ip.next_header() == IpProtocol::Icmp
            && !ip.is_fragment()
            && ip
                .payload()
                .first()
                .is_some_and(|t| Icmpv4Message::from(*t).is_error());
        let orig_dst_mac = EthernetFrame::new_checked(orig).map(|f| f.dst_addr());
        if about_error
            || ip.frag_offset() != 0
            || ip.dst_addr().is_multicast()
            || ip.dst_addr().is_broadcast()
            || orig_dst_mac.map_or(true, |m| m.is_multicast())
            || !to_mac.is_unicast()
        {
            return;
        }
        if !self.icmp_errors.take(now) {
            self.counters.icmp_errors_rate_limited.inc();
            return;
        }
        let quoted_len =
            usize::from(ip.total_len()).min(ICMP_ERROR_MAX_IP_LEN - IPV4_HDR - ICMP_HDR);
        let quoted = &orig[l2..l2 + quoted_len];
        let ip_len = IPV4_HDR + ICMP_HDR + quoted_len;
        let Some(mut buf) = pool.alloc(ETH_HDR + ip_len) else {
            return self.drop(DropReason::NoMbuf);
        };
        let ifc = &self.ifaces[iface];
        let (from, to) = (ifc.address.addr(), ip.src_addr());
        let src_mac = ifc.mac;
        self.ip_id = self.ip_id.wrapping_add(1);
        let data = buf.data_mut();
        let mut eth = EthernetFrame::new_unchecked(&mut data[..]);
        eth.set_dst_addr(to_mac);
        eth.set_src_addr(src_mac);
        eth.set_ethertype(EtherType::Ipv4);
        let ip_bytes = &mut data[ETH_HDR..];
        write_ipv4_header(ip_bytes, ip_len, self.ip_id, IpProtocol::Icmp, from, to);
        let icmp_bytes = &mut ip_bytes[IPV4_HDR..];
        icmp_bytes[0] = ty.into();
        icmp_bytes[1] = code;
        icmp_bytes[2..4].copy_from_slice(&[0, 0]);
        icmp_bytes[4..8].copy_from_slice(&rest.to_be_bytes());
        icmp_bytes[ICMP_HDR..].copy_from_slice(quoted);
        let sum = !checksum::data(icmp_bytes);
        icmp_bytes[2..4].copy_from_slice(&sum.to_be_bytes());
        self.counters.icmp_errors_sent.inc();
        out.push((iface, buf));
    }
}

/// Whole seconds of a nanosecond clock: the connection table's time.
/// A broadcast ARP request from `mac` for `target`, saying `sender` is at
/// `mac` (sender = target: a gratuitous ARP, RFC 5227 §3); `None` when the
/// pool is dry.
fn arp_request<B: PacketBuf, P: BufPool<Buf = B>>(
    pool: &mut P,
    mac: EthernetAddress,
    sender: Ipv4Addr,
    target: Ipv4Addr,
) -> Option<B> {
    let mut buf = pool.alloc(ARP_REQUEST_LEN)?;
    emit_arp_request(buf.data_mut(), mac, sender, target);
    Some(buf)
}

/// Bytes of an ARP request frame (Ethernet header and ARP, no padding).
pub const ARP_REQUEST_LEN: usize = ETH_HDR + ARP_LEN;

/// Writes into `frame` (at least [`ARP_REQUEST_LEN`] bytes) a broadcast ARP
/// request from `mac` for `target`, saying `sender` is at `mac`.
pub fn emit_arp_request(
    frame: &mut [u8],
    mac: EthernetAddress,
    sender: Ipv4Addr,
    target: Ipv4Addr,
) {
    let mut eth = EthernetFrame::new_unchecked(&mut frame[..]);
    eth.set_dst_addr(EthernetAddress::BROADCAST);
    eth.set_src_addr(mac);
    eth.set_ethertype(EtherType::Arp);
    ArpRepr {
        operation: ArpOperation::Request,
        source_hardware_addr: mac,
        source_protocol_addr: sender,
        target_hardware_addr: EthernetAddress::UNSPECIFIED,
        target_protocol_addr: target,
    }
    .emit(&mut ArpPacket::new_unchecked(&mut frame[ETH_HDR..]));
}

fn seconds(now_ns: u64) -> u32 {
    u32::try_from(now_ns / 1_000_000_000).unwrap_or(u32::MAX)
}

/// Writes a 20-byte IPv4 header with a valid checksum.
fn write_ipv4_header(
    buf: &mut [u8],
    total_len: usize,
    id: u16,
    proto: IpProtocol,
    src: Ipv4Addr,
    dst: Ipv4Addr,
) {
    let total = u16::try_from(total_len).unwrap_or(u16::MAX);
    buf[0] = 0x45;
    buf[1] = 0;
    buf[2..4].copy_from_slice(&total.to_be_bytes());
    buf[4..6].copy_from_slice(&id.to_be_bytes());
    buf[6..8].copy_from_slice(&[0, 0]);
    buf[8] = DEFAULT_TTL;
    buf[9] = proto.into();
    buf[10..12].copy_from_slice(&[0, 0]);
    buf[12..16].copy_from_slice(&src.octets());
    buf[16..20].copy_from_slice(&dst.octets());
    let sum = !checksum::data(&buf[..IPV4_HDR]);
    buf[10..12].copy_from_slice(&sum.to_be_bytes());
}

/// RFC 1812 5.3.7: sources a router must not forward from.
fn is_martian_source(src: Ipv4Addr) -> bool {
    !is_unicast_host(src)
}

/// Neither zero, loopback, multicast, broadcast nor class E.
fn is_unicast_host(ip: Ipv4Addr) -> bool {
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.octets()[0] >= 240)
}
