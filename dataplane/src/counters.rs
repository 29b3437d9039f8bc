//! Per-worker counters, by name.
//!
//! Every packet a worker handles ends up in exactly one outcome: transmitted,
//! consumed by the unit itself (an ARP or echo reply is a transmission of its
//! own), or dropped for a named [`DropReason`]. One macro list generates the
//! reasons and their display names, so the two can never drift (FD.io VPP's
//! X-macro habit).
//!
//! Counters have a single writer (the worker that owns them) and any number of
//! readers (the control thread). The writer therefore does a relaxed load and
//! store instead of a locked read-modify-write: no bus lock on the fast path,
//! and a reader never sees a torn value.

use std::sync::atomic::{AtomicU64, Ordering};

/// A counter written by exactly one thread and read by any.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`; call only from the owning worker.
    #[inline]
    pub fn add(&self, n: u64) {
        let v = self.0.load(Ordering::Relaxed);
        self.0.store(v.wrapping_add(n), Ordering::Relaxed);
    }

    /// Adds one; call only from the owning worker.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Sets a gauge; call only from the owning worker.
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// The current value, from any thread.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

macro_rules! drop_reasons {
    ($($variant:ident => $name:literal: $doc:literal,)*) => {
        /// Why a worker dropped a packet. Each has its own counter.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason {
            $(#[doc = $doc] $variant,)*
        }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];
            /// How many reasons there are.
            pub const COUNT: usize = Self::ALL.len();

            /// The stable counter name (snake case).
            pub fn name(self) -> &'static str {
                match self { $(DropReason::$variant => $name,)* }
            }
        }
    };
}

drop_reasons! {
    EthTruncated => "eth_truncated": "Frame shorter than an Ethernet header.",
    NotForUs => "not_for_us": "Destination MAC is neither ours, our virtual MAC, nor broadcast.",
    VlanUnconfigured => "vlan_unconfigured": "802.1Q-tagged frame on a port with no VLAN configured.",
    UnknownEthertype => "unknown_ethertype": "Ethertype the unit does not handle.",
    Ipv6Unsupported => "ipv6_unsupported": "IPv6 is parsed but not yet routed (needs neighbour discovery).",
    ArpMalformed => "arp_malformed": "ARP that is not Ethernet/IPv4 or is truncated.",
    ArpNotForUs => "arp_not_for_us": "ARP request for an address the unit does not own.",
    ArpBadSender => "arp_bad_sender": "ARP whose sender is not on the interface's subnet, or is multicast/broadcast.",
    Ipv4Truncated => "ipv4_truncated": "Shorter than an IPv4 header.",
    Ipv4BadVersion => "ipv4_bad_version": "IP version field is not 4 in an IPv4 ethertype.",
    Ipv4BadLength => "ipv4_bad_length": "IPv4 header or total length lies about the buffer.",
    Ipv4BadChecksum => "ipv4_bad_checksum": "IPv4 header checksum does not verify.",
    Ipv4Options => "ipv4_options": "IPv4 with options (pf's default: blocked unless allowed).",
    Ipv4BadSource => "ipv4_bad_source": "Martian source: zero, loopback, multicast, broadcast or class E.",
    Ipv4BadDestination => "ipv4_bad_destination": "Destination is zero, loopback, class E, or a broadcast the unit does not forward.",
    Ipv4Multicast => "ipv4_multicast": "Multicast: the unit does not route multicast.",
    TtlExpired => "ttl_expired": "TTL would reach 0 (ICMP time exceeded sent when allowed).",
    NoRoute => "no_route": "No route to the destination (ICMP unreachable sent when allowed).",
    FragmentationNeeded => "fragmentation_needed": "Larger than the egress MTU with DF set (ICMP frag-needed sent, RFC 1812 §5.2.6); without DF it is fragmented instead.",
    FragmentOffsetOverflow => "fragment_offset_overflow": "Had to be fragmented, but a fragment's offset would pass 65528 bytes: a fragment ending past 64 KiB (RFC 791 §3.1).",
    LocalMalformed => "local_malformed": "Truncated or bad-checksum ICMP addressed to the unit.",
    LocalNoService => "local_no_service": "Addressed to the unit, but nothing on the data ports serves it.",
    ArpQueueFull => "arp_queue_full": "Waiting for ARP, but the queue for that next hop (or all of them) is full.",
    ArpUnresolved => "arp_unresolved": "The next hop never answered ARP.",
    NeighborTableFull => "neighbor_table_full": "No room for a new neighbour entry.",
    NoMbuf => "no_mbuf": "No buffer to build a reply, an ARP request or a datagram's fragments (the datagram is dropped whole).",
    HandoffFull => "handoff_full": "The owning worker's handoff queue was full.",
    Ipv4Fragment => "ipv4_fragment": "A fragment: no ports to match without reassembly, which tandem does not do yet.",
    L4Truncated => "l4_truncated": "TCP, UDP or ICMP header truncated or lying about its length.",
    L4BadChecksum => "l4_bad_checksum": "TCP, UDP or ICMP checksum does not verify (as Linux conntrack checks).",
    BlockedByRule => "blocked_by_rule": "A new flow the rules (or the default policy) block.",
    TableFull => "table_full": "A new connection, refused because this worker's table is full.",
    NoConnection => "no_connection": "An echo reply or similar with no connection to belong to.",
    Standby => "standby": "A frame the passive unit leaves to the active one: forwarded traffic, or for a virtual IP or MAC.",
    Larval => "larval": "A packet of a connection this unit holds larval: the partner forwards it until a takeover.",
    IcmpErrorBadQuote => "icmp_error_bad_quote": "An ICMP error whose quote is truncated, malformed, a later fragment, or itself an ICMP error.",
    IcmpErrorNoConnection => "icmp_error_no_connection": "An ICMP error quoting a packet of no tracked connection.",
    IcmpErrorWrongDirection => "icmp_error_wrong_direction": "An ICMP error not addressed to the source of the packet it quotes (forged: errors travel back).",
    IcmpErrorOutOfWindow => "icmp_error_out_of_window": "An ICMP error quoting a TCP segment outside what its sender could have sent (pf's check).",
    TcpBadFlags => "tcp_bad_flags": "A TCP flag combination no stack sends (SYN+FIN, none, FIN without ACK, ...).",
    TcpNoConnection => "tcp_no_connection": "TCP with no connection that is not a SYN (a bare ACK: no mid-stream pickup).",
    TcpBadTransition => "tcp_bad_transition": "TCP flags the connection's state does not allow.",
    TcpSeqOverWindow => "tcp_seq_over_window": "TCP data beyond the receiver's window.",
    TcpAckOverSent => "tcp_ack_over_sent": "TCP acknowledging data that was never sent.",
    TcpBadRst => "tcp_bad_rst": "TCP RST below the highest sequence the peer acknowledged.",
    TxFull => "tx_full": "The port's transmit queue did not take the packet.",
}

macro_rules! worker_counters {
    ($($field:ident: $doc:literal,)*) => {
        /// The counters of one worker core.
        #[derive(Debug)]
        pub struct WorkerCounters {
            $(#[doc = $doc] pub $field: Counter,)*
            drops: [Counter; DropReason::COUNT],
        }

        impl Default for WorkerCounters {
            fn default() -> Self {
                Self {
                    $($field: Counter::default(),)*
                    drops: std::array::from_fn(|_| Counter::default()),
                }
            }
        }

        impl WorkerCounters {
            /// Every counter as `(name, value)`, drops named `drop.<reason>`.
            pub fn snapshot(&self) -> Vec<(String, u64)> {
                let mut out = vec![$((stringify!($field).to_string(), self.$field.get()),)*];
                for r in DropReason::ALL {
                    out.push((format!("drop.{}", r.name()), self.dropped(*r)));
                }
                out
            }
        }
    };
}

worker_counters! {
    rx_packets: "Packets read from the worker's rx queues.",
    rx_bytes: "Bytes read from the worker's rx queues.",
    tx_packets: "Packets handed to a tx queue and accepted.",
    tx_bytes: "Bytes handed to a tx queue and accepted.",
    forwarded: "IPv4 packets routed to a next hop (each fragment the unit made counts).",
    datagrams_fragmented: "IPv4 datagrams over the egress MTU without DF, split into fragments (RFC 791 §3.2).",
    fragments_created: "Fragments made of them, each at most the egress MTU.",
    arp_replies_sent: "ARP replies for the unit's addresses and virtual IPs.",
    arp_received: "ARP replies and gratuitous ARP taken in.",
    arp_requests_sent: "ARP requests to resolve next hops.",
    arp_learned: "Neighbour entries created or refreshed from ARP.",
    garp_sent: "Gratuitous ARP announcing a virtual IP (RFC 5227 ARP Announcement), sent when the unit takes over.",
    echo_replies_sent: "ICMP echo replies to the unit's addresses.",
    icmp_errors_sent: "ICMP time-exceeded / unreachable sent.",
    icmp_errors_rate_limited: "ICMP errors not sent because of the rate limit.",
    probe_sent: "ICMP echo requests asking the partner on the data networks whether it is alive (the partner probe).",
    probe_replies: "The partner's answers to them (its last one stamped for the control plane).",
    accepted_state: "Packets passed by their connection's entry.",
    accepted_new: "New connections a rule let in (entry created).",
    accepted_stateless: "Packets a rule without keep_state let through.",
    accepted_related: "ICMP errors passed because they quote a tracked connection.",
    handed_off: "Packets sent to the worker that owns their flow.",
    conn_created: "Connections created.",
    conn_expired: "Connections removed by timeout.",
    conn_closed: "Connections removed by a RST or a reopened tuple.",
    conn_active: "Connections in this worker's table now.",
    events_sent: "State-change events queued for the sync lcore.",
    events_overflow: "Events refused by a full queue (entry marked for re-send, or the delete kept).",
    conn_resent: "Full states sent again after their event was refused.",
    conn_exported: "Entries streamed for a bulk.",
    resend_pending: "Entries waiting to be sent again now.",
    deletes_pending: "Refused deletes waiting to be sent again now.",
    deletes_lost: "Refused deletes past the bounded record (the digest check repairs them).",
    rules_renumbered: "Entries whose rule index a rules reload renumbered.",
    went_live: "Larval entries that went live at their first packet after a takeover.",
    windows_relearnt: "Adopted TCP entries whose windows were learnt again after a takeover: strict checking resumed.",
    sync_installed: "Larval entries installed from the partner.",
    sync_replaced: "Partner's full states that replaced an entry held under its name or key.",
    sync_updated: "Partner's compact updates applied.",
    sync_stale: "Partner's updates older than the entry, not applied.",
    sync_unknown: "Partner's updates for an entry not held (its full state asked for).",
    sync_deleted: "Partner's deletes applied.",
    sync_unknown_deletes: "Partner's deletes for an entry not held.",
    sync_bad: "Partner's records with a state value out of range.",
    sync_table_full: "Partner's full states refused by a full table (none evicted).",
    sync_flushed: "Adopted entries dropped because the partner restarted.",
    sync_purged: "Adopted entries a bulk did not refresh, dropped at its end.",
    digest_matches: "Digest checks that agreed with the partner.",
    digest_mismatches: "Digest checks that found a difference (the shard is asked for again).",
    config_applied: "Shared configurations (virtual IPs and MACs, routes, timeouts) put in force without a restart.",
    config_refused: "Shared configurations refused, nothing changed: other ports or own addresses than the running ones, or a route whose gateway is on no subnet.",
    idle_sleeps: "Times the worker slept because it found nothing to do.",
}

impl WorkerCounters {
    /// Counts one drop.
    #[inline]
    pub fn record_drop(&self, reason: DropReason) {
        self.drops[reason as usize].inc();
    }

    /// Packets dropped for `reason` so far.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize].get()
    }

    /// Packets dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.drops.iter().map(Counter::get).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_snake_case() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        assert!(names.iter().all(|n| n
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())));
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate drop reason name");
    }

    #[test]
    fn drops_are_counted_by_reason() {
        let c = WorkerCounters::default();
        c.record_drop(DropReason::TtlExpired);
        c.record_drop(DropReason::TtlExpired);
        c.record_drop(DropReason::NoRoute);
        assert_eq!(c.dropped(DropReason::TtlExpired), 2);
        assert_eq!(c.dropped(DropReason::NoRoute), 1);
        assert_eq!(c.dropped_total(), 3);
        let snap = c.snapshot();
        assert!(snap.contains(&("drop.ttl_expired".to_string(), 2)));
        assert!(snap.contains(&("rx_packets".to_string(), 0)));
    }
}
