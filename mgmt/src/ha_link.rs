//! One HA link as this unit sees it: the sync protocol's datagrams in and out
//! of Ethernet frames, and ARP (RFC 826) for the partner's MAC. Pure: no DPDK,
//! no clock of its own (every call takes `now_ns`), no allocation per frame;
//! [`crate::ha_port`] feeds it mbufs.
//!
//! ```text
//!  0            14                    34          42                    ≥ 60
//!  ├────────────┼─────────────────────┼───────────┼─────────────────────┤
//!  │ Ethernet   │ IPv4 (RFC 791)      │ UDP       │ payload (the sync   │ zero padding
//!  │ dst: peer  │ IHL 5, DSCP CS6,    │ (RFC 768) │ protocol's datagram,│ up to the
//!  │ src: ours  │ DF, TTL 255, ident  │ port→port │ see syncd::wire)    │ 60-byte
//!  │ type 0x0800│ +1 per datagram     │ checksum  │                     │ minimum
//!  └────────────┴─────────────────────┴───────────┴─────────────────────┘
//! ```
//!
//! Both ends use the same UDP port as source and destination. A datagram is
//! accepted only if it is addressed to this unit's MAC and IPv4 address, comes
//! from the partner's address and port, is not a fragment, carries TTL 255 —
//! like VRRP and CARP, proof that no router forwarded it — and every length
//! and checksum holds (a zero UDP checksum means "none", RFC 768). Anything
//! else is dropped with a [`DropReason`], one counter each.
//!
//! ARP: a request for this unit's address from a host of the link's subnet is
//! answered (an RFC 5227 probe from `0.0.0.0` too); the partner's MAC is learnt
//! from any ARP it sends (request, reply, gratuitous). While the MAC is
//! unknown, [`HaLink::output`] refuses ([`OutputError::NotResolved`]) and
//! [`HaLink::poll`] broadcasts requests: at once, then after 100 ms, doubling
//! to one a second. After [`REFRESH_AFTER_NS`] without a frame from the
//! partner, requests start again while the known MAC stays in use, so a
//! partner whose NIC was swapped is found again.

use dataplane::forward::Ipv4Prefix;
use dataplane::wire::{
    arp, ethernet, ipv4, udp, ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetAddress,
    EthernetFrame, EthernetRepr, IpAddr, IpProtocol, Ipv4Addr, Ipv4Packet, Ipv4Repr, UdpPacket,
    UdpRepr,
};
use std::ops::Range;

/// The only TTL sent and accepted: a datagram with less crossed a router.
pub const TTL: u8 = 255;
/// DSCP of every datagram: CS6, network control (what CARP and VRRP use).
pub const DSCP_CS6: u8 = 48;
/// Bytes before the payload: Ethernet, IPv4 (no options), UDP.
pub const HEADERS_LEN: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN + udp::HEADER_LEN;
/// Shortest Ethernet frame without its FCS; shorter frames are zero-padded.
pub const MIN_FRAME_LEN: usize = 60;
/// First interval between two ARP requests for an unknown partner.
pub const ARP_RETRY_FIRST_NS: u64 = 100_000_000;
/// The interval doubles up to this.
pub const ARP_RETRY_MAX_NS: u64 = 1_000_000_000;
/// Silence from the partner after which its MAC is resolved again.
pub const REFRESH_AFTER_NS: u64 = 30_000_000_000;

/// Why a received frame was not used; one counter each
/// ([`HaLinkStats::dropped`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Addressed to someone else: another destination MAC (neither ours nor
    /// broadcast), another destination IPv4 address, IPv4 sent to the
    /// broadcast MAC, an ARP request for another address.
    NotForUs,
    /// Unreadable: too short, a length field that lies (IPv4 total length or
    /// IHL, a UDP length other than the IPv4 payload's), an IP version other
    /// than 4, an ARP for another hardware or protocol type.
    Malformed,
    /// Neither ARP nor IPv4/UDP: another EtherType, a VLAN tag, another IP
    /// protocol.
    OtherProtocol,
    /// An IPv4 fragment (MF set or a non-zero offset): the sync protocol sends
    /// DF datagrams that fit the MTU, so a fragment is never one of ours.
    Fragment,
    /// A wrong IPv4 header checksum, or a wrong non-zero UDP checksum.
    BadChecksum,
    /// A TTL other than [`TTL`]: the datagram was routed (or sent from afar).
    BadTtl,
    /// UDP from or to another port than the sync protocol's.
    WrongPort,
    /// IPv4 from another address than the partner's; an ARP reply from a
    /// host that is not the partner.
    NotFromPeer,
    /// ARP with an unusable sender: a multicast, zero or our own hardware
    /// address, or a protocol address that is not a host of the subnet.
    ArpBadSender,
    /// ARP from another hardware address with this unit's own IPv4 address
    /// as sender: two hosts on the link configured with one address.
    AddressConflict,
}

impl DropReason {
    /// Every reason, in [`index`](DropReason::index) order.
    pub const ALL: [DropReason; 10] = [
        DropReason::NotForUs,
        DropReason::Malformed,
        DropReason::OtherProtocol,
        DropReason::Fragment,
        DropReason::BadChecksum,
        DropReason::BadTtl,
        DropReason::WrongPort,
        DropReason::NotFromPeer,
        DropReason::ArpBadSender,
        DropReason::AddressConflict,
    ];

    /// Number of reasons: the size of the counter array.
    pub const COUNT: usize = Self::ALL.len();

    /// Stable snake_case counter name: never rename one.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::NotForUs => "not_for_us",
            DropReason::Malformed => "malformed",
            DropReason::OtherProtocol => "other_protocol",
            DropReason::Fragment => "fragment",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::BadTtl => "bad_ttl",
            DropReason::WrongPort => "wrong_port",
            DropReason::NotFromPeer => "not_from_peer",
            DropReason::ArpBadSender => "arp_bad_sender",
            DropReason::AddressConflict => "address_conflict",
        }
    }

    /// Dense index in `0..DropReason::COUNT`.
    pub const fn index(self) -> usize {
        match self {
            DropReason::NotForUs => 0,
            DropReason::Malformed => 1,
            DropReason::OtherProtocol => 2,
            DropReason::Fragment => 3,
            DropReason::BadChecksum => 4,
            DropReason::BadTtl => 5,
            DropReason::WrongPort => 6,
            DropReason::NotFromPeer => 7,
            DropReason::ArpBadSender => 8,
            DropReason::AddressConflict => 9,
        }
    }
}

/// What one received frame was. `P` is the payload: `&[u8]` from
/// [`HaLink::input`], `&mut [u8]` from [`HaLink::input_mut`].
#[derive(Debug, PartialEq, Eq)]
pub enum Input<P> {
    /// A sync datagram from the partner: the UDP payload, nothing around it.
    Payload(P),
    /// An ARP packet, used: answered, or the partner's MAC learnt from it.
    Arp,
    /// Not used, and counted.
    Dropped(DropReason),
}

/// Why [`HaLink::output`] wrote no frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OutputError {
    /// The partner's MAC is not known yet; [`HaLink::poll`] is asking for it.
    #[error("the partner's MAC address is not resolved yet")]
    NotResolved,
    /// The frame does not fit the buffer given (see [`HaLink::frame_len`]),
    /// or the datagram is longer than IPv4 allows.
    #[error("the datagram does not fit the frame buffer")]
    TooLong,
}

/// A link configuration this module refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A prefix length above 32.
    #[error("prefix length {0} is not in 0..=32")]
    PrefixLength(u8),
    /// The local MAC cannot be a sender address.
    #[error("local MAC {0} is not a unicast address")]
    LocalMac(EthernetAddress),
    /// The local address is not a host of its own subnet.
    #[error("{0} is not a host address of its subnet")]
    LocalNotHost(Ipv4Prefix),
    /// The partner's address is not a host of the link's subnet.
    #[error("partner {peer} is not a host of the subnet of {local}")]
    PeerOffLink {
        /// The partner's address.
        peer: Ipv4Addr,
        /// This unit's address and prefix length.
        local: Ipv4Prefix,
    },
    /// The partner's address is this unit's own.
    #[error("partner {0} is this unit's own address")]
    PeerIsLocal(Ipv4Addr),
    /// UDP port 0.
    #[error("UDP port 0 cannot be used")]
    PortZero,
}

/// One HA link's addresses, as a configuration states them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addressing {
    /// This unit's address on the link, with the subnet's prefix length.
    pub address: Ipv4Prefix,
    /// The partner's address on the link.
    pub peer: Ipv4Addr,
    /// The sync protocol's UDP port (the same on both ends).
    pub port: u16,
}

/// The link's counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HaLinkStats {
    /// Datagrams from the partner handed up.
    pub rx_payloads: u64,
    /// Datagrams built for the partner.
    pub tx_payloads: u64,
    /// [`HaLink::output`] refused: the partner's MAC was not known.
    pub not_resolved: u64,
    /// ARP requests for the partner sent.
    pub arp_requests_sent: u64,
    /// ARP replies for this unit's address sent.
    pub arp_replies_sent: u64,
    /// The partner's MAC learnt while none was known.
    pub peer_mac_learnt: u64,
    /// The partner's MAC replaced by another one.
    pub peer_mac_changed: u64,
    /// Frames dropped, by [`DropReason::index`].
    pub dropped: [u64; DropReason::COUNT],
}

impl HaLinkStats {
    /// Frames dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()]
    }

    /// Frames dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    /// Every counter as `ha.<link>.<name>`, drop reasons by their
    /// [`DropReason::name`].
    pub fn counters(&self, link: &str, out: &mut Vec<(String, u64)>) {
        let named = [
            ("rx_payloads", self.rx_payloads),
            ("tx_payloads", self.tx_payloads),
            ("not_resolved", self.not_resolved),
            ("arp_requests_sent", self.arp_requests_sent),
            ("arp_replies_sent", self.arp_replies_sent),
            ("peer_mac_learnt", self.peer_mac_learnt),
            ("peer_mac_changed", self.peer_mac_changed),
        ];
        let drops = DropReason::ALL.map(|r| (r.name(), self.dropped(r)));
        for (name, value) in named.into_iter().chain(drops) {
            out.push((format!("ha.{link}.{name}"), value));
        }
    }
}

/// One HA link: addresses, the partner's MAC as resolved, counters.
#[derive(Debug, Clone)]
pub struct HaLink {
    mac: EthernetAddress,
    address: Ipv4Prefix,
    peer_ip: Ipv4Addr,
    port: u16,
    peer_mac: Option<EthernetAddress>,
    /// When a frame last came from the partner (an ARP of its own, or a
    /// datagram from its MAC).
    last_heard_ns: u64,
    /// When the next ARP request is due while resolving; `None` otherwise.
    next_arp_ns: Option<u64>,
    arp_interval_ns: u64,
    ident: u16,
    stats: HaLinkStats,
}

/// `ip` may be a host of `subnet`: inside it, and, below /31 (RFC 3021),
/// neither its network nor its broadcast address.
fn is_host(subnet: Ipv4Prefix, ip: Ipv4Addr) -> bool {
    subnet.contains(ip)
        && (subnet.len() >= 31 || (ip != subnet.network() && ip != subnet.broadcast()))
}

impl HaLink {
    /// The link of a unit whose port has `local_mac`, with address
    /// `local_ip/prefix_len`, to the partner at `peer_ip`, sync on UDP `port`.
    pub fn new(
        local_mac: EthernetAddress,
        local_ip: Ipv4Addr,
        prefix_len: u8,
        peer_ip: Ipv4Addr,
        port: u16,
    ) -> Result<HaLink, ConfigError> {
        let address =
            Ipv4Prefix::new(local_ip, prefix_len).ok_or(ConfigError::PrefixLength(prefix_len))?;
        if !local_mac.is_unicast() || local_mac == EthernetAddress::UNSPECIFIED {
            return Err(ConfigError::LocalMac(local_mac));
        }
        if !is_host(address, local_ip) {
            return Err(ConfigError::LocalNotHost(address));
        }
        if peer_ip == local_ip {
            return Err(ConfigError::PeerIsLocal(peer_ip));
        }
        if !is_host(address, peer_ip) {
            return Err(ConfigError::PeerOffLink {
                peer: peer_ip,
                local: address,
            });
        }
        if port == 0 {
            return Err(ConfigError::PortZero);
        }
        Ok(HaLink {
            mac: local_mac,
            address,
            peer_ip,
            port,
            peer_mac: None,
            last_heard_ns: 0,
            next_arp_ns: None,
            arp_interval_ns: ARP_RETRY_FIRST_NS,
            ident: 0,
            stats: HaLinkStats::default(),
        })
    }

    /// [`new`](HaLink::new) from a configuration.
    pub fn from_config(local_mac: EthernetAddress, cfg: &Addressing) -> Result<Self, ConfigError> {
        Self::new(
            local_mac,
            cfg.address.addr(),
            cfg.address.len(),
            cfg.peer,
            cfg.port,
        )
    }

    /// The largest payload a datagram carries on a link of IP MTU `mtu`.
    pub const fn max_payload(mtu: u16) -> usize {
        (mtu as usize).saturating_sub(ipv4::HEADER_LEN + udp::HEADER_LEN)
    }

    /// Length of the frame [`output`](HaLink::output) writes for a payload
    /// of `payload_len` bytes (headers, and padding up to 60 bytes).
    pub const fn frame_len(payload_len: usize) -> usize {
        let len = HEADERS_LEN.saturating_add(payload_len);
        if len < MIN_FRAME_LEN {
            MIN_FRAME_LEN
        } else {
            len
        }
    }

    /// This unit's MAC on the link.
    pub fn local_mac(&self) -> EthernetAddress {
        self.mac
    }

    /// This unit's address on the link.
    pub fn local_ip(&self) -> Ipv4Addr {
        self.address.addr()
    }

    /// The partner's address on the link.
    pub fn peer_ip(&self) -> Ipv4Addr {
        self.peer_ip
    }

    /// The sync protocol's UDP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The partner's MAC, once resolved.
    pub fn peer_mac(&self) -> Option<EthernetAddress> {
        self.peer_mac
    }

    /// The counters.
    pub fn stats(&self) -> HaLinkStats {
        self.stats
    }

    /// Every counter as `ha.<link>.<name>` (see [`HaLinkStats::counters`]).
    pub fn counters(&self, link: &str, out: &mut Vec<(String, u64)>) {
        self.stats.counters(link, out);
    }

    /// Classifies one received Ethernet frame (FCS stripped). An ARP reply it
    /// owes is written to a buffer and handed to `reply` before it returns.
    pub fn input<'f>(
        &mut self,
        now_ns: u64,
        frame: &'f [u8],
        reply: &mut impl FnMut(&[u8]),
    ) -> Input<&'f [u8]> {
        match self.classify(now_ns, frame, reply) {
            Input::Payload(range) => match frame.get(range) {
                Some(payload) => Input::Payload(payload),
                None => self.drop(DropReason::Malformed),
            },
            Input::Arp => Input::Arp,
            Input::Dropped(reason) => Input::Dropped(reason),
        }
    }

    /// [`input`](HaLink::input) with the payload writable, for a receiver
    /// that decrypts in place.
    pub fn input_mut<'f>(
        &mut self,
        now_ns: u64,
        frame: &'f mut [u8],
        reply: &mut impl FnMut(&[u8]),
    ) -> Input<&'f mut [u8]> {
        match self.classify(now_ns, frame, reply) {
            Input::Payload(range) => match frame.get_mut(range) {
                Some(payload) => Input::Payload(payload),
                None => self.drop(DropReason::Malformed),
            },
            Input::Arp => Input::Arp,
            Input::Dropped(reason) => Input::Dropped(reason),
        }
    }

    fn drop<P>(&mut self, reason: DropReason) -> Input<P> {
        self.stats.dropped[reason.index()] += 1;
        Input::Dropped(reason)
    }

    /// The payload's byte range in `frame`, if it is one of ours.
    fn classify(
        &mut self,
        now_ns: u64,
        frame: &[u8],
        reply: &mut impl FnMut(&[u8]),
    ) -> Input<Range<usize>> {
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return self.drop(DropReason::Malformed);
        };
        let dst = eth.dst_addr();
        let unicast = dst == self.mac;
        if !unicast && !dst.is_broadcast() {
            return self.drop(DropReason::NotForUs);
        }
        if eth.tag_count() != 0 {
            return self.drop(DropReason::OtherProtocol);
        }
        match eth.ethertype() {
            EtherType::Arp => self.arp(now_ns, eth.payload(), reply),
            EtherType::Ipv4 if unicast => self.ipv4(now_ns, eth.src_addr(), frame),
            EtherType::Ipv4 => self.drop(DropReason::NotForUs),
            _ => self.drop(DropReason::OtherProtocol),
        }
    }

    /// RFC 826's reception algorithm with a one-entry table (the partner).
    fn arp<P>(&mut self, now_ns: u64, packet: &[u8], reply: &mut impl FnMut(&[u8])) -> Input<P> {
        let Some(repr) = ArpPacket::new_checked(packet)
            .ok()
            .and_then(|p| ArpRepr::parse(&p).ok())
        else {
            return self.drop(DropReason::Malformed);
        };
        let (sha, spa) = (repr.source_hardware_addr, repr.source_protocol_addr);
        if !sha.is_unicast() || sha == EthernetAddress::UNSPECIFIED || sha == self.mac {
            return self.drop(DropReason::ArpBadSender);
        }
        if spa == self.local_ip() {
            return self.drop(DropReason::AddressConflict);
        }
        let from_peer = spa == self.peer_ip;
        // RFC 5227: a host probing for an address sends from 0.0.0.0.
        let probe = spa.is_unspecified() && repr.operation == ArpOperation::Request;
        if !from_peer && !probe && !is_host(self.address, spa) {
            return self.drop(DropReason::ArpBadSender);
        }
        if from_peer {
            self.learn(now_ns, sha);
        }
        match repr.operation {
            ArpOperation::Request if repr.target_protocol_addr == self.local_ip() => {
                let mut buf = [0u8; MIN_FRAME_LEN];
                self.emit_arp(&mut buf, sha, repr.reply(self.mac));
                self.stats.arp_replies_sent += 1;
                reply(&buf);
                Input::Arp
            }
            // Gratuitous, or the partner resolving someone else: learnt above.
            ArpOperation::Request | ArpOperation::Reply if from_peer => Input::Arp,
            ArpOperation::Request => self.drop(DropReason::NotForUs),
            ArpOperation::Reply => self.drop(DropReason::NotFromPeer),
            ArpOperation::Unknown(_) => self.drop(DropReason::Malformed),
        }
    }

    fn learn(&mut self, now_ns: u64, mac: EthernetAddress) {
        match self.peer_mac {
            None => self.stats.peer_mac_learnt += 1,
            Some(old) if old != mac => self.stats.peer_mac_changed += 1,
            Some(_) => {}
        }
        self.peer_mac = Some(mac);
        self.heard(now_ns);
    }

    fn heard(&mut self, now_ns: u64) {
        self.last_heard_ns = now_ns;
        self.next_arp_ns = None;
        self.arp_interval_ns = ARP_RETRY_FIRST_NS;
    }

    fn ipv4(&mut self, now_ns: u64, src_mac: EthernetAddress, frame: &[u8]) -> Input<Range<usize>> {
        let l3 = ethernet::HEADER_LEN;
        let Some(ip) = frame
            .get(l3..)
            .and_then(|p| Ipv4Packet::new_checked(p).ok())
        else {
            return self.drop(DropReason::Malformed);
        };
        if !ip.verify_checksum() {
            return self.drop(DropReason::BadChecksum);
        }
        if ip.dst_addr() != self.local_ip() {
            return self.drop(DropReason::NotForUs);
        }
        if ip.is_fragment() {
            return self.drop(DropReason::Fragment);
        }
        if ip.next_header() != IpProtocol::Udp {
            return self.drop(DropReason::OtherProtocol);
        }
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        if src != self.peer_ip {
            return self.drop(DropReason::NotFromPeer);
        }
        if ip.ttl() != TTL {
            return self.drop(DropReason::BadTtl);
        }
        // check_len: header_len ≤ total_len ≤ what follows the Ethernet header.
        let l4 = l3 + ip.header_len();
        let end = l3 + usize::from(ip.total_len());
        let Some(udp) = frame
            .get(l4..end)
            .and_then(|d| UdpPacket::new_checked(d).ok())
        else {
            return self.drop(DropReason::Malformed);
        };
        if usize::from(udp.len()) != end - l4 {
            return self.drop(DropReason::Malformed);
        }
        if udp.dst_port() != self.port || udp.src_port() != self.port {
            return self.drop(DropReason::WrongPort);
        }
        if !udp.verify_checksum(&IpAddr::V4(src), &IpAddr::V4(dst)) {
            return self.drop(DropReason::BadChecksum);
        }
        if self.peer_mac == Some(src_mac) {
            self.heard(now_ns);
        }
        self.stats.rx_payloads += 1;
        Input::Payload(l4 + udp::HEADER_LEN..end)
    }

    /// Writes an Ethernet + IPv4 + UDP frame carrying `payload` to the partner
    /// at the start of `frame`, and returns its length
    /// ([`frame_len`](HaLink::frame_len)). `now_ns` is not used today; it is
    /// there so every entry point of the link takes the time.
    pub fn output(
        &mut self,
        now_ns: u64,
        payload: &[u8],
        frame: &mut [u8],
    ) -> Result<usize, OutputError> {
        let _ = now_ns;
        let Some(peer_mac) = self.peer_mac else {
            self.stats.not_resolved += 1;
            return Err(OutputError::NotResolved);
        };
        let udp_len = udp::HEADER_LEN + payload.len();
        let len = Self::frame_len(payload.len());
        if ipv4::HEADER_LEN + udp_len > usize::from(u16::MAX) {
            return Err(OutputError::TooLong);
        }
        let Some(buf) = frame.get_mut(..len) else {
            return Err(OutputError::TooLong);
        };
        let (src, dst) = (self.local_ip(), self.peer_ip);
        EthernetRepr {
            src_addr: self.mac,
            dst_addr: peer_mac,
            ethertype: EtherType::Ipv4,
            vlan: None,
            outer_vlan: None,
        }
        .emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
        let l3 = ethernet::HEADER_LEN;
        let l4 = l3 + ipv4::HEADER_LEN;
        Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Udp,
            payload_len: udp_len,
            hop_limit: TTL,
            dscp: DSCP_CS6,
            ecn: 0,
            ident: self.ident,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        }
        .emit(&mut Ipv4Packet::new_unchecked(&mut buf[l3..l4]));
        UdpRepr {
            src_port: self.port,
            dst_port: self.port,
            payload,
        }
        .emit(
            &mut UdpPacket::new_unchecked(&mut buf[l4..l4 + udp_len]),
            &IpAddr::V4(src),
            &IpAddr::V4(dst),
        );
        buf[l4 + udp_len..].fill(0);
        self.ident = self.ident.wrapping_add(1);
        self.stats.tx_payloads += 1;
        Ok(len)
    }

    /// Runs the resolver: hands `send` an ARP request for the partner when
    /// one is due (see the module documentation for when).
    pub fn poll(&mut self, now_ns: u64, send: &mut impl FnMut(&[u8])) {
        let resolving = match self.peer_mac {
            None => true,
            Some(_) => now_ns.saturating_sub(self.last_heard_ns) >= REFRESH_AFTER_NS,
        };
        if !resolving {
            self.next_arp_ns = None;
            self.arp_interval_ns = ARP_RETRY_FIRST_NS;
            return;
        }
        match self.next_arp_ns {
            Some(due) if now_ns < due => return,
            Some(_) => {
                self.arp_interval_ns = (self.arp_interval_ns * 2).min(ARP_RETRY_MAX_NS);
            }
            None => self.arp_interval_ns = ARP_RETRY_FIRST_NS,
        }
        self.next_arp_ns = Some(now_ns.saturating_add(self.arp_interval_ns));
        let request = ArpRepr {
            operation: ArpOperation::Request,
            source_hardware_addr: self.mac,
            source_protocol_addr: self.local_ip(),
            target_hardware_addr: EthernetAddress::UNSPECIFIED,
            target_protocol_addr: self.peer_ip,
        };
        let mut buf = [0u8; MIN_FRAME_LEN];
        self.emit_arp(&mut buf, EthernetAddress::BROADCAST, request);
        self.stats.arp_requests_sent += 1;
        send(&buf);
    }

    /// An ARP frame (zero-padded to 60 bytes) from this unit to `dst`.
    fn emit_arp(&self, buf: &mut [u8; MIN_FRAME_LEN], dst: EthernetAddress, repr: ArpRepr) {
        EthernetRepr {
            src_addr: self.mac,
            dst_addr: dst,
            ethertype: EtherType::Arp,
            vlan: None,
            outer_vlan: None,
        }
        .emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
        let l3 = ethernet::HEADER_LEN;
        repr.emit(&mut ArpPacket::new_unchecked(
            &mut buf[l3..l3 + arp::PACKET_LEN],
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORT: u16 = 7250;
    const MAC_A: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x0a]);
    const MAC_B: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x0b]);
    const MAC_C: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x0c]);
    /// 169.254.77.0/29: A is .1, its partner B .2, another host C .3.
    const IP_A: Ipv4Addr = Ipv4Addr::new(169, 254, 77, 1);
    const IP_B: Ipv4Addr = Ipv4Addr::new(169, 254, 77, 2);
    const IP_C: Ipv4Addr = Ipv4Addr::new(169, 254, 77, 3);
    const LEN: u8 = 29;
    const MS: u64 = 1_000_000;
    const SEC: u64 = 1_000 * MS;
    const PAYLOAD: &[u8; 20] = b"tandem-sync-payload.";

    fn link_a() -> HaLink {
        HaLink::new(MAC_A, IP_A, LEN, IP_B, PORT).unwrap()
    }

    fn link_b() -> HaLink {
        HaLink::new(MAC_B, IP_B, LEN, IP_A, PORT).unwrap()
    }

    /// Feeds `frame` to `link`, returns what it said and the replies it sent.
    fn feed(link: &mut HaLink, now: u64, frame: &[u8]) -> (Input<Vec<u8>>, Vec<Vec<u8>>) {
        let mut replies = Vec::new();
        let got = match link.input(now, frame, &mut |f| replies.push(f.to_vec())) {
            Input::Payload(p) => Input::Payload(p.to_vec()),
            Input::Arp => Input::Arp,
            Input::Dropped(r) => Input::Dropped(r),
        };
        (got, replies)
    }

    fn polled(link: &mut HaLink, now: u64) -> Vec<Vec<u8>> {
        let mut sent = Vec::new();
        link.poll(now, &mut |f| sent.push(f.to_vec()));
        sent
    }

    fn output(link: &mut HaLink, now: u64, payload: &[u8]) -> Result<Vec<u8>, OutputError> {
        let mut frame = vec![0xee; 2048];
        let n = link.output(now, payload, &mut frame)?;
        frame.truncate(n);
        Ok(frame)
    }

    /// A and B resolved through one ARP exchange at `now`.
    fn resolved_pair(now: u64) -> (HaLink, HaLink) {
        let (mut a, mut b) = (link_a(), link_b());
        let request = polled(&mut a, now);
        assert_eq!(request.len(), 1);
        let (got, replies) = feed(&mut b, now, &request[0]);
        assert_eq!(got, Input::Arp);
        assert_eq!(replies.len(), 1);
        assert_eq!(feed(&mut a, now, &replies[0]), (Input::Arp, vec![]));
        assert_eq!(a.peer_mac(), Some(MAC_B));
        assert_eq!(b.peer_mac(), Some(MAC_A), "learnt from A's request");
        (a, b)
    }

    // ------------------------------------------------ an independent decoder

    /// The Internet checksum (RFC 1071), written again for the tests.
    fn inet_sum(chunks: &[&[u8]]) -> u16 {
        let mut sum = 0u32;
        for chunk in chunks {
            for pair in chunk.chunks(2) {
                let hi = u32::from(pair[0]) << 8;
                sum += hi | pair.get(1).map_or(0, |&lo| u32::from(lo));
            }
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !u16::try_from(sum).expect("folded to 16 bits")
    }

    fn refill_ip(f: &mut [u8]) {
        let ihl = usize::from(f[14] & 0x0f) * 4;
        f[24..26].fill(0);
        let sum = inet_sum(&[&f[14..14 + ihl]]);
        f[24..26].copy_from_slice(&sum.to_be_bytes());
    }

    fn refill_udp(f: &mut [u8]) {
        let l4 = 14 + usize::from(f[14] & 0x0f) * 4;
        let len = usize::from(u16::from_be_bytes([f[l4 + 4], f[l4 + 5]]));
        f[l4 + 6..l4 + 8].fill(0);
        let pseudo = [&f[26..34], &[0, 17], &f[l4 + 4..l4 + 6]].concat();
        let sum = match inet_sum(&[&pseudo, &f[l4..l4 + len]]) {
            0 => 0xffff,
            s => s,
        };
        f[l4 + 6..l4 + 8].copy_from_slice(&sum.to_be_bytes());
    }

    /// A datagram from B to A, checksums left zero.
    #[rustfmt::skip]
    static DATAGRAM: [u8; 62] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, // dst MAC: A
        0x02, 0x00, 0x00, 0x00, 0x00, 0x0b, // src MAC: B
        0x08, 0x00,                         // IPv4
        0x45, 0xc0,                         // version 4, IHL 5, DSCP CS6
        0x00, 0x30,                         // total length 48
        0x00, 0x07,                         // identification
        0x40, 0x00,                         // DF, offset 0
        0xff, 0x11,                         // TTL 255, UDP
        0x00, 0x00,                         // header checksum (refilled)
        0xa9, 0xfe, 0x4d, 0x02,             // src 169.254.77.2 (B)
        0xa9, 0xfe, 0x4d, 0x01,             // dst 169.254.77.1 (A)
        0x1c, 0x52, 0x1c, 0x52,             // ports 7250 → 7250
        0x00, 0x1c,                         // UDP length 28
        0x00, 0x00,                         // UDP checksum (refilled)
        b't', b'a', b'n', b'd', b'e', b'm', b'-', b's', b'y', b'n',
        b'c', b'-', b'p', b'a', b'y', b'l', b'o', b'a', b'd', b'.',
    ];

    fn datagram() -> Vec<u8> {
        let mut f = DATAGRAM.to_vec();
        refill_ip(&mut f);
        refill_udp(&mut f);
        f
    }

    /// The datagram with one change, checksums refilled after it.
    fn changed(change: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut f = changed_ip(change);
        refill_udp(&mut f);
        f
    }

    /// The datagram with one change to its IPv4 header or UDP length, the
    /// header checksum refilled after it.
    fn changed_ip(change: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut f = raw(change);
        refill_ip(&mut f);
        f
    }

    /// The datagram with one change to its Ethernet header, or to a checksum.
    fn raw(change: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut f = datagram();
        change(&mut f);
        f
    }

    /// An ARP frame, padded to 60 bytes.
    fn arp_frame(
        dst: EthernetAddress,
        op: u16,
        sha: EthernetAddress,
        spa: Ipv4Addr,
        tha: EthernetAddress,
        tpa: Ipv4Addr,
    ) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&dst.0);
        f.extend_from_slice(&sha.0);
        f.extend_from_slice(&[0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 6, 4]);
        f.extend_from_slice(&op.to_be_bytes());
        f.extend_from_slice(&sha.0);
        f.extend_from_slice(&spa.octets());
        f.extend_from_slice(&tha.0);
        f.extend_from_slice(&tpa.octets());
        f.resize(60, 0);
        f
    }

    fn request(sha: EthernetAddress, spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
        let zero = EthernetAddress::UNSPECIFIED;
        arp_frame(EthernetAddress::BROADCAST, 1, sha, spa, zero, tpa)
    }

    // --------------------------------------------------------------- output

    #[test]
    fn test_output_decoded_by_hand() {
        let (mut a, _) = resolved_pair(0);
        let f = output(&mut a, 0, PAYLOAD).unwrap();
        assert_eq!(f.len(), 42 + 20);
        assert_eq!(&f[0..6], &MAC_B.0);
        assert_eq!(&f[6..12], &MAC_A.0);
        assert_eq!(&f[12..14], &[0x08, 0x00]);
        assert_eq!(f[14], 0x45, "version 4, no options");
        assert_eq!(f[15], 0xc0, "DSCP CS6, ECN 0");
        assert_eq!(&f[16..18], &48u16.to_be_bytes(), "total length");
        assert_eq!(&f[18..20], &[0, 0], "first identification");
        assert_eq!(&f[20..22], &[0x40, 0x00], "DF, no offset");
        assert_eq!(f[22], 255, "TTL");
        assert_eq!(f[23], 17, "UDP");
        assert_eq!(inet_sum(&[&f[14..34]]), 0, "header checksum verifies");
        assert_eq!(&f[26..30], &IP_A.octets());
        assert_eq!(&f[30..34], &IP_B.octets());
        assert_eq!(&f[34..38], &[0x1c, 0x52, 0x1c, 0x52]);
        assert_eq!(&f[38..40], &28u16.to_be_bytes(), "UDP length");
        assert_ne!(&f[40..42], &[0, 0], "UDP checksum filled");
        let mut check = f.clone();
        refill_udp(&mut check);
        assert_eq!(check, f, "UDP checksum as computed independently");
        assert_eq!(&f[42..], PAYLOAD);

        let g = output(&mut a, 0, PAYLOAD).unwrap();
        assert_eq!(&g[18..20], &[0, 1], "identification increments");
        assert_eq!(a.stats().tx_payloads, 2);
    }

    #[test]
    fn test_output_pads_short_frames() {
        let (mut a, mut b) = resolved_pair(0);
        for len in [0, 1, 17, 18, 19] {
            let payload = vec![0x5a; len];
            let f = output(&mut a, 0, &payload).unwrap();
            assert_eq!(f.len(), HaLink::frame_len(len));
            assert_eq!(f.len(), (42 + len).max(60));
            assert!(f[42 + len..].iter().all(|&b| b == 0), "zero padding");
            assert_eq!(feed(&mut b, 0, &f).0, Input::Payload(payload));
        }
    }

    #[test]
    fn test_output_errors() {
        let mut a = link_a();
        let mut frame = [0u8; 100];
        assert_eq!(
            a.output(0, PAYLOAD, &mut frame),
            Err(OutputError::NotResolved)
        );
        assert_eq!(a.stats().not_resolved, 1);
        let (mut a, _) = resolved_pair(0);
        let mut small = [0u8; 61];
        assert_eq!(a.output(0, PAYLOAD, &mut small), Err(OutputError::TooLong));
        let mut exact = [0u8; 62];
        assert_eq!(a.output(0, PAYLOAD, &mut exact), Ok(62));
        let huge = vec![0u8; 65_536];
        let mut frame = vec![0u8; 70_000];
        assert_eq!(a.output(0, &huge, &mut frame), Err(OutputError::TooLong));
        assert_eq!(a.stats().tx_payloads, 1);
        assert_eq!(a.stats().not_resolved, 0);
    }

    #[test]
    fn test_max_payload() {
        assert_eq!(HaLink::max_payload(1500), 1472);
        assert_eq!(HaLink::max_payload(9000), 8972);
        assert_eq!(HaLink::max_payload(20), 0);
        let (mut a, mut b) = resolved_pair(0);
        let payload: Vec<u8> = (0..1472u32).map(|i| (i % 251).to_le_bytes()[0]).collect();
        let f = output(&mut a, 0, &payload).unwrap();
        assert_eq!(f.len(), 1514, "a full 1500-byte IP packet");
        assert_eq!(feed(&mut b, 0, &f).0, Input::Payload(payload));
    }

    // ---------------------------------------------------- output → input

    #[test]
    fn test_round_trip_both_ways() {
        let (mut a, mut b) = resolved_pair(0);
        for (i, len) in [0usize, 1, 20, 100, 1472].into_iter().enumerate() {
            let payload: Vec<u8> = (0..len).map(|j| (i * 7 + j).to_le_bytes()[0]).collect();
            let f = output(&mut a, 0, &payload).unwrap();
            assert_eq!(
                feed(&mut b, 0, &f),
                (Input::Payload(payload.clone()), vec![])
            );
            let g = output(&mut b, 0, &payload).unwrap();
            assert_eq!(feed(&mut a, 0, &g), (Input::Payload(payload), vec![]));
        }
        assert_eq!(b.stats().rx_payloads, 5);
        assert_eq!(a.stats().rx_payloads, 5);
        assert_eq!(a.stats().dropped_total() + b.stats().dropped_total(), 0);
    }

    #[test]
    fn test_input_mut_gives_the_payload_writable() {
        let (mut a, _) = resolved_pair(0);
        let mut f = datagram();
        match a.input_mut(0, &mut f, &mut |_| panic!("no reply")) {
            Input::Payload(p) => {
                assert_eq!(p, PAYLOAD);
                p.fill(0);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(&f[42..], &[0; 20], "decrypted in place");
        assert_eq!(&f[..42], &datagram()[..42], "headers untouched");
    }

    // ----------------------------------------------------------- accepted

    #[test]
    fn test_fixture_accepted() {
        let mut a = link_a();
        assert_eq!(
            feed(&mut a, 0, &datagram()),
            (Input::Payload(PAYLOAD.to_vec()), vec![])
        );
        // Ethernet padding after the datagram is not payload.
        let mut padded = datagram();
        padded.extend_from_slice(&[0; 10]);
        assert_eq!(feed(&mut a, 0, &padded).0, Input::Payload(PAYLOAD.to_vec()));
        // No UDP checksum (RFC 768: zero means none).
        let mut none = datagram();
        none[40..42].fill(0);
        assert_eq!(feed(&mut a, 0, &none).0, Input::Payload(PAYLOAD.to_vec()));
        // IPv4 options are stepped over.
        let options = changed(|f| {
            drop(f.splice(34..34, [1, 1, 1, 1]));
            f[14] = 0x46;
            f[17] += 4;
        });
        assert_eq!(
            feed(&mut a, 0, &options).0,
            Input::Payload(PAYLOAD.to_vec())
        );
        assert_eq!(a.stats().rx_payloads, 4);
        assert_eq!(a.stats().dropped_total(), 0);
    }

    // ------------------------------------------------------------ refused

    #[test]
    fn test_each_change_has_its_reason() {
        use DropReason::*;
        let cases: Vec<(&str, Vec<u8>, DropReason)> = vec![
            (
                "wrong dst MAC",
                raw(|f| f[0..6].copy_from_slice(&MAC_C.0)),
                NotForUs,
            ),
            (
                "multicast dst MAC",
                raw(|f| f[0..6].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 1])),
                NotForUs,
            ),
            (
                "IPv4 to broadcast MAC",
                raw(|f| f[0..6].fill(0xff)),
                NotForUs,
            ),
            (
                "ethertype IPv6",
                raw(|f| f[12..14].copy_from_slice(&[0x86, 0xdd])),
                OtherProtocol,
            ),
            (
                "VLAN tag",
                raw(|f| drop(f.splice(12..12, [0x81, 0x00, 0x00, 0x05]))),
                OtherProtocol,
            ),
            ("IPv4 checksum", raw(|f| f[24] ^= 0x01), BadChecksum),
            ("IP version 6", changed_ip(|f| f[14] = 0x65), Malformed),
            ("IHL 4", changed_ip(|f| f[14] = 0x44), Malformed),
            (
                "total length past the frame",
                changed_ip(|f| f[17] = 0x31),
                Malformed,
            ),
            (
                "total length below the header",
                changed_ip(|f| f[17] = 0x13),
                Malformed,
            ),
            ("more fragments", changed(|f| f[20] = 0x20), Fragment),
            ("fragment offset", changed(|f| f[21] = 0x01), Fragment),
            ("TTL 254", changed(|f| f[22] = 254), BadTtl),
            ("TTL 1", changed(|f| f[22] = 1), BadTtl),
            ("protocol TCP", changed(|f| f[23] = 6), OtherProtocol),
            ("from another address", changed(|f| f[29] = 3), NotFromPeer),
            ("to another address", changed(|f| f[33] = 3), NotForUs),
            ("wrong dst port", changed(|f| f[37] = 0x53), WrongPort),
            ("wrong src port", changed(|f| f[35] = 0x53), WrongPort),
            ("UDP length short", changed_ip(|f| f[39] = 27), Malformed),
            ("UDP length long", changed_ip(|f| f[39] = 29), Malformed),
            (
                "UDP length below header",
                changed_ip(|f| f[39] = 7),
                Malformed,
            ),
            ("UDP checksum", raw(|f| f[41] ^= 0x01), BadChecksum),
            ("truncated", raw(|f| f.truncate(50)), Malformed),
        ];
        for (what, frame, reason) in cases {
            let mut a = link_a();
            assert_eq!(
                feed(&mut a, 0, &frame),
                (Input::Dropped(reason), vec![]),
                "{what}"
            );
            let s = a.stats();
            assert_eq!(s.dropped(reason), 1, "{what}");
            assert_eq!(s.dropped_total(), 1, "{what}");
            assert_eq!(s.rx_payloads, 0, "{what}");
        }
    }

    #[test]
    fn test_prefixes_never_panic_and_are_refused() {
        let (mut a, mut b) = resolved_pair(0);
        let full = output(&mut b, 0, &[0x42; 100]).unwrap();
        for frame in [datagram(), full] {
            for n in 0..frame.len() {
                assert_eq!(
                    feed(&mut a, 0, &frame[..n]).0,
                    Input::Dropped(DropReason::Malformed),
                    "prefix of {n} bytes"
                );
            }
            assert!(matches!(feed(&mut a, 0, &frame).0, Input::Payload(_)));
        }
        let arp = request(MAC_B, IP_B, IP_A);
        for n in 0..=arp.len() {
            let expected = if n < 42 {
                Input::Dropped(DropReason::Malformed)
            } else {
                Input::Arp
            };
            assert_eq!(
                feed(&mut a, 0, &arp[..n]).0,
                expected,
                "ARP prefix of {n} bytes"
            );
        }
    }

    #[test]
    fn test_every_byte_value_anywhere_never_panics() {
        let mut a = link_a();
        for frame in [datagram(), request(MAC_B, IP_B, IP_A)] {
            for at in 0..frame.len() {
                for value in 0..=u8::MAX {
                    let mut f = frame.clone();
                    f[at] = value;
                    let _ = feed(&mut a, 0, &f);
                }
            }
        }
    }

    // ---------------------------------------------------------------- ARP

    #[test]
    fn test_arp_request_from_peer_is_answered_and_learnt() {
        let mut a = link_a();
        let (got, replies) = feed(&mut a, 5, &request(MAC_B, IP_B, IP_A));
        assert_eq!(got, Input::Arp);
        assert_eq!(a.peer_mac(), Some(MAC_B));
        assert_eq!(replies.len(), 1);
        let r = &replies[0];
        assert_eq!(r.len(), 60);
        assert_eq!(&r[0..6], &MAC_B.0, "to the requester");
        assert_eq!(&r[6..12], &MAC_A.0);
        assert_eq!(&r[12..14], &[0x08, 0x06]);
        assert_eq!(
            &r[14..22],
            &[0, 1, 0x08, 0, 6, 4, 0, 2],
            "Ethernet/IPv4 reply"
        );
        assert_eq!(&r[22..28], &MAC_A.0, "sender hardware: A");
        assert_eq!(&r[28..32], &IP_A.octets());
        assert_eq!(&r[32..38], &MAC_B.0, "target hardware: B");
        assert_eq!(&r[38..42], &IP_B.octets());
        assert!(r[42..].iter().all(|&b| b == 0));
        let s = a.stats();
        assert_eq!(
            (s.arp_replies_sent, s.peer_mac_learnt, s.peer_mac_changed),
            (1, 1, 0)
        );
    }

    #[test]
    fn test_arp_from_other_hosts_and_probes() {
        let mut a = link_a();
        // Another host of the subnet asking for A: answered, nothing learnt.
        let (got, replies) = feed(&mut a, 0, &request(MAC_C, IP_C, IP_A));
        assert_eq!((got, replies.len()), (Input::Arp, 1));
        assert_eq!(&replies[0][0..6], &MAC_C.0);
        // An RFC 5227 probe for A's address: defended.
        let (got, replies) = feed(&mut a, 0, &request(MAC_C, Ipv4Addr::UNSPECIFIED, IP_A));
        assert_eq!((got, replies.len()), (Input::Arp, 1));
        assert_eq!(&replies[0][38..42], &[0, 0, 0, 0]);
        assert_eq!(a.peer_mac(), None);
        assert_eq!(a.stats().arp_replies_sent, 2);
    }

    #[test]
    fn test_arp_each_change_has_its_reason() {
        use DropReason::*;
        let zero = EthernetAddress::UNSPECIFIED;
        let off_link = Ipv4Addr::new(10, 0, 0, 1);
        let multicast = EthernetAddress([0x01, 0, 0x5e, 0, 0, 1]);
        let to_c = |mut f: Vec<u8>| {
            f[0..6].copy_from_slice(&MAC_C.0);
            f
        };
        let with = |at: usize, v: u8| {
            let mut f = request(MAC_B, IP_B, IP_A);
            f[at] = v;
            f
        };
        let cases: Vec<(&str, Vec<u8>, DropReason)> = vec![
            (
                "for another host",
                request(MAC_C, IP_C, Ipv4Addr::new(169, 254, 77, 4)),
                NotForUs,
            ),
            (
                "probe for another host",
                request(MAC_C, Ipv4Addr::UNSPECIFIED, IP_C),
                NotForUs,
            ),
            (
                "unicast to another MAC",
                to_c(request(MAC_B, IP_B, IP_A)),
                NotForUs,
            ),
            (
                "sender off the subnet",
                request(MAC_C, off_link, IP_A),
                ArpBadSender,
            ),
            (
                "sender the broadcast address",
                request(MAC_C, Ipv4Addr::new(169, 254, 77, 7), IP_A),
                ArpBadSender,
            ),
            (
                "sender the network address",
                request(MAC_C, Ipv4Addr::new(169, 254, 77, 0), IP_A),
                ArpBadSender,
            ),
            (
                "multicast sender MAC",
                request(multicast, IP_B, IP_A),
                ArpBadSender,
            ),
            ("zero sender MAC", request(zero, IP_B, IP_A), ArpBadSender),
            ("our own MAC", request(MAC_A, IP_B, IP_A), ArpBadSender),
            (
                "our address from another MAC",
                request(MAC_C, IP_A, IP_C),
                AddressConflict,
            ),
            (
                "reply from another host",
                arp_frame(MAC_A, 2, MAC_C, IP_C, MAC_A, IP_A),
                NotFromPeer,
            ),
            (
                "reply from 0.0.0.0",
                arp_frame(MAC_A, 2, MAC_C, Ipv4Addr::UNSPECIFIED, MAC_A, IP_A),
                ArpBadSender,
            ),
            ("hardware type 6", with(15, 6), Malformed),
            ("protocol IPv6", with(16, 0x86), Malformed),
            ("hardware length 8", with(18, 8), Malformed),
            ("operation 3 (RARP)", with(21, 3), Malformed),
        ];
        for (what, frame, reason) in cases {
            let mut a = link_a();
            assert_eq!(
                feed(&mut a, 0, &frame),
                (Input::Dropped(reason), vec![]),
                "{what}"
            );
            let s = a.stats();
            assert_eq!((s.dropped(reason), s.dropped_total()), (1, 1), "{what}");
            assert_eq!((s.arp_replies_sent, s.peer_mac_learnt), (0, 0), "{what}");
            assert_eq!(a.peer_mac(), None, "{what}");
        }
    }

    #[test]
    fn test_gratuitous_arp_moves_the_partner() {
        let (mut a, _) = resolved_pair(0);
        let moved = EthernetAddress([0x02, 0, 0, 0, 0, 0xbb]);
        // A gratuitous request (sender = target = B) from a new MAC.
        let garp = request(moved, IP_B, IP_B);
        assert_eq!(feed(&mut a, 1, &garp), (Input::Arp, vec![]));
        assert_eq!(a.peer_mac(), Some(moved));
        assert_eq!(a.stats().peer_mac_changed, 1);
        assert_eq!(&output(&mut a, 1, PAYLOAD).unwrap()[0..6], &moved.0);
        // A gratuitous reply with the same MAC changes nothing.
        let garp = arp_frame(EthernetAddress::BROADCAST, 2, moved, IP_B, moved, IP_B);
        assert_eq!(feed(&mut a, 2, &garp), (Input::Arp, vec![]));
        let s = a.stats();
        assert_eq!((s.peer_mac_learnt, s.peer_mac_changed), (1, 1));
    }

    // ----------------------------------------------------------- resolver

    #[test]
    fn test_back_to_back_resolution() {
        let (mut a, mut b) = (link_a(), link_b());
        assert_eq!(output(&mut a, 0, PAYLOAD), Err(OutputError::NotResolved));
        assert_eq!(output(&mut b, 0, PAYLOAD), Err(OutputError::NotResolved));
        // Both poll every millisecond; what one sends, the other receives.
        let mut wire_ab: Vec<Vec<u8>> = Vec::new();
        let mut wire_ba: Vec<Vec<u8>> = Vec::new();
        for now in (0..10).map(|ms| ms * MS) {
            a.poll(now, &mut |f| wire_ab.push(f.to_vec()));
            b.poll(now, &mut |f| wire_ba.push(f.to_vec()));
            for f in std::mem::take(&mut wire_ab) {
                let (got, replies) = feed(&mut b, now, &f);
                assert_eq!(got, Input::Arp);
                wire_ba.extend(replies);
            }
            for f in std::mem::take(&mut wire_ba) {
                let (got, replies) = feed(&mut a, now, &f);
                assert_eq!(got, Input::Arp);
                wire_ab.extend(replies);
            }
        }
        assert_eq!((a.peer_mac(), b.peer_mac()), (Some(MAC_B), Some(MAC_A)));
        for link in [&a, &b] {
            let s = link.stats();
            assert_eq!(s.arp_requests_sent, 1, "one request each, at once");
            assert_eq!(s.peer_mac_learnt, 1);
            assert_eq!(s.dropped_total(), 0);
        }
        let f = output(&mut a, 10 * MS, PAYLOAD).unwrap();
        assert_eq!(
            feed(&mut b, 10 * MS, &f).0,
            Input::Payload(PAYLOAD.to_vec())
        );
        let g = output(&mut b, 10 * MS, b"back").unwrap();
        assert_eq!(
            feed(&mut a, 10 * MS, &g).0,
            Input::Payload(b"back".to_vec())
        );
    }

    #[test]
    fn test_arp_request_bytes() {
        let mut a = link_a();
        let sent = polled(&mut a, 0);
        assert_eq!(sent.len(), 1);
        let r = &sent[0];
        assert_eq!(r.len(), 60);
        assert_eq!(&r[0..6], &[0xff; 6]);
        assert_eq!(&r[6..12], &MAC_A.0);
        assert_eq!(&r[12..22], &[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
        assert_eq!(&r[22..28], &MAC_A.0);
        assert_eq!(&r[28..32], &IP_A.octets());
        assert_eq!(&r[32..38], &[0; 6]);
        assert_eq!(&r[38..42], &IP_B.octets());
    }

    #[test]
    fn test_arp_backoff_while_unresolved() {
        let mut a = link_a();
        let start = 7 * SEC;
        let mut sent_at = Vec::new();
        for ms in 0..5_000 {
            if !polled(&mut a, start + ms * MS).is_empty() {
                sent_at.push(ms);
            }
        }
        assert_eq!(sent_at, [0, 100, 300, 700, 1500, 2500, 3500, 4500]);
        assert_eq!(a.stats().arp_requests_sent, 8);
        // An answer stops it; the next silence starts from 100 ms again.
        let reply = arp_frame(MAC_A, 2, MAC_B, IP_B, MAC_A, IP_A);
        assert_eq!(feed(&mut a, start + 5 * SEC, &reply).0, Input::Arp);
        assert!(polled(&mut a, start + 5 * SEC + 1).is_empty());
    }

    #[test]
    fn test_refresh_after_silence_keeps_the_mac() {
        let t0 = 3 * SEC;
        let (mut a, mut b) = resolved_pair(t0);
        // Datagrams from the partner's MAC count as hearing from it.
        let f = output(&mut b, t0 + 20 * SEC, PAYLOAD).unwrap();
        assert!(matches!(
            feed(&mut a, t0 + 20 * SEC, &f).0,
            Input::Payload(_)
        ));
        let heard = t0 + 20 * SEC;
        assert!(polled(&mut a, heard + REFRESH_AFTER_NS - 1).is_empty());
        let sent = polled(&mut a, heard + REFRESH_AFTER_NS);
        assert_eq!(sent.len(), 1, "re-resolution starts");
        assert_eq!(&sent[0][0..6], &[0xff; 6]);
        assert!(polled(&mut a, heard + REFRESH_AFTER_NS + 99 * MS).is_empty());
        assert_eq!(polled(&mut a, heard + REFRESH_AFTER_NS + 100 * MS).len(), 1);
        // Meanwhile the old MAC is still used.
        let now = heard + REFRESH_AFTER_NS + 200 * MS;
        assert_eq!(&output(&mut a, now, PAYLOAD).unwrap()[0..6], &MAC_B.0);
        // The partner answers: quiet again.
        let (got, replies) = feed(&mut b, now, &sent[0]);
        assert_eq!(got, Input::Arp);
        assert_eq!(feed(&mut a, now, &replies[0]).0, Input::Arp);
        assert!(polled(&mut a, now + 10 * SEC).is_empty());
        let s = a.stats();
        assert_eq!((s.peer_mac_learnt, s.peer_mac_changed), (1, 0));
    }

    #[test]
    fn test_datagram_from_another_mac_is_not_hearing_from_the_partner() {
        let (mut a, _) = resolved_pair(0);
        let mut f = datagram();
        f[6..12].copy_from_slice(&MAC_C.0);
        assert!(matches!(feed(&mut a, 20 * SEC, &f).0, Input::Payload(_)));
        assert_eq!(polled(&mut a, REFRESH_AFTER_NS).len(), 1);
    }

    // ------------------------------------------------- config and counters

    #[test]
    fn test_config_errors() {
        let new = |mac, ip, len, peer, port| HaLink::new(mac, ip, len, peer, port).err();
        let prefix = |ip, len| Ipv4Prefix::new(ip, len).unwrap();
        assert_eq!(
            new(MAC_A, IP_A, 33, IP_B, PORT),
            Some(ConfigError::PrefixLength(33))
        );
        let multicast = EthernetAddress([0x01, 0, 0x5e, 0, 0, 1]);
        assert_eq!(
            new(multicast, IP_A, LEN, IP_B, PORT),
            Some(ConfigError::LocalMac(multicast))
        );
        let zero = EthernetAddress::UNSPECIFIED;
        assert_eq!(
            new(zero, IP_A, LEN, IP_B, PORT),
            Some(ConfigError::LocalMac(zero))
        );
        let net = Ipv4Addr::new(169, 254, 77, 0);
        assert_eq!(
            new(MAC_A, net, LEN, IP_B, PORT),
            Some(ConfigError::LocalNotHost(prefix(net, LEN)))
        );
        assert_eq!(
            new(MAC_A, IP_A, LEN, IP_A, PORT),
            Some(ConfigError::PeerIsLocal(IP_A))
        );
        let far = Ipv4Addr::new(169, 254, 78, 2);
        assert_eq!(
            new(MAC_A, IP_A, LEN, far, PORT),
            Some(ConfigError::PeerOffLink {
                peer: far,
                local: prefix(IP_A, LEN)
            })
        );
        let bcast = Ipv4Addr::new(169, 254, 77, 7);
        assert!(matches!(
            new(MAC_A, IP_A, LEN, bcast, PORT),
            Some(ConfigError::PeerOffLink { .. })
        ));
        assert_eq!(new(MAC_A, IP_A, LEN, IP_B, 0), Some(ConfigError::PortZero));
        // RFC 3021: both addresses of a /31 are hosts.
        let (x, y) = (Ipv4Addr::new(10, 0, 0, 0), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(new(MAC_A, x, 31, y, PORT), None);
        let cfg = Addressing {
            address: prefix(IP_A, LEN),
            peer: IP_B,
            port: PORT,
        };
        let a = HaLink::from_config(MAC_A, &cfg).unwrap();
        assert_eq!(
            (a.local_ip(), a.peer_ip(), a.port(), a.local_mac()),
            (IP_A, IP_B, PORT, MAC_A)
        );
    }

    #[test]
    fn test_drop_reasons_are_indexed_and_named() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert!(r
                .name()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
    }

    #[test]
    fn test_counter_names() {
        let mut a = link_a();
        let mut f = datagram();
        f[22] = 254;
        refill_ip(&mut f);
        let _ = feed(&mut a, 0, &f);
        let mut out = Vec::new();
        a.counters("ha0", &mut out);
        assert_eq!(out.len(), 7 + DropReason::COUNT);
        assert!(out.iter().all(|(n, _)| n.starts_with("ha.ha0.")));
        let mut names: Vec<_> = out.iter().map(|(n, _)| n.clone()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), out.len(), "unique");
        let get = |name: &str| out.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        assert_eq!(get("ha.ha0.bad_ttl"), Some(1));
        assert_eq!(get("ha.ha0.rx_payloads"), Some(0));
        assert_eq!(get("ha.ha0.not_from_peer"), Some(0));
    }
}
