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
//! until the windows are learnt again (then counted: `windows_relearnt`); and
//! from then on the larval ones are this unit's to tell a returning partner
//! about, in its bulk, as its own are.
//!
//! # Rule references
//!
//! An entry's `rule` indexes the rule set in force when it was created. A
//! reload ([`Shard::renumber_rules`]) flips the shard's rules parity; entries
//! of the old parity still index the old set (and a record says so, with that
//! set's revision) until the walker has renumbered them.
//!
//! Files: this one holds tracking and what the partner is told; `walks.rs`
//! the background work of [`Shard::service`]; `receive.rs` the receiving side
//! ([`Shard::receive`]).

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

mod receive;
mod walks;

pub use receive::{ReceiveStats, LARVAL_GRACE};

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
    /// Adopted TCP entries whose windows were learnt again after a takeover:
    /// strict checking resumed.
    pub windows_relearnt: u64,
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
    /// Larval entries forward (this unit took over). Then they are this
    /// unit's to tell the partner about, as its own are: the unit that made
    /// them is gone, and a returning partner must get them in its bulk, or an
    /// idle connection would not survive a second takeover.
    live: bool,
}

impl SyncSide {
    /// Whether this unit tells the partner about the entry: a synchronised
    /// one, unless it is larval while this unit is passive (then it is the
    /// partner's, which told us).
    fn ours(&self, conn: &Conn) -> bool {
        conn.flags & flag::SYNC != 0 && (conn.flags & flag::LARVAL == 0 || self.live)
    }

    /// An entry's name: the partner's for an adopted one, else its own.
    fn name(&self, id: u32, conn: &Conn) -> SyncId {
        if conn.flags & flag::ADOPTED != 0 {
            self.adopted_ids[id as usize]
        } else {
            SyncId::new(self.creator, self.worker, id)
        }
    }

    /// An entry left the table: its bookkeeping ([`SyncSide::forget`]), and
    /// the delete the partner must hear of (not for the partner's own larval
    /// entry: the partner told us, not the reverse).
    fn gone(&mut self, id: u32, key: &FlowKey, conn: &Conn, stats: &mut ShardStats) {
        let ours = self.ours(conn);
        let Some(name) = self.forget(id, key, conn) else {
            return;
        };
        if !ours {
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

    /// The bookkeeping of an entry leaving the table, telling nobody: its
    /// digest term, its adopted name, its pending re-send or maturing. Returns
    /// its name if it was synchronised.
    fn forget(&mut self, id: u32, key: &FlowKey, conn: &Conn) -> Option<SyncId> {
        if conn.flags & flag::SYNC_LATER != 0 {
            self.young = self.young.saturating_sub(1);
        }
        if conn.flags & flag::SYNC == 0 {
            return None;
        }
        self.digest.remove(key, &conn.l4);
        let name = self.name(id, conn);
        if conn.flags & flag::ADOPTED != 0 {
            self.adopted.remove(name);
        }
        if conn.flags & flag::RESEND != 0 {
            self.resend_pending = self.resend_pending.saturating_sub(1);
        }
        Some(name)
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
}

/// Expiry work per poll: bounded, so a burst of timeouts never stalls a worker.
const EXPIRE_BUDGET: usize = 256;

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
                live: false,
            },
            revisions: [0; 2],
            parity: 0,
            renumber: None,
            resend_cursor: 0,
            mature_cursor: 0,
            export_cursor: None,
            min_age: 0,
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

    /// Puts new timeouts in force: new entries, and the next packet of an
    /// entry already there, take their expiry from them; until its next
    /// packet an entry keeps the expiry it has (Linux conntrack does the same
    /// when its sysctl timeouts change).
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.timeouts = timeouts;
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
            if !self.sync.live {
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
                let learning = tcp.learning();
                let verdict = tcp.track(dir, &seg, &self.timeouts.tcp);
                if learning && !tcp.learning() {
                    self.stats.windows_relearnt += 1;
                }
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

    /// Offers an event for an entry of ours ([`SyncSide::ours`]); a full
    /// queue marks it for re-send.
    fn emit(&mut self, id: u32, kind: EventKind, now: u32) {
        let conn = *self.table.get(id);
        if !self.sync.ours(&conn) {
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
