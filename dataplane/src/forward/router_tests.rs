//! The router, driven frame by frame with `Vec<u8>` buffers and an explicit clock.

use super::router::{BufPool, Interface, Router, PROBE_ID};
use super::{InterfaceConfig, RouterConfig, StaticRoute};
use crate::counters::{DropReason, WorkerCounters};
use crate::test_packets::ipv4;
use crate::wire::{
    checksum, ArpOperation, ArpPacket, ArpRepr, ChecksumMode, EtherType, EthernetAddress,
    EthernetFrame, Icmpv4Message, Icmpv4Packet, IpProtocol, Ipv4Packet, Ipv4Repr,
};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const MAC0: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x10]);
const MAC1: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x11]);
const VMAC0: EthernetAddress = EthernetAddress([0x02, 0, 0x5e, 0x10, 0, 0x01]);
const VMAC1: EthernetAddress = EthernetAddress([0x02, 0, 0x5e, 0x10, 0, 0x02]);
const CLIENT_MAC: EthernetAddress = EthernetAddress([0x02, 0xc1, 0, 0, 0, 0x02]);
const SERVER_MAC: EthernetAddress = EthernetAddress([0x02, 0x5e, 0, 0, 0, 0x02]);
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 2);
const UNIT0: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
const VIP0: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 254);
const REMOTE: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
const SECOND: u64 = 1_000_000_000;

struct Pool {
    left: usize,
}

impl BufPool for Pool {
    type Buf = Vec<u8>;
    fn alloc(&mut self, len: usize) -> Option<Vec<u8>> {
        self.left = self.left.checked_sub(1)?;
        Some(vec![0; len])
    }
}

struct Lab {
    router: Router<Vec<u8>>,
    counters: Arc<WorkerCounters>,
    pool: Pool,
    out: Vec<(usize, Vec<u8>)>,
}

fn config() -> RouterConfig {
    RouterConfig {
        interfaces: vec![
            InterfaceConfig {
                port: "data0".into(),
                address: "198.18.1.1/24".parse().unwrap(),
                virtual_ip: Some(VIP0),
                virtual_mac: Some(VMAC0),
            },
            InterfaceConfig {
                port: "data1".into(),
                address: "198.18.2.1/24".parse().unwrap(),
                virtual_ip: Some(Ipv4Addr::new(198, 18, 2, 254)),
                virtual_mac: Some(VMAC1),
            },
        ],
        routes: vec![StaticRoute {
            prefix: "198.19.0.0/16".parse().unwrap(),
            via: SERVER,
        }],
    }
}

fn lab() -> Lab {
    lab_with_data1_mtu(1500)
}

/// A lab whose data1 (towards the server) sends IP datagrams of at most `mtu` bytes.
fn lab_with_data1_mtu(mtu: u16) -> Lab {
    let cfg = config();
    let ifaces = vec![
        Interface::new(&cfg.interfaces[0], MAC0, 1500),
        Interface::new(&cfg.interfaces[1], MAC1, mtu),
    ];
    let counters = Arc::new(WorkerCounters::default());
    let router = Router::new(&cfg, ifaces, Arc::clone(&counters)).unwrap();
    Lab {
        router,
        counters,
        pool: Pool { left: 64 },
        out: Vec::new(),
    }
}

impl Lab {
    fn rx(&mut self, iface: usize, frame: Vec<u8>, now: u64) -> Vec<(usize, Vec<u8>)> {
        self.router
            .handle(iface, frame, now, &mut self.pool, &mut self.out);
        std::mem::take(&mut self.out)
    }

    fn poll(&mut self, now: u64) -> Vec<(usize, Vec<u8>)> {
        self.router.poll(now, &mut self.pool, &mut self.out);
        std::mem::take(&mut self.out)
    }

    fn dropped(&self, r: DropReason) -> u64 {
        self.counters.dropped(r)
    }

    /// Teaches the router the server's MAC (as if it had answered ARP).
    fn knows_server(&mut self) {
        let out = self.rx(
            1,
            arp(
                ArpOperation::Request,
                SERVER_MAC,
                SERVER,
                Ipv4Addr::new(198, 18, 2, 1),
            ),
            0,
        );
        assert_eq!(out.len(), 1, "the unit answers the server's ARP request");
    }
}

fn eth(dst: EthernetAddress, src: EthernetAddress, ty: EtherType, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0; 14 + payload.len()];
    let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
    f.set_dst_addr(dst);
    f.set_src_addr(src);
    f.set_ethertype(ty);
    buf[14..].copy_from_slice(payload);
    buf
}

fn arp(op: ArpOperation, mac: EthernetAddress, ip: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut p = vec![0; 28];
    ArpRepr {
        operation: op,
        source_hardware_addr: mac,
        source_protocol_addr: ip,
        target_hardware_addr: EthernetAddress::UNSPECIFIED,
        target_protocol_addr: target,
    }
    .emit(&mut ArpPacket::new_unchecked(&mut p[..]));
    let dst = if op == ArpOperation::Request {
        EthernetAddress::BROADCAST
    } else {
        MAC1
    };
    eth(dst, mac, EtherType::Arp, &p)
}

fn echo_request() -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1, b'p', b'i', b'n', b'g'];
    let sum = !checksum::data(&icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    icmp
}

fn udp_from_client(dst: Ipv4Addr, ttl: u8) -> Vec<u8> {
    let ip = ipv4(
        CLIENT,
        dst,
        ttl,
        IpProtocol::Udp,
        &[0x30, 0x39, 0x00, 0x35, 0, 12, 0, 0, 1, 2, 3, 4],
    );
    eth(VMAC0, CLIENT_MAC, EtherType::Ipv4, &ip)
}

/// Parses an emitted frame as Ethernet + IPv4, checking the header checksum.
fn ip_of(frame: &[u8]) -> (EthernetFrame<&[u8]>, Ipv4Repr) {
    let f = EthernetFrame::new_checked(frame).unwrap();
    assert_eq!(f.ethertype(), EtherType::Ipv4);
    let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
    let repr = Ipv4Repr::parse(&ip, ChecksumMode::Verify).expect("valid IPv4 header checksum");
    (f, repr)
}

/// The ICMP message of an emitted frame, checksum verified.
fn icmp_of(frame: &[u8]) -> (Icmpv4Message, u8, Vec<u8>) {
    let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
    let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
    assert!(icmp.verify_checksum(), "ICMP checksum");
    (icmp.msg_type(), icmp.msg_code(), icmp.data().to_vec())
}

// ------------------------------------------------------------------ ARP

#[test]
fn answers_arp_for_own_address_with_port_mac() {
    let mut lab = lab();
    let out = lab.rx(0, arp(ArpOperation::Request, CLIENT_MAC, CLIENT, UNIT0), 0);
    assert_eq!(out.len(), 1);
    let (iface, frame) = &out[0];
    assert_eq!(*iface, 0);
    let f = EthernetFrame::new_checked(&frame[..]).unwrap();
    assert_eq!((f.dst_addr(), f.src_addr()), (CLIENT_MAC, MAC0));
    let reply = ArpRepr::parse(&ArpPacket::new_checked(&frame[14..]).unwrap()).unwrap();
    assert_eq!(reply.operation, ArpOperation::Reply);
    assert_eq!(
        (reply.source_hardware_addr, reply.source_protocol_addr),
        (MAC0, UNIT0)
    );
    assert_eq!(
        (reply.target_hardware_addr, reply.target_protocol_addr),
        (CLIENT_MAC, CLIENT)
    );
    assert_eq!(lab.counters.arp_replies_sent.get(), 1);
}

#[test]
fn answers_arp_for_virtual_ip_with_virtual_mac() {
    let mut lab = lab();
    let out = lab.rx(0, arp(ArpOperation::Request, CLIENT_MAC, CLIENT, VIP0), 0);
    let frame = &out[0].1;
    assert_eq!(
        EthernetFrame::new_checked(&frame[..]).unwrap().src_addr(),
        VMAC0
    );
    let reply = ArpRepr::parse(&ArpPacket::new_checked(&frame[14..]).unwrap()).unwrap();
    assert_eq!(
        (reply.source_hardware_addr, reply.source_protocol_addr),
        (VMAC0, VIP0)
    );
}

#[test]
fn ignores_arp_for_others_and_from_foreign_subnets() {
    let mut lab = lab();
    assert!(lab
        .rx(
            0,
            arp(
                ArpOperation::Request,
                CLIENT_MAC,
                CLIENT,
                Ipv4Addr::new(198, 18, 1, 77)
            ),
            0
        )
        .is_empty());
    assert_eq!(lab.dropped(DropReason::ArpNotForUs), 1);
    // sender on data1's subnet, heard on data0: refused, not learnt
    assert!(lab
        .rx(0, arp(ArpOperation::Request, CLIENT_MAC, SERVER, UNIT0), 0)
        .is_empty());
    assert_eq!(lab.dropped(DropReason::ArpBadSender), 1);
    // a multicast sender MAC
    let mcast = EthernetAddress([0x01, 0, 0x5e, 0, 0, 1]);
    assert!(lab
        .rx(0, arp(ArpOperation::Request, mcast, CLIENT, UNIT0), 0)
        .is_empty());
    assert_eq!(lab.dropped(DropReason::ArpBadSender), 2);
    // sender claims the unit's own address
    assert!(lab
        .rx(0, arp(ArpOperation::Request, CLIENT_MAC, UNIT0, VIP0), 0)
        .is_empty());
    assert_eq!(lab.dropped(DropReason::ArpBadSender), 3);
}

#[test]
fn answers_off_subnet_sender_that_routes_back_through_the_port_without_learning_it() {
    // The server ARPs for its gateway from the address on its loopback
    // (Linux's default arp_announce=0); 198.19.0.0/16 is routed via data1.
    let mut lab = lab();
    let gw1 = Ipv4Addr::new(198, 18, 2, 254);
    let out = lab.rx(1, arp(ArpOperation::Request, SERVER_MAC, REMOTE, gw1), 0);
    assert_eq!(out.len(), 1, "answered");
    let reply = ArpRepr::parse(&ArpPacket::new_checked(&out[0].1[14..]).unwrap()).unwrap();
    assert_eq!(
        (reply.target_hardware_addr, reply.target_protocol_addr),
        (SERVER_MAC, REMOTE)
    );
    assert_eq!(
        lab.counters.arp_learned.get(),
        0,
        "not a neighbour: not learnt"
    );
    // the same sender heard on data0 does not route back there
    assert!(lab
        .rx(0, arp(ArpOperation::Request, SERVER_MAC, REMOTE, UNIT0), 0)
        .is_empty());
    assert_eq!(lab.dropped(DropReason::ArpBadSender), 1);
}

#[test]
fn answers_rfc5227_probes_for_own_address() {
    let mut lab = lab();
    let out = lab.rx(
        0,
        arp(
            ArpOperation::Request,
            CLIENT_MAC,
            Ipv4Addr::UNSPECIFIED,
            UNIT0,
        ),
        0,
    );
    assert_eq!(out.len(), 1, "the unit defends its address");
    assert_eq!(lab.counters.arp_learned.get(), 0);
}

#[test]
fn malformed_arp_is_counted() {
    let mut lab = lab();
    let mut frame = arp(ArpOperation::Request, CLIENT_MAC, CLIENT, UNIT0);
    frame[14 + 4] = 8; // hardware length 8
    assert!(lab.rx(0, frame, 0).is_empty());
    let short = arp(ArpOperation::Request, CLIENT_MAC, CLIENT, UNIT0)[..14 + 20].to_vec();
    assert!(lab.rx(0, short, 0).is_empty());
    assert_eq!(lab.dropped(DropReason::ArpMalformed), 2);
}

// ------------------------------------------------------------------ local delivery

#[test]
fn answers_echo_to_own_address_and_virtual_ip() {
    for (dst, dst_mac, want_src_mac) in [(UNIT0, MAC0, MAC0), (VIP0, VMAC0, VMAC0)] {
        let mut lab = lab();
        let frame = eth(
            dst_mac,
            CLIENT_MAC,
            EtherType::Ipv4,
            &ipv4(CLIENT, dst, 64, IpProtocol::Icmp, &echo_request()),
        );
        let out = lab.rx(0, frame, 0);
        assert_eq!(out.len(), 1, "one echo reply to {dst}");
        let (f, ip) = ip_of(&out[0].1);
        assert_eq!((f.dst_addr(), f.src_addr()), (CLIENT_MAC, want_src_mac));
        assert_eq!((ip.src_addr, ip.dst_addr), (dst, CLIENT));
        let (ty, code, data) = icmp_of(&out[0].1);
        assert_eq!((ty, code), (Icmpv4Message::EchoReply, 0));
        assert_eq!(&data[..], b"ping");
        assert_eq!(lab.counters.echo_replies_sent.get(), 1);
    }
}

#[test]
fn local_traffic_other_than_echo_is_dropped() {
    let mut lab = lab();
    let frame = eth(
        MAC0,
        CLIENT_MAC,
        EtherType::Ipv4,
        &ipv4(CLIENT, UNIT0, 64, IpProtocol::Tcp, &[0; 20]),
    );
    assert!(lab.rx(0, frame, 0).is_empty());
    assert_eq!(lab.dropped(DropReason::LocalNoService), 1);
    let mut bad = echo_request();
    bad[2] ^= 0xff;
    let frame = eth(
        MAC0,
        CLIENT_MAC,
        EtherType::Ipv4,
        &ipv4(CLIENT, UNIT0, 64, IpProtocol::Icmp, &bad),
    );
    assert!(lab.rx(0, frame, 0).is_empty());
    assert_eq!(lab.dropped(DropReason::LocalMalformed), 1);
}

// ------------------------------------------------------------------ forwarding

#[test]
fn forwards_after_resolving_the_next_hop() {
    let mut lab = lab();
    let out = lab.rx(0, udp_from_client(SERVER, 64), 0);
    assert_eq!(
        out.len(),
        1,
        "only an ARP request goes out, the packet waits"
    );
    let (iface, req) = &out[0];
    assert_eq!(*iface, 1);
    let r = ArpRepr::parse(&ArpPacket::new_checked(&req[14..]).unwrap()).unwrap();
    assert_eq!(
        (r.operation, r.source_protocol_addr, r.target_protocol_addr),
        (ArpOperation::Request, Ipv4Addr::new(198, 18, 2, 1), SERVER)
    );

    let out = lab.rx(
        1,
        arp(
            ArpOperation::Reply,
            SERVER_MAC,
            SERVER,
            Ipv4Addr::new(198, 18, 2, 1),
        ),
        1000,
    );
    assert_eq!(out.len(), 1, "the held packet is released");
    let (iface, frame) = &out[0];
    assert_eq!(*iface, 1);
    let (f, ip) = ip_of(frame);
    assert_eq!((f.dst_addr(), f.src_addr()), (SERVER_MAC, VMAC1));
    assert_eq!(
        (ip.src_addr, ip.dst_addr, ip.hop_limit),
        (CLIENT, SERVER, 63)
    );
    assert_eq!(
        &frame[14 + 20..],
        &[0x30, 0x39, 0x00, 0x35, 0, 12, 0, 0, 1, 2, 3, 4],
        "payload untouched"
    );

    // now resolved: straight through
    let out = lab.rx(0, udp_from_client(SERVER, 10), 2000);
    assert_eq!(out.len(), 1);
    assert_eq!(ip_of(&out[0].1).1.hop_limit, 9);
    assert_eq!(lab.counters.forwarded.get(), 2);
}

#[test]
fn static_route_goes_through_its_gateway() {
    let mut lab = lab();
    lab.knows_server();
    let out = lab.rx(0, udp_from_client(REMOTE, 64), 0);
    assert_eq!(out.len(), 1);
    let (f, ip) = ip_of(&out[0].1);
    assert_eq!(
        (out[0].0, f.dst_addr(), ip.dst_addr),
        (1, SERVER_MAC, REMOTE)
    );
}

#[test]
fn ttl_expiry_sends_time_exceeded_from_the_ingress_address() {
    for ttl in [0, 1] {
        let mut lab = lab();
        lab.knows_server();
        let orig = udp_from_client(SERVER, ttl);
        let out = lab.rx(0, orig.clone(), 0);
        assert_eq!(out.len(), 1);
        let (iface, frame) = &out[0];
        assert_eq!(*iface, 0);
        let (f, ip) = ip_of(frame);
        assert_eq!(
            (f.dst_addr(), ip.src_addr, ip.dst_addr),
            (CLIENT_MAC, UNIT0, CLIENT)
        );
        let (ty, code, data) = icmp_of(frame);
        assert_eq!((ty, code), (Icmpv4Message::TimeExceeded, 0));
        assert_eq!(&data[..], &orig[14..], "quotes the whole original datagram");
        assert_eq!(lab.dropped(DropReason::TtlExpired), 1);
    }
}

#[test]
fn no_route_sends_net_unreachable() {
    let mut lab = lab();
    let out = lab.rx(0, udp_from_client(Ipv4Addr::new(198, 18, 200, 1), 64), 0);
    assert_eq!(out.len(), 1);
    assert_eq!(icmp_of(&out[0].1).0, Icmpv4Message::DstUnreachable);
    assert_eq!(icmp_of(&out[0].1).1, 0);
    assert_eq!(lab.dropped(DropReason::NoRoute), 1);
}

#[test]
fn too_big_with_df_sends_fragmentation_needed_with_the_mtu() {
    let mut lab = lab();
    lab.knows_server();
    let ip = ipv4(CLIENT, SERVER, 64, IpProtocol::Udp, &[0; 1600]);
    let out = lab.rx(0, eth(VMAC0, CLIENT_MAC, EtherType::Ipv4, &ip), 0);
    assert_eq!(out.len(), 1);
    let frame = &out[0].1;
    let icmp = Icmpv4Packet::new_checked(&frame[34..]).unwrap();
    assert_eq!(
        (icmp.msg_type(), icmp.msg_code(), icmp.next_hop_mtu()),
        (Icmpv4Message::DstUnreachable, 4, 1500)
    );
    assert_eq!(frame.len(), 14 + 576, "quote limited to 576 bytes of IP");
    assert_eq!(lab.dropped(DropReason::FragmentationNeeded), 1);
    assert_eq!(lab.counters.datagrams_fragmented.get(), 0);
}

// ------------------------------------------------------------------ fragmentation

/// UDP from the client to the server, DF clear, with `payload_len` bytes of IP
/// payload that never repeat within 251 bytes; `offset` in bytes.
fn datagram(payload_len: usize, more_frags: bool, offset: u16) -> Vec<u8> {
    let repr = Ipv4Repr {
        src_addr: CLIENT,
        dst_addr: SERVER,
        next_header: IpProtocol::Udp,
        payload_len,
        hop_limit: 64,
        dscp: 10,
        ecn: 0,
        ident: 0x4321,
        dont_frag: false,
        more_frags,
        frag_offset: offset,
    };
    let mut ip = vec![0; repr.buffer_len()];
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut ip[..]));
    ip[20..].copy_from_slice(&pattern(payload_len));
    eth(VMAC0, CLIENT_MAC, EtherType::Ipv4, &ip)
}

/// `len` bytes that do not repeat within 251.
fn pattern(len: usize) -> Vec<u8> {
    (0..=250).cycle().take(len).collect()
}

/// Checks every frame of `out` as a fragment of `orig` (a [`datagram`])
/// forwarded to the server: valid header checksum, the original's fields
/// kept, TTL decremented, DF clear, at most `mtu` bytes, an offset that is a
/// multiple of 8, payload bytes equal to the original's at that offset, and
/// together covering the original's payload exactly once. Returns each
/// fragment's (offset, MF, total length).
fn fragments_of(orig: &[u8], out: &[(usize, Vec<u8>)], mtu: usize) -> Vec<(u16, bool, usize)> {
    let (_, want) = ip_of(orig);
    let orig_payload = &orig[14 + 20..];
    let mut covered = 0;
    let mut seen = Vec::new();
    for (iface, frame) in out {
        let (f, ip) = ip_of(frame);
        assert_eq!((*iface, f.dst_addr(), f.src_addr()), (1, SERVER_MAC, VMAC1));
        let header = Ipv4Packet::new_checked(&frame[14..]).unwrap();
        let total = usize::from(header.total_len());
        assert_eq!(frame.len(), 14 + total, "no padding or slack");
        assert!(total <= mtu, "{total} bytes over the MTU {mtu}");
        assert_eq!(
            (ip.src_addr, ip.dst_addr, ip.next_header, ip.ident, ip.dscp),
            (
                want.src_addr,
                want.dst_addr,
                want.next_header,
                want.ident,
                want.dscp
            )
        );
        assert_eq!((ip.hop_limit, ip.dont_frag), (want.hop_limit - 1, false));
        assert_eq!(ip.frag_offset % 8, 0);
        let at = usize::from(ip.frag_offset - want.frag_offset);
        assert_eq!(at, covered, "fragments in order, without gap or overlap");
        assert_eq!(header.payload(), &orig_payload[at..at + ip.payload_len]);
        covered += ip.payload_len;
        seen.push((ip.frag_offset, ip.more_frags, total));
    }
    assert_eq!(covered, orig_payload.len(), "the payload, reassembled");
    seen
}

#[test]
fn too_big_without_df_is_fragmented_at_the_mtu() {
    let mut lab = lab();
    lab.knows_server();
    let orig = datagram(3000, false, 0);
    let out = lab.rx(0, orig.clone(), 0);
    assert_eq!(
        fragments_of(&orig, &out, 1500),
        [(0, true, 1500), (1480, true, 1500), (2960, false, 60)]
    );
    assert_eq!(lab.counters.datagrams_fragmented.get(), 1);
    assert_eq!(lab.counters.fragments_created.get(), 3);
    assert_eq!(lab.counters.forwarded.get(), 3);
    assert_eq!(lab.counters.dropped_total(), 0);
}

#[test]
fn an_odd_mtu_gives_payloads_of_a_multiple_of_8() {
    // 1003 − 20 = 983 bytes of room: 976 of payload per fragment.
    let mut lab = lab_with_data1_mtu(1003);
    lab.knows_server();
    let orig = datagram(2000, false, 0);
    let out = lab.rx(0, orig.clone(), 0);
    assert_eq!(
        fragments_of(&orig, &out, 1003),
        [(0, true, 996), (976, true, 996), (1952, false, 68)]
    );
    // RFC 791's minimum MTU: 48 bytes of payload per fragment.
    let mut lab = lab_with_data1_mtu(68);
    lab.knows_server();
    let orig = datagram(100, false, 0);
    let out = lab.rx(0, orig.clone(), 0);
    assert_eq!(
        fragments_of(&orig, &out, 68),
        [(0, true, 68), (48, true, 68), (96, false, 24)]
    );
}

#[test]
fn a_fragment_is_fragmented_again_from_its_offset_keeping_mf() {
    let mut lab = lab_with_data1_mtu(576);
    lab.knows_server();
    // A middle fragment: every piece keeps MF.
    let orig = datagram(1480, true, 1480);
    let out = lab.rx(0, orig.clone(), 0);
    assert_eq!(
        fragments_of(&orig, &out, 576),
        [(1480, true, 572), (2032, true, 572), (2584, true, 396)]
    );
    // The last fragment: only its last piece clears MF.
    let orig = datagram(600, false, 2960);
    let out = lab.rx(0, orig.clone(), 0);
    assert_eq!(
        fragments_of(&orig, &out, 576),
        [(2960, true, 572), (3512, false, 68)]
    );
    assert_eq!(lab.counters.datagrams_fragmented.get(), 2);
    assert_eq!(lab.counters.fragments_created.get(), 5);
}

#[test]
fn a_dry_pool_drops_the_datagram_whole() {
    let mut lab = lab();
    lab.knows_server();
    lab.pool.left = 2;
    assert!(
        lab.rx(0, datagram(3000, false, 0), 0).is_empty(),
        "two of three fragments: none sent"
    );
    assert_eq!(lab.dropped(DropReason::NoMbuf), 1);
    assert_eq!(lab.counters.dropped_total(), 1);
    assert_eq!(lab.counters.datagrams_fragmented.get(), 0);
    assert_eq!(lab.counters.forwarded.get(), 0);
    lab.pool.left = 3;
    let orig = datagram(3000, false, 0);
    let out = lab.rx(0, orig.clone(), 0);
    assert_eq!(
        fragments_of(&orig, &out, 1500).len(),
        3,
        "enough buffers again"
    );
}

#[test]
fn fragments_wait_for_the_next_hop_like_any_frame() {
    let mut lab = lab();
    let orig = datagram(2000, false, 0);
    let out = lab.rx(0, orig.clone(), 0);
    assert_eq!(out.len(), 1, "one ARP request; both fragments wait");
    assert_eq!(
        EthernetFrame::new_checked(&out[0].1[..])
            .unwrap()
            .ethertype(),
        EtherType::Arp
    );
    let reply = arp(
        ArpOperation::Reply,
        SERVER_MAC,
        SERVER,
        Ipv4Addr::new(198, 18, 2, 1),
    );
    let out = lab.rx(1, reply, 1000);
    assert_eq!(
        fragments_of(&orig, &out, 1500),
        [(0, true, 1500), (1480, false, 540)]
    );
}

#[test]
fn a_fragment_ending_past_64k_is_not_fragmented_again() {
    let mut lab = lab_with_data1_mtu(576);
    lab.knows_server();
    // The offset field's largest value; its second piece would need 65528 + 552.
    assert!(lab.rx(0, datagram(1000, false, 65528), 0).is_empty());
    assert_eq!(lab.dropped(DropReason::FragmentOffsetOverflow), 1);
    assert_eq!(lab.counters.dropped_total(), 1);
}

#[test]
fn never_answers_an_icmp_error_with_an_error() {
    let mut lab = lab();
    let mut err = vec![11, 0, 0, 0, 0, 0, 0, 0];
    err.extend_from_slice(&[0x45; 28]);
    let frame = eth(
        VMAC0,
        CLIENT_MAC,
        EtherType::Ipv4,
        &ipv4(CLIENT, SERVER, 1, IpProtocol::Icmp, &err),
    );
    assert!(lab.rx(0, frame, 0).is_empty());
    assert_eq!(lab.dropped(DropReason::TtlExpired), 1);
    assert_eq!(lab.counters.icmp_errors_sent.get(), 0);
}

#[test]
fn icmp_errors_are_rate_limited() {
    let mut lab = lab();
    lab.pool.left = 1000;
    for _ in 0..150 {
        lab.rx(0, udp_from_client(SERVER, 1), 0);
    }
    assert_eq!(lab.counters.icmp_errors_sent.get(), 100, "the burst");
    assert_eq!(lab.counters.icmp_errors_rate_limited.get(), 50);
    lab.rx(0, udp_from_client(SERVER, 1), SECOND / 100);
    assert_eq!(
        lab.counters.icmp_errors_sent.get(),
        101,
        "10 ms refilled 10 tokens; one was used"
    );
}

#[test]
fn unresolved_next_hop_retries_then_sends_host_unreachable() {
    let mut lab = lab();
    let orig = udp_from_client(SERVER, 64);
    assert_eq!(lab.rx(0, orig, 0).len(), 1);
    let mut requests = 0;
    let mut unreachable = Vec::new();
    for s in 1..=4 {
        for (iface, frame) in lab.poll(s * SECOND) {
            match EthernetFrame::new_checked(&frame[..]).unwrap().ethertype() {
                EtherType::Arp => requests += 1,
                _ => unreachable.push((iface, frame)),
            }
        }
    }
    assert_eq!(requests, 2, "two retries after the first request");
    assert_eq!(unreachable.len(), 1);
    let (iface, frame) = &unreachable[0];
    assert_eq!(*iface, 0);
    assert_eq!(ip_of(frame).1.dst_addr, CLIENT);
    assert_eq!(icmp_of(frame).0, Icmpv4Message::DstUnreachable);
    assert_eq!(icmp_of(frame).1, 1);
    assert_eq!(lab.dropped(DropReason::ArpUnresolved), 1);
}

#[test]
fn no_buffer_for_an_arp_request_is_counted() {
    let mut lab = lab();
    lab.pool.left = 0;
    assert!(lab.rx(0, udp_from_client(SERVER, 64), 0).is_empty());
    assert_eq!(lab.dropped(DropReason::NoMbuf), 1);
}

// ------------------------------------------------------------------ live and standby

/// The ICMP echo request `echo_request()` to `dst`, sent to `dst_mac`.
fn echo_to(dst: Ipv4Addr, dst_mac: EthernetAddress) -> Vec<u8> {
    let ip = ipv4(CLIENT, dst, 64, IpProtocol::Icmp, &echo_request());
    eth(dst_mac, CLIENT_MAC, EtherType::Ipv4, &ip)
}

fn passive_lab() -> Lab {
    let mut lab = lab();
    lab.knows_server();
    lab.router.set_live(false);
    assert!(!lab.router.live());
    lab
}

#[test]
fn a_router_is_live_until_told_otherwise() {
    let mut lab = lab();
    assert!(lab.router.live(), "a unit without a partner forwards");
    lab.router.set_live(false);
    lab.router.set_live(true);
    lab.knows_server();
    assert_eq!(lab.rx(0, udp_from_client(SERVER, 64), 0).len(), 1);
    assert_eq!(lab.counters.forwarded.get(), 1);
    assert_eq!(lab.dropped(DropReason::Standby), 0);
}

#[test]
fn passive_drops_frames_for_the_virtual_mac() {
    let mut lab = passive_lab();
    // to the virtual MAC, whatever it carries: forwarded traffic, an echo to
    // the unit's own address, an ARP reply
    assert!(lab.rx(0, udp_from_client(SERVER, 64), 0).is_empty());
    assert!(lab.rx(0, echo_to(UNIT0, VMAC0), 0).is_empty());
    let mut reply = arp(ArpOperation::Reply, CLIENT_MAC, CLIENT, UNIT0);
    reply[0..6].copy_from_slice(&VMAC0.0);
    assert!(lab.rx(0, reply, 0).is_empty());
    assert_eq!(lab.dropped(DropReason::Standby), 3);
    assert_eq!(lab.dropped(DropReason::NotForUs), 0);
    // another MAC is still not for us
    let mut other = udp_from_client(SERVER, 64);
    other[0..6].copy_from_slice(&[2, 9, 9, 9, 9, 9]);
    assert!(lab.rx(0, other, 0).is_empty());
    assert_eq!(lab.dropped(DropReason::NotForUs), 1);
    assert_eq!(lab.counters.forwarded.get(), 0);
}

#[test]
fn passive_does_not_answer_arp_for_the_virtual_ip_and_active_does() {
    let mut lab = passive_lab();
    let who_has_vip = || arp(ArpOperation::Request, CLIENT_MAC, CLIENT, VIP0);
    assert!(lab.rx(0, who_has_vip(), 0).is_empty());
    assert_eq!(lab.dropped(DropReason::Standby), 1);
    assert_eq!(lab.dropped(DropReason::ArpNotForUs), 0);
    // taking over: answered again, with the virtual MAC
    lab.router.set_live(true);
    let out = lab.rx(0, who_has_vip(), 0);
    assert_eq!(out.len(), 1, "the active unit answers for the VIP");
    let reply = ArpRepr::parse(&ArpPacket::new_checked(&out[0].1[14..]).unwrap()).unwrap();
    assert_eq!(
        (
            reply.operation,
            reply.source_hardware_addr,
            reply.source_protocol_addr
        ),
        (ArpOperation::Reply, VMAC0, VIP0)
    );
    assert_eq!(lab.dropped(DropReason::Standby), 1);
}

#[test]
fn passive_drops_what_it_would_forward_without_icmp_errors_or_arp() {
    let mut lab = passive_lab();
    let to_port = |dst: Ipv4Addr, ttl: u8| {
        let mut f = udp_from_client(dst, ttl);
        f[0..6].copy_from_slice(&MAC0.0);
        f
    };
    // resolved next hop, unresolved next hop, no route, TTL expiring: the
    // active unit's business, nothing sent
    for frame in [
        to_port(SERVER, 64),
        to_port(Ipv4Addr::new(198, 18, 2, 77), 64),
        to_port(Ipv4Addr::new(198, 18, 200, 1), 64),
        to_port(SERVER, 1),
    ] {
        assert!(lab.rx(0, frame, 0).is_empty());
    }
    assert_eq!(lab.dropped(DropReason::Standby), 4);
    assert_eq!(lab.counters.forwarded.get(), 0);
    assert_eq!(lab.counters.arp_requests_sent.get(), 0);
    assert_eq!(lab.counters.icmp_errors_sent.get(), 0);
    // and an echo to the virtual IP is not answered either
    assert!(lab.rx(0, echo_to(VIP0, MAC0), 0).is_empty());
    assert_eq!(lab.dropped(DropReason::Standby), 5);
    assert_eq!(lab.counters.echo_replies_sent.get(), 0);
}

#[test]
fn passive_serves_its_own_address() {
    let mut lab = passive_lab();
    let out = lab.rx(0, arp(ArpOperation::Request, CLIENT_MAC, CLIENT, UNIT0), 0);
    assert_eq!(out.len(), 1, "ARP for the own address answered");
    let reply = ArpRepr::parse(&ArpPacket::new_checked(&out[0].1[14..]).unwrap()).unwrap();
    assert_eq!(
        (reply.source_hardware_addr, reply.source_protocol_addr),
        (MAC0, UNIT0)
    );
    let out = lab.rx(0, echo_to(UNIT0, MAC0), 0);
    assert_eq!(out.len(), 1, "echo to the own address answered");
    let (f, ip) = ip_of(&out[0].1);
    assert_eq!(
        (f.src_addr(), ip.src_addr, ip.dst_addr),
        (MAC0, UNIT0, CLIENT)
    );
    assert_eq!(icmp_of(&out[0].1).0, Icmpv4Message::EchoReply);
    assert_eq!(lab.dropped(DropReason::Standby), 0);
}

#[test]
fn passive_still_learns_from_arp_replies_and_gratuitous_arp() {
    let mut lab = passive_lab();
    let unit1 = Ipv4Addr::new(198, 18, 2, 1);
    let learned = lab.counters.arp_learned.get();
    // the server moves to a new MAC and says so (gratuitous ARP), then
    // answers a request with it
    let moved = EthernetAddress([0x02, 0x5e, 0, 0, 0, 0x99]);
    assert!(lab
        .rx(1, arp(ArpOperation::Request, moved, SERVER, SERVER), 1)
        .is_empty());
    assert!(lab
        .rx(1, arp(ArpOperation::Reply, moved, SERVER, unit1), 2)
        .is_empty());
    assert_eq!(lab.counters.arp_learned.get(), learned + 2);
    assert_eq!(lab.counters.arp_received.get(), 1);
    // after a takeover, forwarded frames go to the MAC learnt while passive
    lab.router.set_live(true);
    let out = lab.rx(0, udp_from_client(SERVER, 64), 3);
    assert_eq!(out.len(), 1);
    assert_eq!(ip_of(&out[0].1).0.dst_addr(), moved);
}

#[test]
fn the_actives_gratuitous_arp_is_left_by_the_passive_and_refused_by_the_active() {
    // The active unit announces the VIP (sender = target = the VIP).
    let garp = || arp(ArpOperation::Request, VMAC0, VIP0, VIP0);
    let mut passive = passive_lab();
    assert!(passive.rx(0, garp(), 0).is_empty());
    assert_eq!(passive.dropped(DropReason::Standby), 1);
    assert_eq!(passive.dropped(DropReason::ArpBadSender), 0);
    // A live unit hearing another claim its VIP learns nothing from it.
    let mut active = lab();
    assert!(active.rx(0, garp(), 0).is_empty());
    assert_eq!(active.dropped(DropReason::ArpBadSender), 1);
}

// ------------------------------------------------------------------ gratuitous ARP

#[test]
fn announce_sends_an_rfc5227_announcement_per_virtual_ip() {
    let mut lab = lab();
    lab.router.announce(&mut lab.pool, &mut lab.out);
    let out = std::mem::take(&mut lab.out);
    assert_eq!(out.len(), 2, "one per interface with a virtual IP");
    #[rustfmt::skip]
    let want0: [u8; 42] = [
        // Ethernet: broadcast, from the virtual MAC, ARP
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0x02, 0x00, 0x5e, 0x10, 0x00, 0x01,
        0x08, 0x06,
        // ARP: Ethernet/IPv4, request
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,
        // sender: the virtual MAC, the virtual IP 198.18.1.254
        0x02, 0x00, 0x5e, 0x10, 0x00, 0x01, 198, 18, 1, 254,
        // target: no MAC, the virtual IP again
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 198, 18, 1, 254,
    ];
    assert_eq!(out[0], (0, want0.to_vec()));
    let mut want1 = want0;
    for mac in [6..12, 22..28] {
        want1[mac].copy_from_slice(&VMAC1.0);
    }
    for ip in [28..32, 38..42] {
        want1[ip].copy_from_slice(&[198, 18, 2, 254]);
    }
    assert_eq!(out[1], (1, want1.to_vec()));
    assert_eq!(lab.counters.garp_sent.get(), 2);
}

#[test]
fn announce_uses_the_port_mac_without_a_virtual_mac_and_skips_interfaces_without_a_vip() {
    let mut cfg = config();
    cfg.interfaces[0].virtual_mac = None;
    cfg.interfaces[1].virtual_ip = None;
    let ifaces = vec![
        Interface::new(&cfg.interfaces[0], MAC0, 1500),
        Interface::new(&cfg.interfaces[1], MAC1, 1500),
    ];
    let counters = Arc::new(WorkerCounters::default());
    let mut router = Router::new(&cfg, ifaces, Arc::clone(&counters)).unwrap();
    let (mut pool, mut out) = (Pool { left: 8 }, Vec::new());
    router.announce(&mut pool, &mut out);
    assert_eq!(out.len(), 1);
    let (iface, frame) = &out[0];
    assert_eq!(*iface, 0);
    let f = EthernetFrame::new_checked(&frame[..]).unwrap();
    assert_eq!(
        (f.dst_addr(), f.src_addr()),
        (EthernetAddress::BROADCAST, MAC0)
    );
    let r = ArpRepr::parse(&ArpPacket::new_checked(&frame[14..]).unwrap()).unwrap();
    assert_eq!(
        (
            r.source_hardware_addr,
            r.source_protocol_addr,
            r.target_protocol_addr
        ),
        (MAC0, VIP0, VIP0)
    );
    assert_eq!(counters.garp_sent.get(), 1);
}

#[test]
fn a_passive_router_announces_nothing_and_a_dry_pool_is_counted() {
    let mut lab = lab();
    lab.router.set_live(false);
    lab.router.announce(&mut lab.pool, &mut lab.out);
    assert!(lab.out.is_empty());
    lab.router.set_live(true);
    lab.pool.left = 1;
    lab.router.announce(&mut lab.pool, &mut lab.out);
    assert_eq!(lab.out.len(), 1);
    assert_eq!(lab.counters.garp_sent.get(), 1);
    assert_eq!(lab.dropped(DropReason::NoMbuf), 1);
}

// ------------------------------------------------------------------ reconfiguration

const NEW_VIP0: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 253);
const NEW_VMAC0: EthernetAddress = EthernetAddress([0x02, 0, 0x5e, 0x10, 0, 0x03]);
const ELSEWHERE: Ipv4Addr = Ipv4Addr::new(198, 20, 0, 1);

/// `config()` with data0's virtual IP and MAC moved, and the route to
/// 198.19.0.0/16 replaced by one to 198.20.0.0/16.
fn new_config() -> RouterConfig {
    let mut cfg = config();
    cfg.interfaces[0].virtual_ip = Some(NEW_VIP0);
    cfg.interfaces[0].virtual_mac = Some(NEW_VMAC0);
    cfg.routes = vec![StaticRoute {
        prefix: "198.20.0.0/16".parse().unwrap(),
        via: SERVER,
    }];
    cfg
}

/// The ARP reply among `out`, as (sender MAC, sender IP).
fn arp_reply_of(out: &[(usize, Vec<u8>)]) -> (EthernetAddress, Ipv4Addr) {
    assert_eq!(out.len(), 1, "one ARP reply");
    let r = ArpRepr::parse(&ArpPacket::new_checked(&out[0].1[14..]).unwrap()).unwrap();
    assert_eq!(r.operation, ArpOperation::Reply);
    (r.source_hardware_addr, r.source_protocol_addr)
}

#[test]
fn a_moved_virtual_ip_is_answered_and_the_old_one_is_not() {
    let mut lab = lab();
    assert_eq!(
        lab.router.reconfigure(&config()),
        Ok(false),
        "nothing moved"
    );
    assert_eq!(lab.router.reconfigure(&new_config()), Ok(true));
    let who_has = |ip| arp(ArpOperation::Request, CLIENT_MAC, CLIENT, ip);
    let out = lab.rx(0, who_has(NEW_VIP0), 0);
    assert_eq!(arp_reply_of(&out), (NEW_VMAC0, NEW_VIP0));
    assert!(lab.rx(0, who_has(VIP0), 0).is_empty());
    assert_eq!(lab.dropped(DropReason::ArpNotForUs), 1);

    let out = lab.rx(0, echo_to(NEW_VIP0, NEW_VMAC0), 0);
    assert_eq!(out.len(), 1, "an echo reply from the new virtual IP");
    let (f, ip) = ip_of(&out[0].1);
    assert_eq!((f.src_addr(), ip.src_addr), (NEW_VMAC0, NEW_VIP0));
    assert!(lab.rx(0, echo_to(VIP0, VMAC0), 0).is_empty());
    assert_eq!(lab.dropped(DropReason::NotForUs), 1, "the old virtual MAC");
    assert_eq!(lab.counters.echo_replies_sent.get(), 1);

    lab.router.announce(&mut lab.pool, &mut lab.out);
    let out = std::mem::take(&mut lab.out);
    let r = ArpRepr::parse(&ArpPacket::new_checked(&out[0].1[14..]).unwrap()).unwrap();
    assert_eq!(
        (r.source_hardware_addr, r.source_protocol_addr),
        (NEW_VMAC0, NEW_VIP0),
        "the announcement names the new ones"
    );
}

#[test]
fn a_passive_router_claims_neither_the_old_nor_the_new_virtual_ip() {
    let mut lab = passive_lab();
    assert_eq!(lab.router.reconfigure(&new_config()), Ok(true));
    let who_has = |ip| arp(ArpOperation::Request, CLIENT_MAC, CLIENT, ip);
    assert!(lab.rx(0, who_has(NEW_VIP0), 0).is_empty());
    assert!(lab.rx(0, echo_to(NEW_VIP0, NEW_VMAC0), 0).is_empty());
    assert_eq!(lab.dropped(DropReason::Standby), 2, "left to the partner");
    assert!(lab.rx(0, who_has(VIP0), 0).is_empty());
    assert_eq!(lab.dropped(DropReason::ArpNotForUs), 1, "no one's now");
    lab.router.announce(&mut lab.pool, &mut lab.out);
    assert!(lab.out.is_empty());
    // taking over claims the new ones
    lab.router.set_live(true);
    let out = lab.rx(0, who_has(NEW_VIP0), 0);
    assert_eq!(arp_reply_of(&out), (NEW_VMAC0, NEW_VIP0));
}

#[test]
fn a_new_route_is_used_and_a_removed_one_is_not() {
    let mut lab = lab();
    lab.knows_server();
    assert_eq!(lab.rx(0, udp_from_client(ELSEWHERE, 64), 0).len(), 1);
    assert_eq!(lab.dropped(DropReason::NoRoute), 1, "no route yet");
    lab.router.reconfigure(&new_config()).unwrap();
    // to the new virtual MAC: the old one is no longer the unit's
    let via_new_vmac = |dst| {
        let mut frame = udp_from_client(dst, 64);
        frame[0..6].copy_from_slice(&NEW_VMAC0.0);
        frame
    };
    let out = lab.rx(0, via_new_vmac(ELSEWHERE), 0);
    let (f, ip) = ip_of(&out[0].1);
    assert_eq!(
        (out.len(), out[0].0, f.dst_addr(), ip.dst_addr),
        (1, 1, SERVER_MAC, ELSEWHERE),
        "through the new route's gateway"
    );
    let out = lab.rx(0, via_new_vmac(REMOTE), 0);
    assert_eq!(icmp_of(&out[0].1).0, Icmpv4Message::DstUnreachable);
    assert_eq!(lab.dropped(DropReason::NoRoute), 2, "the old route is gone");
}

#[test]
fn a_refused_configuration_changes_nothing() {
    use super::router::ReconfigureError;
    let mut lab = lab();
    lab.knows_server();
    let mut fewer = new_config();
    fewer.interfaces.pop();
    let mut renamed = new_config();
    renamed.interfaces[1].port = "data7".into();
    let mut readdressed = new_config();
    readdressed.interfaces[1].address = "198.18.3.1/24".parse().unwrap();
    let mut bad_gateway = new_config();
    bad_gateway.routes.push(StaticRoute {
        prefix: "198.21.0.0/16".parse().unwrap(),
        via: Ipv4Addr::new(10, 0, 0, 1),
    });
    let refusals = [
        (
            fewer,
            ReconfigureError::InterfaceCount {
                running: 2,
                given: 1,
            },
        ),
        (
            renamed,
            ReconfigureError::Port {
                index: 1,
                running: "data1".into(),
                given: "data7".into(),
            },
        ),
        (
            readdressed,
            ReconfigureError::Address {
                port: "data1".into(),
                running: "198.18.2.1/24".parse().unwrap(),
                given: "198.18.3.1/24".parse().unwrap(),
            },
        ),
        (bad_gateway, ReconfigureError::BadRoute(1)),
    ];
    for (cfg, why) in refusals {
        assert_eq!(lab.router.reconfigure(&cfg), Err(why));
    }
    let who_has = |ip| arp(ArpOperation::Request, CLIENT_MAC, CLIENT, ip);
    assert_eq!(arp_reply_of(&lab.rx(0, who_has(VIP0), 0)), (VMAC0, VIP0));
    assert!(lab.rx(0, who_has(NEW_VIP0), 0).is_empty());
    assert_eq!(lab.rx(0, udp_from_client(REMOTE, 64), 0)[0].0, 1, "routed");
    assert_eq!(lab.counters.forwarded.get(), 1);
    assert_eq!(lab.rx(0, udp_from_client(ELSEWHERE, 64), 0).len(), 1);
    assert_eq!(lab.dropped(DropReason::NoRoute), 1, "no new route");
}

#[test]
fn held_frames_and_neighbours_survive_a_reconfiguration() {
    let mut lab = lab();
    lab.rx(0, arp(ArpOperation::Request, CLIENT_MAC, CLIENT, UNIT0), 0);
    assert_eq!(lab.rx(0, udp_from_client(SERVER, 64), 0).len(), 1, "ARP");
    lab.router.reconfigure(&new_config()).unwrap();
    let reply = arp(
        ArpOperation::Reply,
        SERVER_MAC,
        SERVER,
        Ipv4Addr::new(198, 18, 2, 1),
    );
    let out = lab.rx(1, reply, 1000);
    assert_eq!(out.len(), 1, "the held frame is released");
    assert_eq!(ip_of(&out[0].1).1.dst_addr, SERVER);
    // the client, learnt before, is still known: no ARP request for it
    let back = ipv4(
        SERVER,
        CLIENT,
        64,
        IpProtocol::Udp,
        &[0x30, 0x39, 0, 0x35, 0, 8, 0, 0],
    );
    let out = lab.rx(1, eth(VMAC1, SERVER_MAC, EtherType::Ipv4, &back), 2000);
    let (f, _) = ip_of(&out[0].1);
    assert_eq!((out.len(), f.dst_addr()), (1, CLIENT_MAC));
    assert_eq!(lab.counters.forwarded.get(), 2, "the counters stay");
}

// ------------------------------------------------------------------ the partner probe

const PARTNER0: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 3);
const PARTNER1: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 3);
const PARTNER_MAC0: EthernetAddress = EthernetAddress([0x02, 0xb0, 0, 0, 0, 0x10]);

/// An ICMP echo reply from `src` (at PARTNER_MAC0) to `dst` (at `dst_mac`).
fn echo_reply(src: Ipv4Addr, dst: Ipv4Addr, dst_mac: EthernetAddress, ident: u16) -> Vec<u8> {
    let mut icmp = vec![0, 0, 0, 0, 0, 0, 0, 1];
    icmp[4..6].copy_from_slice(&ident.to_be_bytes());
    let sum = !checksum::data(&icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let ip = ipv4(src, dst, 64, IpProtocol::Icmp, &icmp);
    eth(dst_mac, PARTNER_MAC0, EtherType::Ipv4, &ip)
}

fn probing_lab() -> (Lab, Arc<AtomicU64>) {
    let mut lab = lab();
    let seen = Arc::new(AtomicU64::new(0));
    lab.router.set_probe_seen(Arc::clone(&seen));
    lab.router.set_probe_targets(vec![PARTNER0, PARTNER1]);
    (lab, seen)
}

impl Lab {
    fn probe(&mut self, now: u64) -> Vec<(usize, Vec<u8>)> {
        self.router.probe(now, &mut self.pool, &mut self.out);
        std::mem::take(&mut self.out)
    }
}

#[test]
fn probe_targets_on_no_subnet_are_ignored() {
    let mut lab = lab();
    let elsewhere = Ipv4Addr::new(10, 0, 0, 1);
    let broadcast = Ipv4Addr::new(198, 18, 1, 255);
    lab.router
        .set_probe_targets(vec![PARTNER0, elsewhere, UNIT0, broadcast, PARTNER1]);
    let kept: Vec<_> = lab.router.probe_targets().collect();
    assert_eq!(kept, [PARTNER0, PARTNER1]);
    lab.router.set_probe_targets(Vec::new());
    assert!(lab.probe(0).is_empty(), "no targets, no probe");
}

#[test]
fn probes_are_echo_requests_from_the_own_address_resolved_like_forwarded_frames() {
    let (mut lab, _) = probing_lab();
    lab.router.set_live(false);
    // Neither partner address is resolved yet: an ARP request each, from
    // the interface's own address, and the requests wait.
    let out = lab.probe(0);
    assert_eq!(out.len(), 2);
    for ((iface, frame), (want_iface, own, target)) in out.iter().zip([
        (0, UNIT0, PARTNER0),
        (1, Ipv4Addr::new(198, 18, 2, 1), PARTNER1),
    ]) {
        assert_eq!(*iface, want_iface);
        let r = ArpRepr::parse(&ArpPacket::new_checked(&frame[14..]).unwrap()).unwrap();
        assert_eq!(
            (r.operation, r.source_protocol_addr, r.target_protocol_addr),
            (ArpOperation::Request, own, target)
        );
    }
    assert_eq!(lab.counters.probe_sent.get(), 2);
    // The partner answers on data0: its request goes out.
    let mut answer = arp(ArpOperation::Reply, PARTNER_MAC0, PARTNER0, UNIT0);
    answer[0..6].copy_from_slice(&MAC0.0);
    let out = lab.rx(0, answer, SECOND / 2);
    assert_eq!(out.len(), 1);
    #[rustfmt::skip]
    let want: [u8; 42] = [
        // Ethernet: to the partner, from the port's own MAC, IPv4
        0x02, 0xb0, 0x00, 0x00, 0x00, 0x10,
        0x02, 0x00, 0x00, 0x00, 0x00, 0x10,
        0x08, 0x00,
        // IPv4: 28 bytes, id 1, TTL 64, ICMP, 198.18.1.1 -> 198.18.1.3
        0x45, 0x00, 0x00, 0x1c, 0x00, 0x01, 0x00, 0x00, 0x40, 0x01, 0xec, 0xb7,
        198, 18, 1, 1, 198, 18, 1, 3,
        // ICMP echo request, identifier "td", sequence 1
        0x08, 0x00, 0x83, 0x9a, 0x74, 0x64, 0x00, 0x01,
    ];
    assert_eq!(out[0], (0, want.to_vec()));
    let (_, ip) = ip_of(&out[0].1);
    assert_eq!((ip.src_addr, ip.dst_addr), (UNIT0, PARTNER0));
    let icmp = Icmpv4Packet::new_checked(&out[0].1[34..]).unwrap();
    assert!(icmp.verify_checksum());
    assert_eq!(
        (icmp.msg_type(), icmp.echo_ident(), icmp.echo_seq_no()),
        (Icmpv4Message::EchoRequest, PROBE_ID, 1)
    );
    assert_eq!(lab.counters.forwarded.get(), 0, "not forwarded traffic");
    // Resolved now: the next round's request to it goes out at once, the
    // sequence one more for each request.
    let out = lab.probe(SECOND);
    assert_eq!(out.len(), 1, "data1's partner address still resolving");
    let icmp = Icmpv4Packet::new_checked(&out[0].1[34..]).unwrap();
    assert!(icmp.verify_checksum());
    assert_eq!(icmp.echo_seq_no(), 3);
    // data1's never answers: its requests are dropped, nobody is told.
    for s in 2..=6 {
        lab.poll(s * SECOND);
    }
    assert_eq!(lab.dropped(DropReason::ArpUnresolved), 2);
    assert_eq!(lab.counters.icmp_errors_sent.get(), 0);
    assert_eq!(lab.counters.forwarded.get(), 0);
    assert_eq!(lab.counters.probe_sent.get(), 4);
}

#[test]
fn a_reply_from_a_target_stamps_the_time_live_or_not() {
    for live in [true, false] {
        let (mut lab, seen) = probing_lab();
        lab.router.set_live(live);
        let reply = || echo_reply(PARTNER0, UNIT0, MAC0, PROBE_ID);
        assert!(lab.rx(0, reply(), 5 * SECOND + 7).is_empty());
        assert_eq!(seen.load(Ordering::Relaxed), 5 * SECOND + 7);
        assert_eq!(lab.counters.probe_replies.get(), 1);
        // One handed to another worker whose clock read a little earlier
        // does not move the stamp back.
        assert!(lab.rx(0, reply(), 5 * SECOND).is_empty());
        assert_eq!(seen.load(Ordering::Relaxed), 5 * SECOND + 7);
        assert_eq!(lab.counters.probe_replies.get(), 2);
        assert_eq!(lab.dropped(DropReason::LocalNoService), 0);
    }
}

#[test]
fn other_echo_replies_do_not_stamp() {
    let (mut lab, seen) = probing_lab();
    for frame in [
        // from an address that is no target
        echo_reply(CLIENT, UNIT0, MAC0, PROBE_ID),
        // another identifier (someone's ping)
        echo_reply(PARTNER0, UNIT0, MAC0, 0x1234),
        // to the virtual IP, not an own address
        echo_reply(PARTNER0, VIP0, VMAC0, PROBE_ID),
    ] {
        assert!(lab.rx(0, frame, SECOND).is_empty());
    }
    assert_eq!(seen.load(Ordering::Relaxed), 0);
    assert_eq!(lab.counters.probe_replies.get(), 0);
    assert_eq!(lab.dropped(DropReason::LocalNoService), 3);
}

// ------------------------------------------------------------------ bad input

#[test]
fn malformed_and_unroutable_frames_are_dropped_by_reason() {
    let good = udp_from_client(SERVER, 64);
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut v = good.clone();
        f(&mut v);
        v
    };
    let cases: Vec<(Vec<u8>, DropReason)> = vec![
        (good[..10].to_vec(), DropReason::EthTruncated),
        (
            with(&|v| v[0..6].copy_from_slice(&[2, 9, 9, 9, 9, 9])),
            DropReason::NotForUs,
        ),
        (
            with(&|v| v[12..14].copy_from_slice(&[0x88, 0xb5])),
            DropReason::UnknownEthertype,
        ),
        (
            with(&|v| v[12..14].copy_from_slice(&[0x86, 0xdd])),
            DropReason::Ipv6Unsupported,
        ),
        (good[..14 + 19].to_vec(), DropReason::Ipv4Truncated),
        (with(&|v| v[14] = 0x65), DropReason::Ipv4BadVersion),
        (
            with(&|v| v[16..18].copy_from_slice(&[0x02, 0x00])),
            DropReason::Ipv4BadLength,
        ),
        (with(&|v| v[14] = 0x44), DropReason::Ipv4BadLength),
        (with(&|v| v[24] ^= 0x01), DropReason::Ipv4BadChecksum),
        (
            with(&|v| {
                v[26..30].copy_from_slice(&[127, 0, 0, 1]);
                fix_ip_checksum(v)
            }),
            DropReason::Ipv4BadSource,
        ),
        (
            with(&|v| {
                v[26..30].copy_from_slice(&[224, 0, 0, 1]);
                fix_ip_checksum(v)
            }),
            DropReason::Ipv4BadSource,
        ),
        (
            with(&|v| {
                v[30..34].copy_from_slice(&[239, 1, 1, 1]);
                fix_ip_checksum(v)
            }),
            DropReason::Ipv4Multicast,
        ),
        (
            with(&|v| {
                v[30..34].copy_from_slice(&[198, 18, 1, 255]);
                fix_ip_checksum(v)
            }),
            DropReason::Ipv4BadDestination,
        ),
        (
            with(&|v| {
                v[30..34].copy_from_slice(&[198, 18, 2, 255]);
                fix_ip_checksum(v)
            }),
            DropReason::Ipv4BadDestination,
        ),
        (
            with(&|v| {
                v[30..34].copy_from_slice(&[255, 255, 255, 255]);
                fix_ip_checksum(v)
            }),
            DropReason::Ipv4BadDestination,
        ),
    ];
    for (i, (frame, reason)) in cases.into_iter().enumerate() {
        let mut lab = lab();
        let out = lab.rx(0, frame, 0);
        assert!(out.is_empty(), "case {i}: nothing sent");
        assert_eq!(
            lab.dropped(reason),
            1,
            "case {i}: counted as {}",
            reason.name()
        );
        assert_eq!(lab.counters.dropped_total(), 1, "case {i}: counted once");
    }
}

#[test]
fn ip_options_and_vlan_tags_are_refused() {
    let mut lab = lab();
    // IHL 6 with one NOP-padded option word
    let mut ip = ipv4(CLIENT, SERVER, 64, IpProtocol::Udp, &[0; 8]);
    ip.splice(20..20, [1, 1, 1, 0]);
    ip[0] = 0x46;
    ip[2..4].copy_from_slice(&32u16.to_be_bytes());
    let mut p = Ipv4Packet::new_unchecked(&mut ip[..]);
    p.fill_checksum();
    assert!(lab
        .rx(0, eth(VMAC0, CLIENT_MAC, EtherType::Ipv4, &ip), 0)
        .is_empty());
    assert_eq!(lab.dropped(DropReason::Ipv4Options), 1);

    let mut tagged = eth(VMAC0, CLIENT_MAC, EtherType::Vlan, &[0, 10, 0x08, 0x00]);
    tagged.extend_from_slice(&ipv4(CLIENT, SERVER, 64, IpProtocol::Udp, &[0; 8]));
    assert!(lab.rx(0, tagged, 0).is_empty());
    assert_eq!(lab.dropped(DropReason::VlanUnconfigured), 1);
}

#[test]
fn no_input_panics() {
    // Every prefix of every kind of frame, and every single-byte corruption of
    // a forwarded one: the router must count, never panic.
    let frames = [
        udp_from_client(SERVER, 64),
        arp(ArpOperation::Request, CLIENT_MAC, CLIENT, UNIT0),
        eth(
            MAC0,
            CLIENT_MAC,
            EtherType::Ipv4,
            &ipv4(CLIENT, UNIT0, 64, IpProtocol::Icmp, &echo_request()),
        ),
    ];
    let mut lab = lab();
    lab.pool.left = usize::MAX;
    for f in &frames {
        for len in 0..=f.len() {
            lab.rx(0, f[..len].to_vec(), 0);
        }
        for i in 0..f.len() {
            for b in [0x00, 0xff, 0x45, 0x01] {
                let mut g = f.clone();
                g[i] = b;
                lab.rx(0, g.clone(), 0);
                lab.rx(1, g, 0);
            }
        }
    }
}

#[test]
fn no_input_panics_on_the_fragmentation_path() {
    // A datagram that needs three fragments, cut short and corrupted byte by byte.
    let mut lab = lab_with_data1_mtu(576);
    lab.knows_server();
    lab.pool.left = usize::MAX;
    let f = datagram(1200, false, 0);
    for len in 0..=f.len() {
        lab.rx(0, f[..len].to_vec(), 0);
    }
    for i in 0..f.len() {
        for b in [0x00, 0xff, 0x20, 0x01] {
            let mut g = f.clone();
            g[i] = b;
            lab.rx(0, g, 0);
        }
    }
}

fn fix_ip_checksum(frame: &mut [u8]) {
    Ipv4Packet::new_unchecked(&mut frame[14..]).fill_checksum();
}

// ------------------------------------------------------------------ firewall

mod firewall {
    use super::*;
    use crate::conntrack::conn::Timeouts;
    use crate::conntrack::event::EventQueue;
    use crate::conntrack::shard::Shard;
    use crate::filter::{Action, PortRange, Rule, RuleSet};
    use crate::firewall::Firewall;
    use crate::wire::TcpPacket;
    use std::net::IpAddr;

    /// Pass TCP to port 80 in on data0; default block.
    fn fw_lab() -> Lab {
        let mut lab = lab();
        let mut web = Rule::new(Action::Pass);
        web.in_iface = Some(0);
        web.proto = Some(6);
        web.dst_ports = PortRange::new(80, 80);
        let rules = RuleSet::new(vec![web], Action::Block).unwrap();
        let shard = Shard::new(1024, 7, Timeouts::default(), EventQueue::new(64));
        lab.router
            .set_firewall(Firewall::new(shard, Arc::new(rules)));
        lab.knows_server();
        // teach the client's MAC too (ARP request from the client)
        lab.rx(0, arp(ArpOperation::Request, CLIENT_MAC, CLIENT, UNIT0), 0);
        lab
    }

    fn tcp(
        from_client: bool,
        cport: u16,
        sport: u16,
        flags: u8,
        seq: u32,
        ack: u32,
    ) -> (usize, Vec<u8>) {
        let (src, dst, sp, dp) = if from_client {
            (CLIENT, SERVER, cport, sport)
        } else {
            (SERVER, CLIENT, sport, cport)
        };
        let ip = crate::test_packets::tcp(src, sp, dst, dp, flags, seq, ack, 0);
        if from_client {
            (0, eth(VMAC0, CLIENT_MAC, EtherType::Ipv4, &ip))
        } else {
            (1, eth(VMAC1, SERVER_MAC, EtherType::Ipv4, &ip))
        }
    }

    fn send(lab: &mut Lab, (iface, frame): (usize, Vec<u8>)) -> usize {
        lab.rx(iface, frame, SECOND).len()
    }

    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;

    #[test]
    fn allowed_connection_passes_both_ways_and_the_rest_is_blocked() {
        let mut lab = fw_lab();
        assert_eq!(
            send(&mut lab, tcp(true, 40000, 80, SYN, 1000, 0)),
            1,
            "SYN to :80 passes"
        );
        assert_eq!(
            send(&mut lab, tcp(false, 40000, 80, SYN | ACK, 5000, 1001)),
            1,
            "reply passes by state"
        );
        assert_eq!(send(&mut lab, tcp(true, 40000, 80, ACK, 1001, 5001)), 1);
        assert_eq!(lab.counters.accepted_new.get(), 1);
        assert_eq!(lab.counters.accepted_state.get(), 2);

        assert_eq!(
            send(&mut lab, tcp(true, 40001, 8080, SYN, 1000, 0)),
            0,
            "port 8080 blocked"
        );
        assert_eq!(lab.dropped(DropReason::BlockedByRule), 1);
        assert_eq!(
            send(&mut lab, tcp(false, 40002, 80, SYN, 1000, 0)),
            0,
            "server-initiated blocked"
        );
        assert_eq!(lab.dropped(DropReason::BlockedByRule), 2);
    }

    #[test]
    fn spoofed_mid_stream_ack_and_out_of_window_data_are_dropped() {
        let mut lab = fw_lab();
        assert_eq!(send(&mut lab, tcp(true, 40010, 80, ACK, 123, 456)), 0);
        assert_eq!(lab.dropped(DropReason::TcpNoConnection), 1);
        send(&mut lab, tcp(true, 40011, 80, SYN, 1000, 0));
        send(&mut lab, tcp(false, 40011, 80, SYN | ACK, 5000, 1001));
        send(&mut lab, tcp(true, 40011, 80, ACK, 1001, 5001));
        assert_eq!(
            send(&mut lab, tcp(true, 40011, 80, ACK, 1001 + 10_000_000, 5001)),
            0
        );
        assert_eq!(lab.dropped(DropReason::TcpSeqOverWindow), 1);
        assert_eq!(
            send(&mut lab, tcp(false, 40011, 80, ACK, 5001, 1001 + 5_000)),
            0
        );
        assert_eq!(lab.dropped(DropReason::TcpAckOverSent), 1);
    }

    #[test]
    fn bad_l4_checksum_and_fragments_are_dropped() {
        let mut lab = fw_lab();
        let (i, mut f) = tcp(true, 40020, 80, SYN, 1000, 0);
        f[14 + 20 + 16] ^= 0xff;
        assert_eq!(lab.rx(i, f, 0).len(), 0);
        assert_eq!(lab.dropped(DropReason::L4BadChecksum), 1);
        let (i, mut f) = tcp(true, 40021, 80, SYN, 1000, 0);
        f[14 + 6] |= 0x20; // more fragments
        f[14 + 6] &= !0x40; // clear DF
        fix_ip_checksum(&mut f);
        assert_eq!(lab.rx(i, f, 0).len(), 0);
        assert_eq!(lab.dropped(DropReason::Ipv4Fragment), 1);
    }

    #[test]
    fn the_firewall_decides_on_the_whole_datagram_then_it_is_fragmented() {
        let mut lab = fw_lab();
        // A SYN to :80 carrying 2000 bytes, DF clear: passed as one datagram.
        let mut seg = tcp(true, 40040, 80, SYN, 1000, 0).1[14 + 20..].to_vec();
        seg.extend(pattern(2000));
        TcpPacket::new_unchecked(&mut seg[..])
            .fill_checksum(&IpAddr::V4(CLIENT), &IpAddr::V4(SERVER));
        let mut ip = ipv4(CLIENT, SERVER, 64, IpProtocol::Tcp, &seg);
        let mut header = Ipv4Packet::new_unchecked(&mut ip[..]);
        header.set_dont_frag(false);
        header.fill_checksum();
        let orig = eth(VMAC0, CLIENT_MAC, EtherType::Ipv4, &ip);
        let out = lab.rx(0, orig.clone(), SECOND);
        assert_eq!(
            fragments_of(&orig, &out, 1500),
            [(0, true, 1500), (1480, false, 560)]
        );
        assert_eq!(
            lab.counters.accepted_new.get(),
            1,
            "one decision, on the whole"
        );
        assert_eq!(lab.dropped(DropReason::Ipv4Fragment), 0);
    }

    #[test]
    fn icmp_errors_pass_only_for_tracked_connections() {
        let mut lab = fw_lab();
        send(&mut lab, tcp(true, 40030, 80, SYN, 1000, 0));
        // the server's side says "port unreachable", quoting the SYN
        let quoted = tcp(true, 40030, 80, SYN, 1000, 0).1[14..14 + 28].to_vec();
        let error = |q: &[u8]| {
            let mut icmp = vec![3, 3, 0, 0, 0, 0, 0, 0];
            icmp.extend_from_slice(q);
            let sum = !checksum::data(&icmp);
            icmp[2..4].copy_from_slice(&sum.to_be_bytes());
            eth(
                VMAC1,
                SERVER_MAC,
                EtherType::Ipv4,
                &ipv4(SERVER, CLIENT, 64, IpProtocol::Icmp, &icmp),
            )
        };
        assert_eq!(
            lab.rx(1, error(&quoted), SECOND).len(),
            1,
            "related error passes"
        );
        assert_eq!(lab.counters.accepted_related.get(), 1);
        let unrelated = tcp(true, 40031, 80, SYN, 1000, 0).1[14..14 + 28].to_vec();
        assert_eq!(lab.rx(1, error(&unrelated), SECOND).len(), 0);
        assert_eq!(lab.dropped(DropReason::IcmpErrorNoConnection), 1);
    }
}
