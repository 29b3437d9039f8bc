//! What connection tracking sees of an IPv4 datagram, and the one builder of
//! its flow key.
//!
//! Four places need a datagram's key: the filter (which entry decides it),
//! the worker's prefetch (which index slot to load), the handoff (which
//! worker owns the flow, by the symmetric RSS hash of the key) and an ICMP
//! error's relation check (the key of the datagram it quotes). With sync,
//! which worker — and which unit — holds an entry depends on all of them
//! agreeing, so there is one parser ([`Datagram::parse`], over the checked
//! wire views) and one key builder ([`flow_key`], over the first bytes of the
//! transport header), used for whole datagrams and for quotes alike.

use super::related::Quote;
use crate::conntrack::{FlowKey, Side};
use crate::counters::DropReason;
use crate::wire::{
    Icmpv4Message, Icmpv4Packet, Icmpv6Message, IpProtocol, Ipv4Packet, TcpPacket, UdpPacket,
};
use std::net::{IpAddr, Ipv4Addr};

/// Bytes of the transport header the key reads: the 8 every ICMP error
/// quotes at least (RFC 792), holding TCP's and UDP's ports and ICMP's echo
/// identifier.
pub const KEY_HEAD: usize = 8;

/// The transport header of a datagram, as a checked view.
pub enum Transport<'a> {
    /// TCP.
    Tcp(TcpPacket<&'a [u8]>),
    /// UDP.
    Udp(UdpPacket<&'a [u8]>),
    /// ICMP (an echo, an error, or another message).
    Icmp(Icmpv4Packet<&'a [u8]>),
    /// Any other protocol: keyed by addresses and protocol alone.
    Other,
}

/// An IPv4 datagram, not a fragment, with a checked transport header.
pub struct Datagram<'a> {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// IP protocol.
    pub proto: IpProtocol,
    /// The transport header as a checked view.
    pub transport: Transport<'a>,
    /// The IP payload: the transport header and its data.
    pub payload: &'a [u8],
}

impl<'a> Datagram<'a> {
    /// Reads `ip` (checked). Refuses a fragment (`ipv4_fragment`: only the
    /// first carries ports, and matching fragments without them is how
    /// firewalls get bypassed) and a transport header that is truncated or
    /// lies about its length (`l4_truncated`).
    #[inline]
    pub fn parse(ip: &'a Ipv4Packet<&[u8]>) -> Result<Datagram<'a>, DropReason> {
        if ip.is_fragment() {
            return Err(DropReason::Ipv4Fragment);
        }
        let payload = ip.payload();
        let truncated = |_| DropReason::L4Truncated;
        let proto = ip.next_header();
        let transport = match proto {
            IpProtocol::Tcp => Transport::Tcp(TcpPacket::new_checked(payload).map_err(truncated)?),
            IpProtocol::Udp => Transport::Udp(UdpPacket::new_checked(payload).map_err(truncated)?),
            IpProtocol::Icmp => {
                Transport::Icmp(Icmpv4Packet::new_checked(payload).map_err(truncated)?)
            }
            _ => Transport::Other,
        };
        Ok(Datagram {
            src: ip.src_addr(),
            dst: ip.dst_addr(),
            proto,
            transport,
            payload,
        })
    }

    /// The ICMP error this datagram is, if it is one.
    #[inline]
    pub fn icmp_error(&self) -> Option<&Icmpv4Packet<&'a [u8]>> {
        match &self.transport {
            Transport::Icmp(icmp) if icmp.msg_type().is_error() => Some(icmp),
            _ => None,
        }
    }

    /// The ports of the key, in the datagram's direction.
    #[inline]
    pub fn ports(&self) -> (u16, u16) {
        key_ports(self.proto, self.payload)
    }

    /// The flow key, and the side of it that sent this datagram.
    #[inline]
    pub fn key(&self) -> (FlowKey, Side) {
        let (sport, dport) = self.ports();
        FlowKey::from_v4(
            u32::from(self.src),
            sport,
            u32::from(self.dst),
            dport,
            u8::from(self.proto),
        )
    }
}

/// The key of a datagram from `src` to `dst` whose transport header starts
/// with `head`, and the side that sent it: the one builder for whole
/// datagrams and quoted ones.
#[inline]
pub fn flow_key(src: IpAddr, dst: IpAddr, proto: IpProtocol, head: &[u8]) -> (FlowKey, Side) {
    let (sport, dport) = key_ports(proto, head);
    FlowKey::from_packet(src, sport, dst, dport, u8::from(proto))
}

/// The two port fields of a flow key: TCP and UDP ports, the identifier
/// (both sides, so a request and its reply share the key) for ICMP and
/// ICMPv6 echo, zero otherwise. `head` holds at least [`KEY_HEAD`] bytes for
/// TCP, UDP and ICMP (the checked views and the quote parser see to it);
/// fewer read as zero.
#[inline]
fn key_ports(proto: IpProtocol, head: &[u8]) -> (u16, u16) {
    let be16 = |at: usize| match head.get(at..at + 2) {
        Some(b) => u16::from_be_bytes([b[0], b[1]]),
        None => 0,
    };
    let echo = match proto {
        IpProtocol::Tcp | IpProtocol::Udp => return (be16(0), be16(2)),
        IpProtocol::Icmp => head.first().is_some_and(|&t| {
            matches!(
                Icmpv4Message::from(t),
                Icmpv4Message::EchoRequest | Icmpv4Message::EchoReply
            )
        }),
        IpProtocol::Icmpv6 => head.first().is_some_and(|&t| {
            matches!(
                Icmpv6Message::from(t),
                Icmpv6Message::EchoRequest | Icmpv6Message::EchoReply
            )
        }),
        _ => false,
    };
    if echo {
        (be16(4), be16(4))
    } else {
        (0, 0)
    }
}

/// The flow a received frame belongs to, for choosing the worker that owns it
/// and prefetching its entry: untagged Ethernet, IPv4, not a fragment; an
/// ICMP error belongs to the flow it quotes. `None` for anything else (ARP,
/// IPv6, malformed), which the receiving worker handles and counts.
#[inline]
pub fn flow_key_of_frame(frame: &[u8]) -> Option<FlowKey> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = Ipv4Packet::new_checked(frame.get(14..)?).ok()?;
    let datagram = Datagram::parse(&ip).ok()?;
    match datagram.icmp_error() {
        Some(icmp) => Some(Quote::parse_v4(icmp.data()).ok()?.key().0),
        None => Some(datagram.key().0),
    }
}
