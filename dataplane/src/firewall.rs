//! The stateful filter a routed IPv4 packet passes before it is forwarded.
//!
//! Order, as in pf and Linux: a packet of a tracked connection is decided by
//! its entry (the rules are not consulted); a packet with no entry is
//! decided by the rules — first match wins, default block — and a pass with
//! `keep_state` creates the entry. An ICMP error passes only if the packet it
//! quotes belongs to a tracked connection. Every refusal is counted by name.
//!
//! Fragments are dropped and counted (`ipv4_fragment`): without reassembly a
//! fragment has no ports to match, and letting them through unmatched is how
//! firewalls get bypassed. Linux reassembles before conntrack; tandem does
//! not yet.

use crate::conntrack::shard::{Admission, Flow, L4Packet, Refused, Shard, Tracked};
use crate::conntrack::tcp::{Segment, TcpInvalid};
use crate::conntrack::FlowKey;
use crate::counters::{DropReason, WorkerCounters};
use crate::filter::{Action, PacketMeta, RuleSet};
use crate::wire::{Icmpv4Message, Icmpv4Packet, IpProtocol, Ipv4Packet, TcpPacket, UdpPacket};
use std::net::IpAddr;
use std::sync::Arc;

/// Rule index recorded for a connection admitted by the default policy.
pub const DEFAULT_RULE: u16 = u16::MAX;

/// One worker's filter: its connection-tracking shard and the rules in force.
pub struct Firewall {
    shard: Shard,
    rules: Arc<RuleSet>,
    /// Trust the NIC's L4 checksum verdict instead of verifying in software.
    pub trust_l4_checksum: bool,
}

impl Firewall {
    /// A filter over `shard` with `rules`.
    pub fn new(shard: Shard, rules: Arc<RuleSet>) -> Self {
        Self {
            shard,
            rules,
            trust_l4_checksum: false,
        }
    }

    /// The shard, for listings and tests.
    pub fn shard(&self) -> &Shard {
        &self.shard
    }

    /// The rules in force.
    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    /// Puts new rules in force. Existing connections are untouched: they
    /// are decided by their entries, and only new flows meet the new rules.
    pub fn set_rules(&mut self, rules: Arc<RuleSet>) {
        self.rules = rules;
    }

    /// Removes what has timed out (bounded work); `now` in seconds.
    pub fn expire(&mut self, now: u32) -> usize {
        self.shard.expire(now)
    }

    /// Decides an IPv4 datagram (`ip`, checked) from `in_iface` routed to
    /// `out_iface`: `Ok` to forward, or the reason to drop it.
    pub fn filter(
        &mut self,
        ip: &Ipv4Packet<&[u8]>,
        in_iface: usize,
        out_iface: usize,
        now: u32,
        counters: &WorkerCounters,
    ) -> Result<(), DropReason> {
        if ip.is_fragment() {
            return Err(DropReason::Ipv4Fragment);
        }
        let (src, dst) = (IpAddr::V4(ip.src_addr()), IpAddr::V4(ip.dst_addr()));
        let proto = u8::from(ip.next_header());
        let payload = ip.payload();
        let parsed = match ip.next_header() {
            IpProtocol::Tcp => self.tcp(payload, src, dst)?,
            IpProtocol::Udp => self.udp(payload, src, dst)?,
            IpProtocol::Icmp => match self.icmp(payload)? {
                Icmp::Flow(p) => p,
                Icmp::Error(quoted) => {
                    return if self.shard.contains(&quoted) {
                        counters.accepted_related.inc();
                        Ok(())
                    } else {
                        Err(DropReason::IcmpErrorNoConnection)
                    };
                }
            },
            _ => Parsed {
                sport: 0,
                dport: 0,
                l4: L4Packet::Other,
                icmp_type: None,
            },
        };
        let (key, side) = FlowKey::from_packet(src, parsed.sport, dst, parsed.dport, proto);
        let flow = Flow {
            key,
            side,
            l4: parsed.l4,
        };
        match self.shard.track(&flow, now) {
            Tracked::Pass => {
                counters.accepted_state.inc();
                return Ok(());
            }
            Tracked::Refused(r) => return Err(refused(r)),
            Tracked::New => {}
        }

        let meta = PacketMeta {
            in_iface,
            out_iface,
            src,
            dst,
            proto,
            src_port: if parsed.icmp_type.is_some() {
                0
            } else {
                parsed.sport
            },
            dst_port: if parsed.icmp_type.is_some() {
                0
            } else {
                parsed.dport
            },
            icmp_type: parsed.icmp_type,
        };
        let verdict = self.rules.evaluate(&meta);
        if verdict.action == Action::Block {
            return Err(DropReason::BlockedByRule);
        }
        if !verdict.keep_state {
            counters.accepted_stateless.inc();
            return Ok(());
        }
        let adm = Admission {
            rule: verdict.rule.unwrap_or(DEFAULT_RULE),
            sync: verdict.sync,
            log: verdict.log,
            in_iface: u8::try_from(in_iface).unwrap_or(u8::MAX),
            out_iface: u8::try_from(out_iface).unwrap_or(u8::MAX),
        };
        self.shard.create(&flow, adm, now).map_err(refused)?;
        counters.accepted_new.inc();
        Ok(())
    }

    fn tcp(&self, payload: &[u8], src: IpAddr, dst: IpAddr) -> Result<Parsed, DropReason> {
        let tcp = TcpPacket::new_checked(payload).map_err(|_| DropReason::L4Truncated)?;
        if !self.trust_l4_checksum && !tcp.verify_checksum(&src, &dst) {
            return Err(DropReason::L4BadChecksum);
        }
        let len = payload.len().saturating_sub(tcp.header_len());
        let seg = Segment::from_packet(&tcp, u32::try_from(len).unwrap_or(u32::MAX));
        Ok(Parsed {
            sport: tcp.src_port(),
            dport: tcp.dst_port(),
            l4: L4Packet::Tcp(seg),
            icmp_type: None,
        })
    }

    fn udp(&self, payload: &[u8], src: IpAddr, dst: IpAddr) -> Result<Parsed, DropReason> {
        let udp = UdpPacket::new_checked(payload).map_err(|_| DropReason::L4Truncated)?;
        if !self.trust_l4_checksum && udp.checksum() != 0 && !udp.verify_checksum(&src, &dst) {
            return Err(DropReason::L4BadChecksum);
        }
        Ok(Parsed {
            sport: udp.src_port(),
            dport: udp.dst_port(),
            l4: L4Packet::Udp,
            icmp_type: None,
        })
    }

    fn icmp(&self, payload: &[u8]) -> Result<Icmp, DropReason> {
        let icmp = Icmpv4Packet::new_checked(payload).map_err(|_| DropReason::L4Truncated)?;
        if !self.trust_l4_checksum && !icmp.verify_checksum() {
            return Err(DropReason::L4BadChecksum);
        }
        let ty = icmp.msg_type();
        let echo = |request| {
            let id = icmp.echo_ident();
            Icmp::Flow(Parsed {
                sport: id,
                dport: id,
                l4: L4Packet::IcmpEcho { request },
                icmp_type: Some(ty.into()),
            })
        };
        match ty {
            Icmpv4Message::EchoRequest => Ok(echo(true)),
            Icmpv4Message::EchoReply => Ok(echo(false)),
            t if t.is_error() => quoted_key(icmp.data())
                .map(Icmp::Error)
                .ok_or(DropReason::L4Truncated),
            t => Ok(Icmp::Flow(Parsed {
                sport: 0,
                dport: 0,
                l4: L4Packet::Other,
                icmp_type: Some(t.into()),
            })),
        }
    }

    /// Starts loading the connection index slot of this frame's flow; returns
    /// the flow's hash for [`prefetch_entry`](Self::prefetch_entry), or `None`
    /// for a frame without a flow.
    #[inline]
    pub fn prefetch_slot(&self, frame: &[u8]) -> Option<u64> {
        let table = self.shard.table();
        let hash = table.hash(&flow_key_of_frame(frame)?);
        table.prefetch_slot(hash);
        Some(hash)
    }

    /// Starts loading the connection entry of a flow whose slot was prefetched.
    #[inline]
    pub fn prefetch_entry(&self, hash: u64) {
        self.shard.table().prefetch_entry(hash);
    }

    /// Copies the shard's own counts into the worker's counters.
    pub fn publish(&self, counters: &WorkerCounters) {
        let st = self.shard.stats();
        counters.conn_active.set(self.shard.table().len() as u64);
        counters.conn_created.set(st.created);
        counters.conn_expired.set(st.expired);
        counters.conn_closed.set(st.closed);
        counters.events_sent.set(self.shard.events().sent.get());
        counters
            .events_overflow
            .set(self.shard.events().overflow.get());
    }
}

/// The flow a frame belongs to (the same key the filter builds), for
/// choosing the worker that owns it: untagged Ethernet, IPv4, not a
/// fragment. An ICMP error belongs to the flow it quotes. `None` for anything else (ARP, IPv6 for now), which the
/// receiving worker handles.
#[inline]
pub fn flow_key_of_frame(frame: &[u8]) -> Option<FlowKey> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = Ipv4Packet::new_checked(frame.get(14..)?).ok()?;
    if ip.is_fragment() {
        return None;
    }
    let (src, dst) = (IpAddr::V4(ip.src_addr()), IpAddr::V4(ip.dst_addr()));
    let l4 = ip.payload();
    let proto = ip.next_header();
    if proto == IpProtocol::Icmp && Icmpv4Message::from(*l4.first()?).is_error() {
        return quoted_key(l4.get(8..)?);
    }
    let (sport, dport) = key_ports(proto, l4)?;
    Some(FlowKey::from_packet(src, sport, dst, dport, u8::from(proto)).0)
}

/// The L4 facts of a packet.
struct Parsed {
    sport: u16,
    dport: u16,
    l4: L4Packet,
    icmp_type: Option<u8>,
}

enum Icmp {
    Flow(Parsed),
    /// An error quoting a packet of this connection.
    Error(FlowKey),
}

/// The key of the datagram an ICMP error quotes (its IPv4 header and at
/// least the first 8 bytes of its payload, RFC 792).
fn quoted_key(quoted: &[u8]) -> Option<FlowKey> {
    let ip = Ipv4Packet::new_unchecked(quoted);
    let hl = usize::from(quoted.first()? & 0x0f) * 4;
    if hl < 20 || quoted.len() < hl + 8 || quoted[0] >> 4 != 4 {
        return None;
    }
    let l4 = &quoted[hl..];
    let (src, dst) = (IpAddr::V4(ip.src_addr()), IpAddr::V4(ip.dst_addr()));
    let proto = u8::from(ip.next_header());
    let (sport, dport) = key_ports(ip.next_header(), l4)?;
    Some(FlowKey::from_packet(src, sport, dst, dport, proto).0)
}

/// The two port fields of a flow key, as the filter builds them: TCP and
/// UDP ports, the identifier (both sides) for ICMP echo, zero otherwise.
fn key_ports(proto: IpProtocol, l4: &[u8]) -> Option<(u16, u16)> {
    let be16 = |at: usize| Some(u16::from_be_bytes([*l4.get(at)?, *l4.get(at + 1)?]));
    match proto {
        IpProtocol::Tcp | IpProtocol::Udp => Some((be16(0)?, be16(2)?)),
        IpProtocol::Icmp => match Icmpv4Message::from(*l4.first()?) {
            Icmpv4Message::EchoRequest | Icmpv4Message::EchoReply => {
                let id = be16(4)?;
                Some((id, id))
            }
            _ => Some((0, 0)),
        },
        _ => Some((0, 0)),
    }
}

fn refused(r: Refused) -> DropReason {
    match r {
        Refused::TableFull => DropReason::TableFull,
        Refused::NoConnection => DropReason::NoConnection,
        Refused::Tcp(t) => match t {
            TcpInvalid::BadFlags => DropReason::TcpBadFlags,
            TcpInvalid::NoConnection => DropReason::TcpNoConnection,
            TcpInvalid::BadTransition => DropReason::TcpBadTransition,
            TcpInvalid::SeqOverWindow => DropReason::TcpSeqOverWindow,
            TcpInvalid::AckOverSent => DropReason::TcpAckOverSent,
            TcpInvalid::BadRst => DropReason::TcpBadRst,
        },
    }
}
