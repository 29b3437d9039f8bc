//! One worker's shard of connection tracking: the table, the timeouts, the
//! worker's side of synchronisation, and the decisions the firewall asks for.
//!
//! The shard knows nothing of rules or packets' bytes: the firewall hands it
//! a [`Flow`] (key, side, and the L4 facts tracking needs) and asks
//! [`Shard::track`] whether an entry decides. If none does, the firewall runs
//! the rules and, for a pass with state, calls [`Shard::create`].
//!
//! # What the partner is told, and the promise that nothing is lost
//!
//! Every change of a synchronised entry (flag `SYNC`) becomes an
//! [`Event`] on the worker's queue, carrying a [`Record`] (never the
//! in-memory entry). The queue may be full; then:
//!
//! * a changed entry is marked `RESEND` and counted; [`Shard::service`]'s
//!   walker sends its full state again once the queue has room;
//! * a delete goes into a bounded record of refused deletes, re-offered the
//!   same way; past its bound it is counted, and the partner's digest check
//!   ([`Event::Digest`]) finds the difference and asks for the shard again.
//!
//! # The receiving side
//!
//! [`Shard::receive`] installs what the partner sends as *larval* entries
//! (`LARVAL`: present, listed, in the digest, not forwarding; `ADOPTED`: named
//! by the partner's [`SyncId`]). Updates never go backwards (`stale`), an
//! update for a name this shard does not hold asks for the full entry, and a
//! full table refuses (counted), never evicts. [`Shard::go_live`] makes every
//! larval entry forward at once (a takeover): each leaves its larval state
//! at its first packet, accepting the first sequence numbers in each direction
//! until the windows are learnt again.
//!
//! # Rule references
//!
//! An entry's `rule` indexes the rule set in force when it was created. A
//! reload ([`Shard::renumber_rules`]) flips the shard's rules parity; entries
//! of the old parity still index the old set (and a record says so, with that
//! set's revision) until the walker has renumbered them.

use super::conn::{flag, Conn, L4State, Pseudo, Timeouts};
use super::event::{Event, EventKind, EventQueue, Inbound};
use super::id_index::IdIndex;
use super::key::{FlowKey, Side};
use super::record::{
    apply_progress, state_value, Digest, NotApplied, Record, RuleRef, SyncId, DEFAULT_RULE, NO_RULE,
};
use super::table::ConnTable;
use super::tcp::{Dir, Segment, TcpConn, TcpInvalid, TcpState, TcpVerdict};
use std::collections::VecDeque;

/// The L4 facts of a packet that tracking needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4Packet {
    /// A TCP segment.
    Tcp(Segment),
    /// A UDP datagram.
    Udp,
    /// ICMP echo request (`true`) or reply (`false`).
    IcmpEcho {
        /// Request rather than reply.
        request: bool,
    },
    /// Any other protocol.
    Other,
}

/// A packet reduced to what the shard looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// The connection's key.
    pub key: FlowKey,
    /// Which side of the key sent this packet.
    pub side: Side,
    /// Protocol facts.
    pub l4: L4Packet,
}

/// Why tracking refused a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The TCP tracker said no.
    Tcp(TcpInvalid),
    /// An echo reply, or a UDP/other packet, that can never start a flow
    /// here (an echo reply with no request).
    NoConnection,
    /// The table is full: new connections are refused, none evicted.
    TableFull,
    /// The entry is larval: the partner forwards this connection, not this unit.
    Larval,
}

/// The shard's answer for a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracked {
    /// An entry exists and lets it pass.
    Pass,
    /// An entry exists and refuses it.
    Refused(Refused),
    /// No entry: the rules decide (and may call [`Shard::create`]).
    New,
}

/// What the rules said about a new flow, as the shard needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// Rule index (`DEFAULT_RULE` for the default policy).
    pub rule: u16,
    /// Tell the partner about it.
    pub sync: bool,
    /// Log it.
    pub log: bool,
    /// Ingress interface.
    pub in_iface: u8,
    /// Egress interface.
    pub out_iface: u8,
}

/// Counts the shard keeps itself (the worker publishes them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardStats {
    /// Connections created.
    pub created: u64,
    /// Connections removed by their timeout.
    pub expired: u64,
    /// Connections removed by a RST or a reopen.
    pub closed: u64,
    /// Packets refused because their entry is larval.
    pub larval_hits: u64,
    /// Larval entries that went live at their first packet after a takeover.
    pub went_live: u64,
    /// Full states sent again after their event was refused.
    pub resent: u64,
    /// Entries streamed for a bulk.
    pub exported: u64,
    /// Refused deletes that found no room in their bounded record either
    /// (the digest check repairs what they leave behind).
    pub deletes_lost: u64,
    /// Entries whose rule index a reload renumbered.
    pub renumbered: u64,
}

/// What the receiving side did with the partner's records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiveStats {
    /// New larval entries.
    pub installed: u64,
    /// Full states that replaced an entry held under the same name or key.
    pub replaced: u64,
    /// Compact updates applied.
    pub updated: u64,
    /// Updates older than what the entry holds, not applied.
    pub stale: u64,
    /// Updates for a name this shard does not hold (the full state is asked for).
    pub unknown: u64,
    /// Deletes applied.
    pub deleted: u64,
    /// Deletes for a name this shard does not hold.
    pub unknown_deletes: u64,
    /// Records with a state value out of range.
    pub bad: u64,
    /// Full states refused because the table is full (none is evicted).
    pub table_full: u64,
    /// Adopted entries dropped by a flush (the partner restarted).
    pub flushed: u64,
    /// Adopted entries a bulk did not refresh, dropped at its end.
    pub purged: u64,
    /// Digest checks that found a difference.
    pub digest_mismatches: u64,
    /// Digest checks that agreed.
    pub digest_matches: u64,
}

/// Refused deletes remembered for re-sending (then counted as lost).
pub const LOST_DELETES: usize = 4096;

/// Entries a walker looks at per [`Shard::service`] call.
pub const WALK_BUDGET: usize = 256;

/// The shard's part of synchronisation, apart from the table so that the
/// table's expiry callback can use it.
struct SyncSide {
    events: EventQueue,
    /// Low 24 bits of this unit's boot epoch, and this worker's index.
    creator: u32,
    worker: u8,
    /// Adopted names → entries, and entries → adopted names.
    adopted: IdIndex,
    adopted_ids: Vec<SyncId>,
    lost_deletes: VecDeque<(SyncId, FlowKey)>,
    /// Entries marked `RESEND`.
    resend_pending: usize,
    /// Entries marked `SYNC_LATER`.
    young: usize,
    /// Of every `SYNC` entry.
    digest: Digest,
}

impl SyncSide {
    /// An entry's name: the partner's for an adopted one, else its own.
    fn name(&self, id: u32, conn: &Conn) -> SyncId {
        if conn.flags & flag::ADOPTED != 0 {
            self.adopted_ids[id as usize]
        } else {
            SyncId::new(self.creator, self.worker, id)
        }
    }

    /// Bookkeeping for an entry leaving the table: its digest term, its
    /// adopted name, its pending re-send, and the delete the partner must
    /// hear of (not for a larval entry: the partner told us, not the reverse).
    fn gone(&mut self, id: u32, key: &FlowKey, conn: &Conn, stats: &mut ShardStats) {
        if conn.flags & flag::SYNC_LATER != 0 {
            self.young = self.young.saturating_sub(1);
        }
        if conn.flags & flag::SYNC == 0 {
            return;
        }
        self.digest.remove(key, &conn.l4);
        let name = self.name(id, conn);
        if conn.flags & flag::ADOPTED != 0 {
            self.adopted.remove(name);
        }
        if conn.flags & flag::RESEND != 0 {
            self.resend_pending = self.resend_pending.saturating_sub(1);
        }
        if conn.flags & flag::LARVAL != 0 {
            return;
        }
        let deleted = Event::Deleted {
            id: name,
            key: *key,
        };
        if !self.lost_deletes.is_empty() || !self.events.push(deleted) {
            // Behind earlier refused deletes, in order.
            if self.lost_deletes.len() < LOST_DELETES {
                self.lost_deletes.push_back((name, *key));
            } else {
                stats.deletes_lost += 1;
            }
        }
    }
}

/// A reload's renumbering of the old rule set's indexes.
struct Renumber {
    /// Old index → new index (or `NO_RULE`).
    map: Vec<u16>,
    cursor: u32,
}

/// One worker's connection tracking.
pub struct Shard {
    table: ConnTable<Conn>,
    timeouts: Timeouts,
    stats: ShardStats,
    received: ReceiveStats,
    sync: SyncSide,
    /// Rule set revisions by parity, and the current parity (0 or `RULES_ODD`).
    revisions: [u64; 2],
    parity: u8,
    renumber: Option<Renumber>,
    resend_cursor: u32,
    mature_cursor: u32,
    export_cursor: Option<u32>,
    /// Seconds a connection must live before it is synchronised (0: at once).
    min_age: u32,
    /// Larval entries forward (this unit took over).
    live: bool,
}

/// Expiry work per poll: bounded, so a burst of timeouts never stalls a worker.
const EXPIRE_BUDGET: usize = 256;

/// Seconds an adopted entry outlives the timeout its record gave: the
/// partner's delete normally comes first, so the two tables agree.
pub const LARVAL_GRACE: u32 = 30;

impl Shard {
    /// A shard for `capacity` connections; all memory is taken now. Its
    /// events name entries as worker 0 of creator 0 until [`Shard::set_identity`].
    pub fn new(capacity: usize, seed: u64, timeouts: Timeouts, events: EventQueue) -> Self {
        Self {
            table: ConnTable::with_capacity(capacity, seed),
            timeouts,
            stats: ShardStats::default(),
            received: ReceiveStats::default(),
            sync: SyncSide {
                events,
                creator: 0,
                worker: 0,
                adopted: IdIndex::with_capacity(capacity),
                adopted_ids: {
                    let mut v = vec![SyncId::default(); capacity];
                    super::id_index::touch(&mut v);
                    v
                },
                lost_deletes: VecDeque::with_capacity(LOST_DELETES),
                resend_pending: 0,
                young: 0,
                digest: Digest::default(),
            },
            revisions: [0; 2],
            parity: 0,
            renumber: None,
            resend_cursor: 0,
            mature_cursor: 0,
            export_cursor: None,
            min_age: 0,
            live: false,
        }
    }

    /// Names this shard's entries as `worker`'s on the unit whose boot epoch
    /// is `epoch` (see [`SyncId`]). Call before the first connection.
    pub fn set_identity(&mut self, epoch: u64, worker: u8) {
        self.sync.creator = u32::try_from(epoch & 0xff_ffff).unwrap_or(0);
        self.sync.worker = worker;
    }

    /// Synchronises connections only once they have lived `secs` seconds
    /// (0, the default: at once). Shorter-lived ones cost the HA link nothing.
    pub fn set_min_age(&mut self, secs: u32) {
        self.min_age = secs;
    }

    /// The table, for listings.
    pub fn table(&self) -> &ConnTable<Conn> {
        &self.table
    }

    /// The timeouts in force.
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// What the shard counted.
    pub fn stats(&self) -> ShardStats {
        self.stats
    }

    /// What the receiving side counted.
    pub fn received(&self) -> ReceiveStats {
        self.received
    }

    /// The digest of every synchronised entry (sent or adopted).
    pub fn digest(&self) -> Digest {
        self.sync.digest
    }

    /// The event queue (the consumer side is the sync lcore's).
    pub fn events(&self) -> &EventQueue {
        &self.sync.events
    }

    /// Entries waiting to be sent again, and refused deletes waiting.
    pub fn pending(&self) -> (usize, usize) {
        (self.sync.resend_pending, self.sync.lost_deletes.len())
    }

    /// An entry's name between the units.
    pub fn sync_id(&self, id: u32) -> SyncId {
        self.sync.name(id, self.table.get(id))
    }

    /// The record of entry `id` at `now` (seconds).
    pub fn record(&self, id: u32, now: u32) -> Record {
        let conn = self.table.get(id);
        let parity = usize::from(conn.flags & flag::RULES_ODD != 0);
        let rule = RuleRef {
            revision: self.revisions[parity],
            index: conn.rule,
        };
        let timeout = self.table.expiry(id).saturating_sub(now);
        Record::of(
            self.sync.name(id, conn),
            self.table.key(id),
            conn,
            rule,
            timeout,
        )
    }

    /// A long-lived synchronised entry that has had no event for its
    /// refresh interval gets a `Refresh`, so the partner's copy stays alive.
    fn refresh_if_due(&mut self, id: u32, now: u32) {
        let conn = self.table.get(id);
        let since = u32::from(low16(now).wrapping_sub(conn.synced_at));
        if conn.flags & flag::SYNC != 0 && since >= self.timeouts.refresh_interval(&conn.l4) {
            self.emit(id, EventKind::Refresh, now);
        }
    }

    /// Tracks a packet against its entry, if it has one. `now` is seconds.
    pub fn track(&mut self, flow: &Flow, now: u32) -> Tracked {
        let hash = self.table.hash(&flow.key);
        let Some(id) = self.table.find(&flow.key, hash) else {
            return Tracked::New;
        };
        // Tracked in place: the entry is already in cache from `find`, and
        // like Linux the tracker's notes persist even for a refused segment.
        let conn = self.table.get_mut(id);
        if conn.flags & flag::LARVAL != 0 {
            if !self.live {
                self.stats.larval_hits += 1;
                return Tracked::Refused(Refused::Larval);
            }
            conn.flags &= !flag::LARVAL;
            if let L4State::Tcp(t) = &mut conn.l4 {
                *t = TcpConn::adopted(t.state(), t.peers);
            }
            self.stats.went_live += 1;
        }
        if conn.flags & flag::SYNC_LATER != 0 {
            self.mature(id, now);
        }
        let conn = self.table.get_mut(id);
        let dir = if flow.side == conn.orig_side {
            Dir::Original
        } else {
            Dir::Reply
        };
        match (&mut conn.l4, flow.l4) {
            (L4State::Tcp(tcp), L4Packet::Tcp(seg)) => {
                let old = tcp.state();
                let verdict = tcp.track(dir, &seg, &self.timeouts.tcp);
                let new = tcp.state();
                match verdict {
                    TcpVerdict::Accept { timeout } => {
                        if let Some(t) = timeout {
                            self.table.set_expiry(id, now.saturating_add(t));
                        }
                        if new != old {
                            self.changed(id, old as u8);
                            self.emit(id, transition_kind(old, new), now);
                        } else {
                            self.refresh_if_due(id, now);
                        }
                        Tracked::Pass
                    }
                    TcpVerdict::Ignore => Tracked::Pass,
                    TcpVerdict::Invalid(why) => Tracked::Refused(Refused::Tcp(why)),
                    TcpVerdict::Close => {
                        self.remove(id);
                        self.stats.closed += 1;
                        Tracked::Pass
                    }
                    TcpVerdict::Reopen => {
                        self.remove(id);
                        self.stats.closed += 1;
                        Tracked::New
                    }
                }
            }
            (L4State::Udp(p) | L4State::IcmpEcho(p) | L4State::Other(p), _) => {
                let was = *p;
                if dir == Dir::Reply {
                    *p = Pseudo::Replied;
                }
                let timeout = self.timeouts.pseudo(&conn.l4);
                self.table.set_expiry(id, now.saturating_add(timeout));
                if was == Pseudo::Unreplied && dir == Dir::Reply {
                    self.changed(id, state_value(&L4State::Udp(Pseudo::Unreplied)));
                    self.emit(id, EventKind::Established, now);
                } else {
                    self.refresh_if_due(id, now);
                }
                Tracked::Pass
            }
            // A TCP key always holds TCP state; anything else is a caller bug
            // that must not pass.
            (L4State::Tcp(_), _) => Tracked::Refused(Refused::NoConnection),
        }
    }

    /// The digest follows a synchronised entry's state change (`old`: its
    /// state value before).
    fn changed(&mut self, id: u32, old: u8) {
        let conn = self.table.get(id);
        if conn.flags & flag::SYNC != 0 {
            let key = self.table.key(id);
            let d = &mut self.sync.digest;
            d.sum = d
                .sum
                .wrapping_sub(Digest::term_of(key, &conn.l4, old))
                .wrapping_add(Digest::term(key, &conn.l4));
        }
    }

    /// Creates the entry for a new flow the rules let in with state.
    pub fn create(&mut self, flow: &Flow, adm: Admission, now: u32) -> Result<(), Refused> {
        let (l4, timeout) = match flow.l4 {
            L4Packet::Tcp(seg) => {
                let (tcp, t) = TcpConn::new(&seg, &self.timeouts.tcp).map_err(Refused::Tcp)?;
                (L4State::Tcp(tcp), t)
            }
            L4Packet::Udp => (L4State::Udp(Pseudo::Unreplied), self.timeouts.udp_unreplied),
            L4Packet::IcmpEcho { request: true } => {
                (L4State::IcmpEcho(Pseudo::Unreplied), self.timeouts.icmp)
            }
            L4Packet::IcmpEcho { request: false } => return Err(Refused::NoConnection),
            L4Packet::Other => (L4State::Other(Pseudo::Unreplied), self.timeouts.other),
        };
        let mut flags = self.parity;
        let later = adm.sync && self.min_age > 0;
        if later {
            flags |= flag::SYNC_LATER;
        } else if adm.sync {
            flags |= flag::SYNC;
        }
        if adm.log {
            flags |= flag::LOG;
        }
        let conn = Conn {
            l4,
            created: now,
            rule: adm.rule,
            in_iface: adm.in_iface,
            out_iface: adm.out_iface,
            orig_side: flow.side,
            flags,
            synced_at: low16(now),
        };
        let hash = self.table.hash(&flow.key);
        let id = self
            .table
            .insert(flow.key, hash, conn, now.saturating_add(timeout))
            .map_err(|_| Refused::TableFull)?;
        self.stats.created += 1;
        if later {
            self.sync.young += 1;
        } else if adm.sync {
            self.sync.digest.add(&flow.key, &conn.l4);
        }
        self.emit(id, EventKind::Created, now);
        Ok(())
    }

    /// A `SYNC_LATER` entry old enough becomes synchronised: the partner
    /// hears of it now, in full. Returns whether it did.
    fn mature(&mut self, id: u32, now: u32) -> bool {
        let conn = self.table.get(id);
        if conn.flags & flag::SYNC_LATER == 0 || now.saturating_sub(conn.created) < self.min_age {
            return false;
        }
        let key = *self.table.key(id);
        let conn = self.table.get_mut(id);
        conn.flags = (conn.flags & !flag::SYNC_LATER) | flag::SYNC;
        let l4 = conn.l4;
        self.sync.young = self.sync.young.saturating_sub(1);
        self.sync.digest.add(&key, &l4);
        self.emit(id, EventKind::Created, now);
        true
    }

    fn mature_walk(&mut self, now: u32) {
        let capacity = u32::try_from(self.table.capacity()).unwrap_or(u32::MAX);
        for _ in 0..WALK_BUDGET {
            if self.sync.young == 0 || !self.sync.events.has_headroom() {
                return;
            }
            if self.mature_cursor >= capacity {
                self.mature_cursor = 0;
            }
            let id = self.mature_cursor;
            if self.table.is_live(id) {
                self.mature(id, now);
            }
            self.mature_cursor += 1;
        }
    }

    /// The connection with this key, if any (for an ICMP error quoting it).
    pub fn get(&self, key: &FlowKey) -> Option<&Conn> {
        let id = self.table.find(key, self.table.hash(key))?;
        Some(self.table.get(id))
    }

    /// Removes what has timed out, a bounded amount per call.
    pub fn expire(&mut self, now: u32) -> usize {
        let (sync, stats) = (&mut self.sync, &mut self.stats);
        let n = self.table.expire(now, EXPIRE_BUDGET, |id, key, conn| {
            sync.gone(id, key, &conn, stats)
        });
        self.stats.expired += n as u64;
        n
    }

    fn remove(&mut self, id: u32) {
        let key = *self.table.key(id);
        let conn = self.table.remove(id);
        self.sync.gone(id, &key, &conn, &mut self.stats);
    }

    /// Offers an event for a synchronised entry (not a larval one: those are
    /// the partner's to tell); a full queue marks it for re-send.
    fn emit(&mut self, id: u32, kind: EventKind, now: u32) {
        let conn = *self.table.get(id);
        if conn.flags & (flag::SYNC | flag::LARVAL) != flag::SYNC {
            return;
        }
        if conn.flags & flag::RESEND != 0 {
            // Its full state goes soon anyway, and must not be overtaken.
            return;
        }
        let record = self.record(id, now);
        let entry = self.table.get_mut(id);
        entry.synced_at = low16(now);
        if !self.sync.events.push(Event::Conn { kind, record }) {
            entry.flags |= flag::RESEND;
            self.sync.resend_pending += 1;
        }
    }

    /// Background work, a bounded amount per call (the worker calls it every
    /// few milliseconds): refused deletes and marked entries go again while
    /// the event queue has headroom, a bulk export proceeds, and a reload's
    /// renumbering proceeds.
    pub fn service(&mut self, now: u32) {
        while let Some(&(id, key)) = self.sync.lost_deletes.front() {
            if !self.sync.events.has_headroom()
                || !self.sync.events.push(Event::Deleted { id, key })
            {
                break;
            }
            self.sync.lost_deletes.pop_front();
        }
        if self.sync.resend_pending > 0 && self.sync.lost_deletes.is_empty() {
            self.resend_walk(now);
        }
        if self.export_cursor.is_some() {
            self.export_walk(now);
        }
        if self.renumber.is_some() {
            self.renumber_walk();
        }
        if self.sync.young > 0 {
            self.mature_walk(now);
        }
    }

    fn resend_walk(&mut self, now: u32) {
        let capacity = u32::try_from(self.table.capacity()).unwrap_or(u32::MAX);
        for _ in 0..WALK_BUDGET {
            if self.resend_cursor >= capacity {
                self.resend_cursor = 0;
            }
            let id = self.resend_cursor;
            if !self.sync.events.has_headroom() {
                return;
            }
            if self.table.is_live(id) && self.table.get(id).flags & flag::RESEND != 0 {
                let record = self.record(id, now);
                let event = Event::Conn {
                    kind: EventKind::Resent,
                    record,
                };
                if !self.sync.events.push(event) {
                    return;
                }
                let entry = self.table.get_mut(id);
                entry.flags &= !flag::RESEND;
                entry.synced_at = low16(now);
                self.sync.resend_pending -= 1;
                self.stats.resent += 1;
                if self.sync.resend_pending == 0 {
                    return;
                }
            }
            self.resend_cursor += 1;
        }
    }

    fn export_walk(&mut self, now: u32) {
        let Some(mut cursor) = self.export_cursor else {
            return;
        };
        let capacity = u32::try_from(self.table.capacity()).unwrap_or(u32::MAX);
        for _ in 0..WALK_BUDGET {
            if !self.sync.events.has_headroom() {
                break;
            }
            if cursor >= capacity {
                if self.sync.events.push(Event::BulkDone) {
                    self.export_cursor = None;
                    return;
                }
                break;
            }
            if self.table.is_live(cursor)
                && self.table.get(cursor).flags & (flag::SYNC | flag::LARVAL) == flag::SYNC
            {
                let record = self.record(cursor, now);
                let event = Event::Conn {
                    kind: EventKind::Exported,
                    record,
                };
                if !self.sync.events.push(event) {
                    break;
                }
                self.stats.exported += 1;
            }
            cursor += 1;
        }
        self.export_cursor = Some(cursor);
    }

    /// Starts streaming the whole table (synchronised, not larval entries),
    /// long-idle ones included, paced by [`Shard::service`]; then
    /// [`Event::BulkDone`]. Asked again while one runs, it starts over.
    pub fn export(&mut self) {
        self.export_cursor = Some(0);
    }

    /// Whether a bulk export is in progress.
    pub fn exporting(&self) -> bool {
        self.export_cursor.is_some()
    }

    /// Puts a new rule set in force for new entries: `revision` is its
    /// content hash, `map` takes each index of the set in force until now to
    /// its index in the new one ([`NO_RULE`] when it is gone). Existing
    /// entries keep meaning the old set until the walker has renumbered them.
    /// Returns `false` (and changes nothing) while the last renumbering runs.
    pub fn renumber_rules(&mut self, revision: u64, map: Vec<u16>) -> bool {
        if self.renumber.is_some() {
            return false;
        }
        self.parity ^= flag::RULES_ODD;
        self.revisions[usize::from(self.parity != 0)] = revision;
        if !self.table.is_empty() {
            self.renumber = Some(Renumber { map, cursor: 0 });
        }
        true
    }

    /// Whether a renumbering is still in progress.
    pub fn renumbering(&self) -> bool {
        self.renumber.is_some()
    }

    /// The rule set revision new entries' rule indexes refer to.
    pub fn rules_revision(&self) -> u64 {
        self.revisions[usize::from(self.parity != 0)]
    }

    fn renumber_walk(&mut self) {
        let Some(r) = self.renumber.as_mut() else {
            return;
        };
        let capacity = u32::try_from(self.table.capacity()).unwrap_or(u32::MAX);
        let end = r
            .cursor
            .saturating_add(u32::try_from(4 * WALK_BUDGET).unwrap_or(u32::MAX))
            .min(capacity);
        for id in r.cursor..end {
            if !self.table.is_live(id) {
                continue;
            }
            let conn = self.table.get_mut(id);
            if conn.flags & flag::RULES_ODD != self.parity {
                conn.flags ^= flag::RULES_ODD;
                if usize::from(conn.rule) < r.map.len() {
                    conn.rule = r.map[usize::from(conn.rule)];
                } else if conn.rule != DEFAULT_RULE {
                    conn.rule = NO_RULE;
                }
                self.stats.renumbered += 1;
            }
        }
        r.cursor = end;
        if end >= capacity {
            self.renumber = None;
        }
    }

    /// Larval entries forward from now on (this unit took over); each leaves
    /// its larval state at its first packet. `false` stops that again.
    pub fn go_live(&mut self, live: bool) {
        self.live = live;
    }

    /// Handles one item from the sync lcore at `now` (seconds).
    pub fn receive(&mut self, item: Inbound, now: u32) {
        match item {
            Inbound::Install(r) => self.install(&r, now),
            Inbound::Update { id, rss, progress } => self.update(id, rss, &progress, now),
            Inbound::Delete(id) => match self.adopted_entry(id) {
                Some(local) => {
                    self.remove(local);
                    self.received.deleted += 1;
                }
                None => self.received.unknown_deletes += 1,
            },
            Inbound::Digest(theirs) => {
                let ours = self.sync.digest;
                if ours == theirs {
                    self.received.digest_matches += 1;
                } else {
                    self.received.digest_mismatches += 1;
                }
                self.sync.events.push(Event::DigestChecked { theirs, ours });
            }
            // A live shard's entries are this unit's connections now: only a
            // shard still holding the partner's (larval) ones drops them.
            Inbound::BulkEnd(_) | Inbound::Flush if self.live => {}
            Inbound::BulkEnd(started) => {
                // Last told before the bulk began (in 16-bit second arithmetic).
                let before = |conn: &Conn| {
                    let age = low16(started).wrapping_sub(conn.synced_at);
                    age != 0 && age < 0x8000
                };
                self.received.purged += self.drop_adopted(before);
            }
            Inbound::Flush => self.received.flushed += self.drop_adopted(|_| true),
            Inbound::Export => self.export(),
            Inbound::Request(id) => self.answer(id, now),
            Inbound::Live(live) => self.go_live(live),
            Inbound::SendDigest => {
                let d = self.sync.digest;
                self.sync.events.push(Event::Digest(d));
            }
        }
    }

    /// The larval entry the partner named `id`, if this shard holds it.
    fn adopted_entry(&self, id: SyncId) -> Option<u32> {
        self.sync.adopted.get(id)
    }

    fn install(&mut self, r: &Record, now: u32) {
        let Ok(mut conn) = r.larval(self.rules_revision(), now) else {
            self.received.bad += 1;
            return;
        };
        conn.flags |= self.parity;
        conn.synced_at = low16(now);
        let expires = now
            .saturating_add(r.progress.timeout)
            .saturating_add(LARVAL_GRACE);
        // What this shard holds under the name or the key is replaced: the
        // partner's full state is the newer truth.
        let hash = self.table.hash(&r.key);
        let by_name = self.adopted_entry(r.id);
        let by_key = self.table.find(&r.key, hash);
        if by_name.is_some() || by_key.is_some() {
            self.received.replaced += 1;
        }
        for local in [by_name, by_key].into_iter().flatten() {
            if self.table.is_live(local) {
                let key = *self.table.key(local);
                let old = self.table.remove(local);
                // Quietly: the partner knows, it told us.
                let mut quiet = old;
                quiet.flags |= flag::LARVAL;
                self.sync.gone(local, &key, &quiet, &mut self.stats);
            }
        }
        let Ok(local) = self.table.insert(r.key, hash, conn, expires) else {
            self.received.table_full += 1;
            return;
        };
        if self.sync.adopted.insert(r.id, local).is_err() {
            // Sized like the table, so this cannot happen; never leave an
            // entry without its name.
            self.table.remove(local);
            self.received.table_full += 1;
            return;
        }
        self.sync.adopted_ids[local as usize] = r.id;
        self.sync.digest.add(&r.key, &conn.l4);
        self.received.installed += 1;
    }

    fn update(&mut self, id: SyncId, rss: u16, p: &super::record::Progress, now: u32) {
        let Some(local) = self.adopted_entry(id) else {
            self.received.unknown += 1;
            self.sync.events.push(Event::Unknown { id, rss });
            return;
        };
        let conn = self.table.get(local);
        let before = conn.l4;
        let mut l4 = conn.l4;
        match apply_progress(&mut l4, p) {
            Ok(()) => {
                let key = *self.table.key(local);
                let d = &mut self.sync.digest;
                d.sum = d
                    .sum
                    .wrapping_sub(Digest::term(&key, &before))
                    .wrapping_add(Digest::term(&key, &l4));
                let conn = self.table.get_mut(local);
                conn.l4 = l4;
                conn.synced_at = low16(now);
                let expires = now.saturating_add(p.timeout).saturating_add(LARVAL_GRACE);
                self.table.set_expiry(local, expires);
                self.received.updated += 1;
            }
            Err(NotApplied::Stale) => self.received.stale += 1,
            Err(NotApplied::Bad) => self.received.bad += 1,
        }
    }

    /// The partner asked for an entry's full state.
    fn answer(&mut self, id: SyncId, now: u32) {
        let local = if id.creator() == self.sync.creator && id.worker() == self.sync.worker {
            Some(id.slot())
                .filter(|&s| self.table.is_live(s) && self.table.get(s).flags & flag::ADOPTED == 0)
        } else {
            self.adopted_entry(id)
        };
        if let Some(local) = local {
            let conn = self.table.get(local);
            if conn.flags & (flag::SYNC | flag::LARVAL) == flag::SYNC {
                let record = self.record(local, now);
                self.sync.events.push(Event::Conn {
                    kind: EventKind::Requested,
                    record,
                });
            }
        }
    }

    /// Drops every adopted larval entry for which `doomed` says so; returns
    /// how many. A whole-table walk: rare (a partner restart, a bulk's end).
    fn drop_adopted(&mut self, doomed: impl Fn(&Conn) -> bool) -> u64 {
        let mut dropped = 0;
        let capacity = u32::try_from(self.table.capacity()).unwrap_or(u32::MAX);
        for id in 0..capacity {
            if !self.table.is_live(id) {
                continue;
            }
            let conn = self.table.get(id);
            if conn.flags & (flag::ADOPTED | flag::LARVAL) == flag::ADOPTED | flag::LARVAL
                && doomed(conn)
            {
                self.remove(id);
                dropped += 1;
            }
        }
        dropped
    }
}

/// The low 16 bits of a second count (refresh intervals are far shorter).
fn low16(secs: u32) -> u16 {
    u16::try_from(secs & 0xffff).unwrap_or(0)
}

fn transition_kind(old: TcpState, new: TcpState) -> EventKind {
    if new == TcpState::Established {
        EventKind::Established
    } else if new.closing() && !old.closing() {
        EventKind::Closing
    } else {
        EventKind::StateChanged
    }
}
