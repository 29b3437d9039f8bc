//! Packets the unit tests of several modules build (tests only).

use crate::wire::{IpProtocol, Ipv4Packet, Ipv4Repr, TcpFlags, TcpPacket};
use std::net::{IpAddr, Ipv4Addr};

/// An IPv4 datagram (DF set, identification 0x1234) carrying `payload`;
/// the header checksum is right, any transport checksum is the caller's.
pub(crate) fn ipv4(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    proto: IpProtocol,
    payload: &[u8],
) -> Vec<u8> {
    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: proto,
        payload_len: payload.len(),
        hop_limit: ttl,
        dscp: 0,
        ecn: 0,
        ident: 0x1234,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    };
    let mut buf = vec![0; repr.buffer_len()];
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]));
    buf[20..].copy_from_slice(payload);
    buf
}

/// A TCP segment in an IPv4 datagram (TTL 64): a 20-byte header, window
/// 64240, `len` zero bytes of payload, checksums right.
#[allow(clippy::too_many_arguments)]
pub(crate) fn tcp(
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    flags: u8,
    seq: u32,
    ack: u32,
    len: usize,
) -> Vec<u8> {
    let mut seg = vec![0u8; 20 + len];
    let mut t = TcpPacket::new_unchecked(&mut seg[..]);
    t.set_src_port(sport);
    t.set_dst_port(dport);
    t.set_seq_number(seq);
    t.set_ack_number(ack);
    t.set_header_len(20);
    t.set_flags(TcpFlags::from_bits(flags));
    t.set_window_len(64240);
    t.fill_checksum(&IpAddr::V4(src), &IpAddr::V4(dst));
    ipv4(src, dst, 64, IpProtocol::Tcp, &seg)
}
