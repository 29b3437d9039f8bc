//! Bulk transfers: the whole table (or some shards of it) streamed to the
//! partner, bracketed by a start and an end marker so the receiver knows what
//! the bulk did not refresh is stale (pfsync's bulk update, with its failure
//! mode fixed: a bulk that never ends times out and is asked for again —
//! counted and logged — instead of leaving a unit demoted for half an hour).
//!
//! ```text
//!  receiver                                   sender
//!    │ bulk request ───────────────────────────► │ export every shard asked for,
//!    │ ◄──────────────────────────── bulk start  │ paced by the workers (live
//!    │ ◄──────────── inserts (idle ones too) ... │ changes keep flowing between)
//!    │ ◄────────────────────────────── bulk end  │ after every shard's last record
//!    │ purge what the bulk did not refresh       │
//!    │ bulk done ──────────────────────────────► │ counted as sent
//! ```
//!
//! Both are pure state machines on an explicit clock; the engine does the
//! sending.

use crate::wire::Bulk;

/// Every shard.
pub const ALL_SHARDS: u64 = u64::MAX;

/// The bulk this unit sends.
#[derive(Debug, Clone, Default)]
pub struct Outgoing {
    next_id: u32,
    current: Option<Sending>,
    /// Bulks started.
    pub started: u64,
    /// Bulks the partner said it installed.
    pub completed: u64,
}

#[derive(Debug, Clone, Copy)]
struct Sending {
    bulk: Bulk,
    /// Workers whose export has not ended yet.
    waiting: u64,
    ended: bool,
}

/// The workers a shard bitmap names among `workers` (at most 64 take part
/// one by one; beyond, every bulk is of the whole table).
pub fn workers_of(shards: u64, workers: usize) -> u64 {
    let all = if workers >= 64 {
        u64::MAX
    } else {
        (1u64 << workers) - 1
    };
    if workers > 64 {
        return all;
    }
    shards & all
}

impl Outgoing {
    /// Starts a bulk of `shards` over `workers` workers (superseding one in
    /// progress); returns its start marker. The caller asks those workers to
    /// export.
    pub fn start(&mut self, shards: u64, workers: usize) -> Bulk {
        self.next_id = self.next_id.wrapping_add(1);
        let bulk = Bulk {
            id: self.next_id,
            shards,
        };
        self.current = Some(Sending {
            bulk,
            waiting: workers_of(shards, workers),
            ended: false,
        });
        self.started += 1;
        bulk
    }

    /// Worker `w` sent its last record; returns the end marker once every
    /// worker of the bulk has.
    pub fn worker_done(&mut self, w: usize) -> Option<Bulk> {
        let s = self.current.as_mut()?;
        if w < 64 {
            s.waiting &= !(1u64 << w);
        } else {
            s.waiting = 0;
        }
        if s.waiting == 0 && !s.ended {
            s.ended = true;
            return Some(s.bulk);
        }
        None
    }

    /// The partner installed `bulk`.
    pub fn peer_done(&mut self, bulk: Bulk) -> bool {
        if self
            .current
            .is_some_and(|s| s.bulk.id == bulk.id && s.ended)
        {
            self.current = None;
            self.completed += 1;
            return true;
        }
        false
    }

    /// Whether a bulk is being sent or waits for the partner's word.
    pub fn in_progress(&self) -> bool {
        self.current.is_some()
    }

    /// Forgets the bulk in progress (the partner restarted).
    pub fn reset(&mut self) {
        self.current = None;
    }
}

/// Where the bulk this unit receives stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncomingState {
    /// Nothing wanted.
    Idle,
    /// Wanted, asked for at `asked_ns` (`None`: not yet).
    Wanted {
        /// When it was last asked for.
        asked_ns: Option<u64>,
    },
    /// Arriving since `since_ns`.
    Receiving {
        /// The bulk.
        bulk: Bulk,
        /// When its start marker came.
        since_ns: u64,
        /// The same, in this unit's seconds (the workers' clock).
        since_secs: u32,
    },
    /// The last one ended at `at_ns`.
    Done {
        /// When.
        at_ns: u64,
    },
}

/// The bulk this unit receives.
#[derive(Debug, Clone)]
pub struct Incoming {
    state: IncomingState,
    timeout_ns: u64,
    /// Bulk requests sent.
    pub requested: u64,
    /// Bulks received whole.
    pub completed: u64,
    /// Bulks that did not end in time (each asked for again).
    pub timeouts: u64,
}

/// What the engine should do for the incoming bulk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncomingAction {
    /// Send a bulk request.
    Request,
    /// Send a bulk request: the last one timed out (log it).
    Retry,
}

impl Incoming {
    /// Nothing wanted yet; a bulk must end within `timeout_ns`.
    pub fn new(timeout_ns: u64) -> Incoming {
        Incoming {
            state: IncomingState::Idle,
            timeout_ns,
            requested: 0,
            completed: 0,
            timeouts: 0,
        }
    }

    /// Where it stands.
    pub fn state(&self) -> IncomingState {
        self.state
    }

    /// The partner's whole table is wanted (this unit joined, the partner
    /// restarted): ask at the next poll.
    pub fn want(&mut self) {
        if !matches!(self.state, IncomingState::Receiving { .. }) {
            self.state = IncomingState::Wanted { asked_ns: None };
        }
    }

    /// Whether the table is complete: the last bulk wanted ended.
    pub fn done(&self) -> bool {
        matches!(self.state, IncomingState::Done { .. })
    }

    /// Asks, or asks again after a timeout.
    pub fn poll(&mut self, now_ns: u64) -> Option<IncomingAction> {
        match self.state {
            IncomingState::Wanted { asked_ns: None } => {
                self.state = IncomingState::Wanted {
                    asked_ns: Some(now_ns),
                };
                self.requested += 1;
                Some(IncomingAction::Request)
            }
            IncomingState::Wanted { asked_ns: Some(t) }
            | IncomingState::Receiving { since_ns: t, .. }
                if now_ns.saturating_sub(t) >= self.timeout_ns =>
            {
                self.timeouts += 1;
                self.requested += 1;
                self.state = IncomingState::Wanted {
                    asked_ns: Some(now_ns),
                };
                Some(IncomingAction::Retry)
            }
            _ => None,
        }
    }

    /// A start marker arrived (wanted or not: a resync of some shards, or
    /// the partner's own initiative).
    pub fn started(&mut self, now_ns: u64, now_secs: u32, bulk: Bulk) {
        self.state = IncomingState::Receiving {
            bulk,
            since_ns: now_ns,
            since_secs: now_secs,
        };
    }

    /// An end marker arrived: the second the bulk began at (for the purge),
    /// if it is the one being received.
    pub fn ended(&mut self, now_ns: u64, bulk: Bulk) -> Option<u32> {
        match self.state {
            IncomingState::Receiving {
                bulk: b,
                since_secs,
                ..
            } if b.id == bulk.id => {
                self.state = IncomingState::Done { at_ns: now_ns };
                self.completed += 1;
                Some(since_secs)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 10_000;

    #[test]
    fn a_bulk_ends_after_every_worker_and_the_partner_says_done() {
        let mut o = Outgoing::default();
        let b = o.start(ALL_SHARDS, 3);
        assert_eq!(o.worker_done(0), None);
        assert_eq!(o.worker_done(2), None);
        assert_eq!(o.worker_done(2), None);
        assert_eq!(o.worker_done(1), Some(b));
        assert_eq!(o.worker_done(1), None, "one end marker");
        assert!(!o.peer_done(Bulk { id: 99, shards: 0 }));
        assert!(o.peer_done(b));
        assert!(!o.in_progress());
        assert_eq!((o.started, o.completed), (1, 1));
    }

    #[test]
    fn a_resync_waits_only_for_its_shards() {
        let mut o = Outgoing::default();
        let b = o.start(0b10, 4);
        assert_eq!(o.worker_done(1), Some(b));
        assert_eq!(workers_of(ALL_SHARDS, 2), 0b11);
        assert_eq!(workers_of(0b100, 2), 0);
    }

    #[test]
    fn a_new_bulk_supersedes_the_old() {
        let mut o = Outgoing::default();
        let old = o.start(ALL_SHARDS, 1);
        let new = o.start(ALL_SHARDS, 1);
        assert_ne!(old.id, new.id);
        assert_eq!(o.worker_done(0), Some(new));
        assert!(!o.peer_done(old));
    }

    #[test]
    fn a_bulk_that_never_ends_is_asked_for_again() {
        let mut i = Incoming::new(T);
        assert_eq!(i.poll(0), None);
        i.want();
        assert_eq!(i.poll(5), Some(IncomingAction::Request));
        assert_eq!(i.poll(5 + T - 1), None);
        assert_eq!(
            i.poll(5 + T),
            Some(IncomingAction::Retry),
            "no start marker"
        );
        let b = Bulk {
            id: 7,
            shards: ALL_SHARDS,
        };
        i.started(20_000, 2, b);
        assert_eq!(i.poll(20_000 + T - 1), None);
        assert_eq!(
            i.poll(20_000 + T),
            Some(IncomingAction::Retry),
            "no end marker"
        );
        assert_eq!(i.timeouts, 2);
        i.started(40_000, 4, b);
        assert_eq!(i.ended(41_000, Bulk { id: 8, shards: 0 }), None);
        assert_eq!(i.ended(41_000, b), Some(4));
        assert!(i.done());
        assert_eq!((i.requested, i.completed), (3, 1));
    }
}
