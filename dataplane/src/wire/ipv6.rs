//! IPv6 (RFC 8200): the fixed header and a walker over extension headers.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Traffic Class |           Flow Label                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Payload Length        |  Next Header  |   Hop Limit   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                  Source Address (16 bytes)                    |
//! |               Destination Address (16 bytes)                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Extension headers walked by [`Ipv6Packet::ext_headers`] /
//! [`Ipv6Packet::upper_layer`]:
//!
//! | next header | header          | length                        |
//! |-------------|-----------------|-------------------------------|
//! | 0           | Hop-by-Hop      | `(hdr_ext_len + 1) * 8`, must come first |
//! | 43          | Routing         | `(hdr_ext_len + 1) * 8`       |
//! | 44          | Fragment        | 8; at most one                |
//! | 60          | Destination Opt | `(hdr_ext_len + 1) * 8`       |
//! | 51          | AH              | `(payload_len + 2) * 4`       |
//! | 50          | ESP             | opaque: the walk stops there  |
//! | 59          | No Next Header  | the walk stops there          |
//!
//! The walk is bounded by [`MAX_EXT_HEADERS`] and by Payload Length, and
//! stops after the Fragment header of a non-first fragment (what follows is
//! the middle of the fragmentable part, not a header). Jumbograms (Payload
//! Length 0 with a Jumbo option) are not supported: the payload is then empty.

use super::{be16, be32, len_u16, put16, Error, IpProtocol, Ipv6Addr, Result};

mod field {
    pub type Field = core::ops::Range<usize>;

    pub const VER_TC_FLOW: Field = 0..4;
    pub const LENGTH: usize = 4;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Field = 8..24;
    pub const DST_ADDR: Field = 24..40;
}

/// Length of the fixed header.
pub const HEADER_LEN: usize = field::DST_ADDR.end;
/// Longest extension header chain the walker accepts. Real traffic carries
/// one or two; long chains exist to push the transport header out of a
/// firewall's sight (RFC 7112, RFC 9098).
pub const MAX_EXT_HEADERS: usize = 8;
/// Length of a Fragment header.
pub const FRAG_HEADER_LEN: usize = 8;

/// What a Fragment header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6FragInfo {
    /// Offset of this fragment's data in bytes (a multiple of 8).
    pub offset: u16,
    /// More fragments follow.
    pub more_frags: bool,
    /// Identification.
    pub ident: u32,
}

impl Ipv6FragInfo {
    /// Only the first fragment (offset 0) carries the upper-layer header.
    #[inline]
    pub const fn is_first(&self) -> bool {
        self.offset == 0
    }
}

/// One extension header found by the walker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExtHeader {
    /// Which header (`HopByHop`, `Ipv6Route`, `Ipv6Frag`, `Ipv6Opts`, `Ah`).
    pub kind: IpProtocol,
    /// Offset of the header from the start of the IPv6 packet.
    pub offset: usize,
    /// Length in bytes.
    pub len: usize,
    /// Its Next Header field.
    pub next_header: IpProtocol,
    /// Set for a Fragment header.
    pub fragment: Option<Ipv6FragInfo>,
}

/// The end of the extension header chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UpperLayer {
    /// The protocol after the last extension header (may be `Esp` or
    /// `Ipv6NoNxt`, where the walk stops).
    pub protocol: IpProtocol,
    /// Its offset from the start of the IPv6 packet (≤ 40 + Payload Length).
    pub offset: usize,
    /// Set when a Fragment header was seen; if not the first fragment, the
    /// bytes at `offset` are fragment data, not a `protocol` header.
    pub fragment: Option<Ipv6FragInfo>,
}

/// A read/write view of an IPv6 packet.
#[derive(Debug, Clone)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps a buffer without checking it; see the module contract.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Ipv6Packet<T> {
        Ipv6Packet { buffer }
    }

    /// [`new_unchecked`](Self::new_unchecked) then [`check_len`](Self::check_len).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Ipv6Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// In this order: [`Error::Truncated`] below 40 bytes,
    /// [`Error::BadVersion`] if the version is not 6, [`Error::BadLength`] if
    /// 40 + Payload Length exceeds the buffer. Extension headers are checked
    /// by the walker.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 6 {
            return Err(Error::BadVersion);
        }
        if self.total_len() > len {
            return Err(Error::BadLength);
        }
        Ok(())
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn ver_tc_flow(&self) -> u32 {
        be32(self.buffer.as_ref(), field::VER_TC_FLOW.start)
    }

    /// Version nibble.
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    /// Traffic class (DSCP and ECN).
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        let [_, tc, _, _] = (self.ver_tc_flow() >> 4).to_be_bytes();
        tc
    }

    /// Flow label (20 bits).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        self.ver_tc_flow() & 0x000F_FFFF
    }

    /// Payload Length: everything after the fixed header, extension headers included.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Fixed header plus payload: the packet's bytes without link padding.
    #[inline]
    pub fn total_len(&self) -> usize {
        HEADER_LEN + usize::from(self.payload_len())
    }

    /// The Next Header field of the fixed header.
    #[inline]
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::NXT_HDR])
    }

    /// Hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        super::ipv6_at(self.buffer.as_ref(), field::SRC_ADDR.start)
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        super::ipv6_at(self.buffer.as_ref(), field::DST_ADDR.start)
    }

    /// Fixed header length: always 40 (see [`upper_layer`](Self::upper_layer)
    /// for the extension headers).
    #[inline]
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Payload bounded by Payload Length, extension headers included.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.total_len()]
    }

    /// Iterates the extension headers; see [`ExtHeaderIter`].
    #[inline]
    pub fn ext_headers(&self) -> ExtHeaderIter<'_> {
        ExtHeaderIter {
            data: &self.buffer.as_ref()[..self.total_len()],
            next_header: self.next_header(),
            offset: HEADER_LEN,
            count: 0,
            seen_frag: false,
            done: false,
        }
    }

    /// Walks the extension headers to the upper-layer protocol. Errors:
    /// [`Error::Truncated`] when a header's fixed part runs past Payload
    /// Length, [`Error::BadLength`] when its length field does,
    /// [`Error::Malformed`] for a Hop-by-Hop header that is not first or a
    /// second Fragment header, [`Error::TooManyExtHeaders`] past
    /// [`MAX_EXT_HEADERS`].
    #[inline]
    pub fn upper_layer(&self) -> Result<UpperLayer> {
        self.ext_headers().upper_layer()
    }

    /// The bytes from `upper.offset` to the end of the payload: the
    /// upper-layer header and its payload. Empty for an out-of-range offset.
    #[inline]
    pub fn upper_layer_data(&self, upper: &UpperLayer) -> &[u8] {
        let end = self.total_len();
        &self.buffer.as_ref()[upper.offset.min(end)..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    fn set_ver_tc_flow(&mut self, value: u32) {
        self.buffer.as_mut()[field::VER_TC_FLOW].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the version nibble.
    #[inline]
    pub fn set_version(&mut self, value: u8) {
        let raw = self.ver_tc_flow();
        self.set_ver_tc_flow((raw & 0x0FFF_FFFF) | (u32::from(value & 0x0F) << 28));
    }

    /// Sets the traffic class.
    #[inline]
    pub fn set_traffic_class(&mut self, value: u8) {
        let raw = self.ver_tc_flow();
        self.set_ver_tc_flow((raw & 0xF00F_FFFF) | (u32::from(value) << 20));
    }

    /// Sets the flow label (masked to 20 bits).
    #[inline]
    pub fn set_flow_label(&mut self, value: u32) {
        let raw = self.ver_tc_flow();
        self.set_ver_tc_flow((raw & 0xFFF0_0000) | (value & 0x000F_FFFF));
    }

    /// Sets Payload Length. Changes the layout: check the packet again.
    #[inline]
    pub fn set_payload_len(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::LENGTH, value);
    }

    /// Sets the Next Header field of the fixed header.
    #[inline]
    pub fn set_next_header(&mut self, value: IpProtocol) {
        self.buffer.as_mut()[field::NXT_HDR] = value.into();
    }

    /// Sets the hop limit.
    #[inline]
    pub fn set_hop_limit(&mut self, value: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = value;
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, value: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&value.octets());
    }

    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, value: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&value.octets());
    }

    /// Mutable payload, bounded by Payload Length.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.total_len();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Ipv6Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// Walks the extension headers of a packet quoted in an ICMPv6 error to its
/// upper layer. A quote holds only as much of the invoking packet as fits
/// (RFC 4443 §2.4 (c)), so its Payload Length describes bytes that are not
/// there: the walk is bounded by the quote instead, with the errors of
/// [`Ipv6Packet::upper_layer`]. [`Error::Truncated`] below the 40-byte
/// header, [`Error::BadVersion`] if it is not IPv6.
pub fn quoted_upper_layer(quote: &[u8]) -> Result<UpperLayer> {
    if quote.len() < HEADER_LEN {
        return Err(Error::Truncated);
    }
    let packet = Ipv6Packet::new_unchecked(quote);
    if packet.version() != 6 {
        return Err(Error::BadVersion);
    }
    ExtHeaderIter {
        data: quote,
        next_header: packet.next_header(),
        offset: HEADER_LEN,
        count: 0,
        seen_frag: false,
        done: false,
    }
    .upper_layer()
}

/// Iterator over the extension headers of a packet. Yields at most
/// [`MAX_EXT_HEADERS`] headers and then one error if the chain goes on; after
/// an error it yields nothing. When it ends without error, the protocol and
/// offset of what follows are in [`next_header`](Self::next_header) and
/// [`offset`](Self::offset).
#[derive(Debug, Clone)]
pub struct ExtHeaderIter<'a> {
    /// The packet up to the end of its payload.
    data: &'a [u8],
    next_header: IpProtocol,
    offset: usize,
    count: usize,
    seen_frag: bool,
    done: bool,
}

impl ExtHeaderIter<'_> {
    /// Next Header after the headers walked so far.
    #[inline]
    pub fn next_header(&self) -> IpProtocol {
        self.next_header
    }

    /// Offset (from the packet start) after the headers walked so far.
    #[inline]
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Walks to the end of the chain: what follows it, and the Fragment
    /// header's facts if one was seen.
    fn upper_layer(mut self) -> Result<UpperLayer> {
        let mut fragment = None;
        for header in &mut self {
            if let Some(frag) = header?.fragment {
                fragment = Some(frag);
            }
        }
        Ok(UpperLayer {
            protocol: self.next_header,
            offset: self.offset,
            fragment,
        })
    }

    fn fail(&mut self, error: Error) -> Option<Result<ExtHeader>> {
        self.done = true;
        Some(Err(error))
    }
}

impl Iterator for ExtHeaderIter<'_> {
    type Item = Result<ExtHeader>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let kind = self.next_header;
        let at = self.offset;
        match kind {
            IpProtocol::HopByHop if at != HEADER_LEN => return self.fail(Error::Malformed),
            IpProtocol::Ipv6Frag if self.seen_frag => return self.fail(Error::Malformed),
            IpProtocol::HopByHop
            | IpProtocol::Ipv6Route
            | IpProtocol::Ipv6Opts
            | IpProtocol::Ah => {}
            IpProtocol::Ipv6Frag => {}
            // ESP, No Next Header, or an upper-layer protocol: the chain ends.
            _ => {
                self.done = true;
                return None;
            }
        }
        if self.count == MAX_EXT_HEADERS {
            return self.fail(Error::TooManyExtHeaders);
        }
        let fixed = if kind == IpProtocol::Ipv6Frag {
            FRAG_HEADER_LEN
        } else {
            2
        };
        let Some(head) = self.data.get(at..at + fixed) else {
            return self.fail(Error::Truncated);
        };
        let len = match kind {
            IpProtocol::Ipv6Frag => FRAG_HEADER_LEN,
            IpProtocol::Ah => (usize::from(head[1]) + 2) * 4,
            _ => (usize::from(head[1]) + 1) * 8,
        };
        if at + len > self.data.len() {
            return self.fail(Error::BadLength);
        }
        let next_header = IpProtocol::from(head[0]);
        let fragment = (kind == IpProtocol::Ipv6Frag).then(|| {
            let raw = be16(head, 2);
            Ipv6FragInfo {
                offset: raw & 0xFFF8,
                more_frags: raw & 1 != 0,
                ident: be32(head, 4),
            }
        });
        self.count += 1;
        self.offset = at + len;
        self.next_header = next_header;
        if let Some(frag) = fragment {
            self.seen_frag = true;
            if !frag.is_first() {
                // Past here is fragment data, not headers.
                self.done = true;
            }
        }
        Some(Ok(ExtHeader {
            kind,
            offset: at,
            len,
            next_header,
            fragment,
        }))
    }
}

/// The fixed IPv6 header as plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Repr {
    /// Source address.
    pub src_addr: Ipv6Addr,
    /// Destination address.
    pub dst_addr: Ipv6Addr,
    /// Next Header of the fixed header.
    pub next_header: IpProtocol,
    /// Payload Length (extension headers included).
    pub payload_len: usize,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
}

impl Ipv6Repr {
    /// Reads a checked packet's fixed header. Infallible beyond the check;
    /// `Result` for symmetry. Use [`Ipv6Packet::upper_layer`] for the chain.
    #[inline]
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Ipv6Packet<&T>) -> Result<Ipv6Repr> {
        Ok(Ipv6Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: usize::from(packet.payload_len()),
            hop_limit: packet.hop_limit(),
            traffic_class: packet.traffic_class(),
            flow_label: packet.flow_label(),
        })
    }

    /// Always 40.
    #[inline]
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Header plus payload.
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes the fixed header; the payload is the caller's. Payload Length
    /// saturates at 65535 for an oversized repr.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv6Packet<T>) {
        packet.set_ver_tc_flow(6 << 28);
        packet.set_traffic_class(self.traffic_class);
        packet.set_flow_label(self.flow_label);
        packet.set_payload_len(len_u16(self.payload_len));
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
    const DST: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

    static PACKET_BYTES: [u8; 54] = [
        0x60, 0x20, 0x00, 0x01, // version 6, traffic class 2, flow label 1
        0x00, 0x0c, // payload length 12
        0x11, // next header: UDP
        0x40, // hop limit 64
        0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, // src fe80::1
        0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, // dst ff02::1
        0x00, 0x01, 0x00, 0x02, 0x00, 0x0c, 0x0d, 0x2b, // UDP header
        0xaa, 0x00, 0x00, 0xff, // UDP payload
        0x00, 0x00, // padding, outside payload length
    ];

    fn repr() -> Ipv6Repr {
        Ipv6Repr {
            src_addr: SRC,
            dst_addr: DST,
            next_header: IpProtocol::Udp,
            payload_len: 12,
            hop_limit: 64,
            traffic_class: 2,
            flow_label: 1,
        }
    }

    /// Builds a packet with the given extension headers (each a full header,
    /// its first byte overwritten with the next one's kind) then `upper`.
    fn with_ext(chain: &[(IpProtocol, Vec<u8>)], upper: IpProtocol, tail: &[u8]) -> Vec<u8> {
        let mut payload = Vec::new();
        for (i, (_, bytes)) in chain.iter().enumerate() {
            let mut h = bytes.clone();
            h[0] = chain.get(i + 1).map_or(upper, |(k, _)| *k).into();
            payload.extend_from_slice(&h);
        }
        payload.extend_from_slice(tail);
        let first = chain.first().map_or(upper, |(k, _)| *k);
        let r = Ipv6Repr {
            next_header: first,
            payload_len: payload.len(),
            ..repr()
        };
        let mut bytes = vec![0; r.buffer_len()];
        let mut packet = Ipv6Packet::new_unchecked(&mut bytes[..]);
        r.emit(&mut packet);
        packet.payload_mut().copy_from_slice(&payload);
        bytes
    }

    fn opts(kind: IpProtocol) -> (IpProtocol, Vec<u8>) {
        // next header, hdr ext len 0, PadN of 4 bytes
        (kind, vec![0, 0, 1, 4, 0, 0, 0, 0])
    }

    fn frag(offset: u16, more: bool) -> (IpProtocol, Vec<u8>) {
        let raw = offset | u16::from(more);
        let [hi, lo] = raw.to_be_bytes();
        (
            IpProtocol::Ipv6Frag,
            vec![0, 0, hi, lo, 0xde, 0xad, 0xbe, 0xef],
        )
    }

    #[test]
    fn test_deconstruct() {
        let packet = Ipv6Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(packet.version(), 6);
        assert_eq!(packet.traffic_class(), 2);
        assert_eq!(packet.flow_label(), 1);
        assert_eq!(packet.payload_len(), 12);
        assert_eq!(packet.total_len(), 52);
        assert_eq!(packet.next_header(), IpProtocol::Udp);
        assert_eq!(packet.hop_limit(), 64);
        assert_eq!(packet.src_addr(), SRC);
        assert_eq!(packet.dst_addr(), DST);
        assert_eq!(packet.header_len(), 40);
        assert_eq!(packet.payload(), &PACKET_BYTES[40..52]);
        let upper = packet.upper_layer().unwrap();
        assert_eq!(
            upper,
            UpperLayer {
                protocol: IpProtocol::Udp,
                offset: 40,
                fragment: None
            }
        );
        assert_eq!(packet.upper_layer_data(&upper), &PACKET_BYTES[40..52]);
        assert_eq!(packet.ext_headers().count(), 0);
    }

    #[test]
    fn test_construct() {
        let mut bytes = [0xa5u8; 54];
        let mut packet = Ipv6Packet::new_unchecked(&mut bytes[..]);
        packet.set_version(6);
        packet.set_traffic_class(2);
        packet.set_flow_label(1);
        packet.set_payload_len(12);
        packet.set_next_header(IpProtocol::Udp);
        packet.set_hop_limit(64);
        packet.set_src_addr(SRC);
        packet.set_dst_addr(DST);
        packet.payload_mut().copy_from_slice(&PACKET_BYTES[40..52]);
        bytes[52..54].copy_from_slice(&[0, 0]);
        assert_eq!(&bytes[..], &PACKET_BYTES[..]);
    }

    #[test]
    fn test_traffic_class_flow_label_bits() {
        let mut bytes = PACKET_BYTES;
        let mut packet = Ipv6Packet::new_unchecked(&mut bytes[..]);
        packet.set_traffic_class(0xff);
        packet.set_flow_label(0xFFFF_FFFF);
        assert_eq!(packet.version(), 6);
        assert_eq!(packet.traffic_class(), 0xff);
        assert_eq!(packet.flow_label(), 0x000F_FFFF);
        packet.set_traffic_class(0);
        assert_eq!(packet.flow_label(), 0x000F_FFFF);
        assert_eq!(packet.traffic_class(), 0);
    }

    #[test]
    fn test_parse() {
        let packet = Ipv6Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(Ipv6Repr::parse(&packet), Ok(repr()));
    }

    #[test]
    fn test_emit() {
        let mut bytes = vec![0xa5; repr().buffer_len()];
        let mut packet = Ipv6Packet::new_unchecked(&mut bytes[..]);
        repr().emit(&mut packet);
        packet.payload_mut().copy_from_slice(&PACKET_BYTES[40..52]);
        assert_eq!(&bytes[..], &PACKET_BYTES[..52]);
    }

    #[test]
    fn test_truncated() {
        assert_eq!(
            Ipv6Packet::new_checked(&PACKET_BYTES[..39]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn test_bad_version() {
        let mut bytes = PACKET_BYTES;
        bytes[0] = 0x40;
        assert_eq!(
            Ipv6Packet::new_checked(&bytes[..]).unwrap_err(),
            Error::BadVersion
        );
    }

    #[test]
    fn test_payload_len_lies() {
        assert_eq!(
            Ipv6Packet::new_checked(&PACKET_BYTES[..51]).unwrap_err(),
            Error::BadLength
        );
        let mut bytes = PACKET_BYTES;
        bytes[5] = 15; // 40 + 15 > 54
        assert_eq!(
            Ipv6Packet::new_checked(&bytes[..]).unwrap_err(),
            Error::BadLength
        );
        bytes[5] = 14; // covers the padding: fine
        assert!(Ipv6Packet::new_checked(&bytes[..]).is_ok());
    }

    #[test]
    fn test_ext_chain() {
        let chain = [
            opts(IpProtocol::HopByHop),
            opts(IpProtocol::Ipv6Opts),
            frag(0, true),
            opts(IpProtocol::Ipv6Route),
        ];
        let bytes = with_ext(&chain, IpProtocol::Tcp, &[1, 2, 3, 4]);
        let packet = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        let headers: Vec<_> = packet.ext_headers().map(|h| h.unwrap()).collect();
        assert_eq!(headers.len(), 4);
        assert_eq!(headers[0].kind, IpProtocol::HopByHop);
        assert_eq!(headers[0].offset, 40);
        assert_eq!(headers[0].next_header, IpProtocol::Ipv6Opts);
        assert_eq!(headers[2].kind, IpProtocol::Ipv6Frag);
        assert_eq!(headers[2].offset, 56);
        let upper = packet.upper_layer().unwrap();
        assert_eq!(upper.protocol, IpProtocol::Tcp);
        assert_eq!(upper.offset, 72);
        assert_eq!(
            upper.fragment,
            Some(Ipv6FragInfo {
                offset: 0,
                more_frags: true,
                ident: 0xdead_beef
            })
        );
        assert_eq!(packet.upper_layer_data(&upper), &[1, 2, 3, 4]);
    }

    #[test]
    fn test_ext_lengths() {
        // Routing header with hdr ext len 1: 16 bytes.
        let mut routing = vec![0u8; 16];
        routing[1] = 1;
        // AH with payload len 4: (4 + 2) * 4 = 24 bytes.
        let mut ah = vec![0u8; 24];
        ah[1] = 4;
        let bytes = with_ext(
            &[(IpProtocol::Ipv6Route, routing), (IpProtocol::Ah, ah)],
            IpProtocol::Udp,
            &[0; 8],
        );
        let packet = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        let upper = packet.upper_layer().unwrap();
        assert_eq!(upper.offset, 40 + 16 + 24);
        assert_eq!(upper.protocol, IpProtocol::Udp);
    }

    #[test]
    fn test_non_first_fragment_stops() {
        // A Destination Options header after the fragment header of a
        // non-first fragment is fragment data and must not be walked.
        let bytes = with_ext(&[frag(1448, false)], IpProtocol::Ipv6Opts, &[0xff; 16]);
        let packet = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        let upper = packet.upper_layer().unwrap();
        assert_eq!(upper.protocol, IpProtocol::Ipv6Opts);
        assert_eq!(upper.offset, 48);
        let frag = upper.fragment.unwrap();
        assert!(!frag.is_first());
        assert_eq!(frag.offset, 1448);
        assert!(!frag.more_frags);
    }

    #[test]
    fn test_esp_and_no_next_header_stop() {
        let bytes = with_ext(&[opts(IpProtocol::Ipv6Opts)], IpProtocol::Esp, &[0; 4]);
        let packet = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.upper_layer().unwrap().protocol, IpProtocol::Esp);
        assert_eq!(packet.upper_layer().unwrap().offset, 48);
        let bytes = with_ext(&[], IpProtocol::Ipv6NoNxt, &[]);
        let packet = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            packet.upper_layer(),
            Ok(UpperLayer {
                protocol: IpProtocol::Ipv6NoNxt,
                offset: 40,
                fragment: None
            })
        );
    }

    #[test]
    fn test_ext_chain_truncated() {
        // Next header says Hop-by-Hop but the payload is empty.
        let bytes = with_ext(&[], IpProtocol::HopByHop, &[]);
        let packet = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.upper_layer(), Err(Error::Truncated));
        // Only one byte of the header.
        let bytes = with_ext(&[], IpProtocol::Ipv6Opts, &[6]);
        let packet = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.upper_layer(), Err(Error::Truncated));
        // Fragment header needs 8 bytes.
        let bytes = with_ext(&[], IpProtocol::Ipv6Frag, &[6, 0, 0, 0, 0, 0, 0]);
        let packet = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.upper_layer(), Err(Error::Truncated));
        // The buffer has the bytes, but Payload Length does not cover them.
        let mut bytes = with_ext(&[opts(IpProtocol::Ipv6Opts)], IpProtocol::Tcp, &[]);
        Ipv6Packet::new_unchecked(&mut bytes[..]).set_payload_len(1);
        let packet = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.upper_layer(), Err(Error::Truncated));
    }

    #[test]
    fn test_ext_length_past_payload() {
        let mut bytes = with_ext(&[opts(IpProtocol::Ipv6Opts)], IpProtocol::Tcp, &[0; 4]);
        bytes[41] = 1; // 16 bytes claimed, 12 in the payload
        let packet = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.upper_layer(), Err(Error::BadLength));
        let mut iter = packet.ext_headers();
        assert_eq!(iter.next(), Some(Err(Error::BadLength)));
        assert_eq!(iter.next(), None);
    }

    #[test]
    fn test_too_many_ext_headers() {
        let chain: Vec<_> = (0..MAX_EXT_HEADERS)
            .map(|_| opts(IpProtocol::Ipv6Opts))
            .collect();
        let bytes = with_ext(&chain, IpProtocol::Udp, &[]);
        let packet = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            packet.upper_layer().unwrap().offset,
            40 + 8 * MAX_EXT_HEADERS
        );
        let chain: Vec<_> = (0..=MAX_EXT_HEADERS)
            .map(|_| opts(IpProtocol::Ipv6Opts))
            .collect();
        let bytes = with_ext(&chain, IpProtocol::Udp, &[]);
        let packet = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.upper_layer(), Err(Error::TooManyExtHeaders));
    }

    #[test]
    fn test_hop_by_hop_not_first() {
        let bytes = with_ext(
            &[opts(IpProtocol::Ipv6Opts), opts(IpProtocol::HopByHop)],
            IpProtocol::Udp,
            &[],
        );
        let packet = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.upper_layer(), Err(Error::Malformed));
    }

    #[test]
    fn test_two_fragment_headers() {
        let bytes = with_ext(&[frag(0, true), frag(0, true)], IpProtocol::Udp, &[]);
        let packet = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.upper_layer(), Err(Error::Malformed));
    }
}
