//! ICMP for IPv4 (RFC 792): echo, and the error messages a router sends.
//!
//! ```text
//!  0       1       2               4                               8
//! +-------+-------+---------------+-------------------------------+-------
//! | type  | code  |   checksum    |  rest of header (by type)     | data
//! +-------+-------+---------------+-------------------------------+-------
//! echo:                           | identifier    | sequence no.  | payload
//! dst unreachable:                | unused        | next-hop MTU  | quoted IP datagram
//! time exceeded:                  | unused                        | quoted IP datagram
//! parameter problem:              | ptr | unused                  | quoted IP datagram
//! ```
//!
//! The checksum covers the whole ICMP message, whose length comes from the IP
//! layer: give the view exactly the IP payload.

use super::checksum;
use super::{be16, enum_with_unknown, put16, ChecksumMode, Error, Result};

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const ECHO_IDENT: usize = 4;
    pub const ECHO_SEQNO: usize = 6;
    pub const UNUSED: core::ops::Range<usize> = 4..8;
    pub const POINTER: usize = 4;
    pub const MTU: usize = 6;
    pub const DATA: usize = 8;
}

/// Length of the ICMP header (type, code, checksum, rest of header).
pub const HEADER_LEN: usize = field::DATA;

/// Most bytes of the offending datagram an error should quote so that the
/// ICMP datagram stays within 576 bytes (RFC 1812 §4.3.2.3): 576 − 20 − 8.
pub const MAX_ERROR_QUOTE: usize = 576 - 20 - HEADER_LEN;

enum_with_unknown! {
    /// ICMPv4 message type.
    pub enum Icmpv4Message(u8) {
        /// Echo reply.
        EchoReply = 0,
        /// Destination unreachable.
        DstUnreachable = 3,
        /// Redirect.
        Redirect = 5,
        /// Echo request.
        EchoRequest = 8,
        /// Router advertisement.
        RouterAdvert = 9,
        /// Router solicitation.
        RouterSolicit = 10,
        /// Time exceeded.
        TimeExceeded = 11,
        /// Parameter problem.
        ParamProblem = 12,
        /// Timestamp.
        Timestamp = 13,
        /// Timestamp reply.
        TimestampReply = 14,
    }
}

impl Icmpv4Message {
    /// Error messages quote an offending datagram; a firewall matches them to
    /// the state of that datagram.
    #[inline]
    pub fn is_error(self) -> bool {
        matches!(
            self,
            Icmpv4Message::DstUnreachable
                | Icmpv4Message::Redirect
                | Icmpv4Message::TimeExceeded
                | Icmpv4Message::ParamProblem
        )
    }
}

enum_with_unknown! {
    /// Codes of Destination Unreachable (RFC 792, RFC 1812).
    pub enum Icmpv4DstUnreachable(u8) {
        /// Net unreachable.
        NetUnreachable = 0,
        /// Host unreachable.
        HostUnreachable = 1,
        /// Protocol unreachable.
        ProtoUnreachable = 2,
        /// Port unreachable.
        PortUnreachable = 3,
        /// Fragmentation needed and DF set (carries the next-hop MTU, RFC 1191).
        FragRequired = 4,
        /// Source route failed.
        SrcRouteFailed = 5,
        /// Destination network unknown.
        DstNetUnknown = 6,
        /// Destination host unknown.
        DstHostUnknown = 7,
        /// Source host isolated.
        SrcHostIsolated = 8,
        /// Network administratively prohibited.
        NetProhibited = 9,
        /// Host administratively prohibited.
        HostProhibited = 10,
        /// Network unreachable for ToS.
        NetUnreachToS = 11,
        /// Host unreachable for ToS.
        HostUnreachToS = 12,
        /// Communication administratively prohibited (what a firewall rejects with).
        CommProhibited = 13,
        /// Host precedence violation.
        HostPrecedViol = 14,
        /// Precedence cutoff in effect.
        PrecedCutoff = 15,
    }
}

enum_with_unknown! {
    /// Codes of Time Exceeded.
    pub enum Icmpv4TimeExceeded(u8) {
        /// TTL reached zero in transit.
        TtlExpired = 0,
        /// Fragment reassembly time exceeded.
        FragExpired = 1,
    }
}

/// The first `limit` bytes (at most) of an offending datagram, to quote in an
/// error; pass [`MAX_ERROR_QUOTE`] for RFC 1812 behaviour.
#[inline]
pub fn error_quote(datagram: &[u8], limit: usize) -> &[u8] {
    &datagram[..datagram.len().min(limit)]
}

/// A read/write view of an ICMPv4 message.
#[derive(Debug, Clone)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Wraps a buffer without checking it; see the module contract.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Icmpv4Packet<T> {
        Icmpv4Packet { buffer }
    }

    /// [`new_unchecked`](Self::new_unchecked) then [`check_len`](Self::check_len).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Icmpv4Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// [`Error::Truncated`] below the 8-byte header. Every accessor reads
    /// within it, whatever the type.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Message type.
    #[inline]
    pub fn msg_type(&self) -> Icmpv4Message {
        Icmpv4Message::from(self.buffer.as_ref()[field::TYPE])
    }

    /// Message code (meaning depends on the type).
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

    /// Next-hop MTU of "fragmentation needed" (RFC 1191); 0 from old routers.
    #[inline]
    pub fn next_hop_mtu(&self) -> u16 {
        be16(self.buffer.as_ref(), field::MTU)
    }

    /// Pointer of "parameter problem".
    #[inline]
    pub fn pointer(&self) -> u8 {
        self.buffer.as_ref()[field::POINTER]
    }

    /// Header length: always 8.
    #[inline]
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// What follows the header: echo payload, or the quoted datagram of an error.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA..]
    }

    /// `true` when the checksum over the whole message is right (always
    /// under `cfg(fuzzing)`).
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::is_valid(checksum::data(self.buffer.as_ref()))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    /// Sets the type.
    #[inline]
    pub fn set_msg_type(&mut self, value: Icmpv4Message) {
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

    /// Sets the next-hop MTU (writes bytes 6..8 only).
    #[inline]
    pub fn set_next_hop_mtu(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::MTU, value);
    }

    /// Sets the pointer (byte 4 only).
    #[inline]
    pub fn set_pointer(&mut self, value: u8) {
        self.buffer.as_mut()[field::POINTER] = value;
    }

    /// Zeroes the four "rest of header" bytes.
    #[inline]
    pub fn clear_rest_of_header(&mut self) {
        self.buffer.as_mut()[field::UNUSED].fill(0);
    }

    /// Mutable data after the header.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA..]
    }

    /// Computes the checksum over the whole buffer and writes it.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let sum = checksum::data(self.buffer.as_ref());
        self.set_checksum(!sum);
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Icmpv4Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The ICMPv4 messages this firmware receives or sends, as plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv4Repr<'a> {
    /// Echo request (ping).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Payload, echoed back.
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
        /// Code.
        reason: Icmpv4DstUnreachable,
        /// Next-hop MTU, meaningful with `FragRequired`; 0 otherwise.
        next_hop_mtu: u16,
        /// The start of the offending datagram, IP header first.
        quoted: &'a [u8],
    },
    /// Time exceeded.
    TimeExceeded {
        /// Code.
        reason: Icmpv4TimeExceeded,
        /// The start of the offending datagram, IP header first.
        quoted: &'a [u8],
    },
    /// Parameter problem.
    ParamProblem {
        /// Code (0: pointer indicates the error).
        code: u8,
        /// Offset of the offending octet in the quoted header.
        pointer: u8,
        /// The start of the offending datagram, IP header first.
        quoted: &'a [u8],
    },
}

impl<'a> Icmpv4Repr<'a> {
    /// Parses a checked message.
    ///
    /// [`Error::BadChecksum`] when `mode` verifies and the checksum is wrong;
    /// [`Error::Malformed`] for an echo with a non-zero code;
    /// [`Error::Unsupported`] for any other type (redirect, timestamp, ...).
    /// Error messages are not required to quote a full IP header here: the
    /// consumer of `quoted` checks what it needs.
    #[inline]
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Icmpv4Packet<&'a T>,
        mode: ChecksumMode,
    ) -> Result<Icmpv4Repr<'a>> {
        if mode.verify() && !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        let data = &packet.buffer.as_ref()[field::DATA..];
        let code = packet.msg_code();
        match packet.msg_type() {
            Icmpv4Message::EchoRequest | Icmpv4Message::EchoReply if code != 0 => {
                Err(Error::Malformed)
            }
            Icmpv4Message::EchoRequest => Ok(Icmpv4Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            }),
            Icmpv4Message::EchoReply => Ok(Icmpv4Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            }),
            Icmpv4Message::DstUnreachable => Ok(Icmpv4Repr::DstUnreachable {
                reason: Icmpv4DstUnreachable::from(code),
                next_hop_mtu: packet.next_hop_mtu(),
                quoted: data,
            }),
            Icmpv4Message::TimeExceeded => Ok(Icmpv4Repr::TimeExceeded {
                reason: Icmpv4TimeExceeded::from(code),
                quoted: data,
            }),
            Icmpv4Message::ParamProblem => Ok(Icmpv4Repr::ParamProblem {
                code,
                pointer: packet.pointer(),
                quoted: data,
            }),
            _ => Err(Error::Unsupported),
        }
    }

    /// The echo reply answering this request; `None` for anything else.
    #[inline]
    pub fn echo_reply(&self) -> Option<Icmpv4Repr<'a>> {
        match *self {
            Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => Some(Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            }),
            _ => None,
        }
    }

    fn data(&self) -> &'a [u8] {
        match *self {
            Icmpv4Repr::EchoRequest { data, .. }
            | Icmpv4Repr::EchoReply { data, .. }
            | Icmpv4Repr::DstUnreachable { quoted: data, .. }
            | Icmpv4Repr::TimeExceeded { quoted: data, .. }
            | Icmpv4Repr::ParamProblem { quoted: data, .. } => data,
        }
    }

    /// Always 8.
    #[inline]
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Header plus data (payload or quote).
    #[inline]
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.data().len()
    }

    /// Writes the message, data copied, checksum filled. The buffer must be
    /// exactly [`buffer_len`](Self::buffer_len) long: the checksum covers all of it.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Icmpv4Packet<T>) {
        packet.clear_rest_of_header();
        match *self {
            Icmpv4Repr::EchoRequest { ident, seq_no, .. }
            | Icmpv4Repr::EchoReply { ident, seq_no, .. } => {
                let msg = if matches!(self, Icmpv4Repr::EchoRequest { .. }) {
                    Icmpv4Message::EchoRequest
                } else {
                    Icmpv4Message::EchoReply
                };
                packet.set_msg_type(msg);
                packet.set_msg_code(0);
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
            }
            Icmpv4Repr::DstUnreachable {
                reason,
                next_hop_mtu,
                ..
            } => {
                packet.set_msg_type(Icmpv4Message::DstUnreachable);
                packet.set_msg_code(reason.into());
                packet.set_next_hop_mtu(next_hop_mtu);
            }
            Icmpv4Repr::TimeExceeded { reason, .. } => {
                packet.set_msg_type(Icmpv4Message::TimeExceeded);
                packet.set_msg_code(reason.into());
            }
            Icmpv4Repr::ParamProblem { code, pointer, .. } => {
                packet.set_msg_type(Icmpv4Message::ParamProblem);
                packet.set_msg_code(code);
                packet.set_pointer(pointer);
            }
        }
        let data = self.data();
        packet.data_mut()[..data.len()].copy_from_slice(data);
        packet.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static ECHO_BYTES: [u8; 12] = [
        0x08, // type: echo request
        0x00, // code
        0x8e, 0xfe, // checksum
        0x12, 0x34, // ident
        0xab, 0xcd, // seq no
        0xaa, 0x00, 0x00, 0xff, // payload
    ];

    static ECHO_DATA: [u8; 4] = [0xaa, 0x00, 0x00, 0xff];

    /// Time exceeded quoting a 20-byte IPv4 header plus 8 bytes of UDP.
    static TIME_EXCEEDED_BYTES: [u8; 36] = [
        0x0b, // type: time exceeded
        0x00, // code: TTL expired
        0x00, 0x00, // checksum, filled in below
        0x00, 0x00, 0x00, 0x00, // unused
        // quoted: IPv4 header
        0x45, 0x00, 0x00, 0x30, 0x00, 0x01, 0x00, 0x00, 0x01, 0x11, 0x00, 0x00, //
        0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x01, 0x01, //
        // quoted: first 8 bytes of UDP
        0x30, 0x39, 0x00, 0x35, 0x00, 0x1c, 0x00, 0x00,
    ];

    fn with_checksum(bytes: &[u8]) -> Vec<u8> {
        let mut v = bytes.to_vec();
        Icmpv4Packet::new_unchecked(&mut v[..]).fill_checksum();
        v
    }

    fn echo_repr() -> Icmpv4Repr<'static> {
        Icmpv4Repr::EchoRequest {
            ident: 0x1234,
            seq_no: 0xabcd,
            data: &ECHO_DATA,
        }
    }

    #[test]
    fn test_echo_deconstruct() {
        let packet = Icmpv4Packet::new_checked(&ECHO_BYTES[..]).unwrap();
        assert_eq!(packet.msg_type(), Icmpv4Message::EchoRequest);
        assert_eq!(packet.msg_code(), 0);
        assert_eq!(packet.checksum(), 0x8efe);
        assert_eq!(packet.echo_ident(), 0x1234);
        assert_eq!(packet.echo_seq_no(), 0xabcd);
        assert_eq!(packet.header_len(), 8);
        assert_eq!(packet.data(), &ECHO_DATA);
        assert!(packet.verify_checksum());
    }

    #[test]
    fn test_echo_construct() {
        let mut bytes = vec![0xa5; 12];
        let mut packet = Icmpv4Packet::new_unchecked(&mut bytes);
        packet.set_msg_type(Icmpv4Message::EchoRequest);
        packet.set_msg_code(0);
        packet.set_echo_ident(0x1234);
        packet.set_echo_seq_no(0xabcd);
        packet.data_mut().copy_from_slice(&ECHO_DATA);
        packet.fill_checksum();
        assert_eq!(&packet.into_inner()[..], &ECHO_BYTES[..]);
    }

    #[test]
    fn test_echo_parse() {
        let packet = Icmpv4Packet::new_checked(&ECHO_BYTES[..]).unwrap();
        assert_eq!(
            Icmpv4Repr::parse(&packet, ChecksumMode::Verify),
            Ok(echo_repr())
        );
    }

    #[test]
    fn test_echo_emit() {
        let repr = echo_repr();
        let mut bytes = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut bytes));
        assert_eq!(&bytes[..], &ECHO_BYTES[..]);
    }

    #[test]
    fn test_echo_reply() {
        let reply = echo_repr().echo_reply().unwrap();
        assert_eq!(
            reply,
            Icmpv4Repr::EchoReply {
                ident: 0x1234,
                seq_no: 0xabcd,
                data: &ECHO_DATA
            }
        );
        assert_eq!(reply.echo_reply(), None);
        let mut bytes = vec![0; reply.buffer_len()];
        reply.emit(&mut Icmpv4Packet::new_unchecked(&mut bytes));
        assert_eq!(bytes[0], 0);
        let packet = Icmpv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&packet, ChecksumMode::Verify), Ok(reply));
    }

    #[test]
    fn test_time_exceeded_deconstruct() {
        let bytes = with_checksum(&TIME_EXCEEDED_BYTES);
        let packet = Icmpv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.msg_type(), Icmpv4Message::TimeExceeded);
        assert!(packet.msg_type().is_error());
        assert_eq!(packet.msg_code(), 0);
        assert_eq!(packet.data(), &TIME_EXCEEDED_BYTES[8..]);
        assert!(packet.verify_checksum());
        let quoted = super::super::Ipv4Packet::new_unchecked(packet.data());
        assert_eq!(quoted.dst_addr(), super::super::Ipv4Addr::new(10, 0, 1, 1));
    }

    #[test]
    fn test_time_exceeded_parse_emit() {
        let bytes = with_checksum(&TIME_EXCEEDED_BYTES);
        let packet = Icmpv4Packet::new_checked(&bytes[..]).unwrap();
        let repr = Icmpv4Repr::parse(&packet, ChecksumMode::Verify).unwrap();
        assert_eq!(
            repr,
            Icmpv4Repr::TimeExceeded {
                reason: Icmpv4TimeExceeded::TtlExpired,
                quoted: &TIME_EXCEEDED_BYTES[8..]
            }
        );
        let mut out = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut out));
        assert_eq!(out, bytes);
    }

    #[test]
    fn test_dst_unreachable_frag_required() {
        let quoted = &TIME_EXCEEDED_BYTES[8..];
        let repr = Icmpv4Repr::DstUnreachable {
            reason: Icmpv4DstUnreachable::FragRequired,
            next_hop_mtu: 1400,
            quoted,
        };
        let mut bytes = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut bytes));
        assert_eq!(&bytes[..8], &[3, 4, bytes[2], bytes[3], 0, 0, 0x05, 0x78]);
        let packet = Icmpv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.next_hop_mtu(), 1400);
        assert_eq!(Icmpv4Repr::parse(&packet, ChecksumMode::Verify), Ok(repr));
    }

    #[test]
    fn test_param_problem_round_trip() {
        let repr = Icmpv4Repr::ParamProblem {
            code: 0,
            pointer: 20,
            quoted: &TIME_EXCEEDED_BYTES[8..],
        };
        let mut bytes = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut bytes));
        assert_eq!(&bytes[4..8], &[20, 0, 0, 0]);
        let packet = Icmpv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.pointer(), 20);
        assert_eq!(Icmpv4Repr::parse(&packet, ChecksumMode::Verify), Ok(repr));
    }

    #[test]
    fn test_error_quote() {
        let big = [0u8; 1500];
        assert_eq!(error_quote(&big, MAX_ERROR_QUOTE).len(), 548);
        assert_eq!(error_quote(&big[..28], MAX_ERROR_QUOTE).len(), 28);
    }

    #[test]
    fn test_truncated() {
        assert_eq!(
            Icmpv4Packet::new_checked(&ECHO_BYTES[..7]).unwrap_err(),
            Error::Truncated
        );
        assert!(Icmpv4Packet::new_checked(&ECHO_BYTES[..8]).is_ok());
    }

    #[test]
    fn test_bad_checksum() {
        if checksum::FUZZING {
            return;
        }
        let mut bytes = ECHO_BYTES;
        bytes[11] ^= 0x01;
        let packet = Icmpv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            Icmpv4Repr::parse(&packet, ChecksumMode::Verify),
            Err(Error::BadChecksum)
        );
        assert!(Icmpv4Repr::parse(&packet, ChecksumMode::Trust).is_ok());
    }

    #[test]
    fn test_echo_nonzero_code() {
        let mut bytes = ECHO_BYTES;
        bytes[1] = 1;
        let bytes = with_checksum(&bytes);
        let packet = Icmpv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            Icmpv4Repr::parse(&packet, ChecksumMode::Verify),
            Err(Error::Malformed)
        );
    }

    #[test]
    fn test_unsupported_type() {
        let mut bytes = ECHO_BYTES;
        bytes[0] = 13; // timestamp
        let bytes = with_checksum(&bytes);
        let packet = Icmpv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.msg_type(), Icmpv4Message::Timestamp);
        assert_eq!(
            Icmpv4Repr::parse(&packet, ChecksumMode::Verify),
            Err(Error::Unsupported)
        );
    }
}
