//! The worker side of the control plane: what the control thread may ask a
//! worker, through small lock-free inboxes the worker checks once per loop.
//!
//! A worker owns its connection table outright, so nobody else reads it.
//! A listing is a [`ConnQuery`] the worker answers itself, a slice of the
//! table per loop iteration (so a million entries never stall forwarding),
//! sending matches back over a channel and `None` when done. New rules
//! arrive as an `Arc<RuleSet>` the worker swaps in between two bursts, and
//! the pair's shared configuration as an `Arc<LiveConfig>` likewise.

use crate::conntrack::conn::{Conn, Timeouts};
use crate::conntrack::{FlowKey, Side};
use crate::filter::RuleSet;
use crate::forward::RouterConfig;
use crossbeam::channel::{Receiver, Sender, TryRecvError};
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
    /// Synchronisation state.
    pub sync: Option<SyncState>,
}

/// A connection's synchronisation with the partner, as the console shows it
/// (from its flags, [`crate::conntrack::conn::flag`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncState {
    /// This unit's own, told to the partner (`live`).
    Live,
    /// The partner's, held ready for a takeover (`larval`).
    Larval,
    /// Not synchronised: its rule says `sync: false` (`no:rule`).
    NotByRule,
    /// Not synchronised yet: younger than `ha.sync.min_age_s` (`no:young`).
    NotYet,
}

impl SyncState {
    /// Every state, in the order the console lists them.
    pub const ALL: [SyncState; 4] = [
        SyncState::Live,
        SyncState::Larval,
        SyncState::NotByRule,
        SyncState::NotYet,
    ];

    /// The state of an entry with these flags.
    pub fn of(flags: u8) -> SyncState {
        use crate::conntrack::conn::flag;
        if flags & flag::LARVAL != 0 {
            SyncState::Larval
        } else if flags & flag::SYNC_LATER != 0 {
            SyncState::NotYet
        } else if flags & flag::SYNC != 0 {
            SyncState::Live
        } else {
            SyncState::NotByRule
        }
    }

    /// The console's word for it.
    pub fn name(self) -> &'static str {
        match self {
            SyncState::Live => "live",
            SyncState::Larval => "larval",
            SyncState::NotByRule => "no:rule",
            SyncState::NotYet => "no:young",
        }
    }
}

impl ConnFilter {
    /// Whether an entry matches, checked on the key and state before a
    /// `ConnInfo` is built.
    pub fn matches(&self, key: &FlowKey, conn: &Conn) -> bool {
        let sides = [Side::Lo, Side::Hi];
        self.proto.is_none_or(|p| p == key.proto)
            && self
                .addr
                .is_none_or(|a| sides.iter().any(|&s| key.addr(s) == a))
            && self
                .port
                .is_none_or(|p| sides.iter().any(|&s| key.port(s) == p))
            && self
                .state
                .as_ref()
                .is_none_or(|s| s.eq_ignore_ascii_case(conn.l4.name()))
            && self.sync.is_none_or(|s| s == SyncState::of(conn.flags))
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

/// The part of a unit's configuration a running worker takes without a
/// restart: what the two units of a pair share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveConfig {
    /// The interfaces' virtual IPs and MACs, and the static routes; the
    /// ports and their own addresses must be the running ones
    /// (`Router::reconfigure`).
    pub router: RouterConfig,
    /// The connection timeouts (`Firewall::set_timeouts`).
    pub timeouts: Timeouts,
}

/// One worker's inboxes from the control thread.
pub struct WorkerInbox {
    /// New rules to put in force.
    pub rules: ArrayQueue<Arc<RuleSet>>,
    /// New shared configuration to put in force; each is whole, so a newer
    /// one may push an older one out (`force_push`).
    pub config: ArrayQueue<Arc<LiveConfig>>,
    /// Connection listings to answer.
    pub queries: ArrayQueue<ConnQuery>,
}

impl Default for WorkerInbox {
    fn default() -> Self {
        Self {
            rules: ArrayQueue::new(4),
            config: ArrayQueue::new(4),
            queries: ArrayQueue::new(16),
        }
    }
}

/// A listing as the control plane sees it: asked of every worker at once,
/// then collected without waiting ([`Listing::poll`]) while the workers
/// answer a slice of their tables per loop iteration.
pub struct Listing {
    rx: Receiver<Option<ConnInfo>>,
    /// Workers that have not said they are done.
    waiting: usize,
    found: Vec<ConnInfo>,
}

impl Listing {
    /// Asks each worker of `inboxes` for the connections matching `filter`,
    /// at most `limit` each. A worker whose query inbox is full is not asked.
    pub fn ask<'a>(
        inboxes: impl IntoIterator<Item = &'a WorkerInbox>,
        filter: &ConnFilter,
        limit: usize,
    ) -> Listing {
        let (tx, rx) = crossbeam::channel::unbounded();
        let mut waiting = 0;
        for inbox in inboxes {
            let query = ConnQuery {
                filter: filter.clone(),
                limit,
                reply: tx.clone(),
            };
            if inbox.queries.push(query).is_ok() {
                waiting += 1;
            }
        }
        Listing {
            rx,
            waiting,
            found: Vec::new(),
        }
    }

    /// Takes what the workers sent since the last call; `true` once every
    /// worker asked said it is done.
    pub fn poll(&mut self) -> bool {
        while self.waiting > 0 {
            match self.rx.try_recv() {
                Ok(Some(info)) => self.found.push(info),
                Ok(None) => self.waiting -= 1,
                Err(TryRecvError::Empty) => return false,
                Err(TryRecvError::Disconnected) => self.waiting = 0,
            }
        }
        true
    }

    /// The connections found (all of them once [`poll`](Self::poll) said done).
    pub fn into_found(self) -> Vec<ConnInfo> {
        self.found
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::conn::{L4State, Pseudo};
    use crate::conntrack::table::ConnTable;
    use std::net::Ipv4Addr;

    fn key(port: u16) -> FlowKey {
        let a = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2));
        let b = IpAddr::V4(Ipv4Addr::new(198, 18, 2, 2));
        FlowKey::from_packet(a, port, b, 5353, 17).0
    }

    #[test]
    fn filter_matches_either_endpoint() {
        let c = Conn {
            l4: L4State::Udp(Pseudo::Replied),
            ..Conn::default()
        };
        let f = |f: ConnFilter| f.matches(&key(40000), &c);
        assert!(f(ConnFilter::default()));
        assert!(f(ConnFilter {
            port: Some(5353),
            ..Default::default()
        }));
        assert!(f(ConnFilter {
            port: Some(40000),
            ..Default::default()
        }));
        assert!(!f(ConnFilter {
            port: Some(80),
            ..Default::default()
        }));
        assert!(f(ConnFilter {
            addr: Some("198.18.2.2".parse().unwrap()),
            ..Default::default()
        }));
        assert!(!f(ConnFilter {
            addr: Some("198.18.9.9".parse().unwrap()),
            ..Default::default()
        }));
        assert!(f(ConnFilter {
            proto: Some(17),
            state: Some("udp_replied".into()),
            ..Default::default()
        }));
        assert!(!f(ConnFilter {
            proto: Some(6),
            ..Default::default()
        }));
        assert!(!f(ConnFilter {
            sync: Some(SyncState::Larval),
            ..Default::default()
        }));
        assert!(f(ConnFilter {
            sync: Some(SyncState::NotByRule),
            ..Default::default()
        }));
    }

    #[test]
    fn the_sync_state_follows_the_flags() {
        use crate::conntrack::conn::flag;
        assert_eq!(SyncState::of(flag::SYNC), SyncState::Live);
        assert_eq!(SyncState::of(flag::SYNC | flag::RESEND), SyncState::Live);
        assert_eq!(
            SyncState::of(flag::SYNC | flag::LARVAL | flag::ADOPTED),
            SyncState::Larval
        );
        assert_eq!(
            SyncState::of(flag::SYNC | flag::ADOPTED),
            SyncState::Live,
            "taken over"
        );
        assert_eq!(SyncState::of(flag::SYNC_LATER), SyncState::NotYet);
        assert_eq!(SyncState::of(0), SyncState::NotByRule);
    }

    #[test]
    fn a_listing_walks_the_table_in_steps_and_ends_with_none() {
        let mut t: ConnTable<Conn> = ConnTable::with_capacity(3000, 1);
        for p in 0..2500u16 {
            let k = key(10000 + p);
            let h = t.hash(&k);
            t.insert(k, h, Conn::default(), 100).unwrap();
        }
        let (tx, rx) = crossbeam::channel::unbounded();
        let q = ConnQuery {
            filter: ConnFilter::default(),
            limit: usize::MAX,
            reply: tx,
        };
        let mut active = ActiveQuery::new(q);
        let mut steps = 1;
        while !active.step(0, &t, 10) {
            steps += 1;
        }
        assert_eq!(steps, 3, "1024 entries per step");
        let got: Vec<_> = rx.try_iter().collect();
        assert_eq!(got.len(), 2501);
        assert!(got[..2500].iter().all(Option::is_some));
        assert_eq!(got[2500], None);
        let first = got[0].as_ref().unwrap();
        assert_eq!((first.expires_in, first.age), (90, 10));
    }

    #[test]
    fn a_listing_stops_at_its_limit() {
        let mut t: ConnTable<Conn> = ConnTable::with_capacity(100, 1);
        for p in 0..50u16 {
            let k = key(10000 + p);
            let h = t.hash(&k);
            t.insert(k, h, Conn::default(), 100).unwrap();
        }
        let (tx, rx) = crossbeam::channel::unbounded();
        let mut active = ActiveQuery::new(ConnQuery {
            filter: ConnFilter::default(),
            limit: 5,
            reply: tx,
        });
        assert!(active.step(0, &t, 0));
        assert_eq!(rx.try_iter().count(), 6, "five and the end");
    }
}
