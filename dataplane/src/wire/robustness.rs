//! The contract, tested without a fuzzer: every prefix and many random
//! mutations of valid packets go through `new_checked`, every accessor, the
//! option/extension walkers and `Repr::parse` without a panic, and a `Repr`
//! that parses re-emits to the same `Repr`. A deterministic, seconds-long
//! stand-in for `dataplane/fuzz`, so plain `cargo test` guards it too.

use super::*;

/// xorshift64*: deterministic mutations without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).unwrap()).unwrap()
    }

    fn byte(&mut self) -> u8 {
        self.next().to_be_bytes()[0]
    }
}

/// Every prefix, then `rounds` copies with 1 to 4 random bytes changed.
fn mutate(seed: &[u8], rounds: usize, mut check: impl FnMut(&[u8])) {
    for len in 0..=seed.len() {
        check(&seed[..len]);
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ seed.len() as u64);
    for _ in 0..rounds {
        let mut data = seed.to_vec();
        for _ in 0..=rng.below(4) {
            let at = rng.below(data.len());
            data[at] = match rng.below(4) {
                0 => 0,
                1 => 0xff,
                _ => rng.byte(),
            };
        }
        let len = if rng.below(4) == 0 {
            rng.below(data.len() + 1)
        } else {
            data.len()
        };
        check(&data[..len]);
    }
}

const ROUNDS: usize = 20_000;
const V4: (IpAddr, IpAddr) = (
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
    IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
);
const V6A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const V6B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

fn ipv4_seed(protocol: IpProtocol, payload: &[u8], options: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0u8; ipv4::HEADER_LEN + options.len() + payload.len()];
    let repr = Ipv4Repr {
        src_addr: Ipv4Addr::new(192, 0, 2, 1),
        dst_addr: Ipv4Addr::new(198, 51, 100, 7),
        next_header: protocol,
        payload_len: options.len() + payload.len(),
        hop_limit: 64,
        dscp: 0,
        ecn: 0,
        ident: 7,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    };
    let mut packet = Ipv4Packet::new_unchecked(&mut bytes[..]);
    repr.emit(&mut packet);
    packet.set_header_len(ipv4::HEADER_LEN + options.len());
    packet.options_mut().copy_from_slice(options);
    packet.payload_mut().copy_from_slice(payload);
    packet.fill_checksum();
    bytes
}

fn tcp_seed() -> Vec<u8> {
    let repr = TcpRepr {
        src_port: 40000,
        dst_port: 443,
        seq_number: 1,
        ack_number: 2,
        flags: TcpFlags::SYN | TcpFlags::ACK,
        window_len: 1000,
        urgent_at: 0,
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: Some((1, 2)),
            sack: [Some((10, 20)), None, None, None],
        },
        payload: b"data",
    };
    let mut bytes = vec![0u8; repr.buffer_len()];
    repr.emit(&mut TcpPacket::new_unchecked(&mut bytes[..]), &V4.0, &V4.1);
    bytes
}

fn check_tcp(data: &[u8], src: &IpAddr, dst: &IpAddr) {
    let _ = TcpOptionIter::new(data).count();
    let Ok(packet) = TcpPacket::new_checked(data) else {
        return;
    };
    let _ = (
        packet.src_port(),
        packet.dst_port(),
        packet.seq_number(),
        packet.ack_number(),
    );
    let _ = (
        packet.flags().to_string(),
        packet.window_len(),
        packet.urgent_at(),
    );
    let _ = (
        packet.payload(),
        packet.segment_len(),
        packet.verify_checksum(src, dst),
    );
    assert!(packet.options_iter().count() <= packet.options().len());
    if let Ok(repr) = TcpRepr::parse(&packet, src, dst, ChecksumMode::Trust) {
        let mut out = vec![0u8; repr.buffer_len()];
        repr.emit(&mut TcpPacket::new_unchecked(&mut out[..]), src, dst);
        let again = TcpPacket::new_checked(&out[..]).unwrap();
        assert_eq!(
            TcpRepr::parse(&again, src, dst, ChecksumMode::Verify),
            Ok(repr)
        );
        let _ = repr.rst_reply();
    }
}

fn check_udp(data: &[u8], src: &IpAddr, dst: &IpAddr) {
    let Ok(packet) = UdpPacket::new_checked(data) else {
        return;
    };
    let _ = (
        packet.src_port(),
        packet.dst_port(),
        packet.payload(),
        packet.verify_checksum(src, dst),
    );
    if let Ok(repr) = UdpRepr::parse(&packet, src, dst, ChecksumMode::Trust) {
        let mut out = vec![0u8; repr.buffer_len()];
        repr.emit(&mut UdpPacket::new_unchecked(&mut out[..]), src, dst);
        let again = UdpPacket::new_checked(&out[..]).unwrap();
        assert_eq!(
            UdpRepr::parse(&again, src, dst, ChecksumMode::Verify),
            Ok(repr)
        );
    }
}

fn check_icmpv4(data: &[u8]) {
    let Ok(packet) = Icmpv4Packet::new_checked(data) else {
        return;
    };
    let _ = (
        packet.msg_type(),
        packet.msg_code(),
        packet.echo_ident(),
        packet.echo_seq_no(),
    );
    let _ = (
        packet.next_hop_mtu(),
        packet.pointer(),
        packet.data(),
        packet.verify_checksum(),
    );
    if let Ok(repr) = Icmpv4Repr::parse(&packet, ChecksumMode::Trust) {
        let mut out = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut out[..]));
        let again = Icmpv4Packet::new_checked(&out[..]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&again, ChecksumMode::Verify), Ok(repr));
    }
}

fn check_ipv4(data: &[u8]) {
    let Ok(packet) = Ipv4Packet::new_checked(data) else {
        return;
    };
    let _ = (
        packet.dscp(),
        packet.ecn(),
        packet.ident(),
        packet.frag_offset(),
        packet.is_fragment(),
    );
    let _ = (
        packet.ttl(),
        packet.src_addr(),
        packet.dst_addr(),
        packet.options(),
        packet.verify_checksum(),
    );
    let mut copy = data.to_vec();
    let mut writable = Ipv4Packet::new_unchecked(&mut copy[..]);
    writable.fill_checksum();
    if writable.decrement_ttl_and_update_checksum().is_some() {
        assert!(writable.verify_checksum());
    }
    if let Ok(repr) = Ipv4Repr::parse(&packet, ChecksumMode::Trust) {
        let mut out = vec![0u8; repr.buffer_len()];
        let mut emitted = Ipv4Packet::new_unchecked(&mut out[..]);
        repr.emit(&mut emitted);
        emitted.payload_mut().copy_from_slice(packet.payload());
        let again = Ipv4Packet::new_checked(&out[..]).unwrap();
        assert_eq!(Ipv4Repr::parse(&again, ChecksumMode::Verify), Ok(repr));
        let (src, dst) = (IpAddr::V4(repr.src_addr), IpAddr::V4(repr.dst_addr));
        match repr.next_header {
            IpProtocol::Tcp => check_tcp(packet.payload(), &src, &dst),
            IpProtocol::Udp => check_udp(packet.payload(), &src, &dst),
            IpProtocol::Icmp => check_icmpv4(packet.payload()),
            _ => {}
        }
    }
}

fn check_ipv6(data: &[u8]) {
    let Ok(packet) = Ipv6Packet::new_checked(data) else {
        return;
    };
    let _ = (
        packet.traffic_class(),
        packet.flow_label(),
        packet.hop_limit(),
        packet.payload(),
    );
    assert!(packet.ext_headers().count() <= ipv6::MAX_EXT_HEADERS + 1);
    let Ok(upper) = packet.upper_layer() else {
        return;
    };
    assert!(upper.offset <= packet.total_len());
    let l4 = packet.upper_layer_data(&upper);
    let (src, dst) = (packet.src_addr(), packet.dst_addr());
    match upper.protocol {
        IpProtocol::Tcp => check_tcp(l4, &src.into(), &dst.into()),
        IpProtocol::Udp => check_udp(l4, &src.into(), &dst.into()),
        IpProtocol::Icmpv6 => {
            if let Ok(icmp) = Icmpv6Packet::new_checked(l4) {
                let _ = (
                    icmp.msg_type(),
                    icmp.param(),
                    icmp.target_addr(),
                    icmp.data(),
                );
                if let Ok(repr) = Icmpv6Repr::parse(&icmp, &src, &dst, ChecksumMode::Trust) {
                    let mut out = vec![0u8; repr.buffer_len()];
                    repr.emit(&mut Icmpv6Packet::new_unchecked(&mut out[..]), &src, &dst);
                    let again = Icmpv6Packet::new_checked(&out[..]).unwrap();
                    assert_eq!(
                        Icmpv6Repr::parse(&again, &src, &dst, ChecksumMode::Verify),
                        Ok(repr)
                    );
                }
            }
        }
        _ => {}
    }
}

fn check_frame(data: &[u8]) {
    let Ok(frame) = EthernetFrame::new_checked(data) else {
        return;
    };
    let _ = (
        frame.dst_addr(),
        frame.src_addr(),
        frame.vlan(),
        frame.outer_vlan(),
        frame.vlan_id(),
    );
    let repr = EthernetRepr::parse(&frame).unwrap();
    assert_eq!(repr.header_len(), frame.header_len());
    match frame.ethertype() {
        EtherType::Ipv4 => check_ipv4(frame.payload()),
        EtherType::Ipv6 => check_ipv6(frame.payload()),
        EtherType::Arp => {
            if let Ok(arp) = ArpPacket::new_checked(frame.payload()) {
                let _ = (
                    arp.operation(),
                    arp.source_protocol_addr(),
                    arp.target_hardware_addr(),
                );
                if let Ok(repr) = ArpRepr::parse(&arp) {
                    let mut out = [0u8; arp::PACKET_LEN];
                    repr.emit(&mut ArpPacket::new_unchecked(&mut out[..]));
                    assert_eq!(
                        ArpRepr::parse(&ArpPacket::new_checked(&out[..]).unwrap()),
                        Ok(repr)
                    );
                }
            }
        }
        _ => {}
    }
}

fn ethernet(ethertype: EtherType, vlans: usize, payload: &[u8]) -> Vec<u8> {
    let repr = EthernetRepr {
        src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
        dst_addr: EthernetAddress::BROADCAST,
        ethertype,
        vlan: (vlans > 0).then(|| VlanTag::new(100)),
        outer_vlan: (vlans > 1).then(|| VlanTag::new(200)),
    };
    let mut bytes = vec![0u8; repr.buffer_len() + payload.len()];
    let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
    repr.emit(&mut frame);
    frame.payload_mut().copy_from_slice(payload);
    bytes
}

#[test]
fn test_mutated_ipv4_stack() {
    let tcp = tcp_seed();
    let echo = Icmpv4Repr::EchoRequest {
        ident: 1,
        seq_no: 2,
        data: b"ping",
    };
    let mut icmp = vec![0u8; echo.buffer_len()];
    echo.emit(&mut Icmpv4Packet::new_unchecked(&mut icmp[..]));
    let udp_repr = UdpRepr {
        src_port: 53,
        dst_port: 5353,
        payload: b"dns",
    };
    let mut udp = vec![0u8; udp_repr.buffer_len()];
    udp_repr.emit(&mut UdpPacket::new_unchecked(&mut udp[..]), &V4.0, &V4.1);
    for seed in [
        ethernet(EtherType::Ipv4, 0, &ipv4_seed(IpProtocol::Tcp, &tcp, &[])),
        ethernet(
            EtherType::Ipv4,
            1,
            &ipv4_seed(IpProtocol::Udp, &udp, &[0x94, 4, 0, 0]),
        ),
        ethernet(EtherType::Ipv4, 2, &ipv4_seed(IpProtocol::Icmp, &icmp, &[])),
    ] {
        mutate(&seed, ROUNDS, check_frame);
    }
}

#[test]
fn test_mutated_arp() {
    let request = ArpRepr {
        operation: ArpOperation::Request,
        source_hardware_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
        source_protocol_addr: Ipv4Addr::new(192, 168, 1, 1),
        target_hardware_addr: EthernetAddress::UNSPECIFIED,
        target_protocol_addr: Ipv4Addr::new(192, 168, 1, 2),
    };
    let mut arp = [0u8; arp::PACKET_LEN];
    request.emit(&mut ArpPacket::new_unchecked(&mut arp[..]));
    mutate(&ethernet(EtherType::Arp, 1, &arp), ROUNDS, check_frame);
}

#[test]
fn test_mutated_ipv6_stack() {
    let v4_tcp = tcp_seed();
    let tcp = {
        let repr = TcpRepr::parse(
            &TcpPacket::new_checked(&v4_tcp[..]).unwrap(),
            &V4.0,
            &V4.1,
            ChecksumMode::Trust,
        )
        .unwrap();
        let mut out = vec![0u8; repr.buffer_len()];
        repr.emit(
            &mut TcpPacket::new_unchecked(&mut out[..]),
            &V6A.into(),
            &V6B.into(),
        );
        out
    };
    // Hop-by-Hop, Destination Options, Fragment (first), then TCP.
    let mut payload = vec![
        60, 0, 1, 4, 0, 0, 0, 0, 44, 0, 1, 4, 0, 0, 0, 0, 6, 0, 0, 1, 0, 0, 0, 9,
    ];
    payload.extend_from_slice(&tcp);
    let repr = Ipv6Repr {
        src_addr: V6A,
        dst_addr: V6B,
        next_header: IpProtocol::HopByHop,
        payload_len: payload.len(),
        hop_limit: 64,
        traffic_class: 0,
        flow_label: 0,
    };
    let mut ip = vec![0u8; repr.buffer_len()];
    let mut packet = Ipv6Packet::new_unchecked(&mut ip[..]);
    repr.emit(&mut packet);
    packet.payload_mut().copy_from_slice(&payload);
    assert_eq!(packet.upper_layer().unwrap().protocol, IpProtocol::Tcp);
    mutate(&ethernet(EtherType::Ipv6, 0, &ip), ROUNDS, check_frame);

    let echo = Icmpv6Repr::EchoRequest {
        ident: 1,
        seq_no: 2,
        data: b"ping6",
    };
    let mut icmp = vec![0u8; echo.buffer_len()];
    echo.emit(&mut Icmpv6Packet::new_unchecked(&mut icmp[..]), &V6A, &V6B);
    let repr = Ipv6Repr {
        next_header: IpProtocol::Icmpv6,
        payload_len: icmp.len(),
        ..repr
    };
    let mut ip = vec![0u8; repr.buffer_len()];
    let mut packet = Ipv6Packet::new_unchecked(&mut ip[..]);
    repr.emit(&mut packet);
    packet.payload_mut().copy_from_slice(&icmp);
    mutate(&ethernet(EtherType::Ipv6, 1, &ip), ROUNDS, check_frame);
}
