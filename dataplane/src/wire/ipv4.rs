//! IPv4 (RFC 791), options included.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version|  IHL  |  DSCP     |ECN|          Total Length         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Identification        |0|D|M|     Fragment Offset     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Time to Live |    Protocol   |         Header Checksum       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       Source Address                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Destination Address                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Options (IHL > 5)                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Options are exposed as raw bytes ([`Ipv4Packet::options`]): whether to drop,
//! ignore or process them is the router's policy. The payload is bounded by
//! Total Length, not by the buffer, which may carry Ethernet padding.

use super::checksum;
use super::{be16, len_u16, put16, ChecksumMode, Error, IpProtocol, Ipv4Addr, Result};

mod field {
    pub type Field = core::ops::Range<usize>;

    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = field::DST_ADDR.end;
/// Length of the longest header (IHL = 15).
pub const MAX_HEADER_LEN: usize = 60;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1FFF;

/// A read/write view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps a buffer without checking it; see the module contract.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Ipv4Packet<T> {
        Ipv4Packet { buffer }
    }

    /// [`new_unchecked`](Self::new_unchecked) then [`check_len`](Self::check_len).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Ipv4Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// In this order: [`Error::Truncated`] below 20 bytes,
    /// [`Error::BadVersion`] if the version is not 4, [`Error::BadLength`] if
    /// IHL < 5, total length < header length, or total length > buffer.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 4 {
            return Err(Error::BadVersion);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            return Err(Error::BadLength);
        }
        let total_len = usize::from(self.total_len());
        if total_len < header_len || total_len > len {
            return Err(Error::BadLength);
        }
        Ok(())
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version nibble.
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL × 4), options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0F) * 4
    }

    /// Differentiated Services Code Point.
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    /// Explicit Congestion Notification.
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    /// Total Length: header plus payload.
    #[inline]
    pub fn total_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH.start)
    }

    /// Identification.
    #[inline]
    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::IDENT.start)
    }

    fn flags_offset(&self) -> u16 {
        be16(self.buffer.as_ref(), field::FLG_OFF.start)
    }

    /// Don't Fragment.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.flags_offset() & FLAG_DF != 0
    }

    /// More Fragments.
    #[inline]
    pub fn more_frags(&self) -> bool {
        self.flags_offset() & FLAG_MF != 0
    }

    /// The reserved ("evil") bit, which must be zero.
    #[inline]
    pub fn reserved_flag(&self) -> bool {
        self.flags_offset() & 0x8000 != 0
    }

    /// Fragment offset in bytes (the field counts 8-byte units).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (self.flags_offset() & OFFSET_MASK) << 3
    }

    /// Part of a fragmented datagram: MF set or a non-zero offset. Only the
    /// first fragment (offset 0) carries the transport header.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flags_offset() & (FLAG_MF | OFFSET_MASK) != 0
    }

    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol of the payload.
    #[inline]
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }

    /// Header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        super::ipv4_at(self.buffer.as_ref(), field::SRC_ADDR.start)
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        super::ipv4_at(self.buffer.as_ref(), field::DST_ADDR.start)
    }

    /// `true` when the header checksum is right (always under `cfg(fuzzing)`).
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::is_valid(checksum::data(&self.buffer.as_ref()[..self.header_len()]))
    }

    /// Raw option bytes between the fixed header and the payload (empty when
    /// IHL = 5).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// Payload, bounded by Total Length (trailing Ethernet padding excluded).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets the version nibble.
    #[inline]
    pub fn set_version(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0F) | (value << 4);
    }

    /// Sets the header length in bytes (a multiple of 4, at most 60).
    /// Changes the layout: check the packet again.
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        let ihl = u8::try_from(len / 4).unwrap_or(0x0F).min(0x0F);
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xF0) | ihl;
    }

    /// Sets DSCP (6 bits).
    #[inline]
    pub fn set_dscp(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0x03) | (value << 2);
    }

    /// Sets ECN (2 bits).
    #[inline]
    pub fn set_ecn(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0xFC) | (value & 0x03);
    }

    /// Sets Total Length. Changes the layout: check the packet again.
    #[inline]
    pub fn set_total_len(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::LENGTH.start, value);
    }

    /// Sets Identification.
    #[inline]
    pub fn set_ident(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::IDENT.start, value);
    }

    fn set_flags_offset(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::FLG_OFF.start, value);
    }

    /// Clears all flags and the fragment offset.
    #[inline]
    pub fn clear_flags(&mut self) {
        self.set_flags_offset(0);
    }

    /// Sets Don't Fragment.
    #[inline]
    pub fn set_dont_frag(&mut self, value: bool) {
        let raw = self.flags_offset();
        self.set_flags_offset(if value { raw | FLAG_DF } else { raw & !FLAG_DF });
    }

    /// Sets More Fragments.
    #[inline]
    pub fn set_more_frags(&mut self, value: bool) {
        let raw = self.flags_offset();
        self.set_flags_offset(if value { raw | FLAG_MF } else { raw & !FLAG_MF });
    }

    /// Sets the fragment offset in bytes (rounded down to a multiple of 8).
    #[inline]
    pub fn set_frag_offset(&mut self, bytes: u16) {
        let raw = self.flags_offset();
        self.set_flags_offset((raw & !OFFSET_MASK) | (bytes >> 3));
    }

    /// Sets TTL (without touching the checksum).
    #[inline]
    pub fn set_ttl(&mut self, value: u8) {
        self.buffer.as_mut()[field::TTL] = value;
    }

    /// Sets the protocol.
    #[inline]
    pub fn set_next_header(&mut self, value: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = value.into();
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM.start, value);
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&value.octets());
    }

    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&value.octets());
    }

    /// Computes the header checksum from scratch and writes it.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let header_len = self.header_len();
        let sum = checksum::data(&self.buffer.as_ref()[..header_len]);
        self.set_checksum(!sum);
    }

    /// Sets TTL and updates the checksum incrementally (RFC 1624 eqn. 3),
    /// without reading the rest of the header.
    #[inline]
    pub fn set_ttl_and_update_checksum(&mut self, ttl: u8) {
        let new = checksum::update_ttl(self.checksum(), self.next_header(), self.ttl(), ttl);
        self.set_ttl(ttl);
        self.set_checksum(new);
    }

    /// What a router does to a forwarded packet: TTL − 1 and an incremental
    /// checksum update (RFC 1624; RFC 1812 §5.3.1). Returns the new TTL, or
    /// `None`, leaving the packet untouched, when TTL is already 0.
    ///
    /// The caller decides what TTL 0 after decrement means (ICMP Time
    /// Exceeded for a forwarded packet).
    #[inline]
    pub fn decrement_ttl_and_update_checksum(&mut self) -> Option<u8> {
        let ttl = self.ttl().checked_sub(1)?;
        self.set_ttl_and_update_checksum(ttl);
        Some(ttl)
    }

    /// Mutable option bytes.
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let header_len = self.header_len();
        &mut self.buffer.as_mut()[HEADER_LEN..header_len]
    }

    /// Mutable payload, bounded by Total Length.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = self.header_len()..usize::from(self.total_len());
        &mut self.buffer.as_mut()[range]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Ipv4Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// An IPv4 header without options, as plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Protocol of the payload.
    pub next_header: IpProtocol,
    /// Payload length (Total Length − header length).
    pub payload_len: usize,
    /// TTL.
    pub hop_limit: u8,
    /// DSCP (6 bits).
    pub dscp: u8,
    /// ECN (2 bits).
    pub ecn: u8,
    /// Identification.
    pub ident: u16,
    /// Don't Fragment.
    pub dont_frag: bool,
    /// More Fragments.
    pub more_frags: bool,
    /// Fragment offset in bytes (a multiple of 8).
    pub frag_offset: u16,
}

impl Ipv4Repr {
    /// Parses a checked packet; [`Error::BadChecksum`] when `mode` verifies and
    /// the header checksum is wrong. Options are accepted and *not* carried:
    /// `payload_len` excludes them and `emit` writes a 20-byte header. Look at
    /// [`Ipv4Packet::options`] first when they matter.
    #[inline]
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Ipv4Packet<&T>,
        mode: ChecksumMode,
    ) -> Result<Ipv4Repr> {
        if mode.verify() && !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        Ok(Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: usize::from(packet.total_len()).saturating_sub(packet.header_len()),
            hop_limit: packet.ttl(),
            dscp: packet.dscp(),
            ecn: packet.ecn(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            more_frags: packet.more_frags(),
            frag_offset: packet.frag_offset(),
        })
    }

    /// Always 20: this repr has no options.
    #[inline]
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Header plus payload.
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes the 20-byte header, checksum included; the payload is the
    /// caller's. Total Length saturates at 65535 for an oversized repr.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv4Packet<T>) {
        packet.set_version(4);
        packet.set_header_len(HEADER_LEN);
        packet.set_dscp(self.dscp);
        packet.set_ecn(self.ecn);
        packet.set_total_len(len_u16(self.buffer_len()));
        packet.set_ident(self.ident);
        packet.clear_flags();
        packet.set_dont_frag(self.dont_frag);
        packet.set_more_frags(self.more_frags);
        packet.set_frag_offset(self.frag_offset);
        packet.set_ttl(self.hop_limit);
        packet.set_next_header(self.next_header);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static PACKET_BYTES: [u8; 30] = [
        0x45, // version 4, IHL 5
        0x2e, // DSCP 11, ECN 2
        0x00, 0x1c, // total length 28
        0xab, 0xcd, // ident
        0x40, 0x00, // DF, offset 0
        0x40, // TTL 64
        0x11, // protocol UDP
        0x00, 0x00, // checksum, filled in below
        0xc0, 0xa8, 0x01, 0x02, // src 192.168.1.2
        0x0a, 0x00, 0x00, 0x01, // dst 10.0.0.1
        0xaa, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, // payload (8)
        0x00, 0x00, // Ethernet padding, outside total length
    ];

    static OPTIONS_BYTES: [u8; 28] = [
        0x46, // version 4, IHL 6
        0x00, // DSCP, ECN
        0x00, 0x1c, // total length 28
        0x00, 0x01, // ident
        0x00, 0x00, // no flags
        0x01, // TTL 1
        0x06, // TCP
        0x00, 0x00, // checksum, filled below
        0x0a, 0x00, 0x00, 0x01, // src
        0x0a, 0x00, 0x00, 0x02, // dst
        0x94, 0x04, 0x00, 0x00, // option: router alert
        0x01, 0x02, 0x03, 0x04, // payload
    ];

    fn fixture(bytes: &[u8]) -> Vec<u8> {
        let mut v = bytes.to_vec();
        Ipv4Packet::new_unchecked(&mut v[..]).fill_checksum();
        v
    }

    fn repr() -> Ipv4Repr {
        Ipv4Repr {
            src_addr: Ipv4Addr::new(192, 168, 1, 2),
            dst_addr: Ipv4Addr::new(10, 0, 0, 1),
            next_header: IpProtocol::Udp,
            payload_len: 8,
            hop_limit: 64,
            dscp: 11,
            ecn: 2,
            ident: 0xabcd,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        }
    }

    #[test]
    fn test_checksum_of_fixture() {
        // Independently computed with python (RFC 1071 word sum): 0xc32a.
        let bytes = fixture(&PACKET_BYTES);
        assert_eq!(Ipv4Packet::new_unchecked(&bytes[..]).checksum(), 0xc32a);
    }

    #[test]
    fn test_deconstruct() {
        let bytes = fixture(&PACKET_BYTES);
        let packet = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.version(), 4);
        assert_eq!(packet.header_len(), 20);
        assert_eq!(packet.dscp(), 11);
        assert_eq!(packet.ecn(), 2);
        assert_eq!(packet.total_len(), 28);
        assert_eq!(packet.ident(), 0xabcd);
        assert!(packet.dont_frag());
        assert!(!packet.more_frags());
        assert!(!packet.reserved_flag());
        assert_eq!(packet.frag_offset(), 0);
        assert!(!packet.is_fragment());
        assert_eq!(packet.ttl(), 64);
        assert_eq!(packet.next_header(), IpProtocol::Udp);
        assert!(packet.verify_checksum());
        assert_eq!(packet.src_addr(), Ipv4Addr::new(192, 168, 1, 2));
        assert_eq!(packet.dst_addr(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(packet.options(), &[] as &[u8]);
        assert_eq!(packet.payload(), &PACKET_BYTES[20..28]);
    }

    #[test]
    fn test_construct() {
        let mut bytes = vec![0xa5; 30];
        let mut packet = Ipv4Packet::new_unchecked(&mut bytes[..]);
        packet.set_version(4);
        packet.set_header_len(20);
        packet.set_dscp(11);
        packet.set_ecn(2);
        packet.set_total_len(28);
        packet.set_ident(0xabcd);
        packet.clear_flags();
        packet.set_dont_frag(true);
        packet.set_more_frags(false);
        packet.set_frag_offset(0);
        packet.set_ttl(64);
        packet.set_next_header(IpProtocol::Udp);
        packet.set_src_addr(Ipv4Addr::new(192, 168, 1, 2));
        packet.set_dst_addr(Ipv4Addr::new(10, 0, 0, 1));
        packet.payload_mut().copy_from_slice(&PACKET_BYTES[20..28]);
        packet.fill_checksum();
        bytes[28..30].copy_from_slice(&[0, 0]);
        assert_eq!(bytes, fixture(&PACKET_BYTES));
    }

    #[test]
    fn test_options() {
        let bytes = fixture(&OPTIONS_BYTES);
        let packet = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.header_len(), 24);
        assert_eq!(packet.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert_eq!(packet.payload(), &[1, 2, 3, 4]);
        assert!(packet.verify_checksum());
        let repr = Ipv4Repr::parse(&packet, ChecksumMode::Verify).unwrap();
        assert_eq!(repr.payload_len, 4);
        assert_eq!(repr.next_header, IpProtocol::Tcp);
    }

    #[test]
    fn test_fragments() {
        let mut bytes = fixture(&PACKET_BYTES);
        let mut packet = Ipv4Packet::new_unchecked(&mut bytes[..]);
        packet.clear_flags();
        packet.set_more_frags(true);
        assert!(packet.is_fragment());
        assert_eq!(packet.frag_offset(), 0);
        packet.set_more_frags(false);
        packet.set_frag_offset(1480);
        assert!(packet.is_fragment());
        assert_eq!(packet.frag_offset(), 1480);
        assert!(!packet.more_frags() && !packet.dont_frag());
        packet.set_frag_offset(0xFFF8);
        assert_eq!(packet.frag_offset(), 0xFFF8);
        packet.set_dont_frag(true);
        packet.set_frag_offset(0);
        assert!(!packet.is_fragment());
        assert!(packet.dont_frag());
    }

    #[test]
    fn test_parse() {
        let bytes = fixture(&PACKET_BYTES);
        let packet = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Ipv4Repr::parse(&packet, ChecksumMode::Verify), Ok(repr()));
    }

    #[test]
    fn test_emit() {
        let repr = repr();
        let mut bytes = vec![0xa5; repr.buffer_len()];
        let mut packet = Ipv4Packet::new_unchecked(&mut bytes[..]);
        repr.emit(&mut packet);
        packet.payload_mut().copy_from_slice(&PACKET_BYTES[20..28]);
        assert_eq!(&bytes[..], &fixture(&PACKET_BYTES)[..28]);
    }

    #[test]
    fn test_decrement_ttl() {
        let mut bytes = fixture(&PACKET_BYTES);
        let mut packet = Ipv4Packet::new_checked(&mut bytes[..]).unwrap();
        assert_eq!(packet.decrement_ttl_and_update_checksum(), Some(63));
        assert_eq!(packet.ttl(), 63);
        assert!(packet.verify_checksum());
        let incremental = packet.checksum();
        packet.fill_checksum();
        assert_eq!(packet.checksum(), incremental);

        packet.set_ttl_and_update_checksum(0);
        assert!(packet.verify_checksum());
        let before = packet.as_ref().to_vec();
        assert_eq!(packet.decrement_ttl_and_update_checksum(), None);
        assert_eq!(packet.as_ref(), &before[..]);
    }

    #[test]
    fn test_decrement_ttl_with_options_all_ttls() {
        let mut bytes = fixture(&OPTIONS_BYTES);
        let mut packet = Ipv4Packet::new_checked(&mut bytes[..]).unwrap();
        packet.set_ttl(255);
        packet.fill_checksum();
        for ttl in (0..255u8).rev() {
            assert_eq!(packet.decrement_ttl_and_update_checksum(), Some(ttl));
            let incremental = packet.checksum();
            packet.fill_checksum();
            assert_eq!(packet.checksum(), incremental, "ttl {ttl}");
        }
    }

    #[test]
    fn test_truncated() {
        let bytes = fixture(&PACKET_BYTES);
        assert_eq!(
            Ipv4Packet::new_checked(&bytes[..19]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn test_total_len_overflow() {
        let bytes = fixture(&PACKET_BYTES);
        // total length 28 but only 27 bytes
        assert_eq!(
            Ipv4Packet::new_checked(&bytes[..27]).unwrap_err(),
            Error::BadLength
        );
        let mut bytes = fixture(&PACKET_BYTES);
        Ipv4Packet::new_unchecked(&mut bytes[..]).set_total_len(31);
        assert_eq!(
            Ipv4Packet::new_checked(&bytes[..]).unwrap_err(),
            Error::BadLength
        );
        // 30 is fine: covers the padding.
        Ipv4Packet::new_unchecked(&mut bytes[..]).set_total_len(30);
        assert!(Ipv4Packet::new_checked(&bytes[..]).is_ok());
    }

    #[test]
    fn test_total_len_below_header() {
        let mut bytes = fixture(&PACKET_BYTES);
        Ipv4Packet::new_unchecked(&mut bytes[..]).set_total_len(19);
        assert_eq!(
            Ipv4Packet::new_checked(&bytes[..]).unwrap_err(),
            Error::BadLength
        );
        let mut bytes = fixture(&OPTIONS_BYTES);
        Ipv4Packet::new_unchecked(&mut bytes[..]).set_total_len(23);
        assert_eq!(
            Ipv4Packet::new_checked(&bytes[..]).unwrap_err(),
            Error::BadLength
        );
        Ipv4Packet::new_unchecked(&mut bytes[..]).set_total_len(24);
        let packet = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.payload(), &[] as &[u8]);
    }

    #[test]
    fn test_ihl_below_5() {
        for ihl in 0..5 {
            let mut bytes = fixture(&PACKET_BYTES);
            bytes[0] = 0x40 | ihl;
            assert_eq!(
                Ipv4Packet::new_checked(&bytes[..]).unwrap_err(),
                Error::BadLength,
                "ihl {ihl}"
            );
        }
    }

    #[test]
    fn test_ihl_past_buffer() {
        let mut bytes = fixture(&PACKET_BYTES);
        bytes[0] = 0x4f; // 60-byte header, total length 28
        assert_eq!(
            Ipv4Packet::new_checked(&bytes[..]).unwrap_err(),
            Error::BadLength
        );
    }

    #[test]
    fn test_bad_version() {
        let mut bytes = fixture(&PACKET_BYTES);
        bytes[0] = 0x65;
        assert_eq!(
            Ipv4Packet::new_checked(&bytes[..]).unwrap_err(),
            Error::BadVersion
        );
    }

    #[test]
    fn test_bad_checksum() {
        if checksum::FUZZING {
            return;
        }
        let mut bytes = fixture(&PACKET_BYTES);
        bytes[11] ^= 1;
        let packet = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert!(!packet.verify_checksum());
        assert_eq!(
            Ipv4Repr::parse(&packet, ChecksumMode::Verify),
            Err(Error::BadChecksum)
        );
        assert!(Ipv4Repr::parse(&packet, ChecksumMode::Trust).is_ok());
    }

    #[test]
    fn test_emit_fragment_repr() {
        let repr = Ipv4Repr {
            more_frags: true,
            frag_offset: 2960,
            dont_frag: false,
            ..repr()
        };
        let mut bytes = vec![0; repr.buffer_len()];
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut bytes[..]));
        let packet = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Ipv4Repr::parse(&packet, ChecksumMode::Verify), Ok(repr));
    }
}
