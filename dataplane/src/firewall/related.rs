//! ICMP errors related to a connection: which may pass, and why the others
//! may not.
//!
//! An ICMP error quotes the datagram that caused it (its IP header and at
//! least the first 8 bytes of its payload: RFC 792, RFC 1812 §4.3.2.3, RFC
//! 4443 §2.4 (c)) and travels back to that datagram's source. A firewall lets
//! it through only when it is related to a tracked connection (as Linux's
//! `nf_conntrack_icmpv4_error` / `icmp_error_message` and pf's
//! `pf_icmp_state_lookup` do), and tandem checks, in this order, each with
//! its own drop reason:
//!
//! 1. **The quote is usable** (`icmp_error_bad_quote`): an IP header of the
//!    right version with 8 bytes after it (after the extension headers for
//!    IPv6), not a later fragment (no transport header to key on), and not
//!    itself an ICMP error (RFC 1122 §3.2.2: no error is sent about an error,
//!    so such a quote is forged).
//! 2. **It quotes a tracked connection** (`icmp_error_no_connection`): the
//!    quoted datagram's key, built by the same builder as every packet's
//!    ([`super::packet::flow_key`]), finds an entry.
//! 3. **It travels back** (`icmp_error_wrong_direction`): its outer
//!    destination is the quoted datagram's source, as Linux requires (the
//!    error goes in the reverse direction of the quoted packet on that
//!    connection). An error quoting a client→server segment and sent to the
//!    server is forged, whoever sends it.
//! 4. **A quoted TCP segment lies in the sender's window**
//!    (`icmp_error_out_of_window`): its sequence number is at most the
//!    highest the receiver allowed and at least one receiver window below the
//!    highest sent, as pf checks (an off-path attacker must guess it to reset
//!    or slow a connection with forged errors, RFC 5927). Linux does not
//!    check this; tandem is deliberately stricter.
//!
//! A related error changes nothing in the entry (it refreshes no timeout).

use super::packet::{flow_key, KEY_HEAD};
use crate::conntrack::conn::{Conn, L4State};
use crate::conntrack::tcp::Dir;
use crate::conntrack::{FlowKey, Side};
use crate::counters::DropReason;
use crate::wire::{quoted_upper_layer, Icmpv4Message, Icmpv6Message, IpProtocol};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The datagram an ICMP or ICMPv6 error quotes, as far as relating it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote {
    /// The quoted datagram's source: where the error must go.
    pub src: IpAddr,
    /// Its destination.
    pub dst: IpAddr,
    /// Its transport protocol.
    pub proto: IpProtocol,
    /// The first [`KEY_HEAD`] bytes of its transport header.
    pub head: [u8; KEY_HEAD],
}

/// Why an ICMP error is refused; each maps to its own drop reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unrelated {
    /// The quote is truncated, malformed, a later fragment, or an ICMP error.
    BadQuote,
    /// No tracked connection has the quoted datagram's key.
    NoConnection,
    /// The error does not travel to the quoted datagram's source.
    WrongDirection,
    /// The quoted TCP segment is outside what its sender could have sent.
    OutOfWindow,
}

impl Unrelated {
    /// The drop reason counted for it.
    pub fn reason(self) -> DropReason {
        match self {
            Unrelated::BadQuote => DropReason::IcmpErrorBadQuote,
            Unrelated::NoConnection => DropReason::IcmpErrorNoConnection,
            Unrelated::WrongDirection => DropReason::IcmpErrorWrongDirection,
            Unrelated::OutOfWindow => DropReason::IcmpErrorOutOfWindow,
        }
    }
}

impl Quote {
    /// The quote of an ICMPv4 error (`data`: what follows the 8-byte ICMP
    /// header).
    pub fn parse_v4(data: &[u8]) -> Result<Quote, Unrelated> {
        let version_ihl = *data.first().ok_or(Unrelated::BadQuote)?;
        let header_len = usize::from(version_ihl & 0x0f) * 4;
        if version_ihl >> 4 != 4 || header_len < 20 || data.len() < header_len + KEY_HEAD {
            return Err(Unrelated::BadQuote);
        }
        let offset = u16::from_be_bytes([data[6], data[7]]) & 0x1fff;
        if offset != 0 {
            return Err(Unrelated::BadQuote);
        }
        let addr = |at: usize| {
            IpAddr::V4(Ipv4Addr::new(
                data[at],
                data[at + 1],
                data[at + 2],
                data[at + 3],
            ))
        };
        Quote::new(
            addr(12),
            addr(16),
            IpProtocol::from(data[9]),
            data.get(header_len..),
        )
    }

    /// The quote of an ICMPv6 error (`data`: what follows the 8-byte ICMPv6
    /// header). The extension headers are walked within the quote.
    pub fn parse_v6(data: &[u8]) -> Result<Quote, Unrelated> {
        let upper = quoted_upper_layer(data).map_err(|_| Unrelated::BadQuote)?;
        if upper.fragment.is_some_and(|f| !f.is_first()) {
            return Err(Unrelated::BadQuote);
        }
        let addr = |at: usize| {
            let mut b = [0u8; 16];
            b.copy_from_slice(&data[at..at + 16]);
            IpAddr::V6(Ipv6Addr::from(b))
        };
        Quote::new(addr(8), addr(24), upper.protocol, data.get(upper.offset..))
    }

    fn new(
        src: IpAddr,
        dst: IpAddr,
        proto: IpProtocol,
        transport: Option<&[u8]>,
    ) -> Result<Quote, Unrelated> {
        let head: [u8; KEY_HEAD] = transport
            .and_then(|t| t.get(..KEY_HEAD))
            .and_then(|h| h.try_into().ok())
            .ok_or(Unrelated::BadQuote)?;
        let error_about_error = match proto {
            IpProtocol::Icmp => Icmpv4Message::from(head[0]).is_error(),
            IpProtocol::Icmpv6 => Icmpv6Message::from(head[0]).is_error(),
            _ => false,
        };
        if error_about_error {
            return Err(Unrelated::BadQuote);
        }
        Ok(Quote {
            src,
            dst,
            proto,
            head,
        })
    }

    /// The quoted datagram's flow key, and the side of it that sent it.
    pub fn key(&self) -> (FlowKey, Side) {
        flow_key(self.src, self.dst, self.proto, &self.head)
    }

    /// The quoted TCP segment's sequence number.
    fn tcp_seq(&self) -> Option<u32> {
        (self.proto == IpProtocol::Tcp)
            .then(|| u32::from_be_bytes([self.head[4], self.head[5], self.head[6], self.head[7]]))
    }
}

/// Decides an ICMP error travelling to `outer_dst` and quoting `quote`,
/// given the entry of the quote's key (`None`: no entry) and the side of the
/// key that sent the quoted datagram (both from [`Quote::key`]); see the
/// module docs.
pub fn check(
    outer_dst: IpAddr,
    quote: &Quote,
    side: Side,
    entry: Option<&Conn>,
) -> Result<(), Unrelated> {
    let conn = entry.ok_or(Unrelated::NoConnection)?;
    if outer_dst != quote.src {
        return Err(Unrelated::WrongDirection);
    }
    if let (L4State::Tcp(tcp), Some(seq)) = (&conn.l4, quote.tcp_seq()) {
        let dir = if side == conn.orig_side {
            Dir::Original
        } else {
            Dir::Reply
        };
        if !tcp.could_have_sent(dir, seq) {
            return Err(Unrelated::OutOfWindow);
        }
    }
    Ok(())
}
