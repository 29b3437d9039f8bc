//! The lab the bench builds, and its frames.
//!
//! ```text
//!   clients 198.18.128.0/17                       server 198.19.0.2:80
//!   (behind gw 198.18.0.2)                                 │
//!          │                                               │
//!   data0 198.18.0.1/24  ── unit (Router + Firewall) ──  data1 198.19.0.1/24
//!   VIP .254, VMAC0                                       VIP .254, VMAC1
//! ```
//!
//! Flow `f` is client `198.18.128.0 + 1 + f mod 32766`, port `1024 + f div 32766`, to
//! the server's port 80: 1M flows use 31 ports per client address, every 5-tuple
//! distinct. The rule set is `pass tcp in on data0 to port 80`, default block, with
//! the loader's defaults (keep state, sync).
//!
//! Frames are 60 bytes (a 64-byte frame on the wire with its FCS): Ethernet, IPv4 (no
//! options, DF), TCP (no options) and 6 bytes of Ethernet padding that IPv4's total
//! length excludes. Checksums are valid.

use dataplane::wire::{
    EtherType, EthernetAddress, EthernetFrame, IpAddr, IpProtocol, Ipv4Packet, Ipv4Repr, TcpFlags,
    TcpPacket,
};
use std::net::Ipv4Addr;

/// Frame length without FCS (64 bytes on the wire).
pub const FRAME_LEN: usize = 60;
/// Where the IPv4 header starts.
pub const L3: usize = 14;
/// TTL of the frames that recirculate: each pass through the unit takes one.
pub const RECIRC_TTL: u8 = 255;

/// data0's port MAC.
pub const MAC0: EthernetAddress = EthernetAddress([0x02, 0x00, 0x00, 0x00, 0x00, 0x10]);
/// data1's port MAC.
pub const MAC1: EthernetAddress = EthernetAddress([0x02, 0x00, 0x00, 0x00, 0x00, 0x11]);
/// The cluster's virtual MAC on data0: what clients (and, for the loop, the server) send to.
pub const VMAC0: EthernetAddress = EthernetAddress([0x02, 0x00, 0x5e, 0x10, 0x00, 0x01]);
/// The cluster's virtual MAC on data1.
pub const VMAC1: EthernetAddress = EthernetAddress([0x02, 0x00, 0x5e, 0x10, 0x00, 0x02]);
/// The client-side gateway's MAC.
pub const GW_MAC: EthernetAddress = EthernetAddress([0x02, 0xc1, 0x00, 0x00, 0x00, 0x02]);
/// What the unit learns as the server's MAC: data0's virtual MAC, so that every frame
/// forwarded out of data1 is accepted when the ring brings it back in on data0.
pub const SERVER_MAC: EthernetAddress = VMAC0;

/// data0's address.
pub const UNIT0: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// data1's address.
pub const UNIT1: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
/// The clients' gateway on data0.
pub const GW: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// The server on data1.
pub const SERVER: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);
/// The server's port.
pub const SERVER_PORT: u16 = 80;
/// Client addresses per port number.
const CLIENT_HOSTS: u32 = 32_766;

/// The frame size of a scenario: a fixed size on the wire (FCS included), or the
/// simple IMIX (7:4:1 of 64, 576 and 1500-byte frames, assigned by flow number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// Every frame this many bytes on the wire (64..=1518).
    Bytes(u16),
    /// 7 × 64 : 4 × 576 : 1 × 1500 bytes.
    Imix,
}

impl Size {
    /// Parses `64`, `512`, `1500` or `imix`.
    pub fn parse(s: &str) -> Result<Size, String> {
        if s.eq_ignore_ascii_case("imix") {
            return Ok(Size::Imix);
        }
        match s.parse::<u16>() {
            Ok(n) if (64..=1518).contains(&n) => Ok(Size::Bytes(n)),
            _ => Err(format!("--sizes {s}: 64..=1518 or imix")),
        }
    }

    /// Wire size (with FCS) of flow `f`'s frame.
    pub fn wire_len(self, f: u32) -> u16 {
        match self {
            Size::Bytes(n) => n,
            Size::Imix => match f % 12 {
                0..=6 => 64,
                7..=10 => 576,
                _ => 1500,
            },
        }
    }

    /// The largest frame of this size.
    pub fn max_wire_len(self) -> u16 {
        match self {
            Size::Bytes(n) => n,
            Size::Imix => 1500,
        }
    }

    /// Mean wire size (the IMIX's: 7·64 + 4·576 + 1500 over 12).
    pub fn mean_wire_len(self) -> f64 {
        match self {
            Size::Bytes(n) => f64::from(n),
            Size::Imix => (7.0 * 64.0 + 4.0 * 576.0 + 1500.0) / 12.0,
        }
    }

    /// As in the results table.
    pub fn label(self) -> String {
        match self {
            Size::Bytes(n) => format!("{n} B"),
            Size::Imix => "IMIX".into(),
        }
    }
}

/// One client connection of the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// Client address.
    pub client: Ipv4Addr,
    /// Client port.
    pub port: u16,
    /// Client's initial sequence number.
    pub client_isn: u32,
    /// Server's initial sequence number.
    pub server_isn: u32,
}

impl Flow {
    /// The `f`-th flow (`f` < 2 million).
    pub fn nth(f: u32) -> Flow {
        let base = u32::from(Ipv4Addr::new(198, 18, 128, 0));
        let client = Ipv4Addr::from(base + 1 + f % CLIENT_HOSTS);
        let port = u16::try_from(1024 + f / CLIENT_HOSTS).expect("fewer than 2M flows");
        Flow {
            client,
            port,
            client_isn: f.wrapping_mul(2_654_435_761).wrapping_add(1),
            server_isn: f.wrapping_mul(40_503).wrapping_add(0x5000_0000),
        }
    }

    /// The client's SYN, as it arrives on data0.
    pub fn syn(&self, ttl: u8) -> [u8; FRAME_LEN] {
        self.client_frame(TcpFlags::SYN.bits(), self.client_isn, 0, ttl)
    }

    /// The server's SYN/ACK, as it arrives on data1.
    pub fn syn_ack(&self, ttl: u8) -> [u8; FRAME_LEN] {
        tcp_frame(
            VMAC1,
            SERVER_MAC,
            (SERVER, SERVER_PORT),
            (self.client, self.port),
            TcpFlags::SYN.bits() | TcpFlags::ACK.bits(),
            self.server_isn,
            self.client_isn.wrapping_add(1),
            ttl,
        )
    }

    /// A client ACK of the established connection (no data), as it arrives on data0.
    pub fn ack(&self, ttl: u8) -> [u8; FRAME_LEN] {
        self.client_frame(
            TcpFlags::ACK.bits(),
            self.client_isn.wrapping_add(1),
            self.server_isn.wrapping_add(1),
            ttl,
        )
    }

    /// The same ACK carrying `wire_len − 58` bytes of (zero) data, so that the frame is
    /// `wire_len` bytes on the wire; 64 bytes is [`Flow::ack`] (no data, padding).
    pub fn ack_sized(&self, ttl: u8, wire_len: u16) -> Vec<u8> {
        let small = self.ack(ttl);
        let len = usize::from(wire_len).saturating_sub(4);
        if len <= FRAME_LEN {
            return small.to_vec();
        }
        let payload = len - (L3 + 40);
        let mut buf = vec![0u8; len];
        buf[..L3 + 40].copy_from_slice(&small[..L3 + 40]);
        let mut ip = Ipv4Packet::new_unchecked(&mut buf[L3..]);
        ip.set_total_len(u16::try_from(40 + payload).expect("at most 1500"));
        ip.fill_checksum();
        let mut t = TcpPacket::new_unchecked(&mut buf[L3 + 20..]);
        t.fill_checksum(&IpAddr::V4(self.client), &IpAddr::V4(SERVER));
        buf
    }

    fn client_frame(&self, flags: u8, seq: u32, ack: u32, ttl: u8) -> [u8; FRAME_LEN] {
        tcp_frame(
            VMAC0,
            GW_MAC,
            (self.client, self.port),
            (SERVER, SERVER_PORT),
            flags,
            seq,
            ack,
            ttl,
        )
    }
}

/// `0..n` in a random order (Fisher–Yates with a fixed seed, so runs are comparable).
///
/// The ring holds the flows in this order: connection entries were created in flow
/// order (entry id = flow number), so a ring in flow order would walk the table
/// sequentially and let the hardware prefetcher hide every miss — not what traffic does.
pub fn shuffled(n: u32, seed: u64) -> Vec<u32> {
    let mut v: Vec<u32> = (0..n).collect();
    let mut x = seed | 1;
    for i in (1..v.len()).rev() {
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let j = usize::try_from(r % (i as u64 + 1)).expect("below len");
        v.swap(i, j);
    }
    v
}

/// A 60-byte Ethernet/IPv4/TCP frame with valid checksums.
#[allow(clippy::too_many_arguments)]
pub fn tcp_frame(
    dst_mac: EthernetAddress,
    src_mac: EthernetAddress,
    (src, sport): (Ipv4Addr, u16),
    (dst, dport): (Ipv4Addr, u16),
    flags: u8,
    seq: u32,
    ack: u32,
    ttl: u8,
) -> [u8; FRAME_LEN] {
    let mut buf = [0u8; FRAME_LEN];
    let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.set_dst_addr(dst_mac);
    eth.set_src_addr(src_mac);
    eth.set_ethertype(EtherType::Ipv4);
    Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Tcp,
        payload_len: 20,
        hop_limit: ttl,
        dscp: 0,
        ecn: 0,
        ident: 0,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    }
    .emit(&mut Ipv4Packet::new_unchecked(&mut buf[L3..L3 + 20]));
    let mut t = TcpPacket::new_unchecked(&mut buf[L3 + 20..L3 + 40]);
    t.set_src_port(sport);
    t.set_dst_port(dport);
    t.set_seq_number(seq);
    t.set_ack_number(ack);
    t.set_header_len(20);
    t.set_flags(TcpFlags::from_bits(flags));
    t.set_window_len(64_240);
    t.set_urgent_at(0);
    t.fill_checksum(&IpAddr::V4(src), &IpAddr::V4(dst));
    buf
}

/// An ARP request from `sender` (`mac`) for `target`, broadcast (the
/// router's own frame, padded to the minimum).
pub fn arp_request(mac: EthernetAddress, sender: Ipv4Addr, target: Ipv4Addr) -> [u8; FRAME_LEN] {
    let mut buf = [0u8; FRAME_LEN];
    dataplane::forward::router::emit_arp_request(&mut buf, mac, sender, target);
    buf
}

/// Puts TTL back to [`RECIRC_TTL`] and recomputes the IPv4 header checksum. False if the
/// frame is not the IPv4 frame the bench built.
pub fn restore_ttl(frame: &mut [u8]) -> bool {
    let Some(l3) = frame.get_mut(L3..) else {
        return false;
    };
    let Ok(mut ip) = Ipv4Packet::new_checked(l3) else {
        return false;
    };
    ip.set_ttl(RECIRC_TTL);
    ip.fill_checksum();
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flows_are_distinct_and_frames_valid() {
        let mut fs: Vec<u32> = (0..1_000_000).step_by(997).collect();
        fs.extend([32_765, 32_766, 999_999]);
        fs.sort_unstable();
        fs.dedup();
        let mut seen = std::collections::HashSet::new();
        for f in fs {
            let fl = Flow::nth(f);
            assert!(
                seen.insert((fl.client, fl.port)),
                "flow {f} repeats a 5-tuple"
            );
            let frame = fl.ack(RECIRC_TTL);
            let ip = Ipv4Packet::new_checked(&frame[L3..]).unwrap();
            assert!(ip.verify_checksum());
            assert_eq!(ip.total_len(), 40);
            let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
            assert!(tcp.verify_checksum(&IpAddr::V4(fl.client), &IpAddr::V4(SERVER)));
        }
        assert_ne!(Flow::nth(0).client, Flow::nth(1).client);
        assert_eq!(Flow::nth(32_766).client, Flow::nth(0).client);
        assert_ne!(Flow::nth(32_766).port, Flow::nth(0).port);
    }

    #[test]
    fn sized_frames_are_valid() {
        let fl = Flow::nth(12_345);
        for wire in [64u16, 512, 576, 1500, 1518] {
            let frame = fl.ack_sized(RECIRC_TTL, wire);
            assert_eq!(frame.len(), usize::from(wire.max(64)) - 4);
            let ip = Ipv4Packet::new_checked(&frame[L3..]).unwrap();
            assert!(ip.verify_checksum());
            let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
            assert!(tcp.verify_checksum(&IpAddr::V4(fl.client), &IpAddr::V4(SERVER)));
        }
        let n = |w| (0..12).filter(|&f| Size::Imix.wire_len(f) == w).count();
        assert_eq!((n(64), n(576), n(1500)), (7, 4, 1));
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut v = shuffled(10_000, 7);
        assert_ne!(v[..10], (0..10).collect::<Vec<_>>()[..]);
        v.sort_unstable();
        assert_eq!(v, (0..10_000).collect::<Vec<_>>());
    }

    #[test]
    fn ttl_restores_with_a_valid_checksum() {
        let mut f = Flow::nth(7).ack(3);
        assert!(restore_ttl(&mut f));
        let ip = Ipv4Packet::new_checked(&f[L3..]).unwrap();
        assert_eq!(ip.ttl(), RECIRC_TTL);
        assert!(ip.verify_checksum());
    }
}
