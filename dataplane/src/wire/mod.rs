//! # Packet views
//!
//! Zero-copy views over packet bytes, in the style of smoltcp's `wire` module.
//! Each protocol has its own file with:
//!
//! * a view `XxxPacket<T: AsRef<[u8]>>` (or `EthernetFrame<T>`) that reads
//!   fields in place, by byte offset, from any buffer: a `Vec` fixture in a
//!   test, an mbuf's data slice in a worker. Writes need `T: AsMut<[u8]>`.
//! * a private `mod field` with the byte range of every field;
//! * a small `Copy` `Repr` ("representation") that [`parse`]s a checked view
//!   into plain values and `emit`s itself into a buffer.
//!
//! Fields are always read with `u16::from_be_bytes` and friends; no buffer is
//! ever cast to a `repr(packed)` struct (unaligned references are UB, and the
//! crate is `#![forbid(unsafe_code)]` anyway).
//!
//! ## The contract
//!
//! * `new_unchecked(buffer)` wraps a buffer without looking at it. Accessors on
//!   such a view may panic if the buffer is too short.
//! * `check_len()` validates every length the accessors rely on: the buffer
//!   holds the fixed header, and every length field (IHL, total length, TCP
//!   data offset, UDP length, ...) is consistent with itself and the buffer.
//! * `new_checked(buffer)` is `new_unchecked` followed by `check_len`.
//! * **Once `check_len()` returned `Ok`, no accessor panics**, on any input.
//!   Payload accessors only use lengths that `check_len` validated.
//! * Setters may assume the buffer is big enough for what they write. A setter
//!   that changes a length or layout field (IHL, data offset, an Ethernet
//!   ethertype into a VLAN TPID, ...) voids the check: call `check_len` again
//!   before trusting the accessors.
//! * `Repr::parse` does the semantic checks that a view does not (checksums,
//!   supported variants) and `Repr::emit` assumes a buffer of at least
//!   `Repr::buffer_len()` bytes.
//!
//! Errors are one small `Copy` [`Error`] whose variants are precise enough to
//! count drops by reason; [`Error::name`] gives the stable counter name.
//!
//! Under `cfg(fuzzing)` checksum *verification* always succeeds so that a
//! fuzzer reaches the code behind it (as smoltcp does); checksums are still
//! computed and filled.
//!
//! [`parse`]: ipv4::Ipv4Repr::parse
//!
//! ## The protocols
//!
//! [`ethernet`] (with 802.1Q/802.1ad tags), [`arp`], [`ipv4`], [`ipv6`] (with
//! its extension header chain), [`icmpv4`], [`icmpv6`], [`tcp`] (with its
//! options), [`udp`]; [`checksum`] holds the Internet checksum they share.

use core::fmt;
use core::str::FromStr;

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;

#[cfg(test)]
mod robustness;

pub use arp::{ArpOperation, ArpPacket, ArpRepr};
pub use ethernet::{EthernetFrame, EthernetRepr, VlanTag};
pub use icmpv4::{
    Icmpv4DstUnreachable, Icmpv4Message, Icmpv4Packet, Icmpv4Repr, Icmpv4TimeExceeded,
};
pub use icmpv6::{Icmpv6Message, Icmpv6Packet, Icmpv6Repr};
pub use ipv4::{Ipv4Packet, Ipv4Repr};
pub use ipv6::{quoted_upper_layer, ExtHeader, Ipv6FragInfo, Ipv6Packet, Ipv6Repr, UpperLayer};
pub use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
pub use tcp::{TcpFlags, TcpOption, TcpOptionIter, TcpOptions, TcpPacket, TcpRepr};
pub use udp::{UdpPacket, UdpRepr};

/// Why a packet could not be viewed or parsed.
///
/// Small and `Copy` so the hot path can return it by value and count it: every
/// variant has a stable [`name`](Error::name) and an [`index`](Error::index)
/// into a per-reason counter array of [`Error::COUNT`] slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The buffer is shorter than the (fixed part of the) header.
    Truncated,
    /// A length field lies: too small for the header, or larger than the buffer.
    BadLength,
    /// The checksum does not match the data.
    BadChecksum,
    /// The IP version nibble is not the one of the view (4 or 6).
    BadVersion,
    /// Well-formed, but a variant this code does not handle (a third VLAN tag,
    /// an ARP for another hardware type, an unknown ICMP message in a `Repr`).
    Unsupported,
    /// Structurally wrong in another way (ARP address sizes, a TCP option with
    /// length 0 or 1, a Hop-by-Hop header that is not first, ...).
    Malformed,
    /// An IPv6 extension header chain longer than
    /// [`ipv6::MAX_EXT_HEADERS`]: a known filter-evasion and DoS pattern.
    TooManyExtHeaders,
}

impl Error {
    /// Every variant, in [`index`](Error::index) order.
    pub const ALL: [Error; 7] = [
        Error::Truncated,
        Error::BadLength,
        Error::BadChecksum,
        Error::BadVersion,
        Error::Unsupported,
        Error::Malformed,
        Error::TooManyExtHeaders,
    ];

    /// Number of variants: the size of a per-reason counter array.
    pub const COUNT: usize = Self::ALL.len();

    /// Stable snake_case name, used as a counter name: never rename one.
    #[inline]
    pub const fn name(self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::BadLength => "bad_length",
            Error::BadChecksum => "bad_checksum",
            Error::BadVersion => "bad_version",
            Error::Unsupported => "unsupported",
            Error::Malformed => "malformed",
            Error::TooManyExtHeaders => "too_many_ext_headers",
        }
    }

    /// Dense index in `0..Error::COUNT`, for a counter array.
    #[inline]
    pub const fn index(self) -> usize {
        match self {
            Error::Truncated => 0,
            Error::BadLength => 1,
            Error::BadChecksum => 2,
            Error::BadVersion => 3,
            Error::Unsupported => 4,
            Error::Malformed => 5,
            Error::TooManyExtHeaders => 6,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Error::Truncated => "buffer shorter than the header",
            Error::BadLength => "length field inconsistent with the header or buffer",
            Error::BadChecksum => "bad checksum",
            Error::BadVersion => "bad IP version",
            Error::Unsupported => "unsupported protocol variant",
            Error::Malformed => "malformed header",
            Error::TooManyExtHeaders => "too many IPv6 extension headers",
        };
        f.write_str(text)
    }
}

impl std::error::Error for Error {}

/// Result type of the wire module.
pub type Result<T> = core::result::Result<T, Error>;

/// Whether `Repr::parse` verifies checksums or trusts someone who already did
/// (the NIC's RX checksum offload, e.g. DPDK's `RTE_MBUF_F_RX_*_CKSUM_GOOD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChecksumMode {
    /// Compute and compare the checksum.
    #[default]
    Verify,
    /// Skip verification: the checksum is known good.
    Trust,
}

impl ChecksumMode {
    /// `true` when the checksum must be computed and compared.
    #[inline]
    pub const fn verify(self) -> bool {
        matches!(self, ChecksumMode::Verify)
    }
}

/// Saturates a length to the 16 bits of a length field. `Repr::emit` uses it
/// so that an oversized `Repr` writes a wrong length instead of panicking.
pub(crate) fn len_u16(len: usize) -> u16 {
    u16::try_from(len).unwrap_or(u16::MAX)
}

macro_rules! enum_with_unknown {
    (
        $( #[$enum_attr:meta] )*
        pub enum $name:ident($ty:ty) {
            $( $( #[$variant_attr:meta] )* $variant:ident = $value:expr ),+ $(,)?
        }
    ) => {
        $( #[$enum_attr] )*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $( #[$variant_attr] )* $variant, )+
            /// A value this code has no name for.
            Unknown($ty),
        }

        impl ::core::convert::From<$ty> for $name {
            fn from(value: $ty) -> Self {
                match value {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }

        impl ::core::convert::From<$name> for $ty {
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}
pub(crate) use enum_with_unknown;

enum_with_unknown! {
    /// The EtherType of an Ethernet II frame (or a VLAN TPID).
    pub enum EtherType(u16) {
        /// IPv4.
        Ipv4 = 0x0800,
        /// ARP.
        Arp = 0x0806,
        /// IEEE 802.1Q VLAN tag (C-tag).
        Vlan = 0x8100,
        /// IPv6.
        Ipv6 = 0x86DD,
        /// IEEE 802.1ad service tag (S-tag, outer tag of QinQ).
        QinQ = 0x88A8,
    }
}

impl fmt::Display for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EtherType::Ipv4 => f.write_str("IPv4"),
            EtherType::Arp => f.write_str("ARP"),
            EtherType::Vlan => f.write_str("802.1Q"),
            EtherType::Ipv6 => f.write_str("IPv6"),
            EtherType::QinQ => f.write_str("802.1ad"),
            EtherType::Unknown(v) => write!(f, "0x{v:04x}"),
        }
    }
}

enum_with_unknown! {
    /// IP protocol number (IPv4) / next header (IPv6).
    pub enum IpProtocol(u8) {
        /// IPv6 Hop-by-Hop Options.
        HopByHop = 0,
        /// ICMP for IPv4.
        Icmp = 1,
        /// IGMP.
        Igmp = 2,
        /// TCP.
        Tcp = 6,
        /// UDP.
        Udp = 17,
        /// IPv6 Routing header.
        Ipv6Route = 43,
        /// IPv6 Fragment header.
        Ipv6Frag = 44,
        /// GRE.
        Gre = 47,
        /// IPsec Encapsulating Security Payload.
        Esp = 50,
        /// IPsec Authentication Header.
        Ah = 51,
        /// ICMP for IPv6.
        Icmpv6 = 58,
        /// IPv6 No Next Header.
        Ipv6NoNxt = 59,
        /// IPv6 Destination Options.
        Ipv6Opts = 60,
        /// SCTP.
        Sctp = 132,
    }
}

impl fmt::Display for IpProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpProtocol::HopByHop => f.write_str("Hop-by-Hop"),
            IpProtocol::Icmp => f.write_str("ICMP"),
            IpProtocol::Igmp => f.write_str("IGMP"),
            IpProtocol::Tcp => f.write_str("TCP"),
            IpProtocol::Udp => f.write_str("UDP"),
            IpProtocol::Ipv6Route => f.write_str("IPv6-Route"),
            IpProtocol::Ipv6Frag => f.write_str("IPv6-Frag"),
            IpProtocol::Gre => f.write_str("GRE"),
            IpProtocol::Esp => f.write_str("ESP"),
            IpProtocol::Ah => f.write_str("AH"),
            IpProtocol::Icmpv6 => f.write_str("ICMPv6"),
            IpProtocol::Ipv6NoNxt => f.write_str("IPv6-NoNxt"),
            IpProtocol::Ipv6Opts => f.write_str("IPv6-Opts"),
            IpProtocol::Sctp => f.write_str("SCTP"),
            IpProtocol::Unknown(v) => write!(f, "{v}"),
        }
    }
}

/// A 48-bit IEEE MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct EthernetAddress(pub [u8; 6]);

/// Another name for [`EthernetAddress`].
pub type MacAddress = EthernetAddress;

impl EthernetAddress {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);
    /// `00:00:00:00:00:00`, e.g. the unknown target of an ARP request.
    pub const UNSPECIFIED: EthernetAddress = EthernetAddress([0; 6]);

    /// Reads an address from the first six bytes of `data`.
    ///
    /// # Panics
    /// If `data` is shorter than six bytes (callers pass checked field ranges).
    #[inline]
    pub fn from_bytes(data: &[u8]) -> EthernetAddress {
        let mut bytes = [0; 6];
        bytes.copy_from_slice(&data[..6]);
        EthernetAddress(bytes)
    }

    /// The six address bytes.
    #[inline]
    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    /// All ones.
    #[inline]
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// The I/G bit is set (broadcast included).
    #[inline]
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// The I/G bit is clear.
    #[inline]
    pub const fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// The U/L bit is set: not an OUI-assigned address.
    #[inline]
    pub const fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A string that is not `aa:bb:cc:dd:ee:ff` (`-` also accepted as separator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressParseError;

impl fmt::Display for AddressParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid MAC address, expected aa:bb:cc:dd:ee:ff")
    }
}

impl std::error::Error for AddressParseError {}

impl FromStr for EthernetAddress {
    type Err = AddressParseError;

    fn from_str(s: &str) -> core::result::Result<Self, Self::Err> {
        let sep = if s.contains('-') { '-' } else { ':' };
        let mut bytes = [0u8; 6];
        let mut parts = s.split(sep);
        for byte in &mut bytes {
            let part = parts.next().ok_or(AddressParseError)?;
            if part.len() != 2 {
                return Err(AddressParseError);
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| AddressParseError)?;
        }
        if parts.next().is_some() {
            return Err(AddressParseError);
        }
        Ok(EthernetAddress(bytes))
    }
}

impl From<[u8; 6]> for EthernetAddress {
    fn from(bytes: [u8; 6]) -> Self {
        EthernetAddress(bytes)
    }
}

/// Reads an IPv4 address from exactly four bytes (a `mod field` range).
pub(crate) fn ipv4_at(data: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(data[at], data[at + 1], data[at + 2], data[at + 3])
}

/// Reads an IPv6 address from sixteen bytes starting at `at`.
pub(crate) fn ipv6_at(data: &[u8], at: usize) -> Ipv6Addr {
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&data[at..at + 16]);
    Ipv6Addr::from(bytes)
}

/// Reads a big-endian `u16` at `at`.
pub(crate) fn be16(data: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([data[at], data[at + 1]])
}

/// Reads a big-endian `u32` at `at`.
pub(crate) fn be32(data: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

/// Writes a big-endian `u16` at `at`.
pub(crate) fn put16(data: &mut [u8], at: usize, value: u16) {
    data[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

/// Writes a big-endian `u32` at `at`.
pub(crate) fn put32(data: &mut [u8], at: usize, value: u32) {
    data[at..at + 4].copy_from_slice(&value.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_error_names_are_unique_and_indexed() {
        for (i, e) in Error::ALL.iter().enumerate() {
            assert_eq!(e.index(), i);
            assert!(e
                .name()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'));
            assert!(!e.to_string().is_empty());
        }
        let mut names: Vec<_> = Error::ALL.iter().map(|e| e.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Error::COUNT);
    }

    #[test]
    fn test_mac_display_parse() {
        let mac: EthernetAddress = "02:00:5e:10:AB:ff".parse().unwrap();
        assert_eq!(mac.0, [0x02, 0x00, 0x5e, 0x10, 0xab, 0xff]);
        assert_eq!(mac.to_string(), "02:00:5e:10:ab:ff");
        assert_eq!(format!("{mac:?}"), "02:00:5e:10:ab:ff");
        assert_eq!("02-00-5e-10-ab-ff".parse::<EthernetAddress>(), Ok(mac));
        assert!(mac.is_unicast() && mac.is_local() && !mac.is_multicast());
        for bad in [
            "",
            "02:00:5e:10:ab",
            "02:00:5e:10:ab:ff:00",
            "2:00:5e:10:ab:ff",
            "zz:00:5e:10:ab:ff",
            "020:0:5e:10:ab:ff",
        ] {
            assert_eq!(
                bad.parse::<EthernetAddress>(),
                Err(AddressParseError),
                "{bad}"
            );
        }
    }

    #[test]
    fn test_mac_kinds() {
        assert!(EthernetAddress::BROADCAST.is_broadcast());
        assert!(EthernetAddress::BROADCAST.is_multicast());
        let mcast = EthernetAddress([0x01, 0x00, 0x5e, 0, 0, 1]);
        assert!(mcast.is_multicast() && !mcast.is_broadcast() && !mcast.is_unicast());
    }

    #[test]
    fn test_enums_round_trip() {
        for v in 0..=u8::MAX {
            assert_eq!(u8::from(IpProtocol::from(v)), v);
        }
        for v in [0x0800u16, 0x0806, 0x8100, 0x86dd, 0x88a8, 0x1234] {
            assert_eq!(u16::from(EtherType::from(v)), v);
        }
        assert_eq!(EtherType::from(0x0800), EtherType::Ipv4);
        assert_eq!(EtherType::from(0x1234), EtherType::Unknown(0x1234));
        assert_eq!(IpProtocol::from(6), IpProtocol::Tcp);
        assert_eq!(EtherType::Unknown(0x1234).to_string(), "0x1234");
    }
}
