//! The worker side of the control plane: what the control thread may ask a
//! worker, through small lock-free inboxes the worker checks once per loop.
//!
//! A worker owns its connection table outright, so nobody else reads it.
//! A listing is a [`ConnQuery`] the worker answers itself, a slice of the
//! table per loop iteration (so a million entries never stall forwarding),
//! sending matches back over a channel and `None` when done. New rules
//! arrive as an `Arc<RuleSet>` the worker swaps in between two bursts.

use crate::conntrack::conn::Conn;
use crate::conntrack::{FlowKey, Side};
use crate::filter::RuleSet;
use crossbeam::channel::Sender;
use crossbeam::queue::ArrayQueue;
use std::net::IpAddr;
use std::sync::Arc;

/// Table entries a worker examines per loop iteration for a listing.
pub const LIST_STEP: usize = 1024;

/// A connection as a listing shows it, in the original direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    /// The worker whose shard holds it.
    pub worker: usize,
    /// IP protocol.
    pub proto: u8,
    /// Who opened it.
    pub src: IpAddr,
    /// Its port (ICMP echo: the identifier).
    pub sport: u16,
    /// Who it went to.
    pub dst: IpAddr,
    /// Its port.
    pub dport: u16,
    /// State name (`ESTABLISHED`, `UDP_REPLIED`, ...).
    pub state: &'static str,
    /// Index of the rule that admitted it (`u16::MAX`: none).
    pub rule: u16,
    /// Ingress interface of the original direction.
    pub in_iface: u8,
    /// Egress interface.
    pub out_iface: u8,
    /// Seconds since it was created.
    pub age: u32,
    /// Seconds until it expires.
    pub expires_in: u32,
    /// `conn::flag` bits.
    pub flags: u8,
}

impl ConnInfo {
    /// The listing view of an entry.
    pub fn new(worker: usize, key: &FlowKey, conn: &Conn, expiry: u32, now: u32) -> Self {
        let (o, r) = (conn.orig_side, conn.orig_side.other());
        Self {
            worker,
            proto: key.proto,
            src: key.addr(o),
            sport: key.port(o),
            dst: key.addr(r),
            dport: key.port(r),
            state: conn.l4.name(),
            rule: conn.rule,
            in_iface: conn.in_iface,
            out_iface: conn.out_iface,
            age: now.saturating_sub(conn.created),
            expires_in: expiry.saturating_sub(now),
            flags: conn.flags,
        }
    }
}

/// Which connections a listing wants; every field that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnFilter {
    /// IP protocol.
    pub proto: Option<u8>,
    /// Either endpoint's address.
    pub addr: Option<IpAddr>,
    /// Either endpoint's port.
    pub port: Option<u16>,
    /// State name, case-insensitive (`established`).
    pub state: Option<String>,
}

impl ConnFilter {
    /// Whether an entry matches, checked on the key and state before a
    /// `ConnInfo` is built.
    pub fn matches(&self, key: &FlowKey, conn: &Conn) -> bool {
        let side_has = |s: Side, a: Option<IpAddr>, p: Option<u16>| {
            a.is_none_or(|a| key.addr(s) == a) && p.is_none_or(|p| key.port(s) == p)
        };
        self.proto.is_none_or(|p| p == key.proto)
            && (side_has(Side::Lo, self.addr, None) || side_has(Side::Hi, self.addr, None))
            && (side_has(Side::Lo, None, self.port) || side_has(Side::Hi, None, self.port))
            && self
                .state
                .as_ref()
                .is_none_or(|s| s.eq_ignore_ascii_case(conn.l4.name()))
    }
}

/// A listing request to one worker.
pub struct ConnQuery {
    /// What to list.
    pub filter: ConnFilter,
    /// Stop after this many matches.
    pub limit: usize,
    /// Matches, then `None` when the worker is done.
    pub reply: Sender<Option<ConnInfo>>,
}

/// One worker's inboxes from the control thread.
pub struct WorkerInbox {
    /// New rules to put in force.
    pub rules: ArrayQueue<Arc<RuleSet>>,
    /// Connection listings to answer.
    pub queries: ArrayQueue<ConnQuery>,
}

impl Default for WorkerInbox {
    fn default() -> Self {
        Self {
            rules: ArrayQueue::new(4),
            queries: ArrayQueue::new(16),
        }
    }
}

/// A listing in progress on a worker.
pub struct ActiveQuery {
    query: ConnQuery,
    next_id: u32,
    found: usize,
}

impl ActiveQuery {
    /// Starts answering `query`.
    pub fn new(query: ConnQuery) -> Self {
        Self {
            query,
            next_id: 0,
            found: 0,
        }
    }

    /// Examines the next [`LIST_STEP`] entries; `true` when finished.
    pub fn step(
        &mut self,
        worker: usize,
        table: &crate::conntrack::table::ConnTable<Conn>,
        now: u32,
    ) -> bool {
        let mut entries = table.iter_from(self.next_id);
        for (id, key, conn) in entries.by_ref().take(LIST_STEP) {
            self.next_id = id.saturating_add(1);
            if self.query.filter.matches(key, conn) {
                let info = ConnInfo::new(worker, key, conn, table.expiry(id), now);
                // The asker may have gone away: then nobody needs the rest.
                if self.query.reply.send(Some(info)).is_err() {
                    return true;
                }
                self.found += 1;
                if self.found >= self.query.limit {
                    break;
                }
            }
        }
        if self.found < self.query.limit && entries.next().is_some() {
            return false;
        }
        let _ = self.query.reply.send(None);
        true
    }
}
