//! The stateful filter a routed IPv4 packet passes before it is forwarded.
//!
//! Order, as in pf and Linux: a packet of a tracked connection is decided by
//! its entry (the rules are not consulted); a packet with no entry is
//! decided by the rules — first match wins, default block — and a pass with
//! `keep_state` creates the entry. An ICMP error passes only if it is related
//! to a tracked connection: it quotes a packet of it and travels back to that
//! packet's source ([`related`]). Every refusal is counted by name.
//!
//! [`packet`] holds the one parser and flow-key builder the filter, the
//! worker's prefetch and handoff, and the relation of ICMP errors share.
//!
//! Fragments are dropped and counted (`ipv4_fragment`): without reassembly a
//! fragment has no ports to match, and letting them through unmatched is how
//! firewalls get bypassed. Linux reassembles before conntrack; tandem does
//! not yet.

pub mod packet;
pub mod related;

pub use packet::flow_key_of_frame;

use crate::conntrack::conn::Timeouts;
use crate::conntrack::shard::{Admission, Flow, L4Packet, Refused, Shard, Tracked};
use crate::conntrack::tcp::{Segment, TcpInvalid};
use crate::counters::{DropReason, WorkerCounters};
use crate::filter::{Action, PacketMeta, RuleSet};
use crate::wire::{Icmpv4Message, Ipv4Packet};
use packet::{Datagram, Transport};
use related::{Quote, Unrelated};
use std::net::IpAddr;
use std::sync::Arc;

pub use crate::conntrack::record::{DEFAULT_RULE, NO_RULE};

/// One worker's filter: its connection-tracking shard and the rules in force.
pub struct Firewall {
    shard: Shard,
    rules: Arc<RuleSet>,
    /// Trust the NIC's L4 checksum verdict instead of verifying in software.
    pub trust_l4_checksum: bool,
}

impl Firewall {
    /// A filter over `shard` with `rules`.
    pub fn new(mut shard: Shard, rules: Arc<RuleSet>) -> Self {
        shard.renumber_rules(rules.revision().0, Vec::new());
        Self {
            shard,
            rules,
            trust_l4_checksum: false,
        }
    }

    /// The shard, for the sync lcore's items and the background walks.
    pub fn shard_mut(&mut self) -> &mut Shard {
        &mut self.shard
    }

    /// The shard, for listings and tests.
    pub fn shard(&self) -> &Shard {
        &self.shard
    }

    /// The rules in force.
    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    /// Puts new rules in force. Existing connections are decided by their
    /// entries, and only new flows meet the new rules; their rule indexes are
    /// renumbered into the new set in the background ([`Shard::renumber_rules`]).
    /// While the last reload's renumbering runs, the rules are given back:
    /// offer them again later ([`Firewall::ready_for_rules`]).
    pub fn set_rules(&mut self, rules: Arc<RuleSet>) -> Result<(), Arc<RuleSet>> {
        let map = rules.renumbering_from(&self.rules, NO_RULE);
        if !self.shard.renumber_rules(rules.revision().0, map) {
            return Err(rules);
        }
        self.rules = rules;
        Ok(())
    }

    /// Puts new connection timeouts in force; entries keep their expiry
    /// until their next packet ([`Shard::set_timeouts`]).
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.shard.set_timeouts(timeouts);
    }

    /// Whether [`Firewall::set_rules`] would take new rules now.
    pub fn ready_for_rules(&self) -> bool {
        !self.shard.renumbering()
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
        let datagram = Datagram::parse(ip)?;
        let (src, dst) = (IpAddr::V4(datagram.src), IpAddr::V4(datagram.dst));
        if !self.trust_l4_checksum && !checksum_ok(&datagram, &src, &dst) {
            return Err(DropReason::L4BadChecksum);
        }
        if let Some(icmp) = datagram.icmp_error() {
            return self.related(dst, icmp.data(), counters);
        }
        let (key, side) = datagram.key();
        let l4 = match &datagram.transport {
            Transport::Tcp(tcp) => {
                let len = datagram.payload.len().saturating_sub(tcp.header_len());
                L4Packet::Tcp(Segment::from_packet(
                    tcp,
                    u32::try_from(len).unwrap_or(u32::MAX),
                ))
            }
            Transport::Udp(_) => L4Packet::Udp,
            Transport::Icmp(icmp) => match icmp.msg_type() {
                Icmpv4Message::EchoRequest => L4Packet::IcmpEcho { request: true },
                Icmpv4Message::EchoReply => L4Packet::IcmpEcho { request: false },
                _ => L4Packet::Other,
            },
            Transport::Other => L4Packet::Other,
        };
        let flow = Flow { key, side, l4 };
        match self.shard.track(&flow, now) {
            Tracked::Pass => {
                counters.accepted_state.inc();
                return Ok(());
            }
            Tracked::Refused(r) => return Err(refused(r)),
            Tracked::New => {}
        }

        // Rules match ICMP by type; its identifier is not a port.
        let icmp_type = match &datagram.transport {
            Transport::Icmp(icmp) => Some(u8::from(icmp.msg_type())),
            _ => None,
        };
        let (src_port, dst_port) = match icmp_type {
            Some(_) => (0, 0),
            None => datagram.ports(),
        };
        let meta = PacketMeta {
            in_iface,
            out_iface,
            src,
            dst,
            proto: u8::from(datagram.proto),
            src_port,
            dst_port,
            icmp_type,
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

    /// An ICMP error to `outer_dst` whose quote is `quoted`: passes only when
    /// related to a tracked connection (see [`related`]).
    fn related(
        &self,
        outer_dst: IpAddr,
        quoted: &[u8],
        counters: &WorkerCounters,
    ) -> Result<(), DropReason> {
        let quote = Quote::parse_v4(quoted).map_err(Unrelated::reason)?;
        let (key, side) = quote.key();
        related::check(outer_dst, &quote, side, self.shard.get(&key)).map_err(Unrelated::reason)?;
        counters.accepted_related.inc();
        Ok(())
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
        let (resends, deletes) = self.shard.pending();
        counters.conn_resent.set(st.resent);
        counters.conn_exported.set(st.exported);
        counters.resend_pending.set(resends as u64);
        counters.deletes_pending.set(deletes as u64);
        counters.deletes_lost.set(st.deletes_lost);
        counters.rules_renumbered.set(st.renumbered);
        counters.went_live.set(st.went_live);
        counters.windows_relearnt.set(st.windows_relearnt);
        let r = self.shard.received();
        for (c, v) in [
            (&counters.sync_installed, r.installed),
            (&counters.sync_replaced, r.replaced),
            (&counters.sync_updated, r.updated),
            (&counters.sync_stale, r.stale),
            (&counters.sync_unknown, r.unknown),
            (&counters.sync_deleted, r.deleted),
            (&counters.sync_unknown_deletes, r.unknown_deletes),
            (&counters.sync_bad, r.bad),
            (&counters.sync_table_full, r.table_full),
            (&counters.sync_flushed, r.flushed),
            (&counters.sync_purged, r.purged),
            (&counters.digest_matches, r.digest_matches),
            (&counters.digest_mismatches, r.digest_mismatches),
        ] {
            c.set(v);
        }
    }
}

/// Whether the transport checksum verifies (as Linux conntrack checks it; a
/// UDP checksum of zero means none was computed).
fn checksum_ok(datagram: &Datagram<'_>, src: &IpAddr, dst: &IpAddr) -> bool {
    match &datagram.transport {
        Transport::Tcp(tcp) => tcp.verify_checksum(src, dst),
        Transport::Udp(udp) => udp.checksum() == 0 || udp.verify_checksum(src, dst),
        Transport::Icmp(icmp) => icmp.verify_checksum(),
        Transport::Other => true,
    }
}

fn refused(r: Refused) -> DropReason {
    match r {
        Refused::TableFull => DropReason::TableFull,
        Refused::NoConnection => DropReason::NoConnection,
        Refused::Larval => DropReason::Larval,
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

#[cfg(test)]
mod tests;
