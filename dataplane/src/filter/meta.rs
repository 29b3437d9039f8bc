//! What the rules look at in a packet: the first packet of a new flow, reduced to a
//! few `Copy` fields so that evaluation touches no packet buffer.

use crate::forward::IfIndex;
use std::net::IpAddr;

/// ICMP for IPv4.
pub const ICMP: u8 = 1;
/// TCP.
pub const TCP: u8 = 6;
/// UDP.
pub const UDP: u8 = 17;
/// ICMP for IPv6.
pub const ICMPV6: u8 = 58;
/// SCTP.
pub const SCTP: u8 = 132;

/// Whether packets of `proto` carry source and destination ports.
#[inline]
pub fn has_ports(proto: u8) -> bool {
    matches!(proto, TCP | UDP | SCTP)
}

/// Whether `proto` is ICMP of either family (has a type, no ports).
#[inline]
pub fn is_icmp(proto: u8) -> bool {
    matches!(proto, ICMP | ICMPV6)
}

/// The first packet of a flow, as the worker hands it to the rules: after routing,
/// so the egress interface is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketMeta {
    /// Interface it came in on.
    pub in_iface: IfIndex,
    /// Interface routing sends it out of.
    pub out_iface: IfIndex,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol (IPv6: the upper-layer next header).
    pub proto: u8,
    /// Source port; 0 for protocols without ports.
    pub src_port: u16,
    /// Destination port; 0 for protocols without ports.
    pub dst_port: u16,
    /// ICMP or ICMPv6 type; `None` for other protocols.
    pub icmp_type: Option<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::IpProtocol;

    #[test]
    fn numbers_agree_with_the_wire_module() {
        assert_eq!(u8::from(IpProtocol::Icmp), ICMP);
        assert_eq!(u8::from(IpProtocol::Tcp), TCP);
        assert_eq!(u8::from(IpProtocol::Udp), UDP);
        assert_eq!(u8::from(IpProtocol::Icmpv6), ICMPV6);
        assert_eq!(u8::from(IpProtocol::Sctp), SCTP);
    }

    #[test]
    fn port_and_icmp_protocols() {
        assert!(has_ports(TCP) && has_ports(UDP) && has_ports(SCTP));
        assert!(!has_ports(ICMP) && !has_ports(47));
        assert!(is_icmp(ICMP) && is_icmp(ICMPV6));
        assert!(!is_icmp(TCP));
    }
}
