//! UDP (RFC 768).
//!
//! ```text
//!  0               2               4               6               8
//! +---------------+---------------+---------------+---------------+--------
//! |  source port  |   dest port   |    length     |   checksum    | payload
//! +---------------+---------------+---------------+---------------+--------
//! ```
//!
//! Length covers header and payload; the payload is bounded by it, not by the
//! buffer. A zero checksum means "none" over IPv4, and is invalid over IPv6
//! (RFC 8200 §8.1); a computed zero is sent as `0xFFFF`.

use super::checksum;
use super::{be16, len_u16, put16, ChecksumMode, Error, IpAddr, IpProtocol, Result};

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
    pub const PAYLOAD: usize = 8;
}

/// Length of the UDP header.
pub const HEADER_LEN: usize = field::PAYLOAD;

/// A read/write view of a UDP datagram.
#[derive(Debug, Clone)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps a buffer without checking it; see the module contract.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> UdpPacket<T> {
        UdpPacket { buffer }
    }

    /// [`new_unchecked`](Self::new_unchecked) then [`check_len`](Self::check_len).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<UdpPacket<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// [`Error::Truncated`] below 8 bytes; [`Error::BadLength`] if the length
    /// field is below 8 or above the buffer.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let field_len = usize::from(self.len());
        if field_len < HEADER_LEN || field_len > len {
            return Err(Error::BadLength);
        }
        Ok(())
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Length field: header plus payload.
    #[inline]
    pub fn len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH)
    }

    /// `true` when the length field says there is no payload.
    #[inline]
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Header length: always 8.
    #[inline]
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Payload, bounded by the length field.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }

    /// `true` if the checksum verifies with the pseudo-header of `src`/`dst`,
    /// or is absent (zero) over IPv4. Always `true` under `cfg(fuzzing)`.
    #[inline]
    pub fn verify_checksum(&self, src: &IpAddr, dst: &IpAddr) -> bool {
        if self.checksum() == 0 {
            return src.is_ipv4() || checksum::FUZZING;
        }
        let data = &self.buffer.as_ref()[..usize::from(self.len())];
        checksum::is_valid(checksum::combine(&[
            checksum::pseudo_header(src, dst, IpProtocol::Udp, u32::from(self.len())),
            checksum::data(data),
        ]))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port.
    #[inline]
    pub fn set_src_port(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::SRC_PORT, value);
    }

    /// Sets the destination port.
    #[inline]
    pub fn set_dst_port(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::DST_PORT, value);
    }

    /// Sets the length field. Changes the layout: check the packet again.
    #[inline]
    pub fn set_len(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::LENGTH, value);
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Computes the checksum over the pseudo-header and `length` bytes and
    /// writes it (a zero result is written as `0xFFFF`).
    #[inline]
    pub fn fill_checksum(&mut self, src: &IpAddr, dst: &IpAddr) {
        self.set_checksum(0);
        let len = self.len();
        let sum = checksum::combine(&[
            checksum::pseudo_header(src, dst, IpProtocol::Udp, u32::from(len)),
            checksum::data(&self.buffer.as_ref()[..usize::from(len)]),
        ]);
        self.set_checksum(match !sum {
            0 => 0xFFFF,
            c => c,
        });
    }

    /// Mutable payload, bounded by the length field.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for UdpPacket<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// A UDP datagram as plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpRepr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload.
    pub payload: &'a [u8],
}

impl<'a> UdpRepr<'a> {
    /// Parses a checked datagram; [`Error::BadChecksum`] when `mode` verifies
    /// and the checksum is wrong (or zero over IPv6).
    #[inline]
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &UdpPacket<&'a T>,
        src: &IpAddr,
        dst: &IpAddr,
        mode: ChecksumMode,
    ) -> Result<UdpRepr<'a>> {
        if mode.verify() && !packet.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        let data: &'a [u8] = packet.buffer.as_ref();
        Ok(UdpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            payload: &data[HEADER_LEN..usize::from(packet.len())],
        })
    }

    /// Always 8.
    #[inline]
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Header plus payload.
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Writes header and payload and fills the checksum for `src`/`dst`.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut UdpPacket<T>,
        src: &IpAddr,
        dst: &IpAddr,
    ) {
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len(len_u16(self.buffer_len()));
        packet.payload_mut().copy_from_slice(self.payload);
        packet.fill_checksum(src, dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Ipv4Addr, Ipv6Addr};

    const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 1));
    const DST: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 2));

    static PACKET_BYTES: [u8; 14] = [
        0xbf, 0x00, // src port 48896
        0x00, 0x35, // dst port 53
        0x00, 0x0c, // length 12
        0x12, 0x4d, // checksum
        0xaa, 0x00, 0x00, 0xff, // payload
        0x00, 0x00, // trailing bytes beyond length
    ];

    static PAYLOAD: [u8; 4] = [0xaa, 0x00, 0x00, 0xff];

    #[test]
    fn test_deconstruct() {
        let packet = UdpPacket::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(packet.src_port(), 48896);
        assert_eq!(packet.dst_port(), 53);
        assert_eq!(packet.len(), 12);
        assert!(!packet.is_empty());
        assert_eq!(packet.checksum(), 0x124d);
        assert_eq!(packet.header_len(), 8);
        assert_eq!(packet.payload(), &PAYLOAD);
        assert!(packet.verify_checksum(&SRC, &DST));
    }

    #[test]
    fn test_construct() {
        let mut bytes = vec![0xa5; 12];
        let mut packet = UdpPacket::new_unchecked(&mut bytes);
        packet.set_src_port(48896);
        packet.set_dst_port(53);
        packet.set_len(12);
        packet.payload_mut().copy_from_slice(&PAYLOAD);
        packet.fill_checksum(&SRC, &DST);
        assert_eq!(&packet.into_inner()[..], &PACKET_BYTES[..12]);
    }

    #[test]
    fn test_parse() {
        let packet = UdpPacket::new_checked(&PACKET_BYTES[..]).unwrap();
        let repr = UdpRepr::parse(&packet, &SRC, &DST, ChecksumMode::Verify).unwrap();
        assert_eq!(
            repr,
            UdpRepr {
                src_port: 48896,
                dst_port: 53,
                payload: &PAYLOAD
            }
        );
    }

    #[test]
    fn test_emit() {
        let repr = UdpRepr {
            src_port: 48896,
            dst_port: 53,
            payload: &PAYLOAD,
        };
        let mut bytes = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut UdpPacket::new_unchecked(&mut bytes), &SRC, &DST);
        assert_eq!(&bytes[..], &PACKET_BYTES[..12]);
    }

    #[test]
    fn test_ipv6_round_trip() {
        let src = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1));
        let dst = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2));
        let repr = UdpRepr {
            src_port: 546,
            dst_port: 547,
            payload: &PAYLOAD,
        };
        let mut bytes = vec![0; repr.buffer_len()];
        repr.emit(&mut UdpPacket::new_unchecked(&mut bytes), &src, &dst);
        let packet = UdpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            UdpRepr::parse(&packet, &src, &dst, ChecksumMode::Verify),
            Ok(repr)
        );
    }

    #[test]
    fn test_zero_checksum() {
        if checksum::FUZZING {
            return;
        }
        let mut bytes = PACKET_BYTES;
        bytes[6..8].copy_from_slice(&[0, 0]);
        let packet = UdpPacket::new_checked(&bytes[..]).unwrap();
        assert!(packet.verify_checksum(&SRC, &DST));
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert!(!packet.verify_checksum(&v6, &v6));
        assert_eq!(
            UdpRepr::parse(&packet, &v6, &v6, ChecksumMode::Verify),
            Err(Error::BadChecksum)
        );
    }

    #[test]
    fn test_computed_zero_sent_as_ffff() {
        // Payload chosen so the checksum computes to 0: the pseudo-header +
        // header sum is S, and a payload word of !S makes the total 0xFFFF.
        let mut bytes = vec![0u8; 10];
        let mut packet = UdpPacket::new_unchecked(&mut bytes);
        packet.set_src_port(1);
        packet.set_dst_port(2);
        packet.set_len(10);
        packet.fill_checksum(&SRC, &DST);
        let c = packet.checksum();
        // With payload word = c, the new sum is 0xFFFF, so !sum = 0.
        packet.payload_mut().copy_from_slice(&c.to_be_bytes());
        packet.fill_checksum(&SRC, &DST);
        assert_eq!(packet.checksum(), 0xFFFF);
        assert!(packet.verify_checksum(&SRC, &DST));
    }

    #[test]
    fn test_truncated() {
        assert_eq!(
            UdpPacket::new_checked(&PACKET_BYTES[..7]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn test_length_lies() {
        // Length larger than the buffer.
        assert_eq!(
            UdpPacket::new_checked(&PACKET_BYTES[..11]).unwrap_err(),
            Error::BadLength
        );
        // Length smaller than the header.
        let mut bytes = PACKET_BYTES;
        bytes[4..6].copy_from_slice(&[0, 7]);
        assert_eq!(
            UdpPacket::new_checked(&bytes[..]).unwrap_err(),
            Error::BadLength
        );
        // Exactly the header: empty payload.
        bytes[4..6].copy_from_slice(&[0, 8]);
        let packet = UdpPacket::new_checked(&bytes[..]).unwrap();
        assert!(packet.is_empty());
        assert_eq!(packet.payload(), &[] as &[u8]);
    }

    #[test]
    fn test_bad_checksum() {
        if checksum::FUZZING {
            return;
        }
        let mut bytes = PACKET_BYTES;
        bytes[8] ^= 0x80;
        let packet = UdpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            UdpRepr::parse(&packet, &SRC, &DST, ChecksumMode::Verify),
            Err(Error::BadChecksum)
        );
        assert!(UdpRepr::parse(&packet, &SRC, &DST, ChecksumMode::Trust).is_ok());
    }
}
