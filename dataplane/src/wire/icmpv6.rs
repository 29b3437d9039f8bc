//! ICMP for IPv6 (RFC 4443), minimal: echo, the error messages a router
//! sends, and the Neighbor Solicitation/Advertisement fixed parts (RFC 4861).
//!
//! ```text
//!  0       1       2               4                               8
//! +-------+-------+---------------+-------------------------------+-------
//! | type  | code  |   checksum    |  rest of header (by type)     | data
//! +-------+-------+---------------+-------------------------------+-------
//! echo:                           | identifier    | sequence no.  | payload
//! packet too big:                 | MTU                           | quoted datagram
//! param problem:                  | pointer                       | quoted datagram
//! NS / NA:                        | R S O reserved                | target (16) | options
//! ```
//!
//! The checksum is mandatory and covers the IPv6 pseudo-header; give the view
//! exactly the upper-layer bytes.

use super::checksum;
use super::{
    be16, be32, enum_with_unknown, put16, put32, ChecksumMode, Error, IpProtocol, Ipv6Addr, Result,
};

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const ECHO_IDENT: usize = 4;
    pub const ECHO_SEQNO: usize = 6;
    /// MTU of Packet Too Big, pointer of Parameter Problem.
    pub const PARAM: usize = 4;
    pub const NA_FLAGS: usize = 4;
    pub const DATA: usize = 8;
    pub const TARGET: core::ops::Range<usize> = 8..24;
}

/// Length of the ICMPv6 header.
pub const HEADER_LEN: usize = field::DATA;
/// Length of a Neighbor Solicitation/Advertisement without options.
pub const NDP_LEN: usize = field::TARGET.end;
/// Most bytes of the offending datagram an error quotes so that the packet
/// stays within the IPv6 minimum MTU (RFC 4443 §2.4): 1280 − 40 − 8.
pub const MAX_ERROR_QUOTE: usize = 1280 - 40 - HEADER_LEN;

/// Router flag of a Neighbor Advertisement.
pub const NA_FLAG_ROUTER: u8 = 0x80;
/// Solicited flag of a Neighbor Advertisement.
pub const NA_FLAG_SOLICITED: u8 = 0x40;
/// Override flag of a Neighbor Advertisement.
pub const NA_FLAG_OVERRIDE: u8 = 0x20;

enum_with_unknown! {
    /// ICMPv6 message type.
    pub enum Icmpv6Message(u8) {
        /// Destination unreachable.
        DstUnreachable = 1,
        /// Packet too big.
        PacketTooBig = 2,
        /// Time exceeded.
        TimeExceeded = 3,
        /// Parameter problem.
        ParamProblem = 4,
        /// Echo request.
        EchoRequest = 128,
        /// Echo reply.
        EchoReply = 129,
        /// Router solicitation.
        RouterSolicit = 133,
        /// Router advertisement.
        RouterAdvert = 134,
        /// Neighbor solicitation.
        NeighborSolicit = 135,
        /// Neighbor advertisement.
        NeighborAdvert = 136,
        /// Redirect.
        Redirect = 137,
    }
}

impl Icmpv6Message {
    /// Error messages have a type below 128 (RFC 4443 §2.1).
    #[inline]
    pub fn is_error(self) -> bool {
        u8::from(self) < 128
    }
}

/// A read/write view of an ICMPv6 message.
#[derive(Debug, Clone)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Wraps a buffer without checking it; see the module contract.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Icmpv6Packet<T> {
        Icmpv6Packet { buffer }
    }

    /// [`new_unchecked`](Self::new_unchecked) then [`check_len`](Self::check_len).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Icmpv6Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// [`Error::Truncated`] below 8 bytes, or below 24 for a Neighbor
    /// Solicitation/Advertisement (whose target address accessor reads 8..24).
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.is_ndp() && len < NDP_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    fn is_ndp(&self) -> bool {
        matches!(
            self.msg_type(),
            Icmpv6Message::NeighborSolicit | Icmpv6Message::NeighborAdvert
        )
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Message type.
    #[inline]
    pub fn msg_type(&self) -> Icmpv6Message {
        Icmpv6Message::from(self.buffer.as_ref()[field::TYPE])
    }

    /// Message code.
    #[inline]
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Echo identifier.
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ECHO_IDENT)
    }

    /// Echo sequence number.
    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ECHO_SEQNO)
    }

    /// MTU of Packet Too Big, pointer of Parameter Problem.
    #[inline]
    pub fn param(&self) -> u32 {
        be32(self.buffer.as_ref(), field::PARAM)
    }

    /// R/S/O flags of a Neighbor Advertisement.
    #[inline]
    pub fn na_flags(&self) -> u8 {
        self.buffer.as_ref()[field::NA_FLAGS]
    }

    /// Target address of a Neighbor Solicitation/Advertisement, `None` for
    /// other types (and for an unchecked short buffer).
    #[inline]
    pub fn target_addr(&self) -> Option<Ipv6Addr> {
        let data = self.buffer.as_ref();
        if !self.is_ndp() || data.len() < NDP_LEN {
            return None;
        }
        Some(super::ipv6_at(data, field::TARGET.start))
    }

    /// Header length: always 8.
    #[inline]
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// What follows the 8-byte header.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA..]
    }

    /// `true` when the checksum with the pseudo-header of `src`/`dst` is right
    /// (always under `cfg(fuzzing)`).
    #[inline]
    pub fn verify_checksum(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        let data = self.buffer.as_ref();
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        checksum::is_valid(checksum::combine(&[
            checksum::pseudo_header_v6(src, dst, IpProtocol::Icmpv6, len),
            checksum::data(data),
        ]))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    /// Sets the type.
    #[inline]
    pub fn set_msg_type(&mut self, value: Icmpv6Message) {
        self.buffer.as_mut()[field::TYPE] = value.into();
    }

    /// Sets the code.
    #[inline]
    pub fn set_msg_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value;
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Sets the echo identifier.
    #[inline]
    pub fn set_echo_ident(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::ECHO_IDENT, value);
    }

    /// Sets the echo sequence number.
    #[inline]
    pub fn set_echo_seq_no(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::ECHO_SEQNO, value);
    }

    /// Sets the 32-bit MTU / pointer / reserved word (bytes 4..8).
    #[inline]
    pub fn set_param(&mut self, value: u32) {
        put32(self.buffer.as_mut(), field::PARAM, value);
    }

    /// Sets the target address (bytes 8..24).
    #[inline]
    pub fn set_target_addr(&mut self, value: Ipv6Addr) {
        self.buffer.as_mut()[field::TARGET].copy_from_slice(&value.octets());
    }

    /// Mutable data after the header.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA..]
    }

    /// Computes the checksum over the pseudo-header and the whole buffer.
    #[inline]
    pub fn fill_checksum(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        self.set_checksum(0);
        let data = self.buffer.as_ref();
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let sum = checksum::combine(&[
            checksum::pseudo_header_v6(src, dst, IpProtocol::Icmpv6, len),
            checksum::data(data),
        ]);
        self.set_checksum(!sum);
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Icmpv6Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The ICMPv6 messages this firmware handles, as plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv6Repr<'a> {
    /// Echo request.
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Payload.
        data: &'a [u8],
    },
    /// Echo reply.
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Payload.
        data: &'a [u8],
    },
    /// Destination unreachable.
    DstUnreachable {
        /// Code (4: port unreachable, 1: administratively prohibited, ...).
        code: u8,
        /// The start of the offending datagram.
        quoted: &'a [u8],
    },
    /// Packet too big.
    PacketTooBig {
        /// MTU of the next hop.
        mtu: u32,
        /// The start of the offending datagram.
        quoted: &'a [u8],
    },
    /// Time exceeded.
    TimeExceeded {
        /// Code (0: hop limit exceeded).
        code: u8,
        /// The start of the offending datagram.
        quoted: &'a [u8],
    },
    /// Parameter problem.
    ParamProblem {
        /// Code.
        code: u8,
        /// Offset of the offending octet.
        pointer: u32,
        /// The start of the offending datagram.
        quoted: &'a [u8],
    },
    /// Neighbor solicitation.
    NeighborSolicit {
        /// Target address.
        target: Ipv6Addr,
        /// Raw NDP options.
        options: &'a [u8],
    },
    /// Neighbor advertisement.
    NeighborAdvert {
        /// R/S/O flags (`NA_FLAG_*`).
        flags: u8,
        /// Target address.
        target: Ipv6Addr,
        /// Raw NDP options.
        options: &'a [u8],
    },
}

impl<'a> Icmpv6Repr<'a> {
    /// Parses a checked message. [`Error::BadChecksum`] when `mode` verifies
    /// and the checksum is wrong; [`Error::Malformed`] for an echo or NDP
    /// message with a non-zero code; [`Error::Unsupported`] for other types.
    #[inline]
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Icmpv6Packet<&'a T>,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
        mode: ChecksumMode,
    ) -> Result<Icmpv6Repr<'a>> {
        if mode.verify() && !packet.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        let bytes: &'a [u8] = packet.buffer.as_ref();
        let data = &bytes[field::DATA..];
        let code = packet.msg_code();
        let msg = packet.msg_type();
        let zero_code = matches!(
            msg,
            Icmpv6Message::EchoRequest
                | Icmpv6Message::EchoReply
                | Icmpv6Message::NeighborSolicit
                | Icmpv6Message::NeighborAdvert
        );
        if zero_code && code != 0 {
            return Err(Error::Malformed);
        }
        match msg {
            Icmpv6Message::EchoRequest => Ok(Icmpv6Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            }),
            Icmpv6Message::EchoReply => Ok(Icmpv6Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            }),
            Icmpv6Message::DstUnreachable => Ok(Icmpv6Repr::DstUnreachable { code, quoted: data }),
            Icmpv6Message::PacketTooBig => Ok(Icmpv6Repr::PacketTooBig {
                mtu: packet.param(),
                quoted: data,
            }),
            Icmpv6Message::TimeExceeded => Ok(Icmpv6Repr::TimeExceeded { code, quoted: data }),
            Icmpv6Message::ParamProblem => Ok(Icmpv6Repr::ParamProblem {
                code,
                pointer: packet.param(),
                quoted: data,
            }),
            Icmpv6Message::NeighborSolicit | Icmpv6Message::NeighborAdvert => {
                let target = packet.target_addr().ok_or(Error::Truncated)?;
                let options = &bytes[NDP_LEN..];
                if msg == Icmpv6Message::NeighborSolicit {
                    Ok(Icmpv6Repr::NeighborSolicit { target, options })
                } else {
                    Ok(Icmpv6Repr::NeighborAdvert {
                        flags: packet.na_flags() & 0xE0,
                        target,
                        options,
                    })
                }
            }
            _ => Err(Error::Unsupported),
        }
    }

    /// The echo reply answering this request; `None` for anything else.
    #[inline]
    pub fn echo_reply(&self) -> Option<Icmpv6Repr<'a>> {
        match *self {
            Icmpv6Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => Some(Icmpv6Repr::EchoReply {
                ident,
                seq_no,
                data,
            }),
            _ => None,
        }
    }

    /// Always 8.
    #[inline]
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// The whole message.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        match *self {
            Icmpv6Repr::EchoRequest { data, .. }
            | Icmpv6Repr::EchoReply { data, .. }
            | Icmpv6Repr::DstUnreachable { quoted: data, .. }
            | Icmpv6Repr::PacketTooBig { quoted: data, .. }
            | Icmpv6Repr::TimeExceeded { quoted: data, .. }
            | Icmpv6Repr::ParamProblem { quoted: data, .. } => HEADER_LEN + data.len(),
            Icmpv6Repr::NeighborSolicit { options, .. }
            | Icmpv6Repr::NeighborAdvert { options, .. } => NDP_LEN + options.len(),
        }
    }

    /// Writes the message and fills the checksum for `src`/`dst`. The buffer
    /// must be exactly [`buffer_len`](Self::buffer_len) long.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Icmpv6Packet<T>,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
    ) {
        let (msg, code, param, at, tail) = match *self {
            Icmpv6Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => (
                Icmpv6Message::EchoRequest,
                0,
                (u32::from(ident) << 16) | u32::from(seq_no),
                field::DATA,
                data,
            ),
            Icmpv6Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => (
                Icmpv6Message::EchoReply,
                0,
                (u32::from(ident) << 16) | u32::from(seq_no),
                field::DATA,
                data,
            ),
            Icmpv6Repr::DstUnreachable { code, quoted } => {
                (Icmpv6Message::DstUnreachable, code, 0, field::DATA, quoted)
            }
            Icmpv6Repr::PacketTooBig { mtu, quoted } => {
                (Icmpv6Message::PacketTooBig, 0, mtu, field::DATA, quoted)
            }
            Icmpv6Repr::TimeExceeded { code, quoted } => {
                (Icmpv6Message::TimeExceeded, code, 0, field::DATA, quoted)
            }
            Icmpv6Repr::ParamProblem {
                code,
                pointer,
                quoted,
            } => (
                Icmpv6Message::ParamProblem,
                code,
                pointer,
                field::DATA,
                quoted,
            ),
            Icmpv6Repr::NeighborSolicit { options, .. } => {
                (Icmpv6Message::NeighborSolicit, 0, 0, NDP_LEN, options)
            }
            Icmpv6Repr::NeighborAdvert { flags, options, .. } => (
                Icmpv6Message::NeighborAdvert,
                0,
                u32::from(flags & 0xE0) << 24,
                NDP_LEN,
                options,
            ),
        };
        packet.set_msg_type(msg);
        packet.set_msg_code(code);
        packet.set_param(param);
        if let Icmpv6Repr::NeighborSolicit { target, .. }
        | Icmpv6Repr::NeighborAdvert { target, .. } = *self
        {
            packet.set_target_addr(target);
        }
        packet.buffer.as_mut()[at..at + tail.len()].copy_from_slice(tail);
        packet.fill_checksum(src, dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
    const DST: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);

    static ECHO_BYTES: [u8; 12] = [
        0x80, // type: echo request
        0x00, // code
        0x00, 0x00, // checksum, filled in below
        0x12, 0x34, // ident
        0xab, 0xcd, // seq no
        0xaa, 0x00, 0x00, 0xff, // payload
    ];

    static NS_BYTES: [u8; 32] = [
        0x87, // type: neighbor solicitation
        0x00, // code
        0x00, 0x00, // checksum, filled in below
        0x00, 0x00, 0x00, 0x00, // reserved
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // target fe80::2
        0x01, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // option: source link-layer address
    ];

    fn with_checksum(bytes: &[u8]) -> Vec<u8> {
        let mut v = bytes.to_vec();
        Icmpv6Packet::new_unchecked(&mut v[..]).fill_checksum(&SRC, &DST);
        v
    }

    #[test]
    fn test_checksum_independent() {
        // Python RFC 1071 sum over the IPv6 pseudo-header + message: 0x19b3.
        let bytes = with_checksum(&ECHO_BYTES);
        assert_eq!(Icmpv6Packet::new_unchecked(&bytes[..]).checksum(), 0x19b3);
    }

    #[test]
    fn test_echo_deconstruct() {
        let bytes = with_checksum(&ECHO_BYTES);
        let packet = Icmpv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.msg_type(), Icmpv6Message::EchoRequest);
        assert!(!packet.msg_type().is_error());
        assert_eq!(packet.msg_code(), 0);
        assert_eq!(packet.echo_ident(), 0x1234);
        assert_eq!(packet.echo_seq_no(), 0xabcd);
        assert_eq!(packet.header_len(), 8);
        assert_eq!(packet.data(), &[0xaa, 0x00, 0x00, 0xff]);
        assert_eq!(packet.target_addr(), None);
        assert!(packet.verify_checksum(&SRC, &DST));
    }

    #[test]
    fn test_echo_construct() {
        let mut bytes = vec![0xa5; 12];
        let mut packet = Icmpv6Packet::new_unchecked(&mut bytes);
        packet.set_msg_type(Icmpv6Message::EchoRequest);
        packet.set_msg_code(0);
        packet.set_echo_ident(0x1234);
        packet.set_echo_seq_no(0xabcd);
        packet.data_mut().copy_from_slice(&[0xaa, 0x00, 0x00, 0xff]);
        packet.fill_checksum(&SRC, &DST);
        assert_eq!(*packet.into_inner(), with_checksum(&ECHO_BYTES));
    }

    #[test]
    fn test_echo_parse_emit() {
        let bytes = with_checksum(&ECHO_BYTES);
        let packet = Icmpv6Packet::new_checked(&bytes[..]).unwrap();
        let repr = Icmpv6Repr::parse(&packet, &SRC, &DST, ChecksumMode::Verify).unwrap();
        assert_eq!(
            repr,
            Icmpv6Repr::EchoRequest {
                ident: 0x1234,
                seq_no: 0xabcd,
                data: &ECHO_BYTES[8..]
            }
        );
        let mut out = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut Icmpv6Packet::new_unchecked(&mut out), &SRC, &DST);
        assert_eq!(out, bytes);
        let reply = repr.echo_reply().unwrap();
        let mut out = vec![0; reply.buffer_len()];
        reply.emit(&mut Icmpv6Packet::new_unchecked(&mut out), &DST, &SRC);
        let packet = Icmpv6Packet::new_checked(&out[..]).unwrap();
        assert_eq!(
            Icmpv6Repr::parse(&packet, &DST, &SRC, ChecksumMode::Verify),
            Ok(reply)
        );
    }

    #[test]
    fn test_ns_deconstruct_and_round_trip() {
        let bytes = with_checksum(&NS_BYTES);
        let packet = Icmpv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.msg_type(), Icmpv6Message::NeighborSolicit);
        assert_eq!(packet.target_addr(), Some(DST));
        let repr = Icmpv6Repr::parse(&packet, &SRC, &DST, ChecksumMode::Verify).unwrap();
        assert_eq!(
            repr,
            Icmpv6Repr::NeighborSolicit {
                target: DST,
                options: &NS_BYTES[24..]
            }
        );
        let mut out = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut Icmpv6Packet::new_unchecked(&mut out), &SRC, &DST);
        assert_eq!(out, bytes);
    }

    #[test]
    fn test_na_round_trip() {
        let repr = Icmpv6Repr::NeighborAdvert {
            flags: NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE,
            target: SRC,
            options: &[2, 1, 2, 0, 0, 0, 0, 1],
        };
        let mut out = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut Icmpv6Packet::new_unchecked(&mut out), &SRC, &DST);
        assert_eq!(&out[4..8], &[0x60, 0, 0, 0]);
        let packet = Icmpv6Packet::new_checked(&out[..]).unwrap();
        assert_eq!(packet.na_flags(), 0x60);
        assert_eq!(
            Icmpv6Repr::parse(&packet, &SRC, &DST, ChecksumMode::Verify),
            Ok(repr)
        );
    }

    #[test]
    fn test_errors_round_trip() {
        let quoted = [0x60u8; 48];
        for repr in [
            Icmpv6Repr::DstUnreachable {
                code: 4,
                quoted: &quoted,
            },
            Icmpv6Repr::PacketTooBig {
                mtu: 1280,
                quoted: &quoted,
            },
            Icmpv6Repr::TimeExceeded {
                code: 0,
                quoted: &quoted,
            },
            Icmpv6Repr::ParamProblem {
                code: 1,
                pointer: 40,
                quoted: &quoted,
            },
        ] {
            let mut out = vec![0xa5; repr.buffer_len()];
            repr.emit(&mut Icmpv6Packet::new_unchecked(&mut out), &SRC, &DST);
            let packet = Icmpv6Packet::new_checked(&out[..]).unwrap();
            assert!(packet.msg_type().is_error());
            assert_eq!(
                Icmpv6Repr::parse(&packet, &SRC, &DST, ChecksumMode::Verify),
                Ok(repr)
            );
        }
    }

    #[test]
    fn test_truncated() {
        assert_eq!(
            Icmpv6Packet::new_checked(&ECHO_BYTES[..7]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Icmpv6Packet::new_checked(&NS_BYTES[..23]).unwrap_err(),
            Error::Truncated
        );
        assert!(Icmpv6Packet::new_checked(&NS_BYTES[..24]).is_ok());
    }

    #[test]
    fn test_bad_checksum() {
        if checksum::FUZZING {
            return;
        }
        let mut bytes = with_checksum(&ECHO_BYTES);
        bytes[8] ^= 1;
        let packet = Icmpv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            Icmpv6Repr::parse(&packet, &SRC, &DST, ChecksumMode::Verify),
            Err(Error::BadChecksum)
        );
        // Right bytes, wrong pseudo-header.
        let bytes = with_checksum(&ECHO_BYTES);
        let packet = Icmpv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            Icmpv6Repr::parse(&packet, &DST, &DST, ChecksumMode::Verify),
            Err(Error::BadChecksum)
        );
    }

    #[test]
    fn test_nonzero_code_and_unsupported() {
        let mut bytes = ECHO_BYTES;
        bytes[1] = 1;
        let bytes = with_checksum(&bytes);
        let packet = Icmpv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            Icmpv6Repr::parse(&packet, &SRC, &DST, ChecksumMode::Verify),
            Err(Error::Malformed)
        );
        let mut bytes = ECHO_BYTES;
        bytes[0] = 133; // router solicitation
        let bytes = with_checksum(&bytes);
        let packet = Icmpv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            Icmpv6Repr::parse(&packet, &SRC, &DST, ChecksumMode::Verify),
            Err(Error::Unsupported)
        );
    }
}
