//! One worker's shard of connection tracking: the table, the timeouts, and
//! the worker's event queue, with the decisions the firewall asks for.
//!
//! The shard knows nothing of rules or packets' bytes: the firewall hands it
//! a [`Flow`] (key, side, and the L4 facts tracking needs) and asks
//! [`Shard::track`] whether an entry decides. If none does, the firewall runs
//! the rules and, for a pass with state, calls [`Shard::create`].

use super::conn::{flag, Conn, L4State, Pseudo, Timeouts};
use super::event::{Event, EventKind, EventQueue};
use super::key::{FlowKey, Side};
use super::table::ConnTable;
use super::tcp::{Dir, Segment, TcpConn, TcpInvalid, TcpState, TcpVerdict};

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
    /// Rule index (`u16::MAX` for the default policy).
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
}

/// One worker's connection tracking.
pub struct Shard {
    table: ConnTable<Conn>,
    timeouts: Timeouts,
    events: EventQueue,
    stats: ShardStats,
}

/// Expiry work per poll: bounded, so a burst of timeouts never stalls a worker.
const EXPIRE_BUDGET: usize = 256;

impl Shard {
    /// A shard for `capacity` connections; all memory is taken now.
    pub fn new(capacity: usize, seed: u64, timeouts: Timeouts, events: EventQueue) -> Self {
        Self {
            table: ConnTable::with_capacity(capacity, seed),
            timeouts,
            events,
            stats: ShardStats::default(),
        }
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

    /// The event queue (the consumer side is syncd's).
    pub fn events(&self) -> &EventQueue {
        &self.events
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
                            self.emit(id, transition_kind(old, new), now);
                        } else {
                            self.refresh_if_due(id, now);
                        }
                        Tracked::Pass
                    }
                    TcpVerdict::Ignore => Tracked::Pass,
                    TcpVerdict::Invalid(why) => Tracked::Refused(Refused::Tcp(why)),
                    TcpVerdict::Close => {
                        self.remove(id, now);
                        self.stats.closed += 1;
                        Tracked::Pass
                    }
                    TcpVerdict::Reopen => {
                        self.remove(id, now);
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
        let mut flags = 0;
        if adm.sync {
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
        let events = &self.events;
        let n = self.table.expire(now, EXPIRE_BUDGET, |_, key, conn| {
            if conn.flags & flag::SYNC != 0 {
                events.push(Event {
                    kind: EventKind::Deleted,
                    key: *key,
                    conn,
                    timeout: 0,
                });
            }
        });
        self.stats.expired += n as u64;
        n
    }

    fn remove(&mut self, id: u32, now: u32) {
        self.emit(id, EventKind::Deleted, now);
        self.table.remove(id);
    }

    /// Offers an event for a synchronised entry; a full queue marks it for re-send.
    fn emit(&mut self, id: u32, kind: EventKind, now: u32) {
        let conn = *self.table.get(id);
        if conn.flags & flag::SYNC == 0 {
            return;
        }
        let timeout = self.table.expiry(id).saturating_sub(now);
        let key = *self.table.key(id);
        let entry = self.table.get_mut(id);
        entry.synced_at = low16(now);
        if !self.events.push(Event {
            kind,
            key,
            conn,
            timeout,
        }) {
            entry.flags |= flag::RESEND;
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
