//! What the table holds per connection, and the protocol pseudo-states.
//!
//! TCP gets the full tracker ([`TcpConn`]); UDP, ICMP echo and every other IP
//! protocol get a two-state pseudo-connection: *unreplied* until a packet
//! comes back, then *replied*, each with its own timeout (Linux's defaults).

use super::key::Side;
use super::tcp::{TcpConn, TcpState, TcpTimeouts};

/// Pseudo-state of a connectionless flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pseudo {
    /// Only the first direction seen.
    Unreplied,
    /// Packets seen both ways.
    Replied,
}

/// Protocol-specific state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4State {
    /// Full TCP tracking.
    Tcp(TcpConn),
    /// UDP.
    Udp(Pseudo),
    /// ICMP or ICMPv6 echo (keyed by identifier).
    IcmpEcho(Pseudo),
    /// Any other IP protocol.
    Other(Pseudo),
}

impl L4State {
    /// A short state name for listings (`ESTABLISHED`, `UDP_REPLIED`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            L4State::Tcp(t) => t.state().name(),
            L4State::Udp(Pseudo::Unreplied) => "UDP_UNREPLIED",
            L4State::Udp(Pseudo::Replied) => "UDP_REPLIED",
            L4State::IcmpEcho(Pseudo::Unreplied) => "ICMP_UNREPLIED",
            L4State::IcmpEcho(Pseudo::Replied) => "ICMP_REPLIED",
            L4State::Other(Pseudo::Unreplied) => "UNREPLIED",
            L4State::Other(Pseudo::Replied) => "REPLIED",
        }
    }

    /// The TCP state, if this is TCP.
    pub fn tcp_state(&self) -> Option<TcpState> {
        match self {
            L4State::Tcp(t) => Some(t.state()),
            _ => None,
        }
    }
}

/// Per-connection flags.
pub mod flag {
    /// Synchronise this connection to the partner (the rule's `sync`).
    pub const SYNC: u8 = 0x01;
    /// Its last event was lost to a full queue: the shard's walker sends its
    /// full state again.
    pub const RESEND: u8 = 0x02;
    /// The rule asked to log it.
    pub const LOG: u8 = 0x04;
    /// Installed from the partner, not yet forwarding (larval).
    pub const LARVAL: u8 = 0x08;
    /// Named by the partner: its [`SyncId`](crate::conntrack::record::SyncId) is the
    /// partner's, kept beside the table (for life, also after a takeover).
    pub const ADOPTED: u8 = 0x10;
    /// To be synchronised once it is old enough (the unit synchronises only
    /// connections that lived `min_age` seconds: Stormshield's "sync by
    /// duration"); until then it is not `SYNC`, so the partner hears nothing
    /// of it, not even its delete.
    pub const SYNC_LATER: u8 = 0x40;
    /// Which of the two rule sets a reload keeps apart its `rule` indexes:
    /// the shard's current parity, or the previous one until the reload's
    /// walk has renumbered it.
    pub const RULES_ODD: u8 = 0x20;
}

/// One tracked connection: 72 bytes (checked by a test), so a table entry
/// (key + this + bookkeeping, 124 bytes) stays within two cache lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conn {
    /// Protocol state.
    pub l4: L4State,
    /// Seconds since boot when it was created.
    pub created: u32,
    /// The rule that let it in (`u16::MAX`: none, e.g. synchronised).
    pub rule: u16,
    /// Ingress interface of the original direction.
    pub in_iface: u8,
    /// Egress interface of the original direction.
    pub out_iface: u8,
    /// Which side of the key sent the first packet.
    pub orig_side: Side,
    /// [`flag`] bits.
    pub flags: u8,
    /// Low 16 bits of the second of the last event sent for it, to space
    /// out refreshes of long-lived entries.
    pub synced_at: u16,
}

impl Default for Conn {
    /// An empty slot's filler (the table preallocates every entry).
    fn default() -> Self {
        Conn {
            l4: L4State::Other(Pseudo::Unreplied),
            created: 0,
            rule: u16::MAX,
            in_iface: 0,
            out_iface: 0,
            orig_side: Side::Lo,
            flags: 0,
            synced_at: 0,
        }
    }
}

/// Timeouts in seconds for every protocol (Linux's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP, per state.
    pub tcp: TcpTimeouts,
    /// UDP before a reply (`nf_conntrack_udp_timeout`).
    pub udp_unreplied: u32,
    /// UDP after a reply (`nf_conntrack_udp_timeout_stream`).
    pub udp_replied: u32,
    /// ICMP echo (`nf_conntrack_icmp_timeout`).
    pub icmp: u32,
    /// Other protocols (`nf_conntrack_generic_timeout`).
    pub other: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            tcp: TcpTimeouts::default(),
            udp_unreplied: 30,
            udp_replied: 120,
            icmp: 30,
            other: 600,
        }
    }
}

/// The longest time between two events for a live synchronised entry.
pub const REFRESH_MAX: u32 = 60;

impl Timeouts {
    /// How often a live entry in this state is refreshed to the partner:
    /// every minute, or twice per timeout for short ones, so the partner's
    /// copy never lapses while the connection lives.
    pub fn refresh_interval(&self, l4: &L4State) -> u32 {
        let timeout = match l4 {
            L4State::Tcp(t) => self.tcp.of(t.state()),
            other => self.pseudo(other),
        };
        (timeout / 2).clamp(1, REFRESH_MAX)
    }

    /// The timeout of a pseudo-state flow.
    pub fn pseudo(&self, l4: &L4State) -> u32 {
        match l4 {
            L4State::Tcp(_) => self.tcp.established,
            L4State::Udp(Pseudo::Unreplied) => self.udp_unreplied,
            L4State::Udp(Pseudo::Replied) => self.udp_replied,
            L4State::IcmpEcho(_) => self.icmp,
            L4State::Other(_) => self.other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_is_compact() {
        assert_eq!(std::mem::size_of::<TcpConn>(), 60);
        assert_eq!(std::mem::size_of::<Conn>(), 72, "as the docs say");
    }
}
