//! ARP (RFC 826), for Ethernet hardware and IPv4 protocol addresses only.
//!
//! ```text
//!  0       2       4   5   6       8           14      18          24      28
//! +-------+-------+---+---+-------+-----------+-------+-----------+-------+
//! | htype | ptype |hln|pln|  oper | sender hw | s. ip | target hw | t. ip |
//! +-------+-------+---+---+-------+-----------+-------+-----------+-------+
//!    1     0x0800   6   4
//! ```
//!
//! The view's address accessors sit at the offsets of the Ethernet/IPv4 layout,
//! so [`ArpPacket::check_len`] refuses other address sizes
//! ([`Error::Malformed`]); other hardware/protocol types with those sizes are
//! refused by [`ArpRepr::parse`] ([`Error::Unsupported`]). Bytes after the 28
//! (Ethernet padding to 60) are ignored.

use super::{be16, enum_with_unknown, put16, Error, EtherType, EthernetAddress, Ipv4Addr, Result};

mod field {
    pub type Field = core::ops::Range<usize>;

    pub const HTYPE: Field = 0..2;
    pub const PTYPE: Field = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Field = 6..8;
    pub const SHA: Field = 8..14;
    pub const SPA: Field = 14..18;
    pub const THA: Field = 18..24;
    pub const TPA: Field = 24..28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;
/// Hardware type of Ethernet.
pub const HTYPE_ETHERNET: u16 = 1;

enum_with_unknown! {
    /// ARP operation code.
    pub enum ArpOperation(u16) {
        /// Who has `target_protocol_addr`?
        Request = 1,
        /// `source_protocol_addr` is at `source_hardware_addr`.
        Reply = 2,
    }
}

/// A read/write view of an ARP packet.
#[derive(Debug, Clone)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps a buffer without checking it; see the module contract.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> ArpPacket<T> {
        ArpPacket { buffer }
    }

    /// [`new_unchecked`](Self::new_unchecked) then [`check_len`](Self::check_len).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<ArpPacket<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// [`Error::Truncated`] below the 8 fixed bytes or the 28 of an
    /// Ethernet/IPv4 packet; [`Error::Malformed`] when hlen != 6 or plen != 4.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        if data.len() < field::OPER.end {
            return Err(Error::Truncated);
        }
        if data[field::HLEN] != 6 || data[field::PLEN] != 4 {
            return Err(Error::Malformed);
        }
        if data.len() < PACKET_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Hardware type (1 = Ethernet).
    #[inline]
    pub fn hardware_type(&self) -> u16 {
        be16(self.buffer.as_ref(), field::HTYPE.start)
    }

    /// Protocol type (an EtherType, 0x0800 = IPv4).
    #[inline]
    pub fn protocol_type(&self) -> EtherType {
        EtherType::from(be16(self.buffer.as_ref(), field::PTYPE.start))
    }

    /// Hardware address length.
    #[inline]
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// Protocol address length.
    #[inline]
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// Operation.
    #[inline]
    pub fn operation(&self) -> ArpOperation {
        ArpOperation::from(be16(self.buffer.as_ref(), field::OPER.start))
    }

    /// Sender hardware address.
    #[inline]
    pub fn source_hardware_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::SHA])
    }

    /// Sender protocol address.
    #[inline]
    pub fn source_protocol_addr(&self) -> Ipv4Addr {
        super::ipv4_at(self.buffer.as_ref(), field::SPA.start)
    }

    /// Target hardware address.
    #[inline]
    pub fn target_hardware_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::THA])
    }

    /// Target protocol address.
    #[inline]
    pub fn target_protocol_addr(&self) -> Ipv4Addr {
        super::ipv4_at(self.buffer.as_ref(), field::TPA.start)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Sets the hardware type.
    #[inline]
    pub fn set_hardware_type(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::HTYPE.start, value);
    }

    /// Sets the protocol type.
    #[inline]
    pub fn set_protocol_type(&mut self, value: EtherType) {
        put16(self.buffer.as_mut(), field::PTYPE.start, value.into());
    }

    /// Sets the hardware address length.
    #[inline]
    pub fn set_hardware_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::HLEN] = value;
    }

    /// Sets the protocol address length.
    #[inline]
    pub fn set_protocol_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::PLEN] = value;
    }

    /// Sets the operation.
    #[inline]
    pub fn set_operation(&mut self, value: ArpOperation) {
        put16(self.buffer.as_mut(), field::OPER.start, value.into());
    }

    /// Sets the sender hardware address.
    #[inline]
    pub fn set_source_hardware_addr(&mut self, value: EthernetAddress) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(value.as_bytes());
    }

    /// Sets the sender protocol address.
    #[inline]
    pub fn set_source_protocol_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&value.octets());
    }

    /// Sets the target hardware address.
    #[inline]
    pub fn set_target_hardware_addr(&mut self, value: EthernetAddress) {
        self.buffer.as_mut()[field::THA].copy_from_slice(value.as_bytes());
    }

    /// Sets the target protocol address.
    #[inline]
    pub fn set_target_protocol_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&value.octets());
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for ArpPacket<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// An Ethernet/IPv4 ARP request or reply as plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    /// Request or reply (never `Unknown`: parse refuses it).
    pub operation: ArpOperation,
    /// Sender hardware address.
    pub source_hardware_addr: EthernetAddress,
    /// Sender protocol address.
    pub source_protocol_addr: Ipv4Addr,
    /// Target hardware address (zero in a request).
    pub target_hardware_addr: EthernetAddress,
    /// Target protocol address.
    pub target_protocol_addr: Ipv4Addr,
}

impl ArpRepr {
    /// Parses a checked packet. [`Error::Unsupported`] for a hardware type
    /// other than Ethernet, a protocol other than IPv4, or an operation other
    /// than request/reply (RARP, InARP, ...).
    #[inline]
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &ArpPacket<&T>) -> Result<ArpRepr> {
        if packet.hardware_type() != HTYPE_ETHERNET || packet.protocol_type() != EtherType::Ipv4 {
            return Err(Error::Unsupported);
        }
        let operation = packet.operation();
        if let ArpOperation::Unknown(_) = operation {
            return Err(Error::Unsupported);
        }
        Ok(ArpRepr {
            operation,
            source_hardware_addr: packet.source_hardware_addr(),
            source_protocol_addr: packet.source_protocol_addr(),
            target_hardware_addr: packet.target_hardware_addr(),
            target_protocol_addr: packet.target_protocol_addr(),
        })
    }

    /// The reply a host owning `target_protocol_addr` at `hardware_addr` gives
    /// to this request.
    #[inline]
    pub fn reply(&self, hardware_addr: EthernetAddress) -> ArpRepr {
        ArpRepr {
            operation: ArpOperation::Reply,
            source_hardware_addr: hardware_addr,
            source_protocol_addr: self.target_protocol_addr,
            target_hardware_addr: self.source_hardware_addr,
            target_protocol_addr: self.source_protocol_addr,
        }
    }

    /// Always 28.
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    /// Always 28: ARP is all header.
    #[inline]
    pub const fn header_len(&self) -> usize {
        PACKET_LEN
    }

    /// Writes all 28 bytes.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut ArpPacket<T>) {
        packet.set_hardware_type(HTYPE_ETHERNET);
        packet.set_protocol_type(EtherType::Ipv4);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(self.operation);
        packet.set_source_hardware_addr(self.source_hardware_addr);
        packet.set_source_protocol_addr(self.source_protocol_addr);
        packet.set_target_hardware_addr(self.target_hardware_addr);
        packet.set_target_protocol_addr(self.target_protocol_addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static PACKET_BYTES: [u8; 28] = [
        0x00, 0x01, // htype: Ethernet
        0x08, 0x00, // ptype: IPv4
        0x06, // hlen
        0x04, // plen
        0x00, 0x01, // operation: request
        0x11, 0x12, 0x13, 0x14, 0x15, 0x16, // sender hw
        0xc0, 0xa8, 0x01, 0x01, // sender ip 192.168.1.1
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // target hw (unknown)
        0xc0, 0xa8, 0x01, 0xfe, // target ip 192.168.1.254
    ];

    fn repr() -> ArpRepr {
        ArpRepr {
            operation: ArpOperation::Request,
            source_hardware_addr: EthernetAddress([0x11, 0x12, 0x13, 0x14, 0x15, 0x16]),
            source_protocol_addr: Ipv4Addr::new(192, 168, 1, 1),
            target_hardware_addr: EthernetAddress::UNSPECIFIED,
            target_protocol_addr: Ipv4Addr::new(192, 168, 1, 254),
        }
    }

    #[test]
    fn test_deconstruct() {
        let packet = ArpPacket::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(packet.hardware_type(), 1);
        assert_eq!(packet.protocol_type(), EtherType::Ipv4);
        assert_eq!(packet.hardware_len(), 6);
        assert_eq!(packet.protocol_len(), 4);
        assert_eq!(packet.operation(), ArpOperation::Request);
        assert_eq!(
            packet.source_hardware_addr(),
            EthernetAddress([0x11, 0x12, 0x13, 0x14, 0x15, 0x16])
        );
        assert_eq!(packet.source_protocol_addr(), Ipv4Addr::new(192, 168, 1, 1));
        assert_eq!(packet.target_hardware_addr(), EthernetAddress::UNSPECIFIED);
        assert_eq!(
            packet.target_protocol_addr(),
            Ipv4Addr::new(192, 168, 1, 254)
        );
    }

    #[test]
    fn test_construct() {
        let mut bytes = vec![0xa5; 28];
        let mut packet = ArpPacket::new_unchecked(&mut bytes);
        packet.set_hardware_type(1);
        packet.set_protocol_type(EtherType::Ipv4);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(ArpOperation::Request);
        packet.set_source_hardware_addr(EthernetAddress([0x11, 0x12, 0x13, 0x14, 0x15, 0x16]));
        packet.set_source_protocol_addr(Ipv4Addr::new(192, 168, 1, 1));
        packet.set_target_hardware_addr(EthernetAddress::UNSPECIFIED);
        packet.set_target_protocol_addr(Ipv4Addr::new(192, 168, 1, 254));
        assert_eq!(&packet.into_inner()[..], &PACKET_BYTES[..]);
    }

    #[test]
    fn test_parse() {
        let packet = ArpPacket::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(ArpRepr::parse(&packet), Ok(repr()));
    }

    #[test]
    fn test_emit() {
        let mut bytes = vec![0xa5; repr().buffer_len()];
        repr().emit(&mut ArpPacket::new_unchecked(&mut bytes));
        assert_eq!(&bytes[..], &PACKET_BYTES[..]);
    }

    #[test]
    fn test_reply() {
        let mac = EthernetAddress([2, 0, 0, 0, 0, 1]);
        let reply = repr().reply(mac);
        assert_eq!(reply.operation, ArpOperation::Reply);
        assert_eq!(reply.source_hardware_addr, mac);
        assert_eq!(reply.source_protocol_addr, Ipv4Addr::new(192, 168, 1, 254));
        assert_eq!(reply.target_protocol_addr, Ipv4Addr::new(192, 168, 1, 1));
        assert_eq!(reply.target_hardware_addr, repr().source_hardware_addr);
    }

    #[test]
    fn test_padded() {
        let mut bytes = PACKET_BYTES.to_vec();
        bytes.resize(46, 0);
        let packet = ArpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(ArpRepr::parse(&packet), Ok(repr()));
    }

    #[test]
    fn test_truncated() {
        assert_eq!(
            ArpPacket::new_checked(&PACKET_BYTES[..27]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            ArpPacket::new_checked(&PACKET_BYTES[..7]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn test_hlen_not_6() {
        let mut bytes = PACKET_BYTES;
        bytes[4] = 8;
        assert_eq!(
            ArpPacket::new_checked(&bytes[..]).unwrap_err(),
            Error::Malformed
        );
    }

    #[test]
    fn test_plen_not_4() {
        let mut bytes = PACKET_BYTES;
        bytes[5] = 16;
        assert_eq!(
            ArpPacket::new_checked(&bytes[..]).unwrap_err(),
            Error::Malformed
        );
    }

    #[test]
    fn test_htype_not_ethernet() {
        let mut bytes = PACKET_BYTES;
        bytes[1] = 6; // IEEE 802
        let packet = ArpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(ArpRepr::parse(&packet), Err(Error::Unsupported));
    }

    #[test]
    fn test_ptype_not_ipv4() {
        let mut bytes = PACKET_BYTES;
        bytes[2..4].copy_from_slice(&[0x86, 0xdd]);
        let packet = ArpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(ArpRepr::parse(&packet), Err(Error::Unsupported));
    }

    #[test]
    fn test_operation_unknown() {
        let mut bytes = PACKET_BYTES;
        bytes[7] = 3; // RARP request
        let packet = ArpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.operation(), ArpOperation::Unknown(3));
        assert_eq!(ArpRepr::parse(&packet), Err(Error::Unsupported));
    }
}
