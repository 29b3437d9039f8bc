//! A whole frame, dissected the way a worker does: Ethernet, then ARP, IPv4
//! or IPv6 (extension headers walked), then TCP, UDP, ICMP.
#![no_main]

use dataplane::wire::{
    ArpPacket, ArpRepr, ChecksumMode, EtherType, EthernetFrame, Icmpv4Packet, Icmpv4Repr,
    Icmpv6Packet, Icmpv6Repr, IpAddr, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, TcpPacket,
    TcpRepr, UdpPacket, UdpRepr,
};
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

fn transport(protocol: IpProtocol, data: &[u8], src: IpAddr, dst: IpAddr) {
    let mode = ChecksumMode::Verify;
    match protocol {
        IpProtocol::Tcp => {
            if let Ok(tcp) = TcpPacket::new_checked(data) {
                black_box(TcpRepr::parse(&tcp, &src, &dst, mode).ok());
            }
        }
        IpProtocol::Udp => {
            if let Ok(udp) = UdpPacket::new_checked(data) {
                black_box(UdpRepr::parse(&udp, &src, &dst, mode).ok());
            }
        }
        IpProtocol::Icmp => {
            if let Ok(icmp) = Icmpv4Packet::new_checked(data) {
                if let Ok(repr) = Icmpv4Repr::parse(&icmp, mode) {
                    black_box(repr);
                    // An error quotes a datagram: look inside, as a firewall does.
                    if icmp.msg_type().is_error() {
                        let quoted = Ipv4Packet::new_unchecked(icmp.data());
                        if icmp.data().len() >= 20 {
                            black_box((quoted.src_addr(), quoted.dst_addr(), quoted.next_header()));
                        }
                    }
                }
            }
        }
        IpProtocol::Icmpv6 => {
            if let (Ok(icmp), IpAddr::V6(s), IpAddr::V6(d)) =
                (Icmpv6Packet::new_checked(data), src, dst)
            {
                black_box(Icmpv6Repr::parse(&icmp, &s, &d, mode).ok());
            }
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = EthernetFrame::new_checked(data) else {
        return;
    };
    black_box((frame.dst_addr(), frame.src_addr(), frame.vlan_id()));
    match frame.ethertype() {
        EtherType::Arp => {
            if let Ok(arp) = ArpPacket::new_checked(frame.payload()) {
                black_box(ArpRepr::parse(&arp).ok());
            }
        }
        EtherType::Ipv4 => {
            let Ok(ip) = Ipv4Packet::new_checked(frame.payload()) else {
                return;
            };
            let Ok(repr) = Ipv4Repr::parse(&ip, ChecksumMode::Verify) else {
                return;
            };
            if !ip.is_fragment() || ip.frag_offset() == 0 {
                transport(
                    repr.next_header,
                    ip.payload(),
                    repr.src_addr.into(),
                    repr.dst_addr.into(),
                );
            }
        }
        EtherType::Ipv6 => {
            let Ok(ip) = Ipv6Packet::new_checked(frame.payload()) else {
                return;
            };
            let Ok(upper) = ip.upper_layer() else {
                return;
            };
            if upper.fragment.is_none_or(|f| f.is_first()) {
                let data = ip.upper_layer_data(&upper);
                transport(
                    upper.protocol,
                    data,
                    ip.src_addr().into(),
                    ip.dst_addr().into(),
                );
            }
        }
        _ => {}
    }
});
